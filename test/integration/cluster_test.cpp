// The session against a real three-node Cassandra 2.1 cluster in two datacenters (dc1: two nodes, dc2:
// one), started by scripts/test: discovery from one contact point, token-aware routing checked against
// the server's own tokens, a node killed under load (reads retried, non-idempotent writes honest about
// their outcome) and restarted, DDL and schema agreement, and
// UNPREPARED after a restart. CQLCORO_TEST_MULTI_HOSTS names the nodes, CQLCORO_TEST_MULTI_DIR the
// harness's cluster directory.
#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <sstream>

using namespace cqlcoro;
namespace asio = boost::asio;
using cqlcoro::test::yield_until;

namespace {

std::vector<std::string> multi_hosts() {
    const char* h = std::getenv("CQLCORO_TEST_MULTI_HOSTS");
    if (!h || !*h) throw std::runtime_error("CQLCORO_TEST_MULTI_HOSTS is not set: run the suite through scripts/test");
    std::vector<std::string> out;
    std::stringstream in(h);
    for (std::string s; std::getline(in, s, ',');) out.push_back(s);
    if (out.size() != 3) throw std::runtime_error("the cluster tests need three nodes");
    return out;
}

void harness(const std::string& what, int node) {
    const char* tool = std::getenv("CQLCORO_TEST_CLUSTER");
    const char* dir = std::getenv("CQLCORO_TEST_MULTI_DIR");
    if (!tool || !dir) throw std::runtime_error("CQLCORO_TEST_CLUSTER / CQLCORO_TEST_MULTI_DIR are not set: run the suite through scripts/test");
    const auto cmd = fmt::format("CQLCORO_CLUSTER_DIR={} {} {} {}", dir, tool, what, node);
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error(cmd + " failed");
}

session_params params() {
    session_params p;
    p.contact_points = {multi_hosts()[0]};
    p.local_datacenter = "dc1";
    p.reconnection = reconnection_policy::constant(std::chrono::milliseconds(250));
    p.event_window = std::chrono::milliseconds(100);
    p.schema_agreement_timeout = std::chrono::seconds(60);  // generous for a loaded machine; still bounded
    return p;
}

std::shared_ptr<const node> by_address(const cluster_metadata& md, const std::string& address) {
    for (const auto& n : md.nodes())
        if (n->address.to_string() == address) return n;
    return nullptr;
}

// The dc1 node owning `token`: the first dc1 token at or after it, wrapping (NTS with dc1 = 1).
std::string dc1_owner(const cluster_metadata& md, std::int64_t token) {
    std::string best, lowest;
    std::int64_t best_token = 0, lowest_token = 0;
    for (const auto& n : md.nodes()) {
        if (n->datacenter != "dc1") continue;
        for (const auto& text : n->tokens) {
            const auto t = std::stoll(text);
            if (t >= token && (best.empty() || t < best_token)) best = n->endpoint, best_token = t;
            if (lowest.empty() || t < lowest_token) lowest = n->endpoint, lowest_token = t;
        }
    }
    return best.empty() ? lowest : best;
}

std::vector<std::uint8_t> int_key(std::int32_t k) {
    return {static_cast<std::uint8_t>(k >> 24), static_cast<std::uint8_t>(k >> 16), static_cast<std::uint8_t>(k >> 8), static_cast<std::uint8_t>(k)};
}

// The tests' own schema. Each statement is followed by a check that every up node has it: "IF NOT
// EXISTS" on a coordinator that already has the element changes nothing and so waits for nothing, yet
// another node may still lack it (2.1 pushes a change only to the nodes gossip thinks alive, and the
// others pull it later).
asio::awaitable<void> ddl(session& s, const char* cql) {
    co_await s.execute(statement(cql));
    const bool agreed = co_await s.check_schema_agreement(std::chrono::seconds(120));
    if (!agreed) throw std::runtime_error(fmt::format("the nodes did not agree on the schema within 120 s after: {}", cql));
}

asio::awaitable<void> schema(session& s) {
    co_await ddl(s, "CREATE KEYSPACE IF NOT EXISTS cqlcoro_cluster WITH replication = "
                    "{'class': 'NetworkTopologyStrategy', 'dc1': 1, 'dc2': 1}");
    co_await ddl(s, "CREATE TABLE IF NOT EXISTS cqlcoro_cluster.kv (k int PRIMARY KEY, v int)");
    co_await ddl(s, "CREATE TABLE IF NOT EXISTS cqlcoro_cluster.appends (k int PRIMARY KEY, l list<int>)");
}

}  // namespace

