// The simulated nodes, exercised by raw protocol exchanges.
#include "raw_client.hpp"
#include "sim.hpp"

#include <cqlcoro/rows.hpp>
#include <cqlcoro/value.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <chrono>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using cqlcoro::sim::test::as;
using cqlcoro::sim::test::raw_client;
using cqlcoro::sim::test::reply;
using cqlcoro::sim::test::result;

namespace {

constexpr std::uint16_t port = 19042;

// A page that keeps its reply (and so the bytes its cells point into) alive.
result_page page(reply r) {
    auto owned = std::make_shared<reply>(std::move(r));
    const auto& rows = result<protocol::rows_result>(*owned);
    return result_page(rows.metadata.columns, static_cast<std::size_t>(rows.row_count), rows.content, owned);
}

reply query(raw_client& c, std::string_view q, query_params p = {.cl = consistency::one}, std::int16_t stream = 1) {
    return c.roundtrip(query_request{q, p}, stream);
}

}  // namespace

TEST_CASE("sim: v4 handshake, OPTIONS lists versions, system.local describes the node") {
    sim::cluster c({.nodes = 1, .port = port});
    raw_client client("127.0.0.1", port, 4);
    auto sup = as<supported_response>(client.roundtrip(options_request{}));
    bool lists_v5 = false;
    for (auto& [k, v] : sup.options)
        if (k == "PROTOCOL_VERSIONS") lists_v5 = std::find(v.begin(), v.end(), "5/v5") != v.end();
    CHECK(lists_v5);
    CHECK(std::holds_alternative<ready_response>(client.startup().message.body));
    auto p = page(query(client, "SELECT * FROM system.local WHERE key='local'"));
    REQUIRE(p.size() == 1);
    auto row = p.rows()[0];
    CHECK(row.get<std::string_view>("cluster_name") == "cqlcoro-sim");
    CHECK(row.get<std::string_view>("data_center") == "dc1");
    CHECK(row.get<boost::asio::ip::address>("rpc_address").to_string() == "127.0.0.1");
    CHECK(row.get<std::set<std::string>>("tokens").size() == 4);
}

