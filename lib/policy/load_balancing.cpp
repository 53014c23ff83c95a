// The default load balancing policy: replicas first, then the local datacenter, then remote nodes.
#include <cqlcoro/load_balancing.hpp>

#include <algorithm>
#include <random>

namespace cqlcoro {

node_distance default_load_balancing_policy::distance(const node& n, std::string_view local_dc, std::size_t remote_before) const {
    if (n.datacenter == local_dc) return node_distance::local;
    return remote_before < remote_per_dc_ ? node_distance::remote : node_distance::ignored;
}

void default_load_balancing_policy::start(const plan_nodes&, query_plan& plan) const {
    plan.stage = plan.pos = 0;
    auto& r = plan.replicas;
    if (!shuffle_ || plan.lwt || r.size() < 2) return;
    thread_local std::minstd_rand rng{std::random_device{}()};
    for (std::size_t i = r.size() - 1; i > 0; --i) std::swap(r[i], r[rng() % (i + 1)]);
}

// Stage 0: the replicas; 1: the other local nodes from the rotation's start; 2: the remote nodes.
std::uint32_t default_load_balancing_policy::next(const plan_nodes& v, query_plan& plan) const {
    for (;;) {
        switch (plan.stage) {
        case 0:
            if (plan.pos < plan.replicas.size()) return plan.replicas[plan.pos++];
            plan.stage = 1;
            plan.pos = 0;
            continue;
        case 1:
            while (plan.pos < v.local.size()) {
                const auto i = v.local[(plan.rotation + plan.pos++) % v.local.size()];
                if (std::find(plan.replicas.begin(), plan.replicas.end(), i) == plan.replicas.end()) return i;
            }
            plan.stage = 2;
            plan.pos = 0;
            continue;
        case 2:
            if (plan.pos < v.remote.size()) return v.remote[(plan.rotation + plan.pos++) % v.remote.size()];
            plan.stage = 3;
            continue;
        default: return query_plan::end;
        }
    }
}

}  // namespace cqlcoro