TEST_CASE("real cluster: one contact point discovers three nodes in two datacenters, with schema") {
    const auto hosts = multi_hosts();
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        co_await schema(s);
        auto md = s.metadata();
        REQUIRE(md->nodes().size() == 3);
        for (std::size_t i = 0; i < 3; ++i) {
            auto n = by_address(*md, hosts[i]);
            REQUIRE(n);
            CHECK(n->datacenter == (i < 2 ? "dc1" : "dc2"));
            CHECK(n->release_version == "2.1.0");
            CHECK(n->tokens.size() == 16);
            CHECK(n->distance() == (i < 2 ? node_distance::local : node_distance::ignored));
            CHECK(n->state() == (i < 2 ? node_state::up : node_state::unknown));
        }
        const auto* ks = md->keyspace("cqlcoro_cluster");
        REQUIRE(ks);
        CHECK(ks->replication.strategy_class == "org.apache.cassandra.locator.NetworkTopologyStrategy");
        CHECK(ks->replication.options.at("dc1") == "1");
        const auto& kv = ks->tables.at("kv");
        CHECK(kv.partition_key == std::vector<std::string>{"k"});
        REQUIRE(kv.column("v"));
        CHECK(kv.column("v")->type_text == "int");
        CHECK(md->keyspace("system"));  // Cassandra 2.1's system.schema_* tables were read
        co_await s.close();
    });
}

TEST_CASE("real cluster: token-aware routing sends every key to its dc1 replica, as the server computes the token") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        co_await schema(s);
        auto insert = co_await s.prepare("INSERT INTO cqlcoro_cluster.kv (k, v) VALUES (?, ?)");
        auto token = co_await s.prepare("SELECT token(k) FROM cqlcoro_cluster.kv WHERE k = ?");
        auto md = s.metadata();
        std::map<std::string, int> per_node;
        std::map<std::int32_t, std::string> written_through;
        for (std::int32_t k = 0; k < 100; ++k) {
            auto w = co_await s.execute(insert.bind(k, k));
            written_through[k] = w.coordinator();
        }
        for (std::int32_t k = 0; k < 100; ++k) {
            // The server's own token for the key, and the dc1 node that owns it on the ring it reports.
            auto t = co_await s.execute(token.bind(k));
            // An answer to this SELECT is a rows result with one column, whatever the data: anything
            // else would be another request's answer.
            REQUIRE(t.page().has_value());
            REQUIRE(t.columns().size() == 1);
            if (t.empty()) {
                // Not yet visible at LOCAL_ONE (a loaded 2.1 node): every replica is asked once.
                WARN(fmt::format("key {} written through {} was not visible at LOCAL_ONE through {}; read again at ALL", k,
                                 written_through[k], t.coordinator()));
                t = co_await s.execute(token.bind(k).consistency(consistency::all));
            }
            REQUIRE(t.size() == 1);
            const auto server_token = t.one().get<std::int64_t>(0);
            const auto key = int_key(k);
            CHECK(md->token_of(key) == std::to_string(server_token));
            const auto owner = dc1_owner(*md, server_token);
            CHECK(written_through[k] == owner);
            CHECK(t.coordinator() == owner);
            auto replicas = md->replicas("cqlcoro_cluster", key);
            REQUIRE(replicas.size() == 2);  // dc1's and dc2's
            CHECK(replicas[0]->endpoint != replicas[1]->endpoint);
            CHECK((replicas[0]->datacenter == "dc1" ? replicas[0] : replicas[1])->endpoint == owner);
            ++per_node[written_through[k]];
        }
        CHECK(per_node.size() == 2);  // both dc1 nodes own keys; dc2 is never a coordinator
        co_await s.close();
    });
}