TEST_CASE("sim: v5 with and without LZ4 segments, v4 and v3 with compression") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "SELECT big"}, sim::rows({sim::column("v", cql_type::of(type_kind::varchar))}).row(std::string(200'000, 'x')));
    for (auto [version, comp] : {std::pair{5, compression::none}, {5, compression::lz4}, {4, compression::lz4},
                                 {4, compression::snappy}, {3, compression::snappy}}) {
        INFO("v" << version << " compression " << static_cast<int>(comp));
        raw_client client("127.0.0.1", port, static_cast<std::uint8_t>(version));
        REQUIRE(std::holds_alternative<ready_response>(client.startup(comp).message.body));
        auto local = query(client, "SELECT release_version FROM system.local");
        CHECK(local.header.version == version);
        CHECK(page(local).rows()[0].get<std::string_view>("release_version") == "3.11.16");
        // 200 kB: several v5 segments, or a compressed v3/v4 body.
        auto big = page(query(client, "SELECT big"));
        CHECK(big.rows()[0].get<std::string_view>(0).size() == 200'000);
    }
}

TEST_CASE("sim: unsupported versions are refused like newer servers, or like Cassandra 2.1 when asked") {
    {
        sim::cluster c({.nodes = 1, .port = port, .max_version = 4});
        raw_client client("127.0.0.1", port, 5);
        auto r = client.startup();
        CHECK(r.header.version == 4);
        CHECK(as<error_response>(r).code == static_cast<std::int32_t>(server_error::protocol_error));
        CHECK(rejects_protocol_version(r.header, as<error_response>(r), 5));
    }
    {
        sim::cluster c({.nodes = 1, .port = port, .max_version = 3, .cassandra21_refusals = true});
        raw_client client("127.0.0.1", port, 4);
        auto r = client.startup();
        CHECK(r.header.version == 3);
        CHECK(r.header.stream == 0);
        CHECK(as<error_response>(r).code == 0);
        CHECK_THAT(as<error_response>(r).message, Catch::Matchers::ContainsSubstring("Invalid or unsupported protocol version: 4"));
    }
}

TEST_CASE("sim: a cluster's nodes agree: peers, datacenters, tokens and schema version") {
    sim::cluster c({.datacenters = {2, 1}, .port = port});
    REQUIRE(c.size() == 3);
    std::set<std::string> all_tokens;
    std::set<std::string> schema_versions;
    for (std::size_t n = 1; n <= 3; ++n) {
        raw_client client(c.address(n), c.port(n), 4);
        client.startup();
        auto local = page(query(client, "SELECT * FROM system.local"));
        CHECK(local.rows()[0].get<std::string_view>("data_center") == (n == 3 ? "dc2" : "dc1"));
        for (auto& t : local.rows()[0].get<std::set<std::string>>("tokens")) all_tokens.insert(t);
        schema_versions.insert(to_cql_literal(local.rows()[0].get<value>("schema_version")));
        auto peers = page(query(client, "SELECT * FROM system.peers"));
        CHECK(peers.size() == 2);
        for (auto row : peers.rows()) CHECK(row.get<boost::asio::ip::address>("peer").to_string() != c.address(n));
    }
    CHECK(all_tokens.size() == 12);      // 3 nodes x 4 tokens, none shared
    CHECK(schema_versions.size() == 1);  // schema agreement
}

TEST_CASE("sim: distinct ports on one address, and peers_v2 from release 4.0") {
    sim::cluster c({.nodes = 2, .port = port, .distinct_ports = true, .release_version = "4.0.11"});
    CHECK(c.address(2) == "127.0.0.1");
    CHECK(c.port(2) == port + 1);
    raw_client client("127.0.0.1", port + 1, 4);
    client.startup();
    auto peers = page(query(client, "SELECT * FROM system.peers_v2"));
    REQUIRE(peers.size() == 1);
    CHECK(peers.rows()[0].get<std::int32_t>("native_port") == port);
}

TEST_CASE("sim: primes match by exact text, regex, node and consistency; later primes win") {
    sim::cluster c({.nodes = 2, .port = port});
    auto cols = std::vector<column_spec>{sim::column("n", cql_type::of(type_kind::int_))};
    c.prime({.query = "SELECT n FROM t"}, sim::rows(cols).row(1));
    c.prime({.query = "SELECT n FROM t", .node = 2}, sim::rows(cols).row(2));
    c.prime({.query = "SELECT n FROM t", .cl = consistency::quorum}, sim::rows(cols).row(3));
    c.prime({.query = "SELECT .* FROM other.*", .regex = true}, sim::rows(cols).row(4));
    raw_client one("127.0.0.1", port), two("127.0.0.2", port);
    one.startup();
    two.startup();
    CHECK(page(query(one, "SELECT n FROM t")).rows()[0].get<int>(0) == 1);
    CHECK(page(query(two, "SELECT n FROM t")).rows()[0].get<int>(0) == 2);
    CHECK(page(query(one, "SELECT n FROM t", {.cl = consistency::quorum})).rows()[0].get<int>(0) == 3);
    CHECK(page(query(one, "SELECT x FROM other_table")).rows()[0].get<int>(0) == 4);
    CHECK(std::holds_alternative<void_result>(as<result_response>(query(one, "INSERT INTO t (n) VALUES (1)")).body));
    CHECK(page(query(one, "SELECT n FROM unprimed")).size() == 0);
}

TEST_CASE("sim: a large primed result pages by page size and paging state") {
    sim::cluster c({.nodes = 1, .port = port});
    auto rows = sim::rows({sim::column("i", cql_type::of(type_kind::int_))});
    for (int i = 0; i < 10'000; ++i) rows.row(i);
    c.prime({.query = "SELECT i FROM big"}, std::move(rows));
    raw_client client("127.0.0.1", port, 5);
    client.startup(compression::lz4);
    std::optional<byte_buffer> state;
    int expected = 0, pages = 0;
    do {
        query_params p{.cl = consistency::one, .page_size = 3000};
        if (state) p.paging_state = bytes_view(*state);
        auto r = query(client, "SELECT i FROM big", p);
        state = result<protocol::rows_result>(r).metadata.paging_state;
        auto pg = page(std::move(r));
        for (auto row : pg.rows()) CHECK(row.get<int>(0) == expected++);
        ++pages;
    } while (state);
    CHECK(expected == 10'000);
    CHECK(pages == 4);
}

TEST_CASE("sim: primed errors, delays, hangs, closes and half-closes") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "unavailable"}, {error_response{0x1000, "Cannot achieve consistency level QUORUM", unavailable_error{consistency::quorum, 2, 1}}});
    c.prime({.query = "slow"}, {.answer = sim::void_answer{}, .delay = std::chrono::milliseconds(50)});
    c.prime({.query = "hang"}, {sim::hang{}});
    c.prime({.query = "close"}, {sim::close_connection{}});
    c.prime({.query = "half-close"}, {sim::half_close{}});
    raw_client client("127.0.0.1", port);
    client.startup();
    auto u = as<error_response>(query(client, "unavailable"));
    CHECK(std::get<unavailable_error>(u.detail).alive == 1);

    const auto t0 = std::chrono::steady_clock::now();
    query(client, "slow");
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(50));

    // A hung request never answers; the one after it does.
    client.send(query_request{"hang", {}}, 7);
    client.send(query_request{"SELECT now", {}}, 8);
    CHECK(client.receive().header.stream == 8);

    raw_client closer("127.0.0.1", port);
    closer.startup();
    closer.send(query_request{"close", {}}, 1);
    CHECK(closer.at_eof());

    raw_client half("127.0.0.1", port);
    half.startup();
    half.send(query_request{"half-close", {}}, 1);
    CHECK(half.at_eof());
    const auto before = c.requests().size();
    half.send(query_request{"after", {}}, 2);  // the server still reads
    CHECK(c.wait_for_requests(before + 1).back().query == "after");
}

