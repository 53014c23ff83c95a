// libFuzzer target: one response message body.
// Input: byte 0 = protocol version (3..5), byte 1 = opcode, byte 2 = frame flags; the rest is the body.
#include "protocol/responses.hpp"

#include <cstddef>
#include <cstdint>

using namespace cqlcoro::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    frame_header h;
    h.version = static_cast<std::uint8_t>(3 + data[0] % 3);
    h.response = true;
    h.op = static_cast<opcode>(data[1] & 0x1F);
    h.flags = data[2];
    if (!is_response_opcode(h.op)) return 0;
    auto r = decode_response(h, bytes_view(data + 3, size - 3));
    if (r) {
        // Walk the cells of a rows result as a row view will: the decoder vouched for them.
        if (auto res = std::get_if<result_response>(&r->body)) {
            if (auto rows = std::get_if<rows_result>(&res->body)) {
                reader cells(rows->content);
                for (std::int64_t i = 0; i < std::int64_t{rows->row_count} * rows->metadata.column_count; ++i) (void)cells.bytes();
                if (!cells.ok() || cells.remaining() != 0) __builtin_trap();
            }
        }
    }
    return 0;
}
