// libFuzzer target: a byte stream of v5 segments, reassembled into envelopes that are decoded.
// Input: byte 0 bit 0 says whether the segments are LZ4 ones; the rest is the stream.
#include "protocol/responses.hpp"
#include "protocol/segment.hpp"

#include <cstddef>
#include <cstdint>

using namespace cqlcoro::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    segment_decoder dec((data[0] & 1) != 0);
    envelope_assembler assembler(1 << 20);
    bytes_view in(data + 1, size - 1);
    while (!in.empty()) {
        auto s = dec.decode(in);
        if (!s || !*s) return 0;
        auto ec = assembler.feed(**s, [](const frame_header& h, bytes_view body) { (void)decode_response(h, body); });
        if (ec) return 0;
        in = in.subspan((*s)->consumed);
    }
    return 0;
}
