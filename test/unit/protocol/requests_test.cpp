// Byte-exact request frames, written from the v3/v4/v5 specs (sections 4.1.x).
#include "protocol/requests.hpp"
#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

#include <array>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using cqlcoro::test::hex;
using cqlcoro::test::to_hex;

namespace {

byte_buffer encode(std::uint8_t version, const request& r, const frame_options& o = {}) {
    byte_buffer out;
    auto ec = encode_request(version, r, o, out);
    INFO(ec.message());
    REQUIRE_FALSE(ec);
    return out;
}

error_code encode_error(std::uint8_t version, const request& r, const frame_options& o = {}) {
    byte_buffer out;
    auto ec = encode_request(version, r, o, out);
    CHECK(out.empty());  // nothing is written on error
    return ec;
}

const std::array<std::uint8_t, 4> one_bytes{0, 0, 0, 1};

}  // namespace

TEST_CASE("requests: OPTIONS is a bare header in every version") {
    CHECK(to_hex(encode(3, options_request{})) == "030000000500000000");
    CHECK(to_hex(encode(4, options_request{}, {.stream = 7})) == "040000070500000000");
    CHECK(to_hex(encode(5, options_request{})) == "050000000500000000");
}

TEST_CASE("requests: STARTUP carries its options as a [string map]") {
    std::array<std::pair<std::string_view, std::string_view>, 2> opts{{{"CQL_VERSION", "3.0.0"}, {"COMPRESSION", "lz4"}}};
    CHECK(encode(3, startup_request{opts}) ==
          hex("03 00 0000 01 00000028 | 0002 000b 'CQL_VERSION' 0005 '3.0.0' 000b 'COMPRESSION' 0003 'lz4'"));
}

TEST_CASE("requests: STARTUP and OPTIONS are never compressed, even when compression is on") {
    std::array<std::pair<std::string_view, std::string_view>, 1> opts{{{"CQL_VERSION", "3.0.0"}}};
    auto f = encode(4, startup_request{opts}, {.compression = compression::lz4});
    CHECK((f[1] & frame_flag::compression) == 0);
}

TEST_CASE("requests: AUTH_RESPONSE carries a [bytes] token, or null") {
    std::string_view token("\0cassandra\0cassandra", 20);
    CHECK(encode(3, auth_response_request{as_bytes(token)}) ==
          hex("03 00 0000 0f 00000018 | 00000014 00 'cassandra' 00 'cassandra'"));
    CHECK(encode(4, auth_response_request{}) == hex("04 00 0000 0f 00000004 | ffffffff"));
}

TEST_CASE("requests: QUERY without parameters has a [byte] flags field in v3/v4 and an [int] in v5") {
    query_request q{"SELECT 1", {.cl = consistency::one}};
    CHECK(encode(3, q) == hex("03 00 0000 07 0000000f | 00000008 'SELECT 1' 0001 00"));
    CHECK(encode(4, q) == hex("04 00 0000 07 0000000f | 00000008 'SELECT 1' 0001 00"));
    CHECK(encode(5, q) == hex("05 00 0000 07 00000012 | 00000008 'SELECT 1' 0001 00000000"));
}

TEST_CASE("requests: QUERY with every v4 flag writes the fields in spec order") {
    std::array<value_view, 3> values{value_view{one_bytes}, value_view::null(), value_view::unset()};
    auto paging = hex("abcd");
    query_request q{"Q",
                    {.cl = consistency::local_quorum,
                     .values = values,
                     .skip_metadata = true,
                     .page_size = 100,
                     .paging_state = bytes_view(paging),
                     .serial_consistency = consistency::local_serial,
                     .default_timestamp = 0x0102030405060708}};
    // flags: values 01 | skip 02 | page 04 | paging 08 | serial 10 | timestamp 20 = 3f
    CHECK(encode(4, q) == hex("04 00 0000 07 0000002e | 00000001 'Q' 0006 3f"
                              "| 0003 00000004 00000001 ffffffff fffffffe"
                              "| 00000064 | 00000002 abcd | 0009 | 0102030405060708"));
}

TEST_CASE("requests: QUERY in v5 adds keyspace (0x80) and now_in_seconds (0x100) after the timestamp") {
    query_request q{"Q", {.cl = consistency::one, .default_timestamp = 1, .keyspace = "ks", .now_in_seconds = 42}};
    CHECK(encode(5, q) == hex("05 00 0000 07 0000001b | 00000001 'Q' 0001 000001a0"
                              "| 0000000000000001 | 0002 'ks' | 0000002a"));
}

TEST_CASE("requests: named values set flag 0x40 and precede each value with its name") {
    std::array<value_view, 2> values{value_view{one_bytes}, value_view::null()};
    std::array<std::string_view, 2> names{"a", "bc"};
    query_request q{"Q", {.cl = consistency::one, .values = values, .names = names}};
    CHECK(encode(4, q) == hex("04 00 0000 07 0000001d | 00000001 'Q' 0001 41"
                              "| 0002 0001 'a' 00000004 00000001 0002 'bc' ffffffff"));
    std::array<std::string_view, 1> too_few{"a"};
    CHECK(encode_error(4, query_request{"Q", {.values = values, .names = too_few}}) == protocol_errc::names_mismatch);
}

