#include "protocol/compression.hpp"
#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using cqlcoro::test::hex;

namespace {
byte_buffer sample(std::size_t n) {
    byte_buffer b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((i * 7) % 13);
    return b;
}
}  // namespace

TEST_CASE("compression: lz4 and snappy bodies round-trip") {
    for (auto c : {compression::lz4, compression::snappy}) {
        for (std::size_t n : {0u, 1u, 100u, 100000u}) {
            auto in = sample(n);
            byte_buffer packed, out;
            compress_body(c, in, packed);
            REQUIRE_FALSE(decompress_body(c, packed, n, out));
            CHECK(out == in);
        }
    }
}

TEST_CASE("compression: the v3/v4 lz4 body starts with the uncompressed length as a big-endian [int]") {
    byte_buffer packed;
    compress_body(compression::lz4, sample(300), packed);
    CHECK(byte_buffer(packed.begin(), packed.begin() + 4) == hex("0000012c"));
}

TEST_CASE("compression: a body declaring more than the maximum is refused before allocating (bombs)") {
    byte_buffer out;
    CHECK(decompress_body(compression::lz4, hex("40000000 00"), 1 << 20, out) == protocol_errc::decompressed_too_large);
    // snappy's preamble is a varint of the uncompressed length: 0x80 0x80 0x80 0x80 0x04 = 1 GiB
    CHECK(decompress_body(compression::snappy, hex("8080808004 00"), 1 << 20, out) == protocol_errc::decompressed_too_large);
    CHECK(out.empty());
}

TEST_CASE("compression: corrupt compressed data is an error value") {
    byte_buffer packed, out;
    compress_body(compression::lz4, sample(1000), packed);
    packed.resize(packed.size() / 2);
    CHECK(decompress_body(compression::lz4, packed, 1 << 20, out) == protocol_errc::decompression_failed);
    CHECK(decompress_body(compression::lz4, hex("0000"), 1 << 20, out) == protocol_errc::decompression_failed);
    CHECK(decompress_body(compression::lz4, hex("ffffffff"), 1 << 20, out) == protocol_errc::decompression_failed);
    packed.clear();
    compress_body(compression::snappy, sample(1000), packed);
    packed.resize(packed.size() / 2);
    CHECK(decompress_body(compression::snappy, packed, 1 << 20, out) == protocol_errc::decompression_failed);
    CHECK(decompress_body(compression::none, packed, 1 << 20, out) == protocol_errc::compression_not_negotiated);
}

TEST_CASE("compression: raw lz4 blocks must inflate to exactly the announced size") {
    auto in = sample(5000);
    byte_buffer packed, out;
    lz4_compress_block(in, packed);
    CHECK(lz4_decompress_block(packed, 4999, out) == protocol_errc::decompression_failed);
    CHECK(lz4_decompress_block(packed, 5001, out) == protocol_errc::decompression_failed);
    REQUIRE_FALSE(lz4_decompress_block(packed, 5000, out));
    CHECK(out == in);
}