TEST_CASE("sim: prepared ids are stable across re-prepares; a forgetful node answers UNPREPARED") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "SELECT v FROM t WHERE k = ?"},
            {.answer = sim::rows({sim::column("v", cql_type::of(type_kind::varchar))}).row("x"),
             .markers = {sim::column("k", cql_type::of(type_kind::int_))},
             .pk_indexes = {0}});
    raw_client client("127.0.0.1", port, 4);
    client.startup();
    auto p1 = result<prepared_result>(client.roundtrip(prepare_request{"SELECT v FROM t WHERE k = ?"}));
    auto p2 = result<prepared_result>(client.roundtrip(prepare_request{"SELECT v FROM t WHERE k = ?"}));
    CHECK(p1.id == p2.id);
    CHECK(p1.variables.pk_indexes == std::vector<std::uint16_t>{0});
    CHECK(p1.variables.columns.at(0).type.kind == type_kind::int_);
    CHECK(p1.result.columns.at(0).name == "v");
    std::array<std::uint8_t, 4> k{0, 0, 0, 7};
    std::array<value_view, 1> vals{value_view{k}};
    auto e = page(client.roundtrip(execute_request{p1.id, {}, {.cl = consistency::two, .values = vals}}));
    CHECK(e.rows()[0].get<std::string_view>(0) == "x");

    c.forget_prepared(1);
    auto un = as<error_response>(client.roundtrip(execute_request{p1.id, {}, {.values = vals}}));
    CHECK(un.code == static_cast<std::int32_t>(server_error::unprepared));
    CHECK(std::get<unprepared_error>(un.detail).id == p1.id);

    auto log = c.requests();
    auto exec = std::find_if(log.begin(), log.end(), [](auto& r) { return r.op == opcode::execute; });
    REQUIRE(exec != log.end());
    CHECK(exec->query == "SELECT v FROM t WHERE k = ?");
    CHECK(exec->cl == consistency::two);
    CHECK(exec->values.at(0) == byte_buffer(k.begin(), k.end()));
    CHECK(exec->node == 1);
}

TEST_CASE("sim: schema tables follow the release: 2.x layout for 2.1, system_schema for 3.0+") {
    {
        sim::cluster c({.nodes = 1, .port = port, .release_version = "2.1.0"});
        raw_client client("127.0.0.1", port, 3);
        client.startup();
        auto ks = page(query(client, "SELECT * FROM system.schema_keyspaces"));
        CHECK(ks.size() >= 1);
        CHECK(ks.rows()[0].get<std::string_view>("strategy_class") == "org.apache.cassandra.locator.LocalStrategy");
        CHECK(page(query(client, "SELECT * FROM system.schema_columnfamilies")).size() == 0);
        CHECK(as<error_response>(query(client, "SELECT * FROM system_schema.keyspaces")).code == 0x2200);
    }
    {
        sim::cluster c({.nodes = 1, .port = port});
        raw_client client("127.0.0.1", port, 4);
        client.startup();
        auto ks = page(query(client, "SELECT * FROM system_schema.keyspaces"));
        CHECK(ks.rows()[0].get<std::map<std::string, std::string>>("replication").at("class") == "org.apache.cassandra.locator.LocalStrategy");
        CHECK(as<error_response>(query(client, "SELECT * FROM system.schema_keyspaces")).code == 0x2200);
    }
}

TEST_CASE("sim: 200 nodes in two datacenters with racks, on 127.0.0.1..200") {
    sim::cluster c({.datacenters = {120, 80}, .racks = 3, .port = port, .tokens_per_node = 1});
    REQUIRE(c.size() == 200);
    CHECK(c.address(200) == "127.0.0.200");
    raw_client client("127.0.0.200", port, 4);
    client.startup();
    auto local = page(query(client, "SELECT * FROM system.local"));
    CHECK(local.rows()[0].get<std::string_view>("data_center") == "dc2");
    CHECK(local.rows()[0].get<std::string_view>("rack") == "rack2");  // 80th node of dc2: (79 % 3) + 1
    auto peers = page(query(client, "SELECT * FROM system.peers"));
    CHECK(peers.size() == 199);
    std::set<std::string> racks;
    for (auto row : peers.rows()) racks.insert(row.get<std::string>("rack"));
    CHECK(racks == std::set<std::string>{"rack1", "rack2", "rack3"});
}
