// The configuration file's keys (config.cpp): the state they are read into and the table of them, shared
// with reload_config() and the tests (which check the reference file against the table and the defaults).
#pragma once

#include <cqlcoro/config.hpp>
#include <cqlcoro/session.hpp>

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cqlcoro::detail {

/// A speculative execution policy as the file describes it.
struct speculation_conf {
    std::string policy = "none";  // none, constant, adaptive
    std::chrono::milliseconds delay{100};
    std::size_t max = 1;
    double percentile = 0.95;
    std::chrono::milliseconds floor{1};
    std::chrono::milliseconds fallback{50};
    std::uint64_t min_samples = 100;
};

struct profile_state {
    execution_profile e;
    std::optional<std::string> retry;
    std::optional<speculation_conf> speculation;
    speculation_conf& speculation_set() { return speculation ? *speculation : speculation.emplace(); }
};

/// session_params, plus what the file says in other terms (a policy's name, credentials, TLS on or off).
struct config_state {
    session_params p;
    std::string username, password;
    bool tls_enabled = false;
    tls_options tls;
    std::chrono::milliseconds retry_budget_ttl{10000};
    std::string retry = "default";
    speculation_conf speculation;
    std::map<std::string, profile_state> profiles;
};

enum env_kind : std::uint8_t { no_env, env_text, env_list, env_literal };

struct config_entry {
    std::string key;  // "admission.max_concurrent"
    env_kind env = no_env;
    bool reloadable = false;  // reload_config() applies it (through the default profile)
    std::function<void(const boost::json::value&, config_state&, std::string_view source, const std::string& path)> read;
    std::function<boost::json::value(const config_state&)> write;
};

struct profile_entry {
    std::string key;  // "request_timeout", "speculative_execution.delay"
    std::function<void(const boost::json::value&, profile_state&, std::string_view source, const std::string& path)> read;
};

const std::vector<config_entry>& config_keys();
const std::vector<profile_entry>& profile_keys();
/// "admission.max_concurrent" -> "CQLCORO_ADMISSION_MAX_CONCURRENT".
std::string env_name(std::string_view key);
/// The state that describes `p` (policies by name; credentials are not read back).
config_state state_of(const session_params& p);
/// The file (and the environment) read over the defaults, before finish().
config_state read_state(std::string_view json, std::string_view name, bool environment);
/// session_params from a state read: policies made, TLS and credentials applied, profiles in place.
session_params finish(config_state s, std::string_view source);

}  // namespace cqlcoro::detail
