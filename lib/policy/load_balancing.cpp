// The default load balancing policy: replicas first (the local rack's first), then the local datacenter
// (the local rack first), then remote nodes (the preferred datacenters first).
#include <cqlcoro/load_balancing.hpp>

#include <algorithm>
#include <random>

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
    auto& r = plan.replicas;
    if (r.size() < 2 || plan.lwt) return;  // a lightweight transaction keeps the ring order
    if (o_.shuffle_replicas) {
        thread_local std::minstd_rand rng{std::random_device{}()};
        for (std::size_t i = r.size() - 1; i > 0; --i) std::swap(r[i], r[rng() % (i + 1)]);
    }
    if (!o_.local_rack.empty()) std::stable_partition(r.begin(), r.end(), [&](std::uint32_t i) { return in_local_rack(v, i); });
}

// Stages: 0 the replicas; 1 the other local nodes in the local rack (with one), from the rotation's
// start; 2 the other local nodes; 3 + k the remote nodes of preferred datacenter k; then the other remote
// nodes; then the end.
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
            while (plan.pos < v.local.size()) {
                const auto i = v.local[(plan.rotation + plan.pos++) % v.local.size()];
                if (rack && in_local_rack(v, i) != (stage == 1)) continue;
                if (!is_replica(i)) return i;
            }
        } else if (stage <= 3 + preferred) {
            if (plan.local_consistency && !o_.allow_remote_for_local_consistency) return query_plan::end;
            const std::string* dc = stage < 3 + preferred ? &o_.preferred_remote_dcs[stage - 3] : nullptr;
            while (plan.pos < v.remote.size()) {
                const auto i = v.remote[(plan.rotation + plan.pos++) % v.remote.size()];
                const auto& n = v.nodes[i];
                if (!n) continue;
                if (dc ? n->datacenter == *dc
                       : std::find(o_.preferred_remote_dcs.begin(), o_.preferred_remote_dcs.end(), n->datacenter) == o_.preferred_remote_dcs.end())
                    return i;
            }
        } else {
            return query_plan::end;
        }
        ++plan.stage;
        plan.pos = 0;
    }
}

}  // namespace cqlcoro
