// The protocol codec against a real Cassandra 2.1 node (native protocol v3), over a plain socket.
#include "raw_connection.hpp"

#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <array>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using cqlcoro::test::raw_connection;
using cqlcoro::test::body_as;
using cqlcoro::test::received_frame;
using cqlcoro::test::result_as;
using cqlcoro::test::test_host;

namespace {



/// The cells of a rows result, row by row, as text (null as "<null>").
std::vector<std::vector<std::string>> cells(const rows_result& rows) {
    std::vector<std::vector<std::string>> out;
    reader r(rows.content);
    for (int i = 0; i < rows.row_count; ++i) {
        auto& row = out.emplace_back();
        for (int j = 0; j < rows.metadata.column_count; ++j) {
            auto b = r.bytes();
            row.push_back(b ? std::string(as_string_view(*b)) : "<null>");
        }
    }
    REQUIRE(r.ok());
    REQUIRE(r.remaining() == 0);
    return out;
}

}  // namespace

TEST_CASE("real node: OPTIONS is answered with SUPPORTED listing CQL versions and compressions") {
    raw_connection c(test_host());
    auto f = c.roundtrip(3, options_request{}, {.stream = 5});
    CHECK(f.header.version == 3);
    CHECK(f.header.response);
    CHECK(f.header.stream == 5);
    const auto& opts = body_as<supported_response>(f).options;
    auto find = [&](std::string_view k) {
        auto it = std::find_if(opts.begin(), opts.end(), [&](auto& kv) { return kv.first == k; });
        REQUIRE(it != opts.end());
        return it->second;
    };
    CHECK(find("CQL_VERSION") == std::vector<std::string>{"3.2.0"});
    auto comps = find("COMPRESSION");
    CHECK(std::count(comps.begin(), comps.end(), "lz4") == 1);
    CHECK(std::count(comps.begin(), comps.end(), "snappy") == 1);
}

TEST_CASE("real node: a v4 or v5 STARTUP is refused in a v3 frame with a server error naming the version") {
    for (std::uint8_t v : {4, 5}) {
        raw_connection c(test_host());
        std::array<std::pair<std::string_view, std::string_view>, 1> opts{{{"CQL_VERSION", "3.0.0"}}};
        auto f = c.roundtrip(v, startup_request{opts});
        CHECK(f.header.version == 3);
        CHECK(f.header.stream == 0);
        const auto& e = body_as<error_response>(f);
        CHECK(e.code == static_cast<std::int32_t>(server_error::server_error));
        CHECK(e.message.find("protocol version: " + std::to_string(v)) != std::string::npos);
        CHECK(rejects_protocol_version(f.header, e, v));
    }
}

TEST_CASE("real node: a v3 STARTUP is accepted and a QUERY returns decodable rows") {
    raw_connection c(test_host());
    c.startup();
    auto f = c.roundtrip(3, query_request{"SELECT key, release_version FROM system.local", {.cl = consistency::one}});
    const auto& rows = result_as<rows_result>(f);
    REQUIRE(rows.metadata.columns.size() == 2);
    CHECK(rows.metadata.columns[0].keyspace == "system");
    CHECK(rows.metadata.columns[0].table == "local");
    CHECK(rows.metadata.columns[1].type.kind == type_kind::varchar);
    CHECK(cells(rows) == std::vector<std::vector<std::string>>{{"local", "2.1.0"}});
}

TEST_CASE("real node: lz4 and snappy compression negotiated in STARTUP round-trip compressed frames") {
    for (auto comp : {compression::lz4, compression::snappy}) {
        raw_connection c(test_host());
        c.startup(comp);
        // Enough columns that the server compresses the answer.
        auto f = c.roundtrip(3, query_request{"SELECT * FROM system.local", {.cl = consistency::one}});
        CHECK((f.header.flags & frame_flag::compression) != 0);
        const auto& rows = result_as<rows_result>(f);
        CHECK(rows.row_count == 1);
        CHECK(rows.metadata.columns.size() > 10);
    }
}

TEST_CASE("real node: PREPARE then EXECUTE with a bound value, and paging with a paging state") {
    raw_connection c(test_host());
    c.startup();
    auto p = c.roundtrip(3, prepare_request{"SELECT keyspace_name FROM system.schema_keyspaces WHERE keyspace_name = ?"});
    const auto& prepared = result_as<prepared_result>(p);
    REQUIRE(prepared.variables.columns.size() == 1);
    CHECK(prepared.variables.columns[0].type.kind == type_kind::varchar);

    std::array<value_view, 1> values{value_view{as_bytes("system")}};
    auto e = c.roundtrip(3, execute_request{prepared.id, {}, {.cl = consistency::one, .values = values}});
    CHECK(cells(result_as<rows_result>(e)) == std::vector<std::vector<std::string>>{{"system"}});

    // Page through the keyspaces one row at a time.
    std::vector<std::string> names;
    std::optional<byte_buffer> state;
    do {
        query_params params{.cl = consistency::one, .page_size = 1};
        if (state) params.paging_state = bytes_view(*state);
        auto f = c.roundtrip(3, query_request{"SELECT keyspace_name FROM system.schema_keyspaces", params});
        const auto& rows = result_as<rows_result>(f);
        CHECK(rows.row_count <= 1);
        for (auto& row : cells(rows)) names.push_back(row[0]);
        state = rows.metadata.paging_state;
    } while (state);
    CHECK(std::count(names.begin(), names.end(), "system") == 1);
    CHECK(std::count(names.begin(), names.end(), "system_traces") == 1);
}

TEST_CASE("real node: a bad query comes back as a structured error, and REGISTER is accepted") {
    raw_connection c(test_host());
    c.startup();
    auto f = c.roundtrip(3, query_request{"SELEC nonsense", {}});
    CHECK(body_as<error_response>(f).code == static_cast<std::int32_t>(server_error::syntax_error));
    auto missing = c.roundtrip(3, query_request{"SELECT * FROM no_such_ks.t", {}});
    CHECK(body_as<error_response>(missing).code == static_cast<std::int32_t>(server_error::invalid));
    std::array<std::string_view, 3> events{"TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"};
    body_as<ready_response>(c.roundtrip(3, register_request{events}));
}

TEST_CASE("real node: schema changes come back as RESULT schema_change") {
    raw_connection c(test_host());
    c.startup();
    c.roundtrip(3, query_request{"DROP KEYSPACE IF EXISTS cqlcoro_codec_test", {}});
    auto f = c.roundtrip(3, query_request{"CREATE KEYSPACE cqlcoro_codec_test WITH replication = "
                                          "{'class': 'SimpleStrategy', 'replication_factor': 1}", {}});
    const auto& sc = result_as<schema_change_result>(f);
    CHECK(sc.change.change_type == "CREATED");
    CHECK(sc.change.target == "KEYSPACE");
    CHECK(sc.change.keyspace == "cqlcoro_codec_test");
    auto d = c.roundtrip(3, query_request{"DROP KEYSPACE cqlcoro_codec_test", {}});
    CHECK(result_as<schema_change_result>(d).change.change_type == "DROPPED");
}
