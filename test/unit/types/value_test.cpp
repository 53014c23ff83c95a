#include <cqlcoro/value.hpp>

#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using cqlcoro::test::hex;
using cqlcoro::test::to_hex;

namespace {
value decode(std::string_view bytes, const cql_type& t) {
    auto b = hex(bytes);
    value v;
    auto ec = decode_cell(std::optional<bytes_view>(b), t, {}, v);
    INFO(ec.message());
    REQUIRE_FALSE(ec);
    // Writing it back gives the same bytes.
    byte_buffer out;
    REQUIRE_FALSE(codec<value>::encode(v, t, out));
    CHECK(to_hex(out) == to_hex(b));
    return v;
}
std::string show(std::string_view bytes, std::string_view type) { return fmt::format("{}", decode(bytes, *parse_cql_type(type))); }
}  // namespace

TEST_CASE("value: scalars print as CQL literals") {
    CHECK(show("00000007", "int") == "7");
    CHECK(show("ff", "tinyint") == "-1");
    CHECK(show("01", "boolean") == "true");
    CHECK(show("69742773", "text") == "'it''s'");  // it's
    CHECK(show("cafe", "blob") == "0xcafe");
    CHECK(show("0123456789abcdef0123456789abcdef", "uuid") == "01234567-89ab-cdef-0123-456789abcdef");
    CHECK(show("7f000001", "inet") == "'127.0.0.1'");
    CHECK(show("00000000000005dc", "timestamp") == "'1970-01-01T00:00:01.500Z'");
    CHECK(show("fffffffffffffc17", "timestamp") == "'1969-12-31T23:59:58.999Z'");
    CHECK(show("80000001", "date") == "'1970-01-02'");
    CHECK(show("00004e94914effff", "time") == "'23:59:59.999999999'");
    CHECK(show("020406", "duration") == "1mo2d3ns");
    CHECK(show("000000023039", "decimal") == "123.45");
    CHECK(show("ff7f", "varint") == "-129");
    CHECK(show("3ff8000000000000", "double") == "1.5");
}

TEST_CASE("value: collections, tuples, UDTs and vectors nest") {
    CHECK(show("00000002 0000000400000001 0000000400000002", "list<int>") == "[1, 2]");
    CHECK(show("00000001 0000000161", "set<text>") == "{'a'}");
    CHECK(show("00000001 0000000161 0000000c 00000001 0000000400000009", "map<text, frozen<list<int>>>") == "{'a': [9]}");
    CHECK(show("0000000400000001 ffffffff", "tuple<int, text>") == "(1, null)");
    CHECK(show("3f80000040000000", "vector<float, 2>") == "[1, 2]");
    cql_type udt = cql_type::of(type_kind::udt);
    udt.field_names = {"city", "zip"};
    udt.params = {cql_type::of(type_kind::varchar), cql_type::of(type_kind::int_)};
    CHECK(fmt::format("{}", decode("00000001'X' 0000000400000005", udt)) == "{city: 'X', zip: 5}");
}

TEST_CASE("value: null is a value; typed access; writing a value to the wrong type fails") {
    value v;
    REQUIRE_FALSE(decode_cell(std::optional<bytes_view>{}, cql_type::of(type_kind::int_), {}, v));
    CHECK(v.is_null());
    CHECK(fmt::format("{}", v) == "null");
    auto i = decode("0000012c", cql_type::of(type_kind::int_));
    REQUIRE(i.as<std::int64_t>());
    CHECK(*i.as<std::int64_t>() == 300);
    CHECK(i.as<std::string>() == nullptr);
    byte_buffer out;
    CHECK(codec<value>::encode(i, cql_type::of(type_kind::varchar), out) == type_errc::type_mismatch);
    CHECK(codec<value>::encode(i, cql_type::of(type_kind::tinyint), out) == type_errc::value_out_of_range);
}

TEST_CASE("value: timestamps and dates outside years 0-9999 print as numbers") {
    CHECK(show("ffffdffffff8fa24", "timestamp") == "'0855-01-19T11:10:50.916Z'");  // fmt's chrono would overflow here
    CHECK(show("000affffffffffff", "timestamp") == "3096224743817215");
    CHECK(show("ffffffff", "date") == "4294967295");
}
