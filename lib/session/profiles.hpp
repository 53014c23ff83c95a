// Execution profiles resolved: each profile with every option decided (its own, else its ancestors',
// else "default"'s, else session_params'), so the request path reads one flat struct per request. A set
// is immutable and travels in the routing view each request holds (session_impl.hpp): set_profiles()
// publishes a view with a new set, and a request in flight keeps the set it started with.
#pragma once

#include <cqlcoro/admission.hpp>
#include <cqlcoro/consistency.hpp>
#include <cqlcoro/profile.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace cqlcoro {
struct session_params;
}

namespace cqlcoro::detail {

struct resolved_profile {
    std::string name;
    consistency cl = consistency::local_one;
    std::optional<consistency> serial_cl;
    std::chrono::milliseconds timeout{0};
    std::chrono::milliseconds attempt_timeout{0};
    std::int32_t page_size = 5000;
    std::shared_ptr<const retry_policy> retry;
    std::size_t max_attempts = 3;
    std::shared_ptr<const speculative_execution_policy> speculative;
    bool hedging = false;  // the speculative policy is not the "never" one
    std::shared_ptr<const load_balancing_policy> lb;
    bool token_aware = true;
    std::optional<bool> idempotent;
    request_class admission_class = request_class::interactive;
};

struct profile_set {
    resolved_profile fallback;  // "default"
    std::map<std::string, resolved_profile, std::less<>> named;

    /// The profile a statement names (empty or "default": the default one); null for an unknown name.
    const resolved_profile* find(std::string_view name) const noexcept {
        if (name.empty() || name == "default") return &fallback;
        auto it = named.find(name);
        return it == named.end() ? nullptr : &it->second;
    }
    /// "default, bulk, oltp": for errors about a name that is not there.
    std::string names() const;
};

/// Resolves `profiles` over the session's own options, `lb` being the session's load balancing policy.
/// Throws error(invalid_configuration) naming the profile and the option at fault (an unknown parent,
/// a cycle, a timeout that is not positive, ...).
std::unique_ptr<const profile_set> resolve_profiles(const session_params& p, const execution_profiles& profiles,
                                                    std::shared_ptr<const load_balancing_policy> lb);

}  // namespace cqlcoro::detail
