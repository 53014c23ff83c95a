#include <cqlcoro/bind.hpp>

#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace cqlcoro;
using Catch::Matchers::ContainsSubstring;
using cqlcoro::test::to_hex;

namespace {
const std::vector<column_spec> markers{
    {"ks", "users", "id", cql_type::of(type_kind::int_)},
    {"ks", "users", "name", cql_type::of(type_kind::varchar)},
    {"ks", "users", "age", cql_type::of(type_kind::tinyint)},
};
}  // namespace

TEST_CASE("bind: positional values are encoded against their markers") {
    auto v = bind_values(markers, 7, "john", std::int8_t{30});
    REQUIRE(v.size() == 3);
    CHECK(to_hex(v.value(0)) == "00000007");
    CHECK(to_hex(v.value(1)) == "6a6f686e");
    CHECK(to_hex(v.value(2)) == "1e");
    auto n = bind_values(markers, 1, std::nullopt, std::optional<int>{});
    CHECK(n.is_null(1));
    CHECK(n.is_null(2));
    auto u = bind_values(markers, 1, unset, 5);
    CHECK(u.is_unset(1));
    CHECK_FALSE(u.is_unset(2));
}

TEST_CASE("bind: by name, in any order; markers left out are unset") {
    auto v = bind_values(markers, named("name", std::string_view("ann")), named("ID", 3));
    CHECK(to_hex(v.value(0)) == "00000003");
    CHECK(to_hex(v.value(1)) == "616e6e");
    CHECK(v.is_unset(2));
}

TEST_CASE("bind: wrong count, wrong type, out-of-range values and unknown names fail before sending") {
    CHECK_THROWS_WITH(bind_values(markers, 1, "a"),
                      ContainsSubstring("the statement has 3 bind markers (id int, name text, age tinyint) but 2 values were given"));
    CHECK_THROWS_WITH(bind_values(markers, "1", "a", 1),
                      ContainsSubstring("bind marker 0 ('id') is int, which cannot take a std::string_view"));
    CHECK_THROWS_WITH(bind_values(markers, 1, "a", 300),
                      ContainsSubstring("bind marker 2 ('age', tinyint) given a std::int32_t: value out of range"));
    CHECK_THROWS_WITH(bind_values(markers, named("nope", 1)), ContainsSubstring("no bind marker 'nope'"));
    CHECK_THROWS_WITH(bind_values(markers, 1, "\xff", 1), ContainsSubstring("not valid UTF-8"));
    try {
        bind_values(markers, 1.5, "a", 1);
    } catch (const cqlcoro::error& e) {
        CHECK(e.boost_code() == type_errc::type_mismatch);
    }
}

TEST_CASE("bind: a double a float cannot hold exactly says so and says to pass a float") {
    const std::vector<column_spec> f{{"ks", "t", "ratio", cql_type::of(type_kind::float_)}};
    try {
        bind_values(f, 0.1);
        FAIL("0.1 bound to a float column");
    } catch (const cqlcoro::error& e) {
        CHECK(e.boost_code() == type_errc::inexact_float);
        CHECK_THAT(std::string(e.what()), ContainsSubstring("bind marker 0 ('ratio', float) given a double"));
        CHECK_THAT(std::string(e.what()), ContainsSubstring("pass a float (0.1f)"));
        CHECK_THAT(std::string(e.what()), !ContainsSubstring("out of range"));
    }
    CHECK(to_hex(bind_values(f, 0.1f).value(0)) == "3dcccccd");
    CHECK(to_hex(bind_values(f, 0.5).value(0)) == "3f000000");  // exact: fine as a double
}

TEST_CASE("bind: an error message says each fact once") {
    try {
        bind_values(markers, 1, "a", 300);
        FAIL("300 bound to a tinyint");
    } catch (const cqlcoro::error& e) {
        CHECK(std::string(e.what()) == "bind marker 2 ('age', tinyint) given a std::int32_t: value out of range for the column's CQL type");
    }
}