TEST_CASE("real cluster: DDL waits for schema agreement and the new table is in the metadata at once") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        co_await schema(s);
        const auto name = fmt::format("t{}", std::chrono::steady_clock::now().time_since_epoch().count() % 1000000000);
        auto r = co_await s.execute(statement(fmt::format(
            "CREATE TABLE cqlcoro_cluster.{} (a int, b text, c bigint, s int static, d list<int>, PRIMARY KEY ((a, b), c)) "
            "WITH CLUSTERING ORDER BY (c DESC)", name)));
        REQUIRE(r.schema_change());
        REQUIRE(r.schema_in_agreement());
        CHECK(*r.schema_in_agreement());
        const bool agreed = co_await s.check_schema_agreement();
        CHECK(agreed);
        const auto* ks = s.metadata()->keyspace("cqlcoro_cluster");
        REQUIRE(ks);
        REQUIRE(ks->tables.count(name));
        const auto& t = ks->tables.at(name);
        CHECK(t.partition_key == std::vector<std::string>{"a", "b"});
        CHECK(t.clustering == std::vector<std::string>{"c"});
        REQUIRE(t.column("c"));
        CHECK(t.column("c")->descending);
        CHECK(t.column("d")->type_text == "list<int>");
        CHECK(t.column("s")->kind == column_kind::static_);
        co_await s.execute(statement(fmt::format("DROP TABLE cqlcoro_cluster.{}", name)));
        CHECK_FALSE(s.metadata()->keyspace("cqlcoro_cluster")->tables.count(name));
        co_await s.close();
    });
}

