// A row with one column of each type Cassandra 2.1.0 has, with awkward values (extremes, negative zero,
// before 1970, non-ASCII text, nulls inside a tuple and a UDT), for the round-trip tests. date, time,
// smallint, tinyint and duration came in 2.2+; the unit tests and the simulated nodes cover them.
#pragma once

#include <cqlcoro/value_types.hpp>

#include <catch2/catch_test_macros.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/uuid/random_generator.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace cqlcoro::test {

struct address {  // CREATE TYPE address (street text, zip int)
    std::string street;
    std::optional<std::int32_t> zip;
    friend bool operator==(const address&, const address&) = default;
};

/// The columns, in order: k int PRIMARY KEY, a ascii, b bigint, c blob, d boolean, e decimal, f double,
/// g float, h inet, i int, j text, l timestamp, m uuid, n timeuuid, o varint, p list<int>, q set<text>,
/// r map<text, bigint>, s frozen<tuple<int, text, double>>, t frozen<address>, v varchar.
struct everything {
    std::int32_t k;
    std::string a;
    std::int64_t b;
    std::vector<std::uint8_t> c;
    bool d;
    decimal e;
    double f;
    float g;
    boost::asio::ip::address h;
    std::int32_t i;
    std::string j;
    timestamp l;
    uuid m;
    uuid n;
    varint o;
    std::vector<std::int32_t> p;
    std::set<std::string> q;
    std::map<std::string, std::int64_t> r;
    std::tuple<std::int32_t, std::string, std::optional<double>> s;
    std::optional<address> t;
    std::optional<std::string> v;
};

inline constexpr const char* everything_columns = "k, a, b, c, d, e, f, g, h, i, j, l, m, n, o, p, q, r, s, t, v";
inline constexpr const char* everything_table =
    "(k int PRIMARY KEY, a ascii, b bigint, c blob, d boolean, e decimal, f double, g float, h inet, i int, j text, "
    "l timestamp, m uuid, n timeuuid, o varint, p list<int>, q set<text>, r map<text, bigint>, "
    "s frozen<tuple<int, text, double>>, t frozen<address>, v varchar)";

inline everything sample_everything() {
    using namespace std::chrono_literals;
    return {
        1,
        "ascii only",
        std::numeric_limits<std::int64_t>::min(),
        {0x00, 0xff, 0x10},
        true,
        decimal{varint("-123456789012345678901234567890"), 20},
        std::numeric_limits<double>::denorm_min(),
        -0.0f,
        boost::asio::ip::make_address("2001:db8::1"),
        std::numeric_limits<std::int32_t>::max(),
        "h\xc3\xa9llo \xe2\x9c\x93",  // héllo ✓
        timestamp(-86'400'123ms),     // before 1970
        boost::uuids::random_generator()(),
        make_timeuuid(),
        varint("-98765432109876543210987654321098765432109876543210"),
        {3, 1, 2},
        {"x", "y"},
        {{"one", 1}, {"min", std::numeric_limits<std::int64_t>::min()}},
        {7, "seven", std::nullopt},
        address{"Main St", 12345},
        std::nullopt,
    };
}

inline void check_same(const everything& out, const everything& in) {
    CHECK(out.k == in.k);
    CHECK(out.a == in.a);
    CHECK(out.b == in.b);
    CHECK(out.c == in.c);
    CHECK(out.d == in.d);
    CHECK(out.e == in.e);
    CHECK(out.f == in.f);
    CHECK(std::signbit(out.g) == std::signbit(in.g));
    CHECK(out.g == in.g);
    CHECK(out.h == in.h);
    CHECK(out.i == in.i);
    CHECK(out.j == in.j);
    CHECK(out.l == in.l);
    CHECK(out.m == in.m);
    CHECK(out.n == in.n);
    CHECK(out.o == in.o);
    CHECK(out.p == in.p);
    CHECK(out.q == in.q);
    CHECK(out.r == in.r);
    CHECK(out.s == in.s);
    CHECK(out.t == in.t);
    CHECK(out.v == in.v);
}

}  // namespace cqlcoro::test
