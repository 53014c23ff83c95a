// Every CQL type Cassandra 2.1 supports, bound with bind_values, written through the real server (2.1
// or 5.0) and read back through result_page. The types that came later (date, time, smallint, tinyint,
// duration, frozen collections, vector) are modern_test.cpp's, against 5.0.
#include "everything.hpp"
#include "raw_connection.hpp"

#include <cqlcoro/bind.hpp>
#include <cqlcoro/rows.hpp>
#include <cqlcoro/value.hpp>

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using namespace std::chrono_literals;
using cqlcoro::test::everything;
using cqlcoro::test::raw_connection;
using cqlcoro::test::sample_everything;
using cqlcoro::test::body_as;
using cqlcoro::test::received_frame;
using cqlcoro::test::result_as;
using cqlcoro::test::test_host;

namespace {

void run(raw_connection& c, std::string_view cql) {
    auto f = c.roundtrip(c.version, query_request{cql, {.cl = consistency::one}});
    if (auto e = std::get_if<error_response>(&f.message.body)) FAIL(cql << ": server error " << e->code << ": " << e->message);
}

// Executes a prepared statement with values bound by bind_values.
received_frame execute(raw_connection& c, const prepared_result& p, const bound_values& v) {
    std::vector<value_view> views;
    for (std::size_t i = 0; i < v.size(); ++i)
        views.push_back(v.is_null(i) ? value_view::null() : v.is_unset(i) ? value_view::unset() : value_view{v.value(i)});
    return c.roundtrip(c.version, execute_request{p.id, {}, {.cl = consistency::one, .values = views}});
}

// A RESULT's rows as a page that keeps the frame alive.
result_page page_of(received_frame f) {
    auto frame = std::make_shared<received_frame>(std::move(f));
    auto& rows = std::get<rows_result>(std::get<result_response>(frame->message.body).body);
    return result_page(rows.metadata.columns, static_cast<std::size_t>(rows.row_count), rows.content, frame);
}

}  // namespace

TEST_CASE("real node: every Cassandra 2.1 type round-trips through bind_values and result_page") {
    raw_connection c(test_host());
    c.startup();
    run(c, "CREATE KEYSPACE IF NOT EXISTS cqlcoro_types WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    run(c, "CREATE TYPE IF NOT EXISTS cqlcoro_types.address (street text, zip int)");
    run(c, "DROP TABLE IF EXISTS cqlcoro_types.everything");
    run(c, std::string("CREATE TABLE cqlcoro_types.everything ") + cqlcoro::test::everything_table);

    const everything in = sample_everything();

    auto prep = c.roundtrip(c.version, prepare_request{"INSERT INTO cqlcoro_types.everything (k, a, b, c, d, e, f, g, h, i, j, l, m, n, o, "
                                               "p, q, r, s, t, v) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"});
    const auto& insert = result_as<prepared_result>(prep);
    auto values = bind_values(insert.variables.columns, in.k, in.a, in.b, in.c, in.d, in.e, in.f, in.g, in.h, in.i, in.j,
                              in.l, in.m, in.n, in.o, in.p, in.q, in.r, in.s, in.t, in.v);
    result_as<void_result>(execute(c, insert, values));

    auto page = page_of(c.roundtrip(c.version, query_request{"SELECT k, a, b, c, d, e, f, g, h, i, j, l, m, n, o, p, q, r, s, t, v "
                                                     "FROM cqlcoro_types.everything WHERE k = 1", {.cl = consistency::one}}));
    REQUIRE(page.size() == 1);
    auto row = page.rows()[0];

    SECTION("the whole row as a struct") { cqlcoro::test::check_same(row.as<everything>(), in); }
    SECTION("cells by name, as views and as dynamic values") {
        CHECK(row.get<std::string_view>("j") == in.j);
        CHECK(row.get<bytes_view>("c").size() == 3);
        CHECK(timeuuid_time(row.get<uuid>("n")) == timeuuid_time(in.n));
        CHECK(fmt::format("{}", row.get<value>("s")) == "(7, 'seven', null)");
        CHECK(fmt::format("{}", row.get<value>("t")) == "{street: 'Main St', zip: 12345}");
        CHECK(fmt::format("{}", row.get<value>("e")) == "-1234567890.12345678901234567890");
        CHECK(row.get<value>("v").is_null());
        CHECK_THROWS_AS(row.get<std::int32_t>("b"), cqlcoro::error);  // bigint does not fit
    }
}

TEST_CASE("real node: the server's own column types parse: 2.1's marshal class names, 5.0's CQL text") {
    raw_connection c(test_host());
    c.startup();
    run(c, "CREATE KEYSPACE IF NOT EXISTS cqlcoro_types WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    run(c, "CREATE TYPE IF NOT EXISTS cqlcoro_types.address (street text, zip int)");
    run(c, "CREATE TABLE IF NOT EXISTS cqlcoro_types.schema_probe (k int PRIMARY KEY, m map<text, frozen<tuple<timeuuid, int>>>, "
           "t frozen<address>, s set<inet>)");
    std::map<std::string, cql_type> types;
    if (!cqlcoro::test::test_server().at_least(3)) {
        // 2.1: marshal class names; tuples and UDTs are frozen implicitly, so no FrozenType appears.
        auto page = page_of(c.roundtrip(c.version, query_request{"SELECT column_name, validator FROM system.schema_columns WHERE "
                                                                 "keyspace_name = 'cqlcoro_types' AND columnfamily_name = 'schema_probe'",
                                                                 {.cl = consistency::one}}));
        for (auto row : page.rows()) {
            auto parsed = parse_cql_type(row.get<std::string_view>("validator"));
            INFO(row.get<std::string_view>("validator"));
            REQUIRE(parsed.has_value());
            types[row.get<std::string>("column_name")] = *parsed;
        }
        CHECK(to_cql_string(types["m"]) == "map<text, tuple<timeuuid, int>>");
        CHECK(to_cql_string(types["t"]) == "cqlcoro_types.address");  // UserType(..., hex names ...)
        CHECK(types["t"].field_names == std::vector<std::string>{"street", "zip"});
        CHECK(to_cql_string(types["t"].params.at(1)) == "int");
    } else {
        // 3.0+: CQL type text, frozen<> spelled out; a UDT by its name alone.
        auto page = page_of(c.roundtrip(c.version, query_request{"SELECT column_name, type FROM system_schema.columns WHERE "
                                                                 "keyspace_name = 'cqlcoro_types' AND table_name = 'schema_probe'",
                                                                 {.cl = consistency::one}}));
        for (auto row : page.rows()) {
            auto parsed = parse_cql_type(row.get<std::string_view>("type"));
            INFO(row.get<std::string_view>("type"));
            REQUIRE(parsed.has_value());
            types[row.get<std::string>("column_name")] = *parsed;
        }
        CHECK(to_cql_string(types["m"]) == "map<text, frozen<tuple<timeuuid, int>>>");
        CHECK(to_cql_string(types["t"]) == "frozen<address>");
    }
    CHECK(to_cql_string(types["k"]) == "int");
    CHECK(to_cql_string(types["s"]) == "set<inet>");
}
