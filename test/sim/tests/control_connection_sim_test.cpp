// The control connection on its own, without a session: a listener that records what it is told,
// against simulated nodes.
#include "sim.hpp"

#include "cluster/control_connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

#include <set>

using namespace cqlcoro;
using namespace cqlcoro::detail;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t port = 19112;

// Records every call; answers what a session would from what it was told.
struct recording_listener : control_listener {
    std::vector<cluster_topology> topologies;
    std::vector<std::map<std::string, keyspace_metadata>> schemas;
    std::vector<std::vector<std::pair<inet_address, std::string>>> statuses;
    std::size_t opened = 0;
    endpoint_list candidates;
    std::set<uuid> down;

    connection::connection_params control_params(const std::string& host, std::uint16_t p) const override {
        connection::connection_params c;
        c.host = host;
        c.port = p;
        c.heartbeat_interval = 0ms;
        c.events = {"TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"};
        return c;
    }
    void control_opened(const connection::connection&) override { ++opened; }
    void nodes_read(cluster_topology t) override { topologies.push_back(std::move(t)); }
    void schema_read(std::map<std::string, keyspace_metadata> k) override { schemas.push_back(std::move(k)); }
    std::map<std::string, keyspace_metadata> known_keyspaces() const override {
        return schemas.empty() ? std::map<std::string, keyspace_metadata>{} : schemas.back();
    }
    bool status_changed(const std::vector<std::pair<inet_address, std::string>>& c) override {
        statuses.push_back(c);
        return false;
    }
    endpoint_list reconnect_candidates() const override { return candidates; }
    bool is_down(const uuid& host_id) const override { return down.count(host_id) > 0; }
};

sim::cluster_config three_nodes() {
    return {.nodes = 3,
            .datacenters = {2, 1},
            .port = port,
            .keyspaces = {{"shop", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "2"}}}}};
}

session_params fast_params() {
    session_params p;
    p.port = port;
    p.event_window = 20ms;
    p.schema_agreement_interval = 10ms;
    p.reconnection = reconnection_policy::constant(10ms);
    return p;
}

// A control connection to `host`, open, with the nodes read.
asio::awaitable<std::shared_ptr<control_connection>> open_control(asio::any_io_executor ex, const session_params& params,
                                                                  recording_listener& l, std::string host) {
    auto cc = std::make_shared<control_connection>(asio::make_strand(ex), params, l);
    std::string failures;
    const endpoint_list first{{std::move(host), port}};
    const bool connected = co_await cc->connect(first, failures);
    REQUIRE(connected);
    auto read_nodes = co_await cc->refresh_nodes();
    REQUIRE(read_nodes.has_value());
    co_return cc;
}

}  // namespace

TEST_CASE("control connection: reads every node and the schema, and tells its listener") {
    sim::cluster c(three_nodes());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        recording_listener l;
        auto params = fast_params();
        auto cc = std::make_shared<control_connection>(asio::make_strand(ex), params, l);
        std::string failures;
        const endpoint_list first{{"127.0.0.9", port}, {c.address(2), port}};  // nothing on .9: the next one
        const bool connected = co_await cc->connect(first, failures);
        CHECK(connected);
        CHECK_THAT(failures, ContainsSubstring("127.0.0.9"));
        CHECK(cc->endpoint() == c.address(2) + ":" + std::to_string(port));
        CHECK(l.opened == 1);

        auto read_nodes = co_await cc->refresh_nodes();
        REQUIRE(read_nodes.has_value());
        REQUIRE(l.topologies.size() == 1);
        const auto& t = l.topologies[0];
        REQUIRE(t.nodes.size() == 3);
        CHECK(t.nodes[0]->address.to_string() == c.address(2));  // the control node first
        CHECK(t.cluster_name == "cqlcoro-sim");
        CHECK(t.partitioner == cluster::partitioner::murmur3);
        std::multiset<std::string> dcs;
        for (const auto& n : t.nodes) dcs.insert(n->datacenter);
        CHECK(dcs == std::multiset<std::string>{"dc1", "dc1", "dc2"});

        auto read_schema = co_await cc->refresh_schema();
        REQUIRE(read_schema.has_value());
        REQUIRE(l.schemas.size() == 1);
        REQUIRE(l.schemas[0].count("shop") == 1);
        CHECK(l.schemas[0].at("shop").replication.options.at("replication_factor") == "2");
        cc->stop();
    });
}

