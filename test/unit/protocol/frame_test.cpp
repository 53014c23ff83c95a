#include "protocol/frame.hpp"
#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using cqlcoro::test::hex;

TEST_CASE("frame header: encodes version, direction, flags, stream, opcode and length big-endian") {
    frame_header h{4, false, frame_flag::tracing, 0x0102, opcode::query, 0x01020304};
    std::uint8_t out[header_size];
    encode_header(h, out);
    CHECK(cqlcoro::test::to_hex(out) == "040201020701020304");
}

TEST_CASE("frame header: decodes a v3 response with a negative (server-initiated) stream id") {
    auto in = hex("83 00 ffff 0c 00000010");
    auto h = decode_header(in);
    REQUIRE(h);
    CHECK(h->version == 3);
    CHECK(h->response);
    CHECK(h->stream == -1);
    CHECK(h->op == opcode::event);
    CHECK(h->length == 16);
}

TEST_CASE("frame header: rejects versions outside 3..5") {
    for (std::uint8_t v : {0x01, 0x02, 0x06, 0x82, 0x86}) {
        auto in = hex("00 00 0000 02 00000000");
        in[0] = v;
        CHECK(decode_header(in).error() == protocol_errc::unsupported_version);
    }
}

TEST_CASE("frame header: rejects an opcode the protocol does not define") {
    CHECK(decode_header(hex("84 00 0000 04 00000000")).error() == protocol_errc::unknown_opcode);
    CHECK(decode_header(hex("84 00 0000 11 00000000")).error() == protocol_errc::unknown_opcode);
}

TEST_CASE("frame header: a body longer than the configured maximum is refused before reading it") {
    auto in = hex("84 00 0000 08 00100001");
    CHECK(decode_header(in, 0x100000).error() == protocol_errc::frame_too_large);
    CHECK(decode_header(in, 0x100001).has_value());
    CHECK(decode_header(hex("84 00 0000 08 7fffffff")).error() == protocol_errc::frame_too_large);
}

TEST_CASE("frame header: fewer than 9 bytes is truncated") {
    CHECK(decode_header(hex("84 00 0000 08 000000")).error() == protocol_errc::truncated_frame);
}
