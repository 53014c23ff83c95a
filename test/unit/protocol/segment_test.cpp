// v5 framing: segment bytes checked against vectors computed independently (zlib's CRC32 and a
// from-the-spec CRC24 outside this code base).
#include "protocol/compression.hpp"
#include "protocol/crc.hpp"
#include "protocol/segment.hpp"
#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

#include <vector>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using cqlcoro::test::hex;
using cqlcoro::test::to_hex;

namespace {

byte_buffer envelope(std::int16_t stream, std::size_t body_len, std::uint8_t fill = 0x61) {
    byte_buffer e(header_size + body_len, fill);
    encode_header({5, true, 0, stream, opcode::result, static_cast<std::uint32_t>(body_len)}, e.data());
    return e;
}

struct received {
    std::int16_t stream;
    byte_buffer body;
};

// Decodes every segment in `wire`, feeding the assembler, as a connection's read loop would.
std::vector<received> decode_all(bytes_view wire, bool lz4, error_code& ec) {
    segment_decoder dec(lz4);
    envelope_assembler asm_;
    std::vector<received> out;
    while (!wire.empty()) {
        auto s = dec.decode(wire);
        if (!s) {
            ec = s.error();
            return out;
        }
        REQUIRE(s->has_value());
        ec = asm_.feed(**s, [&](const frame_header& h, bytes_view body) {
            out.push_back({h.stream, byte_buffer(body.begin(), body.end())});
        });
        if (ec) return out;
        wire = wire.subspan((*s)->consumed);
    }
    CHECK(asm_.idle());
    return out;
}

}  // namespace

TEST_CASE("crc: CRC24 and CRC32 match independently computed values") {
    CHECK(crc24(hex("000002")) == 0xc4366a);
    CHECK(crc32({}) == 0x44777ed3);
    CHECK(crc32(hex("'123456789'")) == 0xe2a261a7);
}

TEST_CASE("segments: an uncompressed segment is header(len|self-contained, CRC24) + payload + CRC32, little-endian") {
    byte_buffer out;
    encode_segment(hex("'hello'"), true, false, out);
    CHECK(to_hex(out) == "05000219999a68656c6c6f74800eb6");
    out.clear();
    encode_segment({}, false, false, out);
    CHECK(to_hex(out) == "00000077e77dd37e7744");
}

TEST_CASE("segments: an lz4 segment that would not shrink is stored with uncompressed length 0") {
    byte_buffer out;
    encode_segment(hex("'hello'"), true, true, out);
    CHECK(to_hex(out) == "0500000004e4ab8e68656c6c6f74800eb6");
    segment_decoder dec(true);
    auto s = dec.decode(out);
    REQUIRE(s.has_value());
    CHECK(as_string_view((*s)->payload) == "hello");
}

TEST_CASE("segments: small envelopes share one self-contained segment and come back in order") {
    for (bool lz4 : {false, true}) {
        std::vector<byte_buffer> envs{envelope(1, 10), envelope(2, 0), envelope(3, 1000, 0x62)};
        std::vector<bytes_view> views(envs.begin(), envs.end());
        byte_buffer wire;
        encode_envelopes(views, lz4, wire);
        segment_decoder dec(lz4);
        auto first = dec.decode(wire);
        REQUIRE(first.has_value());
        CHECK((*first)->consumed == wire.size());  // one segment
        CHECK((*first)->self_contained);
        error_code ec;
        auto got = decode_all(wire, lz4, ec);
        REQUIRE_FALSE(ec);
        REQUIRE(got.size() == 3);
        CHECK(got[0].stream == 1);
        CHECK(got[1].body.empty());
        CHECK(got[2].body == byte_buffer(1000, 0x62));
    }
}

TEST_CASE("segments: an envelope larger than 128 KiB is split across non-self-contained segments") {
    for (bool lz4 : {false, true}) {
        auto big = envelope(7, 300000, 0x63);
        auto small = envelope(8, 5);
        std::vector<bytes_view> views{small, big, small};
        byte_buffer wire;
        encode_envelopes(views, lz4, wire);
        error_code ec;
        auto got = decode_all(wire, lz4, ec);
        REQUIRE_FALSE(ec);
        REQUIRE(got.size() == 3);
        CHECK(got[1].stream == 7);
        CHECK(got[1].body == byte_buffer(300000, 0x63));
        CHECK(got[2].stream == 8);
        if (lz4) CHECK(wire.size() < 10000);  // a run of one byte compresses
    }
}

TEST_CASE("segments: the decoder asks for more input until a whole segment is there") {
    auto e = envelope(1, 100);
    std::vector<bytes_view> views{e};
    byte_buffer wire;
    encode_envelopes(views, false, wire);
    segment_decoder dec(false);
    for (std::size_t n = 0; n < wire.size(); ++n) {
        auto s = dec.decode(bytes_view(wire).first(n));
        REQUIRE(s.has_value());
        CHECK_FALSE(s->has_value());
        CHECK(dec.bytes_needed() == (n < 6 ? 6 : wire.size()));
    }
    CHECK(dec.decode(wire)->has_value());
}

TEST_CASE("segments: corrupt header or payload bytes are caught by the CRCs") {
    auto e = envelope(1, 20);
    std::vector<bytes_view> views{e};
    for (bool lz4 : {false, true}) {
        byte_buffer wire;
        encode_envelopes(views, lz4, wire);
        auto bad_header = wire;
        bad_header[0] ^= 0x01;
        CHECK(segment_decoder(lz4).decode(bad_header).error() == protocol_errc::segment_header_crc);
        auto bad_payload = wire;
        bad_payload[segment_header_size(lz4) + 3] ^= 0x40;
        CHECK(segment_decoder(lz4).decode(bad_payload).error() == protocol_errc::segment_payload_crc);
    }
}

TEST_CASE("segments: a self-contained segment must hold whole envelopes") {
    auto e = envelope(1, 20);
    byte_buffer wire;
    encode_segment(bytes_view(e).first(15), true, false, wire);
    error_code ec;
    decode_all(wire, false, ec);
    CHECK(ec == protocol_errc::bad_envelope_in_segment);
}

TEST_CASE("segments: a multi-segment envelope may not overrun its declared length") {
    auto e = envelope(1, 20);
    e.push_back(0);  // one byte more than the header says
    byte_buffer wire;
    encode_segment(e, false, false, wire);
    error_code ec;
    decode_all(wire, false, ec);
    CHECK(ec == protocol_errc::bad_envelope_in_segment);
}

TEST_CASE("segments: a compressed segment that lies about its size fails cleanly") {
    auto payload = byte_buffer(1000, 0x41);
    byte_buffer block;
    lz4_compress_block(payload, block);
    // Hand-build a header claiming 2000 uncompressed bytes.
    byte_buffer wire;
    std::uint64_t fields = block.size() | (std::uint64_t{2000} << 17) | (std::uint64_t{1} << 34);
    for (int i = 0; i < 5; ++i) wire.push_back(static_cast<std::uint8_t>(fields >> (8 * i)));
    auto c = crc24(wire);
    for (int i = 0; i < 3; ++i) wire.push_back(static_cast<std::uint8_t>(c >> (8 * i)));
    wire.insert(wire.end(), block.begin(), block.end());
    auto p = crc32(block);
    for (int i = 0; i < 4; ++i) wire.push_back(static_cast<std::uint8_t>(p >> (8 * i)));
    CHECK(segment_decoder(true).decode(wire).error() == protocol_errc::decompression_failed);
}