TEST_CASE("real cluster: a node killed under load is down at once; restarted, it is back and UNPREPARED is handled") {
    const auto hosts = multi_hosts();
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params();
        p.reprepare_on_up = false;  // so the restarted node answers UNPREPARED, which the session must handle
        std::vector<std::string> events;
        p.on_node_event = [&](const node_event& e) { events.push_back(fmt::format("{} {}", to_string(e.kind), e.about->address.to_string())); };
        auto s = co_await session::connect(ex, p);
        co_await schema(s);
        auto insert = co_await s.prepare("INSERT INTO cqlcoro_cluster.kv (k, v) VALUES (?, ?)");
        for (std::int32_t k = 0; k < 100; ++k) co_await s.execute(insert.bind(k, k));
        auto read = co_await s.prepare("SELECT v FROM cqlcoro_cluster.kv WHERE k = ?");
        auto md = s.metadata();
        auto victim = by_address(*md, hosts[1]);
        REQUIRE(victim);
        // Load: a few workers reading in a loop; no request may be lost, and none may hang.
        // Errors of the server (the coordinator's own view of the dead replica: unavailable, read
        // timeouts) are the cluster's; the driver's own failures are counted apart.
        bool stop = false;
        std::size_t done = 0, failed = 0, running = 0;
        auto worker = [&](std::int32_t first) -> asio::awaitable<void> {
            ++running;
            for (std::int32_t k = first; !stop; k = (k + 1) % 100) {
                auto [ec, r] = co_await s.execute(read.bind(k).consistency(consistency::one), asio::as_tuple(asio::use_awaitable));
                ++done;
                if (ec && ec.category() != server_category()) ++failed;  // written as the node died: connection_closed_sent
            }
            --running;
        };
        for (std::int32_t w = 0; w < 4; ++w) asio::co_spawn(ex, worker(w * 25), asio::detached);
        // Beside them, non-idempotent writes (list appends: running one twice appends twice). A ledger
        // keeps every outcome: each completes once, and a failure says honestly what may have happened.
        auto append = co_await s.prepare("UPDATE cqlcoro_cluster.appends SET l = l + ? WHERE k = ?");
        std::map<request_outcome, std::size_t> write_failures;
        std::size_t writes_done = 0, writes_ok = 0, writes_retried = 0, dishonest = 0;
        auto writer = [&](std::int32_t first) -> asio::awaitable<void> {
            ++running;
            for (std::int32_t k = first; !stop; k = (k + 1) % 100) {
                const std::vector<std::int32_t> element(1, k);  // named: GCC 12 and braced lists in co_await
                auto bound = append.bind(element, k);
                auto [ec, r] = co_await s.execute(std::move(bound), asio::as_tuple(asio::use_awaitable));
                ++writes_done;
                const auto& d = r.diagnostics();
                writes_retried += d.retries;  // a non-idempotent write that reached a node is never retried
                if (!ec) {
                    ++writes_ok;
                    continue;
                }
                ++write_failures[d.outcome];
                // Lost after the write: maybe applied, never a plain "failed" or "timed out".
                if (ec == client_errc::connection_closed_sent && d.outcome != request_outcome::maybe_applied) ++dishonest;
                if (ec == client_errc::connection_closed_unsent && d.outcome != request_outcome::not_sent) ++dishonest;
            }
            --running;
        };
        for (std::int32_t w = 0; w < 2; ++w) asio::co_spawn(ex, writer(w * 50), asio::detached);
        co_await yield_until([&] { return done > 200; }, 100'000'000);
        const auto killed_at = std::chrono::steady_clock::now();
        harness("kill", 2);
        co_await yield_until([&] { return victim->state() == node_state::down; }, 100'000'000);
        const auto noticed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
        CHECK(noticed < std::chrono::seconds(5));  // the reset, not gossip's 20 s
        WARN(fmt::format("node 2 marked down {} ms after kill -9", noticed.count()));
        const auto failed_at_kill = failed;
        auto sent_to_victim = [&] {
            for (const auto& m : s.metrics())
                if (m.host == victim->endpoint) return m.requests_sent;
            return std::uint64_t{0};
        };
        const auto before = sent_to_victim();
        const auto done_before = done;
        co_await yield_until([&] { return done > done_before + 400; }, 100'000'000);
        CHECK(failed == failed_at_kill);        // after the mark, no request fails in the driver
        CHECK(sent_to_victim() == before);      // and nothing goes to the dead node
        // Reads in flight on the killed node were retried on the other one: idempotent, none failed.
        CHECK(failed == 0);
        WARN(fmt::format("retries after connections lost at the kill: {}, not-sent moves: {}", s.retry_metrics().retries_connection_lost,
                         s.retry_metrics().not_sent_moves));
        stop = true;
        co_await yield_until([&] { return running == 0; }, 100'000'000);
        WARN(fmt::format("non-idempotent appends: {} done, {} ok, failed as maybe applied {}, not sent {}, rejected {}, failed {}", writes_done,
                         writes_ok, write_failures[request_outcome::maybe_applied], write_failures[request_outcome::not_sent],
                         write_failures[request_outcome::rejected], write_failures[request_outcome::failed]));
        CHECK(writes_done > 0);
        CHECK(writes_retried == 0);
        CHECK(dishonest == 0);
        CHECK(write_failures[request_outcome::failed] == 0);  // a write's failure is never "nothing happened" unless it was not sent or rejected

        harness("restart", 2);  // returns once the node serves CQL
        const auto restarted_at = std::chrono::steady_clock::now();
        co_await yield_until([&] { return s.metadata()->nodes().size() == 3 && by_address(*s.metadata(), hosts[1])->state() == node_state::up; },
                             1'000'000'000);
        const auto back = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - restarted_at);
        WARN(fmt::format("node 2 back up {} ms after its restart", back.count()));
        CHECK(back < std::chrono::seconds(5));
        CHECK(std::count(events.begin(), events.end(), "down " + hosts[1]) == 1);
        CHECK(std::count(events.begin(), events.end(), "up " + hosts[1]) >= 1);
        // The restarted node has forgotten the prepared statement: its keys get UNPREPARED, re-prepared
        // and sent again without the application seeing an error.
        int on_victim = 0;
        // (Rows written just before a kill -9 may be gone from that node: only success is checked.)
        for (std::int32_t k = 0; k < 100; ++k) {
            auto r = co_await s.execute(read.bind(k));
            on_victim += r.coordinator() == victim->endpoint;
        }
        CHECK(on_victim > 0);
        co_await s.close();
    });
}
