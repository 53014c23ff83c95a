// The latency-aware wrapper without sockets: what it learns from (results, server errors, client
// time-outs; not broken connections), when a node counts as slow, where slow nodes go in a plan, and
// when a slow node is tried again.
#include <cqlcoro/error.hpp>
#include <cqlcoro/load_balancing.hpp>
#include <cqlcoro/server_error.hpp>

#include <catch2/catch_test_macros.hpp>

#include <stdexcept>

using namespace cqlcoro;
using namespace std::chrono_literals;

namespace {

// Six local nodes, no replicas: the child's plan is the rotation 0, 1, ..., 5.
plan_nodes six() {
    plan_nodes v;
    for (int i = 0; i < 6; ++i) {
        auto n = std::make_shared<node>();
        n->datacenter = "dc1";
        n->endpoint = "10.0.0." + std::to_string(i + 1) + ":9042";
        v.nodes.push_back(std::move(n));
        v.local.push_back(static_cast<std::uint32_t>(i));
    }
    return v;
}

std::vector<std::uint32_t> plan_of(const load_balancing_policy& p, const plan_nodes& v) {
    query_plan plan;
    p.start(v, plan);
    std::vector<std::uint32_t> out;
    for (auto i = p.next(v, plan); i != query_plan::end; i = p.next(v, plan)) out.push_back(i);
    return out;
}

std::shared_ptr<const load_balancing_policy> child() {
    default_policy_options o;
    o.health.enabled = false;
    return std::make_shared<default_load_balancing_policy>(o);
}

void teach(const latency_aware_policy& p, const node& n, std::chrono::nanoseconds latency, std::size_t times,
           boost::system::error_code ec = {}) {
    for (std::size_t i = 0; i < times; ++i) p.on_attempt(n, latency, ec);
}

}  // namespace

