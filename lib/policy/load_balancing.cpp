// The default load balancing policy: replicas first (the local rack's first), then the local datacenter
// (the local rack first), then remote nodes (the preferred datacenters first).
#include <cqlcoro/load_balancing.hpp>

#include <algorithm>
#include <array>
#include <random>
#include <tuple>
#include <utility>

namespace cqlcoro {

bool node_filter::matches(const node& n) const {
    const auto address = n.address.to_string();
    for (const auto& h : hosts)
        if (h == n.endpoint || h == address) return true;
    return std::find(datacenters.begin(), datacenters.end(), n.datacenter) != datacenters.end() ||
           std::find(racks.begin(), racks.end(), n.rack) != racks.end();
}

node_distance default_load_balancing_policy::distance(const node& n, std::string_view local_dc, std::size_t remote_before) const {
    if ((!o_.allow.empty() && !o_.allow.matches(n)) || (!o_.deny.empty() && o_.deny.matches(n))) return node_distance::ignored;
    if (n.datacenter == local_dc) return node_distance::local;
    return remote_before < o_.remote_hosts_per_dc ? node_distance::remote : node_distance::ignored;
}

void default_load_balancing_policy::start(const plan_nodes& v, query_plan& plan) const {
    plan.stage = plan.pos = 0;
    plan.held = query_plan::end;
    plan.held_last = plan.picked = false;
    auto& r = plan.replicas;
    if (r.size() < 2 || plan.lwt) return;  // a lightweight transaction keeps the ring order
    if (o_.shuffle_replicas) {
        thread_local std::minstd_rand rng{std::random_device{}()};
        for (std::size_t i = r.size() - 1; i > 0; --i) std::swap(r[i], r[rng() % (i + 1)]);
    }
    auto rack_end = r.end();
    if (!o_.local_rack.empty()) rack_end = std::stable_partition(r.begin(), r.end(), [&](std::uint32_t i) { return in_local_rack(v, i); });
    if (!o_.health.enabled || !v.load || r.size() <= 2) return;
    // Each rack group on its own: health never moves a node across the rack preference.
    order_by_health(v, r.data(), r.data() + (rack_end - r.begin()));
    order_by_health(v, r.data() + (rack_end - r.begin()), r.data() + r.size());
}

void default_load_balancing_policy::order_by_health(const plan_nodes& v, std::uint32_t* first, std::uint32_t* last) const {
    const auto n = static_cast<std::size_t>(last - first);
    if (n < 2) return;
    const auto& h = o_.health;
    std::array<node_load, 16> loads;
    const auto counted = std::min<std::size_t>(n, loads.size());
    for (std::size_t i = 0; i < counted; ++i) loads[i] = v.load(v, first[i]);
    // Moves position i to the back of the group (and its load with it).
    auto to_back = [&](std::size_t i) {
        std::rotate(first + i, first + i + 1, first + counted);
        std::rotate(loads.begin() + static_cast<std::ptrdiff_t>(i), loads.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                    loads.begin() + static_cast<std::ptrdiff_t>(counted));
    };
    thread_local std::minstd_rand rng{std::random_device{}()};
    bool warming = false;
    for (std::size_t i = 0; i < std::min<std::size_t>(2, counted); ++i)
        if (loads[i].up_for < h.warm_up && rng() % 4 != 0) {  // 3 plans in 4
            to_back(i);
            warming = true;
            break;
        }
    if (!warming) {
        std::size_t bad = 0;
        for (std::size_t i = 0; i < counted; ++i) bad += is_unhealthy(loads[i]) ? 1 : 0;
        if (bad > 0 && bad * 2 < counted) {
            // A stable partition: the healthy first, each side in its order.
            std::array<std::pair<std::uint32_t, node_load>, 16> tmp;
            std::size_t k = 0;
            for (int pass = 0; pass < 2; ++pass)
                for (std::size_t i = 0; i < counted; ++i)
                    if (is_unhealthy(loads[i]) == (pass == 1)) tmp[k++] = {first[i], loads[i]};
            for (std::size_t i = 0; i < counted; ++i) std::tie(first[i], loads[i]) = tmp[i];
        }
    }
    if (loads[0].in_flight > loads[1].in_flight) std::swap(first[0], first[1]);  // power of two choices
}

bool default_load_balancing_policy::is_unhealthy(const node_load& l) const noexcept {
    const auto& h = o_.health;
    return (l.in_flight >= h.busy_threshold && l.silent_for >= h.busy_silence) || (l.in_flight > 0 && l.silent_for >= h.black_hole);
}

bool default_load_balancing_policy::second_first(const plan_nodes& v, std::uint32_t a, std::uint32_t b, bool& a_last) const {
    const auto la = v.load(v, a), lb = v.load(v, b);
    const bool bad_a = is_unhealthy(la), bad_b = is_unhealthy(lb);
    a_last = bad_a && !bad_b;
    if (bad_a != bad_b) return bad_a;
    const bool warm_a = la.up_for < o_.health.warm_up, warm_b = lb.up_for < o_.health.warm_up;
    if (warm_a != warm_b) {
        if (!warm_a) return false;
        thread_local std::minstd_rand rng{std::random_device{}()};
        return rng() % 4 != 0;  // 3 plans in 4
    }
    return lb.in_flight < la.in_flight;
}

// Stages: 0 the replicas; 1 the other local nodes in the local rack (with one), from the rotation's
// start; 2 the other local nodes; 3 + k the remote nodes of preferred datacenter k; then the other remote
// nodes; then the end.
// The next node of a rotating tier (the other local nodes, or a datacenter's remote nodes): `list`
// from the plan's rotation, the nodes `candidate` accepts. Its first place goes to the better of its
// first two candidates (a lazy plan looks no further); the one passed over comes next, or at the end
// of the tier when unhealthy. end: the tier has no more.
template <class Candidate>
std::uint32_t default_load_balancing_policy::next_in_tier(const plan_nodes& v, query_plan& plan, const std::vector<std::uint32_t>& list,
                                                          Candidate candidate) const {
    if (plan.held != query_plan::end && !plan.held_last) return std::exchange(plan.held, query_plan::end);
    const auto n = list.size();
    while (plan.pos < n) {
        const auto i = list[(plan.rotation + plan.pos++) % n];
        if (!candidate(i)) continue;
        if (!plan.picked && o_.health.enabled && v.load) {
            auto p = plan.pos;
            while (p < n) {
                const auto j = list[(plan.rotation + p++) % n];
                if (!candidate(j)) continue;
                bool last = false;
                if (second_first(v, i, j, last)) {
                    plan.picked = true;
                    plan.held = i;
                    plan.held_last = last;
                    plan.pos = p;
                    return j;
                }
                break;
            }
        }
        plan.picked = true;
        return i;
    }
    return std::exchange(plan.held, query_plan::end);
}

std::uint32_t default_load_balancing_policy::next(const plan_nodes& v, query_plan& plan) const {
    const bool rack = !o_.local_rack.empty();
    const std::size_t preferred = o_.preferred_remote_dcs.size();
    auto is_replica = [&](std::uint32_t i) { return std::find(plan.replicas.begin(), plan.replicas.end(), i) != plan.replicas.end(); };
    for (;;) {
        const auto stage = plan.stage;
        if (stage == 0) {
            if (plan.pos < plan.replicas.size()) return plan.replicas[plan.pos++];
        } else if (stage == 1 || stage == 2) {
            if (stage == 1 && !rack) {
                plan.stage = 2;
                continue;
            }
            const auto i = next_in_tier(v, plan, v.local, [&](std::uint32_t i) {
                return !(rack && in_local_rack(v, i) != (stage == 1)) && !is_replica(i);
            });
            if (i != query_plan::end) return i;
        } else if (stage <= 3 + preferred) {
            if (plan.local_consistency && !o_.allow_remote_for_local_consistency) return query_plan::end;
            const std::string* dc = stage < 3 + preferred ? &o_.preferred_remote_dcs[stage - 3] : nullptr;
            const auto i = next_in_tier(v, plan, v.remote, [&](std::uint32_t i) {
                const auto& n = v.nodes[i];
                if (!n) return false;
                return dc ? n->datacenter == *dc
                          : std::find(o_.preferred_remote_dcs.begin(), o_.preferred_remote_dcs.end(), n->datacenter) == o_.preferred_remote_dcs.end();
            });
            if (i != query_plan::end) return i;
        } else {
            return query_plan::end;
        }
        ++plan.stage;
        plan.pos = 0;
        plan.picked = false;
    }
}

}  // namespace cqlcoro
