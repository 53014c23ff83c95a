#include "session/profiles.hpp"

#include <cqlcoro/error.hpp>
#include <cqlcoro/session.hpp>

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

namespace cqlcoro::detail {

namespace {

[[noreturn]] void bad(std::string_view profile, std::string_view what) {
    throw error(client_errc::invalid_configuration, fmt::format("execution profile \"{}\": {}", profile, what));
}

void overlay(resolved_profile& r, const execution_profile& e, std::string_view name) {
    if (e.consistency) r.cl = *e.consistency;
    if (e.serial_consistency) {
        if (*e.serial_consistency != consistency::serial && *e.serial_consistency != consistency::local_serial)
            bad(name, "serial_consistency must be SERIAL or LOCAL_SERIAL");
        r.serial_cl = e.serial_consistency;
    }
    if (e.request_timeout) {
        if (e.request_timeout->count() <= 0) bad(name, "request_timeout must be positive");
        r.timeout = *e.request_timeout;
    }
    if (e.attempt_timeout) {
        if (e.attempt_timeout->count() < 0) bad(name, "attempt_timeout must not be negative (0: none)");
        r.attempt_timeout = *e.attempt_timeout;
    }
    if (e.page_size) {
        if (*e.page_size <= 0) bad(name, "page_size must be positive");
        r.page_size = *e.page_size;
    }
    if (e.retry) r.retry = e.retry;
    if (e.max_attempts) {
        if (*e.max_attempts == 0) bad(name, "max_attempts must be at least 1 (1: no retries)");
        r.max_attempts = *e.max_attempts;
    }
    if (e.speculative_execution) r.speculative = e.speculative_execution;
    if (e.load_balancing) r.lb = e.load_balancing;
    if (e.token_aware) r.token_aware = *e.token_aware;
    if (e.idempotent) r.idempotent = e.idempotent;
    if (e.admission_class) r.admission_class = *e.admission_class;
}

struct resolver {
    const execution_profiles& profiles;
    profile_set& out;
    std::set<std::string, std::less<>> visiting;

    const resolved_profile& resolve(const std::string& name) {
        if (name == "default") return out.fallback;
        if (auto it = out.named.find(name); it != out.named.end()) return it->second;
        auto it = profiles.find(name);
        if (it == profiles.end()) bad(name, "no such profile");
        if (!visiting.insert(name).second) bad(name, "it inherits from itself through its parents");
        const auto& parent_name = it->second.inherits.empty() ? std::string("default") : it->second.inherits;
        if (parent_name != "default" && !profiles.contains(parent_name))
            bad(name, fmt::format("it inherits from \"{}\", which is not a profile", parent_name));
        resolved_profile r = resolve(parent_name);
        r.name = name;
        overlay(r, it->second, name);
        visiting.erase(name);
        return out.named.emplace(name, std::move(r)).first->second;
    }
};

}  // namespace

std::string profile_set::names() const {
    std::string s = "default";
    for (const auto& [name, p] : named) s += ", " + name;  // "default" is never among them
    return s;
}

std::unique_ptr<const profile_set> resolve_profiles(const session_params& p, const execution_profiles& profiles,
                                                    std::shared_ptr<const load_balancing_policy> lb) {
    auto set = std::make_unique<profile_set>();
    auto& d = set->fallback;
    d.name = "default";
    d.cl = p.default_consistency;
    d.timeout = p.request_timeout;
    d.attempt_timeout = p.attempt_timeout;
    d.page_size = p.default_page_size;
    d.retry = p.retry;
    d.max_attempts = p.max_attempts;
    d.speculative = p.speculative_execution;
    d.lb = std::move(lb);
    d.token_aware = p.token_aware;
    if (auto it = profiles.find("default"); it != profiles.end()) {
        if (!it->second.inherits.empty() && it->second.inherits != "default")
            bad("default", fmt::format("the default profile cannot inherit (it inherits \"{}\"): it is every profile's root", it->second.inherits));
        overlay(d, it->second, "default");
    }
    for (const auto& [name, e] : profiles) {
        if (name.empty()) bad(name, "a profile needs a name");
        if (name != "default") resolver{profiles, *set, {}}.resolve(name);
    }
    // Each profile whole: every policy present, and whether its requests may hedge.
    auto seal = [](resolved_profile& r) {
        if (!r.retry) bad(r.name, "its retry policy is null: use fallthrough_retry_policy to never retry");
        if (!r.speculative) bad(r.name, "its speculative execution policy is null: use no_speculative_execution to never hedge");
        if (!r.lb) bad(r.name, "its load balancing policy is null");
        r.hedging = !dynamic_cast<const no_speculative_execution*>(r.speculative.get());
    };
    seal(set->fallback);
    for (auto& [name, r] : set->named) seal(r);
    return set;
}

}  // namespace cqlcoro::detail

namespace cqlcoro {

namespace {

// Names are interned once, by number: a node-based map never moves them, and the table of pointers is
// read without a lock (a slot is written once, before its number is handed out).
constexpr std::uint32_t max_profile_names = 4096;
std::array<std::atomic<const std::string*>, max_profile_names> profile_names_by_id{};

}  // namespace

profile_name::profile_name(std::string_view name) {
    if (name.empty()) return;
    static std::mutex m;
    static std::map<std::string, std::uint32_t, std::less<>> ids;
    std::lock_guard lock(m);
    auto it = ids.find(name);
    if (it == ids.end()) {
        const auto id = static_cast<std::uint32_t>(ids.size() + 1);
        if (id >= max_profile_names)
            throw error(client_errc::invalid_statement,
                        fmt::format("profile(\"{}\"): more than {} distinct execution profile names in this program", name, max_profile_names - 1));
        it = ids.emplace(std::string(name), id).first;
        profile_names_by_id[id].store(&it->first, std::memory_order_release);
    }
    id_ = it->second;
}

std::string_view profile_name::view() const noexcept {
    if (id_ == 0) return {};
    const auto* s = profile_names_by_id[id_].load(std::memory_order_acquire);
    return s ? std::string_view(*s) : std::string_view();
}

}  // namespace cqlcoro
