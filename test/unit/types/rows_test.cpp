#include <cqlcoro/rows.hpp>

#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace cqlcoro;
using Catch::Matchers::ContainsSubstring;
using cqlcoro::test::hex;

namespace {

column_spec col(std::string name, cql_type t) { return {"ks", "t", std::move(name), std::move(t)}; }

// (id int, name text, tags list<int>): rows (1, 'a', [7]) and (2, null, null)
result_page sample_page() {
    auto content = std::make_shared<byte_buffer>(hex(
        "00000004 00000001 | 00000001 'a' | 0000000c 00000001 00000004 00000007"
        "| 00000004 00000002 | ffffffff | ffffffff"));
    std::vector<column_spec> cols{col("id", cql_type::of(type_kind::int_)), col("name", cql_type::of(type_kind::varchar)),
                                  col("tags", cql_type::list_of(cql_type::of(type_kind::int_)))};
    return result_page(std::move(cols), 2, *content, content);
}

struct user {
    int id;
    std::optional<std::string_view> name;
    std::optional<std::vector<int>> tags;
};
struct user_by_name {
    std::optional<std::string> name;
    std::int64_t id;
};

}  // namespace

template <>
struct cqlcoro::field_names<user_by_name> {
    static constexpr std::array names{"name", "id"};
};

TEST_CASE("rows: cells by position and by name, nulls into optional") {
    auto page = sample_page();
    REQUIRE(page.size() == 2);
    auto rows = page.rows();
    CHECK(rows[0].get<int>(0) == 1);
    CHECK(rows[0].get<std::string_view>("name") == "a");
    CHECK(rows[0].get<std::vector<int>>("tags") == std::vector<int>{7});
    CHECK(rows[1].get<std::optional<std::string>>(1) == std::nullopt);
    CHECK(rows[1].is_null("tags"));
    CHECK(page.column("tags") == 2);
    int sum = 0;
    for (auto row : rows) sum += row.get<int>("id");
    CHECK(sum == 3);
}

TEST_CASE("rows: whole rows as tuples and structs") {
    auto page = sample_page();
    auto [id, name, tags] = page.rows()[0].as<std::tuple<int, std::string, std::vector<int>>>();
    CHECK(id == 1);
    CHECK(name == "a");
    CHECK(tags == std::vector<int>{7});
    auto u = page.rows()[1].as<user>();
    CHECK(u.id == 2);
    CHECK_FALSE(u.name.has_value());
    auto n = page.rows()[0].as<user_by_name>();
    CHECK(n.id == 1);
    CHECK(n.name == "a");
}

TEST_CASE("rows: a type mismatch names the column, its CQL type and the C++ type") {
    auto page = sample_page();
    auto row = page.rows()[0];
    CHECK_THROWS_WITH(row.get<std::int8_t>("id"), ContainsSubstring("column 'id' is int, which cannot be read as std::int8_t"));
    CHECK_THROWS_WITH(row.get<std::vector<std::string>>(2), ContainsSubstring("column 'tags' is list<int>"));
    CHECK_THROWS_WITH(page.rows()[1].get<std::string>("name"),
                      ContainsSubstring("column 'name' (text) is null in row 1: read it as std::optional<std::string>"));
    CHECK_THROWS_WITH(row.get<int>("nope"), ContainsSubstring("no column 'nope' in this result (columns: id, name, tags)"));
    using three_ints = std::tuple<int, int, int>;
    CHECK_THROWS_WITH(row.as<three_ints>(), ContainsSubstring("cannot be read as std::tuple<std::int32_t"));
    CHECK_THROWS_AS(page.rows()[5], cqlcoro::error);
    try {
        row.get<float>(0);
        FAIL("no throw");
    } catch (const cqlcoro::error& e) {
        CHECK(e.boost_code() == type_errc::type_mismatch);
    }
}

TEST_CASE("rows: a cell into a variable gives a code instead of throwing") {
    auto page = sample_page();
    auto row = page.rows()[0];
    int id = 0;
    CHECK_FALSE(row.get(0, id));
    CHECK(id == 1);
    std::int8_t small = 0;
    CHECK(row.get(0, small) == type_errc::type_mismatch);
    std::string name;
    CHECK(page.rows()[1].get(1, name) == type_errc::unexpected_null);
    std::optional<std::string> maybe = "x";
    CHECK_FALSE(page.rows()[1].get(1, maybe));
    CHECK_FALSE(maybe.has_value());
    CHECK(row.get(3, id) == type_errc::row_out_of_range);
    // The same check remembered for the throwing form: a mismatch after a success is still one.
    CHECK(row.get<int>(0) == 1);
    CHECK(row.get(0, small) == type_errc::type_mismatch);
}

TEST_CASE("rows: the type check is remembered per page, per column") {
    auto page = sample_page();
    CHECK(page.rows()[0].get<int>(0) == 1);
    CHECK(page.rows()[1].get<int>(0) == 2);  // second read of the same column and type: no re-check needed
    CHECK_THROWS(page.rows()[0].get<std::string>(0));  // another type is checked again
    CHECK(page.rows()[0].get<std::int64_t>(0) == 1);
}

TEST_CASE("rows: content that does not match the metadata is refused when the page is made") {
    auto bad = std::make_shared<byte_buffer>(hex("00000004 00000001 | 00000009 'a'"));
    std::vector<column_spec> cols{col("id", cql_type::of(type_kind::int_)), col("name", cql_type::of(type_kind::varchar))};
    CHECK_THROWS_AS(result_page(cols, 1, *bad, bad), cqlcoro::error);
    CHECK_THROWS_AS(result_page(cols, 1'000'000'000, *bad, bad), cqlcoro::error);
}