TEST_CASE("control connection: events arrive in one batch, the last word per node wins, and a schema change is read") {
    sim::cluster c(three_nodes());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        recording_listener l;
        auto params = fast_params();
        params.event_window = 200ms;  // the three status events below fall in one window
        auto cc = co_await open_control(ex, params, l, c.address(1));
        auto read_schema = co_await cc->refresh_schema();
        REQUIRE(read_schema.has_value());
        asio::co_spawn(ex, cc->run(), asio::detached);

        c.push_status_change(2, "DOWN");
        c.push_status_change(3, "DOWN");
        c.push_status_change(2, "UP");
        auto told = [&] { return fmt::format("{} status batches", l.statuses.size()); };
        co_await cqlcoro::test::yield_until([&] { return !l.statuses.empty(); }, told, 100'000'000);
        REQUIRE(l.statuses.size() == 1);
        REQUIRE(l.statuses[0].size() == 2);
        CHECK(l.statuses[0][0].second == "UP");    // node 2: DOWN, then UP
        CHECK(l.statuses[0][1].second == "DOWN");  // node 3

        protocol::schema_change created{"CREATED", "KEYSPACE", "shop", "", {}};
        c.push_schema_change(created);
        auto schemas = [&] { return fmt::format("{} schemas read", l.schemas.size()); };
        co_await cqlcoro::test::yield_until([&] { return l.schemas.size() == 2; }, schemas, 100'000'000);
        CHECK(l.schemas.back().count("shop") == 1);
        cc->stop();
    });
}

TEST_CASE("control connection: when its node goes, it moves to the listener's next candidate and reads everything again") {
    sim::cluster c(three_nodes());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        recording_listener l;
        auto params = fast_params();
        auto cc = co_await open_control(ex, params, l, c.address(1));
        auto read_schema = co_await cc->refresh_schema();
        REQUIRE(read_schema.has_value());
        l.candidates = {{c.address(1), port}, {c.address(3), port}};
        asio::co_spawn(ex, cc->run(), asio::detached);

        c.stop(1);
        auto reads = [&] { return fmt::format("{} node reads, {} schema reads, control node {}", l.topologies.size(), l.schemas.size(), cc->endpoint()); };
        co_await cqlcoro::test::yield_until([&] { return l.topologies.size() == 2 && l.schemas.size() == 2; }, reads, 100'000'000);
        CHECK(cc->endpoint() == c.address(3) + ":" + std::to_string(port));
        CHECK(l.opened == 2);
        CHECK(l.topologies.back().nodes.front()->address.to_string() == c.address(3));
        cc->stop();
    });
}

TEST_CASE("control connection: schema agreement waits for every node the listener does not call down") {
    sim::cluster c(three_nodes());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        recording_listener l;
        auto params = fast_params();
        auto cc = co_await open_control(ex, params, l, c.address(1));
        const bool agreed = co_await cc->wait_schema_agreement(1s);
        CHECK(agreed);

        uuid odd{};
        odd.data[0] = 9;
        c.set_schema_version(3, odd);
        const bool agreed_with_odd = co_await cc->wait_schema_agreement(100ms);
        CHECK_FALSE(agreed_with_odd);  // node 3 disagrees, and it counts
        const auto& nodes = l.topologies.back().nodes;
        auto third = std::find_if(nodes.begin(), nodes.end(), [&](const auto& n) { return n->address.to_string() == c.address(3); });
        REQUIRE(third != nodes.end());
        l.down.insert((*third)->host_id);
        const bool agreed_without_down = co_await cc->wait_schema_agreement(1s);
        CHECK(agreed_without_down);  // it is down: its version does not count
        cc->stop();
    });
}

TEST_CASE("control connection: a read without a connection is a failure that says so, and tells the listener nothing") {
    sim::cluster c(three_nodes());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        recording_listener l;
        auto params = fast_params();
        auto never = std::make_shared<control_connection>(asio::make_strand(ex), params, l);
        auto q = co_await never->query("SELECT * FROM system.local");
        REQUIRE_FALSE(q.has_value());
        CHECK(q.error().code == client_errc::connection_closed_unsent);
        CHECK_THAT(q.error().message(), ContainsSubstring("no control connection"));

        auto cc = co_await open_control(ex, params, l, c.address(1));
        const auto told = l.topologies.size();
        cc->stop();
        auto nodes = co_await cc->refresh_nodes();
        REQUIRE_FALSE(nodes.has_value());
        CHECK(nodes.error().code);
        auto schema = co_await cc->refresh_schema();
        CHECK_FALSE(schema.has_value());
        CHECK(l.topologies.size() == told);
        CHECK(l.schemas.empty());
        const bool agreed = co_await cc->wait_schema_agreement(1s);
        CHECK_FALSE(agreed);
    });
}
