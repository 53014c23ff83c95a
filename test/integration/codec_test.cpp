// The protocol codec against a real Cassandra node over a plain socket, in framed versions (v3 and v4;
// v5's segments are the session's to test).
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
using cqlcoro::test::keyspaces_table;
using cqlcoro::test::test_server;

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
    auto f = c.roundtrip(c.version, options_request{}, {.stream = 5});
    CHECK(f.header.version == c.version);
    CHECK(f.header.response);
    CHECK(f.header.stream == 5);
    const auto& opts = body_as<supported_response>(f).options;
    auto find = [&](std::string_view k) {
        auto it = std::find_if(opts.begin(), opts.end(), [&](auto& kv) { return kv.first == k; });
        REQUIRE(it != opts.end());
        return it->second;
    };
    // The CQL dialect: 3.2.0 in 2.1, 3.4.x since 3.0.
    CHECK(find("CQL_VERSION") == std::vector<std::string>{test_server().at_least(3) ? "3.4.7" : "3.2.0"});
    if (test_server().at_least(4)) {  // 4.0 and later list the protocol versions, the beta one marked
        const auto versions = find("PROTOCOL_VERSIONS");
        CHECK(std::count(versions.begin(), versions.end(), "5/v5") == 1);
        CHECK(std::count(versions.begin(), versions.end(), "4/v4") == 1);
    }
    auto comps = find("COMPRESSION");
    CHECK(std::count(comps.begin(), comps.end(), "lz4") == 1);
    CHECK(std::count(comps.begin(), comps.end(), "snappy") == 1);
}

TEST_CASE("real node: a STARTUP in a version the server lacks is refused with an error the driver recognises") {
    // 2.1 answers v4 and v5 with a SERVER_ERROR in a v3 frame; 5.0 answers an unknown version (7) with a
    // PROTOCOL_ERROR in a v5 frame. (Its beta v6 is refused in a v6 frame, which the codec does not read;
    // the driver never asks for it.)
    std::vector<std::uint8_t> asked;
    for (std::uint8_t v = test_server().max_protocol() + 1; v <= 5; ++v) asked.push_back(v);
    if (test_server().at_least(4)) asked = {7};
    for (std::uint8_t v : asked) {
        raw_connection c(test_host());
        std::array<std::pair<std::string_view, std::string_view>, 1> opts{{{"CQL_VERSION", "3.0.0"}}};
        byte_buffer out;
        REQUIRE_FALSE(encode_request(4, startup_request{opts}, {}, out));
        out[0] = v;  // the codec speaks v3 to v5 only: the version byte is set by hand
        auto f = c.roundtrip_bytes(out);
        INFO("asked for v" << int(v));
        CHECK(f.header.version == test_server().max_protocol());
        CHECK(f.header.stream == 0);
        const auto& e = body_as<error_response>(f);
        const auto expected = test_server().at_least(4) ? server_error::protocol_error : server_error::server_error;
        CHECK(e.code == static_cast<std::int32_t>(expected));
        CHECK((e.message.find("protocol version: " + std::to_string(v)) != std::string::npos ||
               e.message.find("protocol version (" + std::to_string(v) + ")") != std::string::npos));
        CHECK(rejects_protocol_version(f.header, e, v));
    }
}

TEST_CASE("real node: a STARTUP in the run's version is accepted and a QUERY returns decodable rows") {
    raw_connection c(test_host());
    c.startup();
    auto f = c.roundtrip(c.version, query_request{"SELECT key, release_version FROM system.local", {.cl = consistency::one}});
    const auto& rows = result_as<rows_result>(f);
    REQUIRE(rows.metadata.columns.size() == 2);
    CHECK(rows.metadata.columns[0].keyspace == "system");
    CHECK(rows.metadata.columns[0].table == "local");
    CHECK(rows.metadata.columns[1].type.kind == type_kind::varchar);
    CHECK(cells(rows) == std::vector<std::vector<std::string>>{{"local", test_server().text}});
}

TEST_CASE("real node: lz4 and snappy compression negotiated in STARTUP round-trip compressed frames") {
    for (auto comp : {protocol::compression::lz4, protocol::compression::snappy}) {
        raw_connection c(test_host());
        c.startup(comp);
        // Enough columns that the server compresses the answer.
        auto f = c.roundtrip(c.version, query_request{"SELECT * FROM system.local", {.cl = consistency::one}});
        CHECK((f.header.flags & frame_flag::compression) != 0);
        const auto& rows = result_as<rows_result>(f);
        CHECK(rows.row_count == 1);
        CHECK(rows.metadata.columns.size() > 10);
    }
}

TEST_CASE("real node: PREPARE then EXECUTE with a bound value, and paging with a paging state") {
    raw_connection c(test_host());
    c.startup();
    auto p = c.roundtrip(c.version, prepare_request{"SELECT keyspace_name FROM " + keyspaces_table() + " WHERE keyspace_name = ?"});
    const auto& prepared = result_as<prepared_result>(p);
    REQUIRE(prepared.variables.columns.size() == 1);
    CHECK(prepared.variables.columns[0].type.kind == type_kind::varchar);

    std::array<value_view, 1> values{value_view{as_bytes("system")}};
    auto e = c.roundtrip(c.version, execute_request{prepared.id, {}, {.cl = consistency::one, .values = values}});
    CHECK(cells(result_as<rows_result>(e)) == std::vector<std::vector<std::string>>{{"system"}});

    // Page through the keyspaces one row at a time.
    std::vector<std::string> names;
    std::optional<byte_buffer> state;
    do {
        query_params params{.cl = consistency::one, .page_size = 1};
        if (state) params.paging_state = bytes_view(*state);
        auto f = c.roundtrip(c.version, query_request{"SELECT keyspace_name FROM " + keyspaces_table(), params});
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
    auto f = c.roundtrip(c.version, query_request{"SELEC nonsense", {}});
    CHECK(body_as<error_response>(f).code == static_cast<std::int32_t>(server_error::syntax_error));
    auto missing = c.roundtrip(c.version, query_request{"SELECT * FROM no_such_ks.t", {}});
    CHECK(body_as<error_response>(missing).code == static_cast<std::int32_t>(server_error::invalid));
    std::array<std::string_view, 3> events{"TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"};
    body_as<ready_response>(c.roundtrip(c.version, register_request{events}));
}

TEST_CASE("real node: schema changes come back as RESULT schema_change") {
    raw_connection c(test_host());
    c.startup();
    c.roundtrip(c.version, query_request{"DROP KEYSPACE IF EXISTS cqlcoro_codec_test", {}});
    auto f = c.roundtrip(c.version, query_request{"CREATE KEYSPACE cqlcoro_codec_test WITH replication = "
                                          "{'class': 'SimpleStrategy', 'replication_factor': 1}", {}});
    const auto& sc = result_as<schema_change_result>(f);
    CHECK(sc.change.change_type == "CREATED");
    CHECK(sc.change.target == "KEYSPACE");
    CHECK(sc.change.keyspace == "cqlcoro_codec_test");
    auto d = c.roundtrip(c.version, query_request{"DROP KEYSPACE cqlcoro_codec_test", {}});
    CHECK(result_as<schema_change_result>(d).change.change_type == "DROPPED");
}
