// The session as a member of a simulated cluster: discovery from one contact point (system.peers and
// peers_v2), datacenters and distances, token-aware routing, nodes going down and coming back,
// debounced events, a node's new address, and UNPREPARED handled without the application noticing.
#include "sim.hpp"

#include "cluster/token.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;

namespace {

constexpr std::uint16_t port = 19052;

session_params one_contact_point(const sim::cluster& c, std::size_t node = 1) {
    session_params p;
    p.contact_points = {c.address(node)};
    p.port = c.port(node);
    p.heartbeat_interval = std::chrono::milliseconds(0);
    p.event_window = std::chrono::milliseconds(20);
    p.reconnection = reconnection_policy::constant(std::chrono::milliseconds(50));
    return p;
}

std::shared_ptr<const node> node_at(const cluster_metadata& md, const std::string& endpoint) {
    for (const auto& n : md.nodes())
        if (n->endpoint == endpoint) return n;
    return nullptr;
}

// Requests of the application (the control connection's queries of system tables left out).
std::vector<sim::recorded_request> app_requests(const sim::cluster& c) {
    std::vector<sim::recorded_request> out;
    for (auto& r : c.requests())
        if (r.query.find("FROM system") == std::string::npos && r.op != protocol::opcode::options &&
            r.op != protocol::opcode::startup && r.op != protocol::opcode::register_)
            out.push_back(std::move(r));
    return out;
}

// Runs `n` requests after clearing the record: how many each node (1-based) coordinated.
asio::awaitable<std::map<std::size_t, int>> spread(session& s, sim::cluster& c, int n) {
    c.clear_requests();
    for (int i = 0; i < n; ++i) co_await s.execute(statement("SELECT 1"));
    std::map<std::size_t, int> per_node;
    for (const auto& r : app_requests(c)) ++per_node[r.node];
    co_return per_node;
}

std::size_t queries_of(const sim::cluster& c, std::string_view table) {
    std::size_t n = 0;
    for (const auto& r : c.requests()) n += r.query.find(table) != std::string::npos;
    return n;
}

// The owner of a Murmur3 token, found by scanning every node's tokens: an independent reading of the ring.
std::string owner_of(const cluster_metadata& md, std::int64_t token) {
    std::string best, lowest;
    std::int64_t best_token = 0, lowest_token = 0;
    for (const auto& n : md.nodes())
        for (const auto& text : n->tokens) {
            const auto t = std::stoll(text);
            if (t >= token && (best.empty() || t < best_token)) {
                best = n->endpoint;
                best_token = t;
            }
            if (lowest.empty() || t < lowest_token) {
                lowest = n->endpoint;
                lowest_token = t;
            }
        }
    return best.empty() ? lowest : best;
}

// A system.peers answer listing these nodes (address, host id, tokens), all in dc1.
sim::rows_answer peers_table(const std::vector<std::tuple<std::string, uuid, std::vector<std::string>>>& nodes) {
    const auto inet = cql_type::of(type_kind::inet), text = cql_type::of(type_kind::varchar), id = cql_type::of(type_kind::uuid);
    auto r = sim::rows({{"system", "peers", "peer", inet}, {"system", "peers", "rpc_address", inet}, {"system", "peers", "host_id", id},
                        {"system", "peers", "data_center", text}, {"system", "peers", "rack", text},
                        {"system", "peers", "tokens", cql_type::set_of(text)}});
    for (const auto& [addr, host, tokens] : nodes) {
        auto a = asio::ip::make_address(addr);
        r.row(a, a, host, std::string("dc1"), std::string("rack1"), std::set<std::string>(tokens.begin(), tokens.end()));
    }
    return r;
}

// Pushes a schema change of keyspace `name` after the events a test pushed, and waits until the
// session reads it: events are applied in order, so every event before it has been applied too.
asio::awaitable<void> applied_marker(sim::cluster& c, const std::string& name) {
    c.push_schema_change({"CREATED", "KEYSPACE", name, "", {}}, 1);
    const auto quoted = "'" + name + "'";
    auto seen = [&] { return fmt::format("{} queries naming {}", queries_of(c, quoted), quoted); };
    co_await cqlcoro::test::yield_until([&] { return queries_of(c, quoted) > 0; }, seen, 100'000'000);
}

}  // namespace

TEST_CASE("cluster: one contact point finds every node; other datacenters are ignored unless asked for") {
    sim::cluster c({.nodes = 3, .datacenters = {2, 1}, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, one_contact_point(c));
        auto md = s.metadata();
        REQUIRE(md->nodes().size() == 3);
        CHECK(md->cluster_name() == "cqlcoro-sim");
        CHECK(md->partitioner() == "org.apache.cassandra.dht.Murmur3Partitioner");
        for (std::size_t i = 1; i <= 3; ++i) {
            auto n = node_at(*md, fmt::format("{}:{}", c.address(i), port));
            REQUIRE(n);
            CHECK(n->datacenter == (i <= 2 ? "dc1" : "dc2"));
            CHECK(n->tokens.size() == 4);
            CHECK(n->release_version == "3.11.16");
            CHECK(n->distance() == (i <= 2 ? node_distance::local : node_distance::ignored));
            CHECK(n->state() == (i <= 2 ? node_state::up : node_state::unknown));
        }
        CHECK(c.connection_count(3) == 0);  // ignored: no pool
        // Requests go round robin over the local datacenter only.
        auto per_node = co_await spread(s, c, 8);
        CHECK(per_node[1] == 4);
        CHECK(per_node[2] == 4);
        CHECK(per_node[3] == 0);
        co_await s.close(std::chrono::milliseconds(100));

        // With one remote node per datacenter, dc2's node is remote and used when dc1 cannot serve.
        auto p = one_contact_point(c, 3);
        p.local_datacenter = "dc1";
        p.remote_hosts_per_dc = 1;
        auto s2 = co_await session::connect(ex, p);
        auto n3 = node_at(*s2.metadata(), fmt::format("{}:{}", c.address(3), port));
        REQUIRE(n3);
        CHECK(n3->distance() == node_distance::remote);
        auto md2 = s2.metadata();
        auto n1 = node_at(*md2, fmt::format("{}:{}", c.address(1), port)), n2 = node_at(*md2, fmt::format("{}:{}", c.address(2), port));
        c.stop(1);
        c.stop(2);
        co_await cqlcoro::test::yield_until([&] { return n1->state() == node_state::down && n2->state() == node_state::down; }, 100'000'000);
        c.clear_requests();
        co_await s2.execute(statement("SELECT 1").consistency(consistency::one));
        REQUIRE(app_requests(c).size() == 1);
        CHECK(app_requests(c)[0].node == 3);
        // At a LOCAL_* consistency the request stays in dc1 (allow_remote_for_local_consistency is off).
        auto [local_ec, local_r] = co_await s2.execute(statement("SELECT 1"), asio::as_tuple(asio::use_awaitable));
        CHECK(local_ec == client_errc::no_host_available);
        CHECK(app_requests(c).size() == 1);
        c.start(1);
        c.start(2);
        co_await s2.close(std::chrono::milliseconds(100));

        // A local datacenter the cluster does not have is a configuration error that names the real ones.
        auto bad = one_contact_point(c);
        bad.local_datacenter = "dc9";
        try {
            co_await session::connect(ex, bad);
            FAIL("connect accepted an unknown local datacenter");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::invalid_configuration);
            CHECK_THAT(std::string(e.what()), ContainsSubstring("dc9") && ContainsSubstring("dc1, dc2"));
        }
    });
}