TEST_CASE("latency aware: nothing moves until nodes have min_measured samples; then a node twice as slow goes last") {
    const auto v = six();
    latency_aware_options o;
    o.min_measured = 5;
    o.update_rate = 1ms;
    const latency_aware_policy p(child(), o);
    CHECK(plan_of(p, v) == std::vector<std::uint32_t>{0, 1, 2, 3, 4, 5});
    // Four samples each: not enough to count.
    for (int i = 0; i < 6; ++i) teach(p, *v.nodes[i], i == 1 ? 20ms : 1ms, 4);
    CHECK(p.average(*v.nodes[1]).average_ns < 0);
    CHECK(plan_of(p, v) == std::vector<std::uint32_t>{0, 1, 2, 3, 4, 5});
    // The fifth: node 1 averages 20 ms, the others 1 ms.
    for (int i = 0; i < 6; ++i) teach(p, *v.nodes[i], i == 1 ? 20ms : 1ms, 1);
    CHECK(p.average(*v.nodes[1]).average_ns == std::chrono::nanoseconds(20ms).count());
    CHECK(p.average(*v.nodes[1]).measured == 5);
    // A new fastest average counts at once (a slower one at the next refresh, every update_rate).
    CHECK(plan_of(p, v) == std::vector<std::uint32_t>{0, 2, 3, 4, 5, 1});
    CHECK(p.average(*v.nodes[1]).excluded);
    CHECK_FALSE(p.average(*v.nodes[0]).excluded);
    // Not more than the threshold above the fastest: stays in place.
    const latency_aware_policy q(child(), latency_aware_options{.exclusion_threshold = 30.0, .min_measured = 5});
    for (int i = 0; i < 6; ++i) teach(q, *v.nodes[i], i == 1 ? 20ms : 1ms, 5);
    CHECK(plan_of(q, v) == std::vector<std::uint32_t>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("latency aware: it learns from server errors and client time-outs, not from broken connections") {
    const auto v = six();
    const latency_aware_policy p(child(), latency_aware_options{.min_measured = 3});
    for (int i : {0, 1, 3, 5}) teach(p, *v.nodes[i], 1ms, 3);
    // Node 2 times out (the attempt timeout of 500 ms): what other drivers never learn from.
    teach(p, *v.nodes[2], 500ms, 3, make_error_code(client_errc::request_timeout));
    // Node 3's connections break: no latency to learn.
    teach(p, *v.nodes[3], 800ms, 10, make_error_code(client_errc::connection_closed_sent));
    teach(p, *v.nodes[3], 900ms, 10, make_error_code(client_errc::heartbeat_timeout));
    // Node 4 answers with server errors, slowly: it learns that too.
    teach(p, *v.nodes[4], 400ms, 3, make_error_code(server_errc::read_timeout));
    CHECK(p.average(*v.nodes[2]).excluded);
    CHECK_FALSE(p.average(*v.nodes[3]).excluded);
    CHECK(p.average(*v.nodes[3]).measured == 3);
    CHECK(p.average(*v.nodes[4]).excluded);
    CHECK(plan_of(p, v) == std::vector<std::uint32_t>{0, 1, 3, 5, 2, 4});
}

TEST_CASE("latency aware: at most four nodes per plan go last; the wrapped policy decides distance and order") {
    auto v = six();
    const latency_aware_policy p(child(), latency_aware_options{.min_measured = 1});
    teach(p, *v.nodes[0], 1ms, 1);
    for (int i = 1; i < 6; ++i) teach(p, *v.nodes[i], 50ms, 1);
    // Five slow nodes: four are passed over (in their order), the fifth keeps its place.
    CHECK(plan_of(p, v) == std::vector<std::uint32_t>{0, 5, 1, 2, 3, 4});
    auto remote = std::make_shared<node>();
    remote->datacenter = "dc2";
    CHECK(p.distance(*v.nodes[0], "dc1", 0) == node_distance::local);
    CHECK(p.distance(*remote, "dc1", 0) == node_distance::ignored);  // the child's remote_hosts_per_dc is 0
    CHECK_THROWS_AS(latency_aware_policy(nullptr), std::invalid_argument);
    CHECK_THROWS_AS(latency_aware_policy(child(), latency_aware_options{.exclusion_threshold = 0.5}), std::invalid_argument);
    CHECK_THROWS_AS(latency_aware_policy(child(), latency_aware_options{.scale = 0ms}), std::invalid_argument);
}

TEST_CASE("latency aware: a slow node is tried again after retry_period without a sample, and learns anew") {
    const auto v = six();
    const latency_aware_policy p(child(), latency_aware_options{.scale = 100ms, .retry_period = 5ms, .update_rate = 1ms, .min_measured = 1});
    for (int i = 0; i < 6; ++i) teach(p, *v.nodes[i], i == 0 ? 30ms : 1ms, 1);
    CHECK(plan_of(p, v).back() == 0);
    // No sample from node 0 for retry_period: it leads again (the time is waited out on the clock).
    const auto until = std::chrono::steady_clock::now() + 6ms;
    while (std::chrono::steady_clock::now() < until) {
    }
    CHECK_FALSE(p.average(*v.nodes[0]).excluded);
    CHECK(plan_of(p, v).front() == 0);
    // A fast answer after the pause (about 0.06 scale units) moves the average a little (the old one
    // keeps ln(1.06)/0.06 of its weight, about 97%).
    CHECK(p.average(*v.nodes[0]).average_ns == std::chrono::nanoseconds(30ms).count());
    teach(p, *v.nodes[0], 1ms, 1);
    CHECK(p.average(*v.nodes[0]).average_ns < std::chrono::nanoseconds(30ms).count());
    // Samples in quick succession move the average little: it is an average over time, not over samples.
    const latency_aware_policy q(child(), latency_aware_options{.scale = 100ms, .min_measured = 1});
    teach(q, *v.nodes[0], 10ms, 1);
    teach(q, *v.nodes[0], 1000ms, 1);
    CHECK(q.average(*v.nodes[0]).average_ns < std::chrono::nanoseconds(20ms).count());
}
