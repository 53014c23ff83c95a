// libFuzzer target: a byte stream of v3/v4 frames (header, optional compression, request or response).
// Input: byte 0 picks the negotiated compression (0 none, 1 lz4, 2 snappy); the rest is the stream.
#include "protocol/frame.hpp"
#include "protocol/responses.hpp"
#include "protocol/server_side.hpp"

#include <cstddef>
#include <cstdint>

using namespace cqlcoro::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const auto comp = static_cast<compression>(data[0] % 3);
    bytes_view in(data + 1, size - 1);
    byte_buffer scratch;
    while (in.size() >= header_size) {
        auto h = decode_header(in, 1 << 20);
        if (!h) return 0;
        if (in.size() - header_size < h->length) return 0;
        auto body = frame_body(*h, in.subspan(header_size, h->length), comp, 1 << 20, scratch);
        if (body && h->response) (void)decode_response(*h, *body);
        if (body && !h->response) (void)decode_request(*h, *body);
        in = in.subspan(header_size + h->length);
    }
    return 0;
}