TEST_CASE("cluster: system.peers_v2 (Cassandra 4.0+) gives each node's own port; v5 end to end") {
    sim::cluster c({.nodes = 3, .port = port, .distinct_ports = true, .release_version = "4.1.3"});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, one_contact_point(c));
        CHECK(s.protocol_version() == 5);
        auto md = s.metadata();
        REQUIRE(md->nodes().size() == 3);
        for (std::size_t i = 1; i <= 3; ++i) CHECK(node_at(*md, fmt::format("127.0.0.1:{}", port + i - 1)));
        CHECK(queries_of(c, "system.peers_v2") >= 1);
        CHECK(queries_of(c, "FROM system.peers\n") + queries_of(c, "FROM system.peers ") == 0);  // v2 answered: no fallback
        CHECK(md->keyspace("system_schema"));  // the 3.0+ schema layout was read
        auto per_node = co_await spread(s, c, 6);
        CHECK(per_node.size() == 3);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: Cassandra 2.1 layout: peers_v2 refused once, then system.peers; schema from system.schema_*") {
    sim::cluster c({.nodes = 2, .port = port, .max_version = 3, .cassandra21_refusals = true, .release_version = "2.1.0",
                    .keyspaces = {{"shop", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "2"}}}}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, one_contact_point(c));
        CHECK(s.protocol_version() == 3);
        auto md = s.metadata();
        CHECK(md->nodes().size() == 2);
        const auto* shop = md->keyspace("shop");
        REQUIRE(shop);
        CHECK(shop->replication.strategy_class == "org.apache.cassandra.locator.SimpleStrategy");
        CHECK(shop->replication.options.at("replication_factor") == "2");
        CHECK(queries_of(c, "system.peers_v2") == 1);
        CHECK(queries_of(c, "system.schema_keyspaces") >= 1);
        // Events refresh the node list without asking for peers_v2 again.
        c.push_topology_change(2, "NEW_NODE");
        co_await cqlcoro::test::yield_until([&] { return queries_of(c, "system.peers") >= 3; });
        CHECK(queries_of(c, "system.peers_v2") == 1);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: token-aware routing sends each partition to its replica") {
    sim::cluster c({.nodes = 4, .port = port, .tokens_per_node = 8,
                    .keyspaces = {{"ks", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "1"}}}}});
    const auto int_ = cql_type::of(type_kind::int_);
    c.prime({.query = "INSERT INTO ks.t (k, v) VALUES (?, ?)"},
            sim::prime_then{.markers = {{"ks", "t", "k", int_}, {"ks", "t", "v", int_}}, .pk_indexes = {0}});
    c.prime({.query = "INSERT INTO ks.c (a, b, v) VALUES (?, ?, ?)"},
            sim::prime_then{.markers = {{"ks", "c", "a", int_}, {"ks", "c", "b", cql_type::of(type_kind::varchar)}, {"ks", "c", "v", int_}},
                            .pk_indexes = {0, 1}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, one_contact_point(c));
        auto md = s.metadata();
        auto insert = co_await s.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)");
        auto composite = co_await s.prepare("INSERT INTO ks.c (a, b, v) VALUES (?, ?, ?)");
        c.clear_requests();
        std::map<std::size_t, int> per_node;
        for (std::int32_t k = 0; k < 200; ++k) {
            auto r = co_await s.execute(insert.bind(k, k));
            // The replica, found independently: the owner of the key's Murmur3 token on the ring.
            std::vector<std::uint8_t> key{static_cast<std::uint8_t>(k >> 24), static_cast<std::uint8_t>(k >> 16),
                                            static_cast<std::uint8_t>(k >> 8), static_cast<std::uint8_t>(k)};
            const auto expected = owner_of(*md, cluster::murmur3_token(key));
            CHECK(r.coordinator() == expected);
            auto replicas = md->replicas("ks", key);
            REQUIRE(replicas.size() == 1);
            CHECK(replicas[0]->endpoint == expected);
            CHECK(md->token_of(key) == std::to_string(cluster::murmur3_token(key)));
        }
        for (const auto& r : app_requests(c)) ++per_node[r.node];
        CHECK(per_node.size() == 4);  // the keys spread over every node
        // A composite partition key: the routing key is the composite form.
        for (std::int32_t a = 0; a < 50; ++a) {
            auto b = fmt::format("b{}", a);
            auto r = co_await s.execute(composite.bind(a, b, 0));
            std::vector<std::uint8_t> ka{static_cast<std::uint8_t>(a >> 24), static_cast<std::uint8_t>(a >> 16),
                                           static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a)};
            std::vector<std::span<const std::uint8_t>> parts{ka, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(b.data()), b.size())};
            auto key = composite_routing_key(parts);
            CHECK(r.coordinator() == owner_of(*md, cluster::murmur3_token(key)));
        }
        // A simple statement routes by an explicit routing key.
        std::vector<std::uint8_t> seven{0, 0, 0, 7};
        auto by_key = statement("SELECT v FROM ks.t WHERE k = 7").routing_key(seven).routing_keyspace("ks");
        auto r = co_await s.execute(std::move(by_key));
        CHECK(r.coordinator() == owner_of(*md, cluster::murmur3_token(seven)));
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: a node whose connections drop is down at once, skipped, and reconnected when it is back") {
    sim::cluster c({.nodes = 3, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = one_contact_point(c);
        // Node 2 back up takes its turn in the rotation at once (with the health order it would yield
        // most of them for a minute, which load_balancing_test covers).
        p.health.enabled = false;
        std::vector<std::string> seen;
        p.on_node_event = [&](const node_event& e) { seen.push_back(fmt::format("{} {}", to_string(e.kind), e.about->endpoint)); };
        auto s = co_await session::connect(ex, p);
        const auto two = fmt::format("{}:{}", c.address(2), port);
        CHECK(std::count(seen.begin(), seen.end(), "added " + two) == 1);
        CHECK(std::count(seen.begin(), seen.end(), "up " + two) == 1);
        auto n2 = node_at(*s.metadata(), two);
        REQUIRE(n2);
        c.stop(2);  // connections reset; no gossip event comes
        co_await cqlcoro::test::yield_until([&] { return n2->state() == node_state::down; });
        CHECK(std::count(seen.begin(), seen.end(), "down " + two) == 1);
        c.clear_requests();
        for (int i = 0; i < 12; ++i) {
            auto [ec, r] = co_await s.execute(statement("SELECT 1"), asio::as_tuple(asio::use_awaitable));
            CHECK_FALSE(ec);
        }
        for (const auto& r : app_requests(c)) CHECK(r.node != 2);
        c.start(2);  // reconnected by the policy (50 ms), without any event
        co_await cqlcoro::test::yield_until([&] { return n2->state() == node_state::up; }, 100'000'000);
        CHECK(std::count(seen.begin(), seen.end(), "up " + two) == 2);
        auto after = co_await spread(s, c, 12);
        CHECK(after[2] > 0);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: an event storm is applied in a few debounced batches; DOWN then UPs ends up") {
    sim::cluster c({.nodes = 3, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = one_contact_point(c);
        p.event_window = std::chrono::milliseconds(200);
        p.event_max_batch = 50;
        auto s = co_await session::connect(ex, p);
        const auto before = queries_of(c, "system.peers");
        // 100 topology events within the window: at most two batches (by count), each one refresh.
        for (int i = 0; i < 100; ++i) c.push_topology_change(2, "MOVED_NODE", 1);
        co_await cqlcoro::test::yield_until([&] { return queries_of(c, "system.peers") >= before + 1; }, 100'000'000);
        // Events are applied in order: once a schema change pushed after the storm is read, every batch
        // of the storm has been applied.
        co_await applied_marker(c, "storm_done");
        const auto refreshes = queries_of(c, "system.peers") - before;
        CHECK(refreshes >= 1);
        CHECK(refreshes <= 2);
        // Cassandra 2.1 on restart: DOWN, then UP several times, possibly out of order. Node 3 keeps its
        // connections all along: it stays up, and nothing reconnects it.
        auto n3 = node_at(*s.metadata(), fmt::format("{}:{}", c.address(3), port));
        REQUIRE(n3);
        const auto conns = c.connection_count(3);
        c.push_status_change(3, "DOWN", 1);
        c.push_status_change(3, "UP", 1);
        c.push_status_change(3, "UP", 1);
        co_await applied_marker(c, "status_done");
        CHECK(n3->state() == node_state::up);
        CHECK(c.connection_count(3) == conns);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: a node at a new address (same host id) is reconnected there") {
    // Four sim nodes; system.peers is primed to show what the test wants: first nodes 2 and 3, then
    // node 3's host id and tokens at node 4's address, as after a node changed its IP.
    sim::cluster c({.nodes = 4, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        // Learn nodes 2 and 3 as the sim lists them, then hide node 4.
        std::shared_ptr<const node> n2, n3;
        {
            auto probe = co_await session::connect(ex, one_contact_point(c));
            n2 = node_at(*probe.metadata(), fmt::format("{}:{}", c.address(2), port));
            n3 = node_at(*probe.metadata(), fmt::format("{}:{}", c.address(3), port));
            co_await probe.close(std::chrono::milliseconds(100));
        }
        REQUIRE(n2);
        REQUIRE(n3);
        c.prime({.query = "SELECT * FROM system.peers"},
                peers_table({{c.address(2), n2->host_id, n2->tokens}, {c.address(3), n3->host_id, n3->tokens}}));
        auto p = one_contact_point(c);
        std::vector<std::string> seen;
        p.on_node_event = [&](const node_event& e) { seen.push_back(fmt::format("{} {}", to_string(e.kind), e.about->endpoint)); };
        auto s = co_await session::connect(ex, p);
        REQUIRE(s.metadata()->nodes().size() == 3);
        CHECK(c.connection_count(3) == 1);
        c.prime({.query = "SELECT * FROM system.peers"},
                peers_table({{c.address(2), n2->host_id, n2->tokens}, {c.address(4), n3->host_id, n3->tokens}}));
        c.push_topology_change(4, "NEW_NODE", 1);
        const auto four = fmt::format("{}:{}", c.address(4), port), three = fmt::format("{}:{}", c.address(3), port);
        co_await cqlcoro::test::yield_until([&] { return std::count(seen.begin(), seen.end(), "up " + four) == 1; }, 100'000'000);
        auto md = s.metadata();
        REQUIRE(md->nodes().size() == 3);
        auto moved = node_at(*md, four);
        REQUIRE(moved);
        CHECK(moved->host_id == n3->host_id);
        CHECK(moved->tokens == n3->tokens);
        CHECK_FALSE(node_at(*md, three));
        CHECK(std::count(seen.begin(), seen.end(), "removed " + three) == 1);
        CHECK(std::count(seen.begin(), seen.end(), "added " + four) == 1);
        co_await cqlcoro::test::yield_until([&] { return c.connection_count(3) == 0; }, 100'000'000);
        auto per_node = co_await spread(s, c, 6);
        CHECK(per_node[4] > 0);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: UNPREPARED after a node forgot its statements is handled without an error reaching the application") {
    sim::cluster c({.nodes = 2, .port = port});
    const auto int_ = cql_type::of(type_kind::int_);
    c.prime({.query = "SELECT v FROM ks.t WHERE k = ?"},
            sim::prime_then{sim::rows({sim::column("v", int_)}).row(42), {}, {{"ks", "t", "k", int_}}, {0}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, one_contact_point(c));
        auto q = co_await s.prepare("SELECT v FROM ks.t WHERE k = ?");
        // Prepared on both nodes up front.
        std::size_t prepares = 0;
        for (const auto& r : c.requests()) prepares += r.op == protocol::opcode::prepare;
        CHECK(prepares == 2);
        c.forget_prepared(1);
        c.forget_prepared(2);
        c.clear_requests();
        for (int i = 0; i < 4; ++i) {
            auto r = co_await s.execute(q.bind(i));
            CHECK(r.one().get<std::int32_t>("v") == 42);
        }
        std::size_t executes = 0;
        prepares = 0;
        for (const auto& r : c.requests()) {
            executes += r.op == protocol::opcode::execute;
            prepares += r.op == protocol::opcode::prepare;
        }
        CHECK(prepares == 2);    // once per node
        CHECK(executes == 6);    // two refused, then sent again, then two that went through at once
        co_await s.close(std::chrono::milliseconds(100));
    });
}

namespace {

// A column of a schema table: 3.0+'s system_schema by default, or 2.x's system.
column_spec schema_col(std::string table, std::string name, cql_type type, std::string keyspace = "system_schema") {
    return {std::move(keyspace), std::move(table), std::move(name), std::move(type)};
}

std::size_t exactly(const sim::cluster& c, std::string_view query) {
    std::size_t n = 0;
    for (const auto& r : c.requests()) n += r.query == query;
    return n;
}

}  // namespace

TEST_CASE("cluster: schema metadata from the 3.0+ tables, refreshed per element by SCHEMA_CHANGE") {
    sim::cluster c({.nodes = 2, .port = port,
                    .keyspaces = {{"shop", {{"class", "org.apache.cassandra.locator.NetworkTopologyStrategy"}, {"dc1", "1"}}}}});
    const auto text = cql_type::of(type_kind::varchar), int_ = cql_type::of(type_kind::int_);
    const auto texts = cql_type::list_of(text), text_map = cql_type::map_of(text, text);
    c.prime({.query = "SELECT * FROM system_schema.tables"},
            sim::rows({schema_col("tables", "keyspace_name", text), schema_col("tables", "table_name", text),
                       schema_col("tables", "comment", text), schema_col("tables", "gc_grace_seconds", int_)})
                .row("shop", "orders", "the orders", 864000));
    auto columns = [&] {
        return sim::rows({schema_col("columns", "keyspace_name", text), schema_col("columns", "table_name", text),
                          schema_col("columns", "column_name", text), schema_col("columns", "clustering_order", text),
                          schema_col("columns", "kind", text), schema_col("columns", "position", int_), schema_col("columns", "type", text)});
    };
    c.prime({.query = "SELECT * FROM system_schema.columns"},
            columns()
                .row("shop", "orders", "total", "none", "regular", -1, "decimal")
                .row("shop", "orders", "day", "none", "partition_key", 1, "date")
                .row("shop", "orders", "ts", "desc", "clustering", 0, "timestamp")
                .row("shop", "orders", "id", "none", "partition_key", 0, "uuid")
                .row("shop", "orders", "note", "none", "static", -1, "text")
                .row("shop", "orders", "tags", "none", "regular", -1, "frozen<list<text>>")
                .row("shop", "by_day", "day", "none", "partition_key", 0, "date")
                .row("shop", "by_day", "id", "none", "clustering", 0, "uuid"));
    c.prime({.query = "SELECT * FROM system_schema.indexes"},
            sim::rows({schema_col("indexes", "keyspace_name", text), schema_col("indexes", "table_name", text),
                       schema_col("indexes", "index_name", text), schema_col("indexes", "kind", text), schema_col("indexes", "options", text_map)})
                .row("shop", "orders", "orders_total", "COMPOSITES", std::map<std::string, std::string>{{"target", "total"}}));
    c.prime({.query = "SELECT * FROM system_schema.views"},
            sim::rows({schema_col("views", "keyspace_name", text), schema_col("views", "view_name", text),
                       schema_col("views", "base_table_name", text), schema_col("views", "where_clause", text)})
                .row("shop", "by_day", "orders", "day IS NOT NULL AND id IS NOT NULL"));
    c.prime({.query = "SELECT * FROM system_schema.types"},
            sim::rows({schema_col("types", "keyspace_name", text), schema_col("types", "type_name", text),
                       schema_col("types", "field_names", texts), schema_col("types", "field_types", texts)})
                .row("shop", "address", std::vector<std::string>{"street", "zip"}, std::vector<std::string>{"text", "int"}));
    c.prime({.query = "SELECT * FROM system_schema.functions"},
            sim::rows({schema_col("functions", "keyspace_name", text), schema_col("functions", "function_name", text),
                       schema_col("functions", "argument_names", texts), schema_col("functions", "argument_types", texts),
                       schema_col("functions", "body", text), schema_col("functions", "called_on_null_input", cql_type::of(type_kind::boolean)),
                       schema_col("functions", "language", text), schema_col("functions", "return_type", text)})
                .row("shop", "plus", std::vector<std::string>{"a", "b"}, std::vector<std::string>{"int", "int"}, "return a + b;", false,
                     "java", "int"));
    c.prime({.query = "SELECT * FROM system_schema.aggregates"},
            sim::rows({schema_col("aggregates", "keyspace_name", text), schema_col("aggregates", "aggregate_name", text),
                       schema_col("aggregates", "argument_types", texts), schema_col("aggregates", "final_func", text),
                       schema_col("aggregates", "initcond", text), schema_col("aggregates", "return_type", text),
                       schema_col("aggregates", "state_func", text), schema_col("aggregates", "state_type", text)})
                .row("shop", "total", std::vector<std::string>{"int"}, "", "0", "int", "plus", "int"));
    // What a targeted refresh of a new table reads.
    c.prime({.query = "SELECT * FROM system_schema.tables WHERE keyspace_name = 'shop' AND table_name = 'carts'"},
            sim::rows({schema_col("tables", "keyspace_name", text), schema_col("tables", "table_name", text)}).row("shop", "carts"));
    c.prime({.query = "SELECT * FROM system_schema.columns WHERE keyspace_name = 'shop' AND table_name = 'carts'"},
            columns().row("shop", "carts", "cart", "none", "partition_key", 0, "uuid"));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = one_contact_point(c);
        p.event_window = std::chrono::milliseconds(200);  // the storm below is one batch
        p.event_max_batch = 50;
        auto s = co_await session::connect(ex, p);
        auto md = s.metadata();
        const auto* shop = md->keyspace("shop");
        REQUIRE(shop);
        CHECK(shop->replication.strategy_class == "org.apache.cassandra.locator.NetworkTopologyStrategy");
        CHECK(shop->replication.options == std::map<std::string, std::string>{{"dc1", "1"}});
        REQUIRE(shop->tables.count("orders"));
        const auto& orders = shop->tables.at("orders");
        CHECK(orders.partition_key == std::vector<std::string>{"id", "day"});
        CHECK(orders.clustering == std::vector<std::string>{"ts"});
        std::vector<std::string> order;
        for (const auto& col : orders.columns) order.push_back(col.name);
        CHECK(order == std::vector<std::string>{"id", "day", "ts", "note", "tags", "total"});  // keys, then the others by name
        CHECK(orders.column("ts")->descending);
        CHECK(orders.column("note")->kind == column_kind::static_);
        CHECK(orders.column("tags")->type_text == "frozen<list<text>>");
        CHECK(orders.column("total")->type.kind == type_kind::decimal);
        CHECK(orders.options.at("comment") == "the orders");
        CHECK(orders.options.at("gc_grace_seconds") == "864000");
        REQUIRE(orders.indexes.size() == 1);
        CHECK(orders.indexes[0].name == "orders_total");
        CHECK(orders.indexes[0].target == "total");
        REQUIRE(shop->views.count("by_day"));
        CHECK(shop->views.at("by_day").base_table == "orders");
        CHECK(shop->views.at("by_day").partition_key == std::vector<std::string>{"day"});
        CHECK_FALSE(shop->tables.count("by_day"));
        REQUIRE(shop->user_types.count("address"));
        CHECK(shop->user_types.at("address").fields == std::vector<std::pair<std::string, std::string>>{{"street", "text"}, {"zip", "int"}});
        REQUIRE(shop->functions.count("plus(int,int)"));
        CHECK(shop->functions.at("plus(int,int)").body == "return a + b;");
        REQUIRE(shop->aggregates.count("total(int)"));
        CHECK(shop->aggregates.at("total(int)").state_function == "plus");
        CHECK(shop->aggregates.at("total(int)").initial_condition == "0");

        // A storm of changes to one new table: one targeted read, no full one.
        const auto full_before = exactly(c, "SELECT * FROM system_schema.tables");
        for (int i = 0; i < 30; ++i) c.push_schema_change({"CREATED", "TABLE", "shop", "carts", {}}, 1);
        co_await cqlcoro::test::yield_until([&] { return s.metadata()->keyspace("shop")->tables.count("carts") > 0; }, 100000000);
        CHECK(s.metadata()->keyspace("shop")->tables.at("carts").partition_key == std::vector<std::string>{"cart"});
        CHECK(s.metadata()->keyspace("shop")->tables.count("orders"));  // the rest is kept
        CHECK(exactly(c, "SELECT * FROM system_schema.tables WHERE keyspace_name = 'shop' AND table_name = 'carts'") == 1);
        CHECK(exactly(c, "SELECT * FROM system_schema.tables") == full_before);
        // CREATED then DROPPED in one batch: the latest word counts, and a drop removes without asking.
        c.push_schema_change({"CREATED", "TABLE", "shop", "carts", {}}, 1);
        c.push_schema_change({"DROPPED", "TABLE", "shop", "carts", {}}, 1);
        co_await cqlcoro::test::yield_until([&] { return s.metadata()->keyspace("shop")->tables.count("carts") == 0; }, 100'000'000);
        CHECK(exactly(c, "SELECT * FROM system_schema.tables WHERE keyspace_name = 'shop' AND table_name = 'carts'") == 1);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: Cassandra 2.2 layout: functions and aggregates from system.schema_*, types as class names") {
    sim::cluster c({.nodes = 1, .port = port, .max_version = 4, .release_version = "2.2.8",
                    .keyspaces = {{"shop", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "1"}}}}});
    const auto text = cql_type::of(type_kind::varchar);
    const auto texts = cql_type::list_of(text);
    auto col = [](std::string table, std::string name, cql_type type) { return schema_col(std::move(table), std::move(name), std::move(type), "system"); };
    const std::string int32 = "org.apache.cassandra.db.marshal.Int32Type";
    const std::string utf8 = "org.apache.cassandra.db.marshal.UTF8Type";
    const std::string list_of_int = "org.apache.cassandra.db.marshal.ListType(" + int32 + ")";
    c.prime({.query = "SELECT * FROM system.schema_functions"},
            sim::rows({col("schema_functions", "keyspace_name", text), col("schema_functions", "function_name", text),
                       col("schema_functions", "signature", texts), col("schema_functions", "argument_names", texts),
                       col("schema_functions", "argument_types", texts), col("schema_functions", "body", text),
                       col("schema_functions", "called_on_null_input", cql_type::of(type_kind::boolean)),
                       col("schema_functions", "language", text), col("schema_functions", "return_type", text)})
                .row("shop", "plus", std::vector<std::string>{"int", "int"}, std::vector<std::string>{"a", "b"},
                     std::vector<std::string>{int32, int32}, "return a + b;", true, "java", int32)
                .row("shop", "label", std::vector<std::string>{"text"}, std::vector<std::string>{"s"}, std::vector<std::string>{utf8},
                     "return s;", false, "java", utf8));
    // initcond: serialized in the state type, or null when there is none.
    c.prime({.query = "SELECT * FROM system.schema_aggregates"},
            sim::rows({col("schema_aggregates", "keyspace_name", text), col("schema_aggregates", "aggregate_name", text),
                       col("schema_aggregates", "signature", texts), col("schema_aggregates", "argument_types", texts),
                       col("schema_aggregates", "final_func", text), col("schema_aggregates", "initcond", cql_type::of(type_kind::blob)),
                       col("schema_aggregates", "return_type", text), col("schema_aggregates", "state_func", text),
                       col("schema_aggregates", "state_type", text)})
                .row("shop", "total", std::vector<std::string>{"int"}, std::vector<std::string>{int32}, "", std::vector<std::uint8_t>{0, 0, 0, 42},
                     int32, "plus", int32)
                .row("shop", "collect", std::vector<std::string>{"int"}, std::vector<std::string>{int32}, "",
                     std::vector<std::uint8_t>{0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 7}, list_of_int, "append", list_of_int)
                .row("shop", "first", std::vector<std::string>{"text"}, std::vector<std::string>{utf8}, "", std::nullopt, utf8, "keep", utf8)
                .row("shop", "odd", std::vector<std::string>{"int"}, std::vector<std::string>{int32}, "", std::vector<std::uint8_t>{1, 2},
                     int32, "plus", "org.example.SomeCustomType"));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, one_contact_point(c));
        const auto* shop = s.metadata()->keyspace("shop");
        REQUIRE(shop);
        REQUIRE(shop->functions.count("plus(int,int)"));
        const auto& plus = shop->functions.at("plus(int,int)");
        CHECK(plus.argument_names == std::vector<std::string>{"a", "b"});
        CHECK(plus.argument_types == std::vector<std::string>{"int", "int"});  // class names read as CQL types
        CHECK(plus.return_type == "int");
        CHECK(plus.body == "return a + b;");
        CHECK(plus.called_on_null_input);
        CHECK(plus.language == "java");
        REQUIRE(shop->functions.count("label(text)"));
        CHECK_FALSE(shop->functions.at("label(text)").called_on_null_input);
        REQUIRE(shop->aggregates.count("total(int)"));
        const auto& total = shop->aggregates.at("total(int)");
        CHECK(total.state_function == "plus");
        CHECK(total.state_type == "int");
        CHECK(total.return_type == "int");
        CHECK(total.initial_condition == "42");  // the serialized int, as the CQL literal 3.0+ stores
        REQUIRE(shop->aggregates.count("collect(int)"));
        CHECK(shop->aggregates.at("collect(int)").state_type == "list<int>");
        CHECK(shop->aggregates.at("collect(int)").initial_condition == "[7]");
        REQUIRE(shop->aggregates.count("first(text)"));
        CHECK(shop->aggregates.at("first(text)").initial_condition.empty());  // none
        REQUIRE(shop->aggregates.count("odd(int)"));
        CHECK(shop->aggregates.at("odd(int)").initial_condition == "0x0102");  // a type it cannot decode: the bytes
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: DDL through the session waits for schema agreement, bounded") {
    sim::cluster c({.nodes = 2, .port = port});
    c.prime({.query = "CREATE TABLE ks.x (k int PRIMARY KEY)"}, sim::prime_then{protocol::schema_change{"CREATED", "TABLE", "ks", "x", {}}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = one_contact_point(c);
        p.schema_agreement_timeout = std::chrono::milliseconds(300);
        p.schema_agreement_interval = std::chrono::milliseconds(20);
        auto s = co_await session::connect(ex, p);
        auto r = co_await s.execute(statement("CREATE TABLE ks.x (k int PRIMARY KEY)"));
        REQUIRE(r.schema_change());
        REQUIRE(r.schema_in_agreement());
        CHECK(*r.schema_in_agreement());
        auto plain = co_await s.execute(statement("SELECT 1"));
        CHECK_FALSE(plain.schema_in_agreement());  // not a schema change
        // Node 2 lags: the wait is bounded and the result says so.
        c.set_schema_version(2, uuid{{1, 2, 3}});
        const auto t0 = std::chrono::steady_clock::now();
        auto lagging = co_await s.execute(statement("CREATE TABLE ks.x (k int PRIMARY KEY)"));
        const auto waited = std::chrono::steady_clock::now() - t0;
        REQUIRE(lagging.schema_in_agreement());
        CHECK_FALSE(*lagging.schema_in_agreement());
        CHECK(waited >= std::chrono::milliseconds(250));
        const bool agreed_while_lagging = co_await s.check_schema_agreement(std::chrono::milliseconds(100));
        CHECK_FALSE(agreed_while_lagging);
        // A node that is down does not count.
        c.stop(2);
        co_await cqlcoro::test::yield_until(
            [&] { return node_at(*s.metadata(), fmt::format("{}:{}", c.address(2), port))->state() == node_state::down; }, 100'000'000);
        const bool agreed_without_it = co_await s.check_schema_agreement(std::chrono::milliseconds(100));
        CHECK(agreed_without_it);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: DDL in a storm of changes agrees once the nodes reach the coordinator's version, however far it moved on") {
    // Several clients change the schema at once: the coordinator answers one change at version A and
    // has moved on to B (another client's change) by the time the nodes agree, on B. Waiting for A
    // would wait out the whole timeout; the coordinator's version is read again instead.
    sim::cluster c({.nodes = 2, .port = port});
    c.prime({.query = "CREATE TABLE ks.y (k int PRIMARY KEY)"}, sim::prime_then{protocol::schema_change{"CREATED", "TABLE", "ks", "y", {}}});
    const uuid a{{0xA}}, b{{0xB}};
    c.set_schema_version(1, b);  // the control node already has the other client's change
    c.set_schema_version(2, a);  // the coordinator has only this one
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = one_contact_point(c);
        p.schema_agreement_timeout = std::chrono::seconds(5);
        p.schema_agreement_interval = std::chrono::milliseconds(20);
        auto s = co_await session::connect(ex, p);
        statement ddl("CREATE TABLE ks.y (k int PRIMARY KEY)");
        ddl.node_endpoint(fmt::format("{}:{}", c.address(2), port));
        const auto polls_before = queries_of(c, "system.peers");
        const auto t0 = std::chrono::steady_clock::now();
        std::optional<result> answer;
        asio::co_spawn(ex, s.execute(std::move(ddl), asio::use_awaitable), [&](std::exception_ptr e, result r) {
            if (!e) answer = std::move(r);
        });
        // The nodes disagree (B, A) while the session polls; then the coordinator moves on to B.
        co_await cqlcoro::test::yield_until([&] { return queries_of(c, "system.peers") >= polls_before + 3; }, 100'000'000);
        CHECK_FALSE(answer);
        c.set_schema_version(2, b);
        co_await cqlcoro::test::yield_until([&] { return answer.has_value(); }, 100'000'000);
        const auto waited = std::chrono::steady_clock::now() - t0;
        REQUIRE(answer->schema_in_agreement());
        CHECK(*answer->schema_in_agreement());
        CHECK(waited < std::chrono::seconds(2));  // not the 5 s timeout
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: the control connection moves to another node when its node goes, and events still arrive") {
    sim::cluster c({.nodes = 3, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, one_contact_point(c));
        const auto peers_before = queries_of(c, "system.peers");
        c.stop(1);  // the contact point, which holds the control connection
        // The new control connection reads the nodes again from another node.
        co_await cqlcoro::test::yield_until([&] { return queries_of(c, "system.peers") > peers_before; }, 100'000'000);
        std::size_t via = 0;
        for (const auto& r : c.requests())
            if (r.query.find("system.peers") != std::string::npos) via = r.node;
        CHECK(via != 1);
        // It REGISTERed there: an event through that node is applied.
        auto n3 = node_at(*s.metadata(), fmt::format("{}:{}", c.address(3), port));
        REQUIRE(n3);
        c.stop(3);
        c.start(3);
        co_await cqlcoro::test::yield_until([&] { return n3->state() == node_state::down; }, 100'000'000);
        c.push_status_change(3, "UP", via);
        co_await cqlcoro::test::yield_until([&] { return n3->state() == node_state::up; }, 100'000'000);
        for (int i = 0; i < 4; ++i) co_await s.execute(statement("SELECT 1"));
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: a node that comes back up gets the session's prepared statements again") {
    sim::cluster c({.nodes = 2, .port = port});
    const auto int_ = cql_type::of(type_kind::int_);
    c.prime({.query = "SELECT v FROM ks.t WHERE k = ?"},
            sim::prime_then{sim::rows({sim::column("v", int_)}).row(1), {}, {{"ks", "t", "k", int_}}, {0}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, one_contact_point(c));
        co_await s.prepare("SELECT v FROM ks.t WHERE k = ?");
        auto n2 = node_at(*s.metadata(), fmt::format("{}:{}", c.address(2), port));
        REQUIRE(n2);
        c.stop(2);
        c.forget_prepared(2);  // as a restart does
        co_await cqlcoro::test::yield_until([&] { return n2->state() == node_state::down; }, 100'000'000);
        c.clear_requests();
        c.start(2);
        auto prepared_on_2 = [&] {
            for (const auto& r : c.requests())
                if (r.node == 2 && r.op == protocol::opcode::prepare) return true;
            return false;
        };
        co_await cqlcoro::test::yield_until(prepared_on_2, 100'000'000);  // without any request of the application
        CHECK(n2->state() == node_state::up);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: the address translator maps the addresses nodes advertise to ones the session can reach") {
    // The peers advertise 10.0.0.x, which nothing here answers; the translator maps them to the sim's nodes.
    sim::cluster c({.nodes = 3, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        std::vector<std::shared_ptr<const node>> real;
        {
            auto probe = co_await session::connect(ex, one_contact_point(c));
            for (std::size_t i = 2; i <= 3; ++i) real.push_back(node_at(*probe.metadata(), fmt::format("{}:{}", c.address(i), port)));
            co_await probe.close(std::chrono::milliseconds(100));
        }
        auto rows = peers_table({{"10.0.0.2", real[0]->host_id, real[0]->tokens}, {"10.0.0.3", real[1]->host_id, real[1]->tokens}});
        c.prime({.query = "SELECT * FROM system.peers"}, rows);
        auto p = one_contact_point(c);
        std::size_t translated = 0;
        p.address_translator = [&](const asio::ip::tcp::endpoint& e) {
            ++translated;
            auto b = e.address().to_v4().to_bytes();
            return asio::ip::tcp::endpoint(asio::ip::make_address_v4(fmt::format("127.0.0.{}", b[3])), e.port());
        };
        auto s = co_await session::connect(ex, p);
        CHECK(translated >= 2);
        auto md = s.metadata();
        for (std::size_t i = 2; i <= 3; ++i) {
            auto n = node_at(*md, fmt::format("{}:{}", c.address(i), port));
            REQUIRE(n);
            CHECK(n->broadcast_rpc_address.to_string() == fmt::format("10.0.0.{}", i));
            CHECK(n->state() == node_state::up);
        }
        auto per_node = co_await spread(s, c, 6);
        CHECK(per_node.size() == 3);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: a partition's replicas are shuffled, unless asked not to") {
    sim::cluster c({.nodes = 3, .port = port,
                    .keyspaces = {{"ks", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "3"}}}}});
    const auto int_ = cql_type::of(type_kind::int_);
    c.prime({.query = "SELECT v FROM ks.t WHERE k = ?"},
            sim::prime_then{sim::rows({sim::column("v", int_)}).row(1), {}, {{"ks", "t", "k", int_}}, {0}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        for (const bool shuffle : {true, false}) {
            auto p = one_contact_point(c);
            p.shuffle_replicas = shuffle;
            auto s = co_await session::connect(ex, p);
            auto q = co_await s.prepare("SELECT v FROM ks.t WHERE k = ?");
            std::map<std::string, int> coordinators;
            for (int i = 0; i < 60; ++i) {
                auto r = co_await s.execute(q.bind(7));
                ++coordinators[r.coordinator()];
            }
            // Every node holds key 7 (RF 3 of 3): shuffled, all of them coordinate; in order, only the first.
            CHECK(coordinators.size() == (shuffle ? 3u : 1u));
            if (!shuffle) {
                const std::vector<std::uint8_t> key{0, 0, 0, 7};
                CHECK(coordinators.begin()->first == s.metadata()->replicas("ks", key).front()->endpoint);
            }
            co_await s.close(std::chrono::milliseconds(100));
        }
    });
}

TEST_CASE("cluster: a lightweight transaction goes to its replicas in ring order, never shuffled") {
    sim::cluster c({.nodes = 3, .port = port,
                    .keyspaces = {{"ks", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "3"}}}}});
    const auto int_ = cql_type::of(type_kind::int_);
    const std::string lwt = "UPDATE ks.t SET v = ? WHERE k = ? IF v = 0";
    c.prime({.query = lwt}, sim::prime_then{sim::rows({sim::column("[applied]", cql_type::of(type_kind::boolean))}).row(true), {},
                                            {{"ks", "t", "v", int_}, {"ks", "t", "k", int_}}, {1}});
    c.prime({.query = "SELECT v FROM ks.t WHERE k = ?"},
            sim::prime_then{sim::rows({sim::column("v", int_)}).row(1), {}, {{"ks", "t", "k", int_}}, {0}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, one_contact_point(c));  // shuffle_replicas on (the default)
        auto update = co_await s.prepare(lwt);
        auto read = co_await s.prepare("SELECT v FROM ks.t WHERE k = ?");
        std::map<std::string, int> lwt_coordinators, serial_coordinators, plain_coordinators;
        for (int i = 0; i < 60; ++i) {
            // Named locals: GCC 12 mishandles temporaries inside co_await expressions.
            auto a = co_await s.execute(update.bind(1, 7));
            ++lwt_coordinators[a.coordinator()];
            auto serial_read = read.bind(7).consistency(consistency::serial);
            auto b = co_await s.execute(std::move(serial_read));
            ++serial_coordinators[b.coordinator()];
            auto c2 = co_await s.execute(read.bind(7));
            ++plain_coordinators[c2.coordinator()];
        }
        const std::vector<std::uint8_t> key{0, 0, 0, 7};
        const auto first = s.metadata()->replicas("ks", key).front()->endpoint;
        REQUIRE(lwt_coordinators.size() == 1);
        CHECK(lwt_coordinators.begin()->first == first);
        REQUIRE(serial_coordinators.size() == 1);
        CHECK(serial_coordinators.begin()->first == first);
        CHECK(plain_coordinators.size() == 3);  // the plain read is still shuffled
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: readiness all_pools (the default) returns once every pool's first attempt has ended") {
    CHECK(session_params{}.ready_when == session_params::readiness::all_pools);
    sim::cluster c({.nodes = 3, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        // Learn the cluster, then take node 3 away: it is listed but refuses connections.
        c.stop(3);
        auto p = one_contact_point(c);
        p.connections_per_host = 2;
        auto s = co_await session::connect(ex, p);
        auto md = s.metadata();
        REQUIRE(md->nodes().size() == 3);
        for (std::size_t i = 1; i <= 2; ++i) {
            auto n = node_at(*md, fmt::format("{}:{}", c.address(i), port));
            REQUIRE(n);
            CHECK(n->state() == node_state::up);
            CHECK(n->open_connections() == 2);  // the whole pool, not just its first connection
        }
        CHECK(node_at(*md, fmt::format("{}:{}", c.address(3), port))->state() == node_state::down);
        c.start(3);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: readiness first_host returns while another node's handshake still hangs") {
    sim::cluster c({.nodes = 3, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        // Node 3 accepts connections but answers nothing: its pool's first attempt cannot end before
        // the connect timeout, which is far away.
        c.pause(3);
        auto p = one_contact_point(c);
        p.ready_when = session_params::readiness::first_host;
        p.connect_timeout = std::chrono::seconds(60);
        auto s = co_await session::connect(ex, p);
        auto md = s.metadata();
        REQUIRE(md->nodes().size() == 3);
        auto third = node_at(*md, fmt::format("{}:{}", c.address(3), port));
        REQUIRE(third);
        CHECK(third->state() != node_state::up);
        CHECK(third->open_connections() == 0);
        // Requests flow meanwhile, on the nodes that are up.
        for (int i = 0; i < 10; ++i) {
            auto r = co_await s.execute(statement("SELECT * FROM system.local"));
            CHECK(r.coordinator() != third->endpoint);
        }
        // Closing with the handshake still pending ends it; nothing hangs.
        co_await s.close(std::chrono::milliseconds(100));
        c.resume(3);
    });
}

TEST_CASE("cluster: a denied node gets no connections; with a local rack, its nodes take the requests first") {
    sim::cluster c({.nodes = 4, .racks = 2, .port = port});  // 1, 3: rack1; 2, 4: rack2
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = one_contact_point(c);
        p.deny_nodes.hosts = {c.address(4)};
        p.local_rack = "rack1";
        auto s = co_await session::connect(ex, p);
        auto md = s.metadata();
        auto n4 = node_at(*md, fmt::format("{}:{}", c.address(4), port));
        REQUIRE(n4);
        CHECK(n4->rack == "rack2");
        CHECK(n4->distance() == node_distance::ignored);
        CHECK(c.connection_count(4) == 0);
        // Without a routing key, the plan starts in rack1: nodes 1 and 3 share the requests.
        auto per_node = co_await spread(s, c, 8);
        CHECK(per_node[1] + per_node[3] == 8);
        CHECK(per_node[1] > 0);
        CHECK(per_node[3] > 0);
        // With rack1 gone, rack2's node 2 takes them; node 4 never does.
        auto n1 = node_at(*md, fmt::format("{}:{}", c.address(1), port)), n3 = node_at(*md, fmt::format("{}:{}", c.address(3), port));
        c.stop(1);
        c.stop(3);
        co_await cqlcoro::test::yield_until([&] { return n1->state() == node_state::down && n3->state() == node_state::down; }, 100'000'000);
        per_node = co_await spread(s, c, 4);
        CHECK(per_node[2] == 4);
        CHECK(per_node[4] == 0);
        c.start(1);
        c.start(3);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("cluster: a black-hole replica (requests outstanding, nothing read) goes to the back of the replicas") {
    sim::cluster c({.nodes = 3, .port = port, .tokens_per_node = 8,
                    .keyspaces = {{"ks", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "3"}}}}});
    const auto int_ = cql_type::of(type_kind::int_);
    c.prime({.query = "SELECT v FROM ks.t WHERE k = ?"},
            sim::prime_then{.answer = sim::one_int_row(), .markers = {{"ks", "t", "k", int_}}, .pk_indexes = {0}});
    c.prime({.query = "SELECT hang", .node = 1}, sim::prime_then{.answer = sim::hang{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = one_contact_point(c);
        p.health.black_hole = std::chrono::milliseconds(200);
        auto s = co_await session::connect(ex, p);
        auto read = co_await s.prepare("SELECT v FROM ks.t WHERE k = ?");
        const auto node1 = c.address(1) + ":" + std::to_string(c.port(1));
        auto led_by_node1 = [&]() -> asio::awaitable<int> {
            int led = 0;
            for (std::int32_t k = 0; k < 90; ++k) {
                auto r = co_await s.execute(read.bind(k));
                led += r.coordinator() == node1 ? 1 : 0;
            }
            co_return led;
        };
        // Healthy: each of the three replicas leads about a third of the plans.
        const auto before = co_await led_by_node1();
        CHECK(before > 10);
        // Node 1 swallows a request: it times out after 300 ms (an orphaned stream id), and node 1's
        // connection has read nothing since.
        auto [ec, r] = co_await s.execute(statement("SELECT hang").node_endpoint(node1).timeout(std::chrono::milliseconds(300)),
                                          asio::as_tuple(asio::use_awaitable));
        CHECK(ec == client_errc::request_timeout);
        const auto after = co_await led_by_node1();
        CHECK(after == 0);
        for (const auto& n : s.metrics().nodes)
            if (n.host == node1) CHECK(n.orphaned_streams == 1);
        co_await s.close();
    });
}

TEST_CASE("cluster: latency-aware order learns a slow node and a node that times out, and plans name them last") {
    sim::cluster c({.nodes = 3, .port = port});
    c.prime({.query = "SELECT v FROM sim.x"}, sim::prime_then{.answer = sim::one_int_row()});
    c.prime({.query = "SELECT v FROM sim.x", .node = 1}, sim::prime_then{.answer = sim::one_int_row(), .delay = std::chrono::milliseconds(150)});
    c.prime({.query = "SELECT v FROM sim.y"}, sim::prime_then{.answer = sim::one_int_row()});
    c.prime({.query = "SELECT v FROM sim.y", .node = 2}, sim::prime_then{.answer = sim::hang{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = one_contact_point(c);
        p.health.enabled = false;  // the latency-aware rule alone
        p.latency_aware_enabled = true;
        p.latency_aware.min_measured = 5;
        p.latency_aware.update_rate = std::chrono::milliseconds(1);
        // Ten times the fastest node: a sanitized build under load answers in a millisecond or a few,
        // a margin the slow node (150 ms) and the silent one (time-outs of 300 ms) clear.
        p.latency_aware.exclusion_threshold = 10;
        p.attempt_timeout = std::chrono::milliseconds(300);
        auto s = co_await session::connect(ex, p);
        const auto name = [&](std::size_t i) { return c.address(i) + ":" + std::to_string(c.port(i)); };
        auto answered_by = [&](const std::string& host) -> std::uint64_t {
            for (const auto& n : s.metrics().nodes)
                if (n.host == host) return n.latency.count;
            return 0;
        };
        // Learning: the rotation gives node 1 its share until it has five samples (150 ms each).
        int tries = 0;
        while (answered_by(name(1)) < 5 && ++tries < 200) {
            auto r = co_await s.execute(statement("SELECT v FROM sim.x"));
            CHECK(r.size() == 1);
        }
        REQUIRE(answered_by(name(1)) >= 5);
        int led_by_1 = 0;
        for (int i = 0; i < 30; ++i) {
            auto r = co_await s.execute(statement("SELECT v FROM sim.x"));
            led_by_1 += r.coordinator() == name(1) ? 1 : 0;
        }
        CHECK(led_by_1 == 0);
        // Node 2 swallows sim.y: a plan it leads loses the attempt timeout (300 ms) and goes on to the
        // next node. The policy learns from the time-outs (the DataStax drivers never do): after them,
        // thirty requests in a row succeed at once on node 3. Without it, node 2 would lead about one
        // plan in three, so such a streak would not happen.
        int timed_out = 0, streak = 0;
        for (int i = 0; i < 300 && streak < 30; ++i) {
            auto r = co_await s.execute(statement("SELECT v FROM sim.y").idempotent(true));
            int here = 0;
            for (const auto& a : r.diagnostics().attempts) here += a.ec == client_errc::request_timeout ? 1 : 0;
            timed_out += here;
            if (here > 0) streak = 0;
            else if (timed_out > 0) {
                ++streak;
                CHECK(r.coordinator() == name(3));  // node 1 is still the slow one, node 2 the silent one
            }
        }
        CHECK(timed_out >= 1);
        CHECK(streak == 30);
        co_await s.close(std::chrono::milliseconds(100));
    });
}
