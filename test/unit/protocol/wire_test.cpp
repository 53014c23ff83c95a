#include "protocol/wire.hpp"
#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using cqlcoro::test::hex;

TEST_CASE("wire: unsigned vint matches the spec's example (256000 is C3 E8 00)") {
    byte_buffer out;
    writer(out).unsigned_vint(256000);
    CHECK(out == hex("c3e800"));
    reader r(out);
    CHECK(r.unsigned_vint() == 256000);
    CHECK(r.ok());
}

TEST_CASE("wire: unsigned vint round-trips every length class") {
    for (std::uint64_t v : {0ull, 1ull, 127ull, 128ull, 16383ull, 16384ull, (1ull << 56) - 1, 1ull << 56,
                            ~0ull}) {
        byte_buffer out;
        writer(out).unsigned_vint(v);
        reader r(out);
        CHECK(r.unsigned_vint() == v);
        CHECK(r.remaining() == 0);
    }
    byte_buffer max;
    writer(max).unsigned_vint(~0ull);
    CHECK(max.size() == 9);
    CHECK(max[0] == 0xFF);
}

TEST_CASE("wire: a read past the end fails once and every later read is empty") {
    auto in = hex("0001 02");
    reader r(in);
    CHECK(r.u16() == 1);
    CHECK(r.i32() == 0);
    CHECK(r.error() == protocol_errc::truncated_frame);
    CHECK(r.u8() == 0);  // sticky: nothing more is read
    CHECK(r.remaining() == 0);
}

TEST_CASE("wire: strings, bytes and maps decode as the notation says") {
    auto in = hex("0003 'abc' 00000002 'xy' ffffffff 0002 0001 'a' 0001 'b' 0001 'c' 0000");
    reader r(in);
    CHECK(r.string() == "abc");
    CHECK(as_string_view(*r.bytes()) == "xy");
    CHECK_FALSE(r.bytes().has_value());  // negative length = null
    auto m = r.string_map();
    REQUIRE(m.size() == 2);
    CHECK(m[0] == std::pair<std::string, std::string>{"a", "b"});
    CHECK(m[1] == std::pair<std::string, std::string>{"c", ""});
    CHECK(r.ok());
}

TEST_CASE("wire: a count larger than the bytes left is rejected before allocating") {
    auto in = hex("ffff 0001 'a'");  // 65535 strings announced, one present
    reader r(in);
    CHECK(r.string_list().empty());
    CHECK_FALSE(r.ok());
}

TEST_CASE("wire: a negative long string length is an error, not a huge read") {
    auto in = hex("80000000");
    reader r(in);
    CHECK(r.long_string().empty());
    CHECK(r.error() == protocol_errc::bad_string);
}

TEST_CASE("wire: inetaddr accepts 4 and 16 bytes only") {
    auto v4 = hex("04 7f000001");
    reader r4(v4);
    CHECK(r4.inetaddr().size() == 4);
    auto bad = hex("05 0102030405");
    reader rb(bad);
    CHECK(rb.inetaddr().empty());
    CHECK(rb.error() == protocol_errc::bad_inet);
}