TEST_CASE("requests: features a version lacks are refused with a clear error") {
    std::array<value_view, 1> unset{value_view::unset()};
    CHECK(encode_error(3, query_request{"Q", {.values = unset}}) == protocol_errc::value_unset_not_supported);
    CHECK(encode_error(4, query_request{"Q", {.keyspace = "ks"}}) == protocol_errc::keyspace_not_supported);
    CHECK(encode_error(4, query_request{"Q", {.now_in_seconds = 1}}) == protocol_errc::now_in_seconds_not_supported);
    CHECK(encode_error(4, prepare_request{"Q", "ks"}) == protocol_errc::keyspace_not_supported);
    CHECK(encode_error(2, options_request{}) == protocol_errc::unsupported_version);
    std::vector<value_view> many(70000, value_view::null());
    CHECK(encode_error(4, query_request{"Q", {.values = many}}) == protocol_errc::too_many_values);
}

TEST_CASE("requests: PREPARE is a [long string], plus [int] flags and an optional keyspace in v5") {
    CHECK(encode(4, prepare_request{"SELECT"}) == hex("04 00 0000 09 0000000a | 00000006 'SELECT'"));
    CHECK(encode(5, prepare_request{"SELECT"}) == hex("05 00 0000 09 0000000e | 00000006 'SELECT' 00000000"));
    CHECK(encode(5, prepare_request{"SELECT", "ks"}) ==
          hex("05 00 0000 09 00000012 | 00000006 'SELECT' 00000001 0002 'ks'"));
}

TEST_CASE("requests: EXECUTE carries the id, (v5) the result metadata id, then the parameters") {
    auto id = hex("cafe");
    auto rid = hex("beef01");
    std::array<value_view, 1> values{value_view{one_bytes}};
    execute_request e{id, rid, {.cl = consistency::quorum, .values = values, .skip_metadata = true}};
    CHECK(encode(4, e) == hex("04 00 0000 0a 00000011 | 0002 cafe | 0004 03 | 0001 00000004 00000001"));
    CHECK(encode(5, e) == hex("05 00 0000 0a 00000019 | 0002 cafe | 0003 beef01 | 0004 00000003"
                              "| 0001 00000004 00000001"));
}

TEST_CASE("requests: BATCH lists statements by kind, then consistency, flags and options") {
    auto id = hex("0a0b");
    std::array<value_view, 1> values{value_view{one_bytes}};
    std::array<batch_statement, 2> stmts{batch_statement{std::string_view("INSERT"), {}},
                                         batch_statement{bytes_view(id), values}};
    batch_request b{batch_type::unlogged, stmts, consistency::two, consistency::serial, 5};
    CHECK(encode(3, b) == hex("03 00 0000 0d 0000002c | 01 0002"
                              "| 00 00000006 'INSERT' 0000"
                              "| 01 0002 0a0b 0001 00000004 00000001"
                              "| 0002 30 0008 0000000000000005"));
    batch_request b5{batch_type::counter, stmts, consistency::one, {}, {}, "ks", 9};
    CHECK(encode(5, b5) == hex("05 00 0000 0d 0000002d | 02 0002"
                               "| 00 00000006 'INSERT' 0000"
                               "| 01 0002 0a0b 0001 00000004 00000001"
                               "| 0001 00000180 0002 'ks' 00000009"));
}

TEST_CASE("requests: REGISTER carries a [string list] of event types") {
    std::array<std::string_view, 2> ev{"STATUS_CHANGE", "SCHEMA_CHANGE"};
    CHECK(encode(4, register_request{ev}) ==
          hex("04 00 0000 0b 00000020 | 0002 000d 'STATUS_CHANGE' 000d 'SCHEMA_CHANGE'"));
}

TEST_CASE("requests: tracing and beta set their frame flags") {
    auto f = encode(5, query_request{"Q", {}}, {.tracing = true, .use_beta = true});
    CHECK(f[1] == (frame_flag::tracing | frame_flag::use_beta));
}

TEST_CASE("requests: a custom payload (v4+) comes first in the body as a [bytes map]") {
    auto v = hex("01");
    std::array<std::pair<std::string_view, bytes_view>, 1> payload{{{"k", v}}};
    CHECK(encode(4, prepare_request{"Q"}, {.custom_payload = payload}) ==
          hex("04 04 0000 09 0000000f | 0001 0001 'k' 00000001 01 | 00000001 'Q'"));
    // v3 has no custom payloads; REGISTER never carries one.
    CHECK(encode(3, prepare_request{"Q"}, {.custom_payload = payload})[1] == 0);
    CHECK(encode(4, register_request{}, {.custom_payload = payload})[1] == 0);
}

TEST_CASE("requests: with compression the body is compressed and the flag set (v3/v4), never in v5") {
    std::string big(2000, 'x');
    query_request q{big, {}};
    auto plain = encode(4, q);
    auto lz4 = encode(4, q, {.compression = compression::lz4});
    CHECK(lz4[1] == frame_flag::compression);
    CHECK(lz4.size() < plain.size());
    byte_buffer body;
    REQUIRE_FALSE(decompress_body(compression::lz4, bytes_view(lz4).subspan(header_size), 1 << 20, body));
    CHECK(body == byte_buffer(plain.begin() + header_size, plain.end()));

    auto snappy = encode(3, q, {.compression = compression::snappy});
    CHECK(snappy[1] == frame_flag::compression);
    body.clear();
    REQUIRE_FALSE(decompress_body(compression::snappy, bytes_view(snappy).subspan(header_size), 1 << 20, body));
    CHECK(body == byte_buffer(plain.begin() + header_size, plain.end()));

    CHECK(encode(5, q, {.compression = compression::lz4})[1] == 0);
}

TEST_CASE("requests: encoding appends, so several frames can share one write buffer") {
    byte_buffer out;
    REQUIRE_FALSE(encode_request(4, options_request{}, {.stream = 1}, out));
    REQUIRE_FALSE(encode_request(4, options_request{}, {.stream = 2}, out));
    CHECK(to_hex(out) == "040000010500000000040000020500000000");
}
