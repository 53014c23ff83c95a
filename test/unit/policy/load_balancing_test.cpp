// The default load balancing policy without sockets: distances, the plan's order, laziness, and
// lightweight transactions kept in ring order.
#include <cqlcoro/load_balancing.hpp>

#include <catch2/catch_test_macros.hpp>

#include <array>
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

namespace {

// Six local nodes in two racks (even: rack1, odd: rack2) and four remote in dc2 and dc3.
plan_nodes racks_and_dcs() {
    plan_nodes v;
    for (int i = 0; i < 10; ++i) {
        auto n = std::make_shared<node>();
        n->datacenter = i < 6 ? "dc1" : i < 8 ? "dc2" : "dc3";
        n->rack = i % 2 == 0 ? "rack1" : "rack2";
        n->endpoint = "10.0.0." + std::to_string(i + 1) + ":9042";
        n->address = boost::asio::ip::make_address("10.0.0." + std::to_string(i + 1));
        v.nodes.push_back(std::move(n));
        (i < 6 ? v.local : v.remote).push_back(static_cast<std::uint32_t>(i));
    }
    return v;
}

bool rack1(const plan_nodes& v, std::uint32_t i) { return v.nodes[i]->rack == "rack1"; }

}  // namespace

TEST_CASE("load balancing: with a local rack, its replicas lead the replicas and its nodes lead the other local nodes") {
    const auto v = racks_and_dcs();
    default_load_balancing_policy p({.remote_hosts_per_dc = 2, .local_rack = "rack1"});
    for (std::size_t rotation = 0; rotation < 6; ++rotation) {
        query_plan plan;
        plan.replicas = {1, 2, 3, 4};  // rack2, rack1, rack2, rack1
        plan.rotation = rotation;
        p.start(v, plan);
        const auto order = walk(p, v, plan);
        REQUIRE(order.size() == 10);
        // Replicas: rack1's (2, 4) before rack2's (1, 3), each pair in either order (shuffled).
        CHECK(rack1(v, order[0]));
        CHECK(rack1(v, order[1]));
        CHECK_FALSE(rack1(v, order[2]));
        CHECK_FALSE(rack1(v, order[3]));
        CHECK(std::set<std::uint32_t>(order.begin(), order.begin() + 4) == std::set<std::uint32_t>{1, 2, 3, 4});
        // The other local nodes: 0 (rack1) before 5 (rack2), whatever the rotation; then the remote ones.
        CHECK(order[4] == 0);
        CHECK(order[5] == 5);
        CHECK(std::set<std::uint32_t>(order.begin() + 6, order.end()) == std::set<std::uint32_t>{6, 7, 8, 9});
    }
    // A lightweight transaction keeps the ring order, racks or not.
    query_plan lwt;
    lwt.replicas = {1, 2, 3};
    lwt.lwt = true;
    p.start(v, lwt);
    CHECK(walk(p, v, lwt) == std::vector<std::uint32_t>{1, 2, 3, 0, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("load balancing: preferred remote datacenters come first, in their order; LOCAL_* requests stay local unless allowed") {
    const auto v = racks_and_dcs();
    default_load_balancing_policy p({.remote_hosts_per_dc = 2, .shuffle_replicas = false, .preferred_remote_dcs = {"dc3"}});
    query_plan plan;
    p.start(v, plan);
    auto order = walk(p, v, plan);
    REQUIRE(order.size() == 10);
    CHECK(std::set<std::uint32_t>(order.begin() + 6, order.begin() + 8) == std::set<std::uint32_t>{8, 9});  // dc3 first
    CHECK(std::set<std::uint32_t>(order.begin() + 8, order.end()) == std::set<std::uint32_t>{6, 7});
    query_plan local;
    local.local_consistency = true;
    p.start(v, local);
    CHECK(walk(p, v, local).size() == 6);  // the local datacenter only
    default_load_balancing_policy allowed({.remote_hosts_per_dc = 2, .allow_remote_for_local_consistency = true});
    query_plan again;
    again.local_consistency = true;
    allowed.start(v, again);
    CHECK(walk(allowed, v, again).size() == 10);
}

TEST_CASE("load balancing: allow and deny filters by host, datacenter and rack make a node ignored") {
    const auto v = racks_and_dcs();
    auto distance = [&](const default_load_balancing_policy& p, std::size_t i) { return p.distance(*v.nodes[i], "dc1", 0); };
    default_load_balancing_policy deny_host({.deny = {.hosts = {"10.0.0.1"}}});
    CHECK(distance(deny_host, 0) == node_distance::ignored);
    CHECK(distance(deny_host, 1) == node_distance::local);
    default_load_balancing_policy deny_endpoint({.deny = {.hosts = {"10.0.0.2:9042"}}});
    CHECK(distance(deny_endpoint, 1) == node_distance::ignored);
    default_load_balancing_policy deny_rack({.deny = {.racks = {"rack2"}}});
    CHECK(distance(deny_rack, 0) == node_distance::local);
    CHECK(distance(deny_rack, 1) == node_distance::ignored);
    default_load_balancing_policy allow_dc({.remote_hosts_per_dc = 5, .allow = {.datacenters = {"dc1", "dc3"}}});
    CHECK(distance(allow_dc, 0) == node_distance::local);
    CHECK(distance(allow_dc, 6) == node_distance::ignored);  // dc2: not allowed
    CHECK(distance(allow_dc, 8) == node_distance::remote);
    default_load_balancing_policy both({.allow = {.racks = {"rack1"}}, .deny = {.hosts = {"10.0.0.3"}}});
    CHECK(distance(both, 0) == node_distance::local);
    CHECK(distance(both, 2) == node_distance::ignored);  // allowed by rack, denied by host: deny wins
    CHECK(distance(both, 1) == node_distance::ignored);
}

namespace {

// Loads the health tests set per node, read by plan_nodes::load.
std::array<node_load, 5> test_loads;
node_load test_load(const plan_nodes&, std::uint32_t i) { return test_loads[i]; }

std::vector<std::uint32_t> replicas_of(const default_load_balancing_policy& p, const plan_nodes& v, std::vector<std::uint32_t> r) {
    query_plan plan;
    plan.replicas.assign(r.begin(), r.end());
    p.start(v, plan);
    return {plan.replicas.begin(), plan.replicas.end()};
}

}  // namespace

TEST_CASE("load balancing: health orders the replicas: power of two choices, busy and silent or black-hole nodes last") {
    auto v = five();
    v.local = {0, 1, 2, 3, 4};
    v.remote.clear();
    v.load = &test_load;
    default_policy_options o;
    o.shuffle_replicas = false;
    const default_load_balancing_policy p(o);
    using namespace std::chrono_literals;
    test_loads = {};
    // All healthy and idle: the ring order stays.
    CHECK(replicas_of(p, v, {0, 1, 2}) == std::vector<std::uint32_t>{0, 1, 2});
    // Power of two choices: the first two swap when the first is more loaded.
    test_loads[0].in_flight = 5;
    test_loads[1].in_flight = 2;
    CHECK(replicas_of(p, v, {0, 1, 2}) == std::vector<std::uint32_t>{1, 0, 2});
    // Busy (10 in flight) and silent for 200 ms: to the back.
    test_loads = {};
    test_loads[0] = {.in_flight = 10, .silent_for = 250ms};
    CHECK(replicas_of(p, v, {0, 1, 2}) == std::vector<std::uint32_t>{1, 2, 0});
    // Busy but reading: healthy (only the power of two choices moves it).
    test_loads[0].silent_for = 50ms;
    CHECK(replicas_of(p, v, {0, 1, 2}) == std::vector<std::uint32_t>{1, 0, 2});
    // A black hole: one request outstanding, nothing read for 2 s.
    test_loads = {};
    test_loads[1] = {.in_flight = 1, .silent_for = 3s};
    CHECK(replicas_of(p, v, {1, 0, 2}) == std::vector<std::uint32_t>{0, 2, 1});
    // Half or more unhealthy: nothing moves for health (moving them all would only move the load).
    test_loads = {};
    test_loads[0] = {.in_flight = 1, .silent_for = 3s};
    test_loads[1] = {.in_flight = 1, .silent_for = 3s};
    CHECK(replicas_of(p, v, {0, 1, 2, 3}) == std::vector<std::uint32_t>{0, 1, 2, 3});
    // Two replicas only, or a lightweight transaction: no health order.
    test_loads = {};
    test_loads[0] = {.in_flight = 50, .silent_for = 3s};
    CHECK(replicas_of(p, v, {0, 1}) == std::vector<std::uint32_t>{0, 1});
    query_plan lwt;
    lwt.lwt = true;
    lwt.replicas = {0, 1, 2};
    p.start(v, lwt);
    CHECK(lwt.replicas[0] == 0);
    // Off: the order is the ring's.
    auto off = o;
    off.health.enabled = false;
    CHECK(replicas_of(default_load_balancing_policy(off), v, {0, 1, 2}) == std::vector<std::uint32_t>{0, 1, 2});
}

TEST_CASE("load balancing: a replica back from down warms up; health never crosses the rack preference") {
    auto v = five();
    v.local = {0, 1, 2, 3, 4};
    v.remote.clear();
    v.load = &test_load;
    for (int i = 0; i < 5; ++i) std::const_pointer_cast<node>(v.nodes[i])->rack = i < 2 ? "r1" : "r2";
    using namespace std::chrono_literals;
    default_policy_options o;
    o.shuffle_replicas = false;
    {
        const default_load_balancing_policy p(o);
        test_loads = {};
        test_loads[0].up_for = 5s;  // came back 5 s ago: gives up the lead in about 3 plans of 4
        int led = 0;
        for (int i = 0; i < 400; ++i) led += replicas_of(p, v, {0, 1, 2})[0] == 0 ? 1 : 0;
        CHECK(led > 50);
        CHECK(led < 150);
        test_loads[0].up_for = 61s;  // warmed up
        CHECK(replicas_of(p, v, {0, 1, 2})[0] == 0);
    }
    o.local_rack = "r1";
    const default_load_balancing_policy p(o);
    test_loads = {};
    // Node 0 (rack r1) is a black hole, node 1 (r1) healthy: 1 leads, 0 stays within r1's group,
    // ahead of rack r2's replicas.
    test_loads[0] = {.in_flight = 3, .silent_for = 5s};
    CHECK(replicas_of(p, v, {2, 0, 3, 1}) == std::vector<std::uint32_t>{1, 0, 2, 3});
}

TEST_CASE("load balancing: health picks the first of the other local nodes from the rotation's first two") {
    auto v = five();  // 0-2 local, 3-4 remote
    v.load = &test_load;
    using namespace std::chrono_literals;
    default_policy_options o;
    o.remote_hosts_per_dc = 2;
    const default_load_balancing_policy p(o);
    auto plan_from = [&](std::size_t rotation) {
        query_plan plan;
        plan.rotation = rotation;
        p.start(v, plan);
        return walk(p, v, plan);
    };
    test_loads = {};
    // Idle: the rotation's order.
    CHECK(plan_from(0) == std::vector<std::uint32_t>{0, 1, 2, 3, 4});
    // The second of the rotation has fewer requests in flight: it leads, the first comes second.
    test_loads[0].in_flight = 4;
    test_loads[1].in_flight = 1;
    CHECK(plan_from(0) == std::vector<std::uint32_t>{1, 0, 2, 3, 4});
    // Equal load: no change (a tie keeps the rotation, so load spreads as before).
    test_loads[1].in_flight = 4;
    CHECK(plan_from(0) == std::vector<std::uint32_t>{0, 1, 2, 3, 4});
    // A black hole first in the rotation: the next leads and the black hole goes to the end of the
    // local tier (still before the remote nodes, which rotate too).
    test_loads = {};
    test_loads[1] = {.in_flight = 1, .silent_for = 3s};
    CHECK(plan_from(1) == std::vector<std::uint32_t>{2, 0, 1, 4, 3});
    // Only the first place is chosen: a black hole later in the rotation keeps its place.
    CHECK(plan_from(0) == std::vector<std::uint32_t>{0, 1, 2, 3, 4});
    // Both unhealthy: the rotation's order (the less loaded would lead, but they are equal here).
    test_loads[2] = {.in_flight = 1, .silent_for = 3s};
    CHECK(plan_from(1) == std::vector<std::uint32_t>{1, 2, 0, 4, 3});
    // A node that just came up yields the first place in about 3 plans of 4.
    test_loads = {};
    test_loads[0].up_for = 5s;
    int led = 0;
    for (int i = 0; i < 400; ++i) {
        const auto plan = plan_from(0);
        CHECK(plan.size() == 5);
        led += plan[0] == 0 ? 1 : 0;
    }
    CHECK(led > 50);
    CHECK(led < 150);
    // Replicas are not repeated among the other local nodes, and health never moves a node across the
    // rack preference: with local rack r1 = {0, 1}, node 1 a black hole and node 2 (r2) idle, 0 leads.
    test_loads = {};
    test_loads[1] = {.in_flight = 1, .silent_for = 3s};
    for (int i = 0; i < 5; ++i) std::const_pointer_cast<node>(v.nodes[i])->rack = i < 2 ? "r1" : "r2";
    auto ro = o;
    ro.local_rack = "r1";
    const default_load_balancing_policy rp(ro);
    query_plan plan;
    plan.rotation = 1;
    rp.start(v, plan);
    CHECK(walk(rp, v, plan) == std::vector<std::uint32_t>{0, 1, 2, 4, 3});
    query_plan with_replica;
    with_replica.rotation = 1;
    with_replica.replicas = {2};
    rp.start(v, with_replica);
    CHECK(walk(rp, v, with_replica) == std::vector<std::uint32_t>{2, 0, 1, 4, 3});
    // Off: the rotation alone.
    auto off = o;
    off.health.enabled = false;
    const default_load_balancing_policy q(off);
    query_plan plain;
    plain.rotation = 1;
    q.start(v, plain);
    CHECK(walk(q, v, plain) == std::vector<std::uint32_t>{1, 2, 0, 4, 3});
}

TEST_CASE("load balancing: health picks the first of each remote tier the same way, after the local nodes") {
    auto v = five();  // 0-2 local (dc1), 3-4 remote (dc2)
    v.load = &test_load;
    using namespace std::chrono_literals;
    default_policy_options o;
    o.remote_hosts_per_dc = 2;
    const default_load_balancing_policy p(o);
    test_loads = {};
    // The remote rotation's first (3) is a black hole: 4 leads the remote tier, 3 follows at its end.
    test_loads[3] = {.in_flight = 2, .silent_for = 3s};
    query_plan plan;
    p.start(v, plan);
    CHECK(walk(p, v, plan) == std::vector<std::uint32_t>{0, 1, 2, 4, 3});
    // A local black hole never moves behind a remote node.
    test_loads[2] = {.in_flight = 2, .silent_for = 3s};
    query_plan from2;
    from2.rotation = 2;
    p.start(v, from2);
    CHECK(walk(p, v, from2) == std::vector<std::uint32_t>{0, 1, 2, 4, 3});
}
