// The default load balancing policy without sockets: distances, the plan's order, laziness, and
// lightweight transactions kept in ring order.
#include <cqlcoro/load_balancing.hpp>

#include <catch2/catch_test_macros.hpp>

#include <set>

using namespace cqlcoro;

namespace {

// Five nodes: 0-2 local, 3-4 remote.
plan_nodes five() {
    plan_nodes v;
    for (int i = 0; i < 5; ++i) {
        auto n = std::make_shared<node>();
        n->datacenter = i < 3 ? "dc1" : "dc2";
        n->endpoint = "10.0.0." + std::to_string(i + 1) + ":9042";
        v.nodes.push_back(std::move(n));
    }
    v.local = {0, 1, 2};
    v.remote = {3, 4};
    return v;
}

std::vector<std::uint32_t> walk(const load_balancing_policy& p, const plan_nodes& v, query_plan& plan) {
    std::vector<std::uint32_t> out;
    for (auto i = p.next(v, plan); i != query_plan::end; i = p.next(v, plan)) out.push_back(i);
    return out;
}

}  // namespace

TEST_CASE("load balancing: local nodes are local; remote_hosts_per_dc of each other datacenter are remote, the rest ignored") {
    default_load_balancing_policy p(1);
    node local, far;
    local.datacenter = "dc1";
    far.datacenter = "dc2";
    CHECK(p.distance(local, "dc1", 0) == node_distance::local);
    CHECK(p.distance(far, "dc1", 0) == node_distance::remote);
    CHECK(p.distance(far, "dc1", 1) == node_distance::ignored);
    CHECK(default_load_balancing_policy(0).distance(far, "dc1", 0) == node_distance::ignored);
}

TEST_CASE("load balancing: replicas first, then the other local nodes from the rotation, then remote; each node once") {
    const auto v = five();
    default_load_balancing_policy p(1, false);
    query_plan plan;
    plan.replicas = {2, 1};
    plan.rotation = 1;
    p.start(v, plan);
    CHECK(walk(p, v, plan) == std::vector<std::uint32_t>{2, 1, 0, 4, 3});  // local from 1: 1 (a replica), 2 (one), 0
    CHECK(p.next(v, plan) == query_plan::end);  // stays ended
}

TEST_CASE("load balancing: without replicas the local nodes rotate per request") {
    const auto v = five();
    default_load_balancing_policy p;
    std::set<std::uint32_t> firsts;
    for (std::size_t r = 0; r < 3; ++r) {
        query_plan plan;
        plan.rotation = r;
        p.start(v, plan);
        const auto got = walk(p, v, plan);
        CHECK(got.size() == 5);
        CHECK(std::set<std::uint32_t>(got.begin(), got.end()).size() == 5);
        firsts.insert(got.front());
    }
    CHECK(firsts == std::set<std::uint32_t>{0, 1, 2});
}

TEST_CASE("load balancing: replicas are shuffled, but a lightweight transaction keeps the ring order") {
    const auto v = five();
    default_load_balancing_policy p;
    std::set<std::uint32_t> firsts;
    for (int i = 0; i < 200; ++i) {
        query_plan plan;
        plan.replicas = {0, 1, 2};
        p.start(v, plan);
        firsts.insert(p.next(v, plan));
    }
    CHECK(firsts.size() == 3);  // every replica leads some plans
    for (int i = 0; i < 50; ++i) {
        query_plan plan;
        plan.replicas = {2, 0, 1};
        plan.lwt = true;
        p.start(v, plan);
        CHECK(walk(p, v, plan) == std::vector<std::uint32_t>{2, 0, 1, 3, 4});  // the replicas in ring order, then remote
    }
}

TEST_CASE("load balancing: the plan is lazy; asking for one node computes nothing more") {
    const auto v = five();
    default_load_balancing_policy p;
    query_plan plan;
    plan.replicas = {1};
    p.start(v, plan);
    CHECK(p.next(v, plan) == 1);
    CHECK(plan.stage == 0);  // still among the replicas: the rest of the plan was never walked
    CHECK(plan.pos == 1);
}
