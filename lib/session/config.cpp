// The configuration file: JSON (Boost.JSON, comments and trailing commas allowed) into session_params.
// Every key is an entry of one table (keys()): its path, how its value reads and writes, whether the
// environment may set it, and whether a reload applies it. The table is the only list of keys: parsing,
// the environment, reload_config()'s comparison and the reference file's test all read it.
#include "session/config_keys.hpp"

#include <cqlcoro/config.hpp>
#include <cqlcoro/session.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

namespace cqlcoro {

namespace json = boost::json;
using detail::config_state;
using detail::config_entry;

namespace {

// Where a value came from, for errors: "cqlcoro.json: admission.max_concurrent".
struct origin {
    std::string_view source;
    std::string path;
};

[[noreturn]] void bad(const origin& o, std::string_view what) {
    throw error(client_errc::invalid_configuration, fmt::format("{}: {}: {}", o.source, o.path, what));
}

std::string shown(const json::value& v) {
    auto s = json::serialize(v);
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}

// ---- values

struct boolean {
    bool from(const json::value& v, const origin& o) const {
        if (!v.is_bool()) bad(o, fmt::format("expected true or false, got {}", shown(v)));
        return v.get_bool();
    }
    json::value to(bool b) const { return b; }
};

// A JSON double that is a whole number within long long's range: 1e3 is; 2.5 is not, nor 1e77 (its
// conversion would be undefined).
std::optional<long long> whole_number(double d) {
    if (!(d >= -0x1p63 && d < 0x1p63) || d != std::trunc(d)) return std::nullopt;
    return static_cast<long long>(d);
}

template <class T>
struct integer {
    long long min = 0;
    unsigned long long max = std::numeric_limits<T>::max();
    T from(const json::value& v, const origin& o) const {
        const auto fail = [&] { bad(o, fmt::format("expected an integer from {} to {}, got {}", min, max, shown(v))); };
        long long x = 0;
        if (v.is_int64()) x = v.get_int64();
        else if (v.is_uint64()) {
            if (v.get_uint64() > max) fail();
            return static_cast<T>(v.get_uint64());
        } else if (const auto whole = v.is_double() ? whole_number(v.get_double()) : std::nullopt)
            x = *whole;
        else
            fail();
        if (x < min || (x > 0 && static_cast<unsigned long long>(x) > max)) fail();
        return static_cast<T>(x);
    }
    json::value to(T x) const {
        if constexpr (std::is_signed_v<T>) return static_cast<std::int64_t>(x);
        else return static_cast<std::uint64_t>(x);
    }
};

struct real {
    double min = 0;
    double from(const json::value& v, const origin& o) const {
        if (!v.is_number() || v.to_number<double>() < min) bad(o, fmt::format("expected a number of at least {}, got {}", min, shown(v)));
        return v.to_number<double>();
    }
    json::value to(double x) const { return x; }
};

struct text {
    std::string from(const json::value& v, const origin& o) const {
        if (!v.is_string()) bad(o, fmt::format("expected a string, got {}", shown(v)));
        return std::string(v.get_string());
    }
    json::value to(const std::string& s) const { return json::string(s); }
};

// A password: as text, but its errors never show the value.
struct secret {
    std::string from(const json::value& v, const origin& o) const {
        if (!v.is_string()) bad(o, fmt::format("expected a string, got a {} (the value is not shown: it is a secret)", std::string_view(json::to_string(v.kind()))));
        return std::string(v.get_string());
    }
    json::value to(const std::string& s) const { return json::string(s); }
};

struct texts {
    std::vector<std::string> from(const json::value& v, const origin& o) const {
        if (!v.is_array()) bad(o, fmt::format("expected an array of strings, got {}", shown(v)));
        std::vector<std::string> out;
        for (const auto& e : v.get_array()) {
            if (!e.is_string()) bad(o, fmt::format("expected an array of strings, got {} in it", shown(e)));
            out.emplace_back(e.get_string());
        }
        return out;
    }
    json::value to(const std::vector<std::string>& xs) const {
        json::array a;
        for (const auto& x : xs) a.emplace_back(json::string(x));
        return a;
    }
};

// "150ms", "2s", "1.5s", "1m", "1h"; "0" alone.
struct duration {
    std::chrono::milliseconds from(const json::value& v, const origin& o) const {
        const auto fail = [&] {
            bad(o, fmt::format("expected a duration such as \"150ms\", \"2s\", \"1m\" or \"1h\", got {}", shown(v)));
        };
        if (!v.is_string()) fail();
        const std::string_view s = v.get_string();
        if (s == "0") return std::chrono::milliseconds(0);
        std::size_t digits = 0;
        while (digits < s.size() && (std::isdigit(static_cast<unsigned char>(s[digits])) || s[digits] == '.')) ++digits;
        if (digits == 0) fail();
        double n = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + digits, n);
        if (ec != std::errc{} || end != s.data() + digits) fail();
        const auto unit = s.substr(digits);
        double ms = 0;
        if (unit == "ms") ms = n;
        else if (unit == "s") ms = n * 1e3;
        else if (unit == "m") ms = n * 60e3;
        else if (unit == "h") ms = n * 3600e3;
        else fail();
        if (!(ms <= 1e12) || ms != std::trunc(ms))  // the bound first: past long long, the conversion is undefined
            bad(o, fmt::format("{} is not a whole number of milliseconds (or is absurdly long)", shown(v)));
        return std::chrono::milliseconds(static_cast<long long>(ms));
    }
    json::value to(std::chrono::milliseconds d) const {
        const auto ms = d.count();
        if (ms != 0 && ms % 3600000 == 0) return json::string(fmt::format("{}h", ms / 3600000));
        if (ms != 0 && ms % 60000 == 0) return json::string(fmt::format("{}m", ms / 60000));
        if (ms != 0 && ms % 1000 == 0) return json::string(fmt::format("{}s", ms / 1000));
        return json::string(fmt::format("{}ms", ms));
    }
};

struct cl_name {
    cqlcoro::consistency from(const json::value& v, const origin& o) const {
        if (v.is_string()) {
            std::string upper(v.get_string());
            for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            for (std::uint16_t i = 0; i <= 0x0A; ++i)
                if (to_string(static_cast<cqlcoro::consistency>(i)) == upper) return static_cast<cqlcoro::consistency>(i);
        }
        bad(o, fmt::format("expected a consistency level (ANY, ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, SERIAL, "
                           "LOCAL_SERIAL, LOCAL_ONE), got {}",
                           shown(v)));
    }
    json::value to(cqlcoro::consistency c) const { return json::string(to_string(c)); }
};

template <class E>
struct one_of {
    std::vector<std::pair<std::string_view, E>> names;
    E from(const json::value& v, const origin& o) const {
        if (v.is_string())
            for (const auto& [n, e] : names)
                if (v.get_string() == n) return e;
        std::string list;
        for (const auto& [n, e] : names) list += (list.empty() ? "\"" : ", \"") + std::string(n) + "\"";
        bad(o, fmt::format("expected one of {}, got {}", list, shown(v)));
    }
    json::value to(E e) const {
        for (const auto& [n, x] : names)
            if (x == e) return json::string(n);
        return nullptr;
    }
};

// ---- the table

using detail::no_env;
using detail::env_text;
using detail::env_list;
using detail::env_literal;

template <class T>
struct is_integer_conv : std::false_type {};
template <class T>
struct is_integer_conv<integer<T>> : std::true_type {};

template <class Conv, class Access>
config_entry field(std::string key, Access access, Conv conv, bool reloadable = false) {
    config_entry e;
    e.key = std::move(key);
    e.reloadable = reloadable;
    if constexpr (std::is_same_v<Conv, texts>) e.env = env_list;
    else if constexpr (std::is_same_v<Conv, boolean> || std::is_same_v<Conv, real> || is_integer_conv<Conv>::value) e.env = env_literal;
    else e.env = env_text;
    e.read = [access, conv](const json::value& v, config_state& s, std::string_view source, const std::string& path) {
        access(s) = conv.from(v, origin{source, path});
    };
    e.write = [access, conv](const config_state& s) {
        auto copy = s;
        return conv.to(access(copy));
    };
    return e;
}

#define CQLCORO_AT(expr) [](config_state & s) -> auto& { return expr; }

const one_of<std::string> retry_names{{{"default", "default"}, {"fallthrough", "fallthrough"}, {"downgrading", "downgrading"}}};
const one_of<std::string> speculation_names{{{"none", "none"}, {"constant", "constant"}, {"adaptive", "adaptive"}}};

std::vector<config_entry> make_keys() {
    std::vector<config_entry> k;
    const integer<std::size_t> at_least_1{1};
    const integer<std::size_t> any_count{0};
    // Where and how to connect (restart-only).
    k.push_back(field("contact_points", CQLCORO_AT(s.p.contact_points), texts{}));
    k.push_back(field("port", CQLCORO_AT(s.p.port), integer<std::uint16_t>{1}));
    k.push_back(field("local_datacenter", CQLCORO_AT(s.p.local_datacenter), text{}));
    k.push_back(field("keyspace", CQLCORO_AT(s.p.keyspace), text{}));
    k.push_back(field("protocol_version", CQLCORO_AT(s.p.protocol_version), integer<std::uint8_t>{0, 5}));
    k.push_back(field("compression", CQLCORO_AT(s.p.compression),
                      one_of<compression>{{{"none", compression::none}, {"lz4", compression::lz4}, {"snappy", compression::snappy}}}));
    k.push_back(field("auth.username", CQLCORO_AT(s.username), text{}));
    k.push_back(field("auth.password", CQLCORO_AT(s.password), secret{}));
    k.push_back(field("tls.enabled", CQLCORO_AT(s.tls_enabled), boolean{}));
    k.push_back(field("tls.ca_file", CQLCORO_AT(s.tls.ca_file), text{}));
    k.push_back(field("tls.verify_peer", CQLCORO_AT(s.tls.verify_peer), boolean{}));
    k.push_back(field("tls.verify_hostname", CQLCORO_AT(s.tls.verify_hostname), boolean{}));
    k.push_back(field("tls.server_name", CQLCORO_AT(s.tls.server_name), text{}));
    k.push_back(field("tls.cert_file", CQLCORO_AT(s.tls.cert_file), text{}));
    k.push_back(field("tls.key_file", CQLCORO_AT(s.tls.key_file), text{}));
    k.push_back(field("connections_per_host", CQLCORO_AT(s.p.connections_per_host), at_least_1));
    k.push_back(field("connections_per_remote_host", CQLCORO_AT(s.p.connections_per_remote_host), at_least_1));
    k.push_back(field("remote_hosts_per_dc", CQLCORO_AT(s.p.remote_hosts_per_dc), any_count));
    k.push_back(field("shuffle_replicas", CQLCORO_AT(s.p.shuffle_replicas), boolean{}));
    k.push_back(field("preferred_remote_dcs", CQLCORO_AT(s.p.preferred_remote_dcs), texts{}));
    k.push_back(field("allow_remote_for_local_consistency", CQLCORO_AT(s.p.allow_remote_for_local_consistency), boolean{}));
    k.push_back(field("local_rack", CQLCORO_AT(s.p.local_rack), text{}));
    k.push_back(field("allow_nodes.hosts", CQLCORO_AT(s.p.allow_nodes.hosts), texts{}));
    k.push_back(field("allow_nodes.datacenters", CQLCORO_AT(s.p.allow_nodes.datacenters), texts{}));
    k.push_back(field("allow_nodes.racks", CQLCORO_AT(s.p.allow_nodes.racks), texts{}));
    k.push_back(field("deny_nodes.hosts", CQLCORO_AT(s.p.deny_nodes.hosts), texts{}));
    k.push_back(field("deny_nodes.datacenters", CQLCORO_AT(s.p.deny_nodes.datacenters), texts{}));
    k.push_back(field("deny_nodes.racks", CQLCORO_AT(s.p.deny_nodes.racks), texts{}));
    k.push_back(field("health.enabled", CQLCORO_AT(s.p.health.enabled), boolean{}));
    k.push_back(field("health.busy_threshold", CQLCORO_AT(s.p.health.busy_threshold), at_least_1));
    k.push_back(field("health.busy_silence", CQLCORO_AT(s.p.health.busy_silence), duration{}));
    k.push_back(field("health.black_hole", CQLCORO_AT(s.p.health.black_hole), duration{}));
    k.push_back(field("health.warm_up", CQLCORO_AT(s.p.health.warm_up), duration{}));
    k.push_back(field("latency_aware.enabled", CQLCORO_AT(s.p.latency_aware_enabled), boolean{}));
    k.push_back(field("latency_aware.exclusion_threshold", CQLCORO_AT(s.p.latency_aware.exclusion_threshold), real{1.0}));
    k.push_back(field("latency_aware.scale", CQLCORO_AT(s.p.latency_aware.scale), duration{}));
    k.push_back(field("latency_aware.retry_period", CQLCORO_AT(s.p.latency_aware.retry_period), duration{}));
    k.push_back(field("latency_aware.update_rate", CQLCORO_AT(s.p.latency_aware.update_rate), duration{}));
    k.push_back(field("latency_aware.min_measured", CQLCORO_AT(s.p.latency_aware.min_measured), at_least_1));
    k.push_back(field("max_requests_per_connection", CQLCORO_AT(s.p.max_requests_per_connection), integer<std::size_t>{1, 32768}));
    k.push_back(field("max_frame_size", CQLCORO_AT(s.p.max_frame_size), integer<std::uint32_t>{4096, 0x7fffffffu}));
    k.push_back(field("orphan_budget", CQLCORO_AT(s.p.orphan_budget), any_count));
    k.push_back(field("connect_timeout", CQLCORO_AT(s.p.connect_timeout), duration{}));
    k.push_back(field("heartbeat_interval", CQLCORO_AT(s.p.heartbeat_interval), duration{}));
    k.push_back(field("stream_memory_budget", CQLCORO_AT(s.p.stream_memory_budget), any_count));
    k.push_back(field("reconnection.kind", CQLCORO_AT(s.p.reconnection.how),
                      one_of<reconnection_policy::kind>{{{"exponential", reconnection_policy::kind::exponential},
                                                         {"constant", reconnection_policy::kind::constant}}}));
    k.push_back(field("reconnection.base", CQLCORO_AT(s.p.reconnection.base), duration{}));
    k.push_back(field("reconnection.max", CQLCORO_AT(s.p.reconnection.max), duration{}));
    k.push_back(field("reconnection.jitter", CQLCORO_AT(s.p.reconnection.jitter), real{0}));
    k.push_back(field("event_window", CQLCORO_AT(s.p.event_window), duration{}));
    k.push_back(field("event_max_batch", CQLCORO_AT(s.p.event_max_batch), at_least_1));
    k.push_back(field("schema_metadata", CQLCORO_AT(s.p.schema_metadata), boolean{}));
    k.push_back(field("schema_agreement_timeout", CQLCORO_AT(s.p.schema_agreement_timeout), duration{}));
    k.push_back(field("schema_agreement_interval", CQLCORO_AT(s.p.schema_agreement_interval), duration{}));
    k.push_back(field("prepare_on_all_hosts", CQLCORO_AT(s.p.prepare_on_all_hosts), boolean{}));
    k.push_back(field("reprepare_on_up", CQLCORO_AT(s.p.reprepare_on_up), boolean{}));
    k.push_back(field("reprepare_parallelism", CQLCORO_AT(s.p.reprepare_parallelism), at_least_1));
    k.push_back(field("ready_when", CQLCORO_AT(s.p.ready_when),
                      one_of<session_params::readiness>{{{"first_host", session_params::readiness::first_host},
                                                         {"all_pools", session_params::readiness::all_pools}}}));
    k.push_back(field("client_timestamps", CQLCORO_AT(s.p.client_timestamps), boolean{}));
    // Logging (restart-only): what reaches session_params::logger, which only code can give.
    const one_of<log_level> levels{{{"debug", log_level::debug}, {"info", log_level::info}, {"warn", log_level::warn}, {"error", log_level::error}}};
    k.push_back(field("min_log_level", CQLCORO_AT(s.p.min_log_level), levels));
    k.push_back(field("log_server_warnings", CQLCORO_AT(s.p.log_server_warnings), boolean{}));
    k.push_back(field("slow_requests.threshold", CQLCORO_AT(s.p.slow_requests.threshold), duration{}));
    k.push_back(field("slow_requests.level", CQLCORO_AT(s.p.slow_requests.level), levels));
    k.push_back(field("slow_requests.max_query_length", CQLCORO_AT(s.p.slow_requests.max_query_length), any_count));
    k.push_back(field("slow_requests.show_values", CQLCORO_AT(s.p.slow_requests.show_values), boolean{}));
    k.push_back(field("slow_requests.max_value_length", CQLCORO_AT(s.p.slow_requests.max_value_length), any_count));
    k.push_back(field("slow_requests.max_values", CQLCORO_AT(s.p.slow_requests.max_values), any_count));
    k.push_back(field("slow_requests.log_failures", CQLCORO_AT(s.p.slow_requests.log_failures), boolean{}));
    // Admission (restart-only).
    k.push_back(field("admission.enabled", CQLCORO_AT(s.p.admission.enabled), boolean{}));
    k.push_back(field("admission.max_concurrent", CQLCORO_AT(s.p.admission.max_concurrent), at_least_1));
    k.push_back(field("admission.max_queue", CQLCORO_AT(s.p.admission.max_queue), any_count));
    k.push_back(field("admission.interactive_weight", CQLCORO_AT(s.p.admission.interactive_weight), integer<unsigned>{1}));
    k.push_back(field("admission.background_weight", CQLCORO_AT(s.p.admission.background_weight), integer<unsigned>{1}));
    k.push_back(field("admission.refuse_unmeetable", CQLCORO_AT(s.p.admission.refuse_unmeetable), boolean{}));
    k.push_back(field("admission.max_per_second", CQLCORO_AT(s.p.admission.max_per_second), real{0}));
    k.push_back(field("admission.burst", CQLCORO_AT(s.p.admission.burst), duration{}));
    // The retry budget (restart-only).
    k.push_back(field("retry_budget.ratio", CQLCORO_AT(s.p.retry_budget.ratio), real{0}));
    k.push_back(field("retry_budget.min_per_second", CQLCORO_AT(s.p.retry_budget.min_per_second), integer<std::uint32_t>{0}));
    k.push_back(field("retry_budget.ttl", CQLCORO_AT(s.retry_budget_ttl), duration{}));
    // Request defaults: the default profile's, applied by reload_config() too.
    k.push_back(field("default_consistency", CQLCORO_AT(s.p.default_consistency), cl_name{}, true));
    k.push_back(field("default_page_size", CQLCORO_AT(s.p.default_page_size), integer<std::int32_t>{1}, true));
    k.push_back(field("request_timeout", CQLCORO_AT(s.p.request_timeout), duration{}, true));
    k.push_back(field("attempt_timeout", CQLCORO_AT(s.p.attempt_timeout), duration{}, true));
    k.push_back(field("token_aware", CQLCORO_AT(s.p.token_aware), boolean{}, true));
    k.push_back(field("retry", CQLCORO_AT(s.retry), retry_names, true));
    k.push_back(field("max_attempts", CQLCORO_AT(s.p.max_attempts), at_least_1, true));
    k.push_back(field("speculative_execution.policy", CQLCORO_AT(s.speculation.policy), speculation_names, true));
    k.push_back(field("speculative_execution.delay", CQLCORO_AT(s.speculation.delay), duration{}, true));
    k.push_back(field("speculative_execution.max", CQLCORO_AT(s.speculation.max), at_least_1, true));
    k.push_back(field("speculative_execution.percentile", CQLCORO_AT(s.speculation.percentile), real{0}, true));
    k.push_back(field("speculative_execution.floor", CQLCORO_AT(s.speculation.floor), duration{}, true));
    k.push_back(field("speculative_execution.fallback", CQLCORO_AT(s.speculation.fallback), duration{}, true));
    k.push_back(field("speculative_execution.min_samples", CQLCORO_AT(s.speculation.min_samples), integer<std::uint64_t>{0}, true));
    return k;
}

// A profile's keys, on a profile_state.
std::vector<detail::profile_entry> make_profile_keys() {
    using detail::profile_entry;
    using detail::profile_state;
    std::vector<profile_entry> k;
    auto add = [&](std::string key, auto access, auto conv) {
        profile_entry e;
        e.key = std::move(key);
        e.read = [access, conv](const json::value& v, profile_state& s, std::string_view source, const std::string& path) {
            access(s) = conv.from(v, origin{source, path});
        };
        k.push_back(std::move(e));
    };
#define CQLCORO_PAT(expr) [](profile_state & s) -> auto& { return expr; }
    add("inherits", CQLCORO_PAT(s.e.inherits), text{});
    add("consistency", CQLCORO_PAT(s.e.consistency.emplace()), cl_name{});
    add("serial_consistency", CQLCORO_PAT(s.e.serial_consistency.emplace()), cl_name{});
    add("request_timeout", CQLCORO_PAT(s.e.request_timeout.emplace()), duration{});
    add("attempt_timeout", CQLCORO_PAT(s.e.attempt_timeout.emplace()), duration{});
    add("page_size", CQLCORO_PAT(s.e.page_size.emplace()), integer<std::int32_t>{1});
    add("retry", CQLCORO_PAT(s.retry.emplace()), retry_names);
    add("max_attempts", CQLCORO_PAT(s.e.max_attempts.emplace()), integer<std::size_t>{1});
    add("speculative_execution.policy", CQLCORO_PAT(s.speculation_set().policy), speculation_names);
    add("speculative_execution.delay", CQLCORO_PAT(s.speculation_set().delay), duration{});
    add("speculative_execution.max", CQLCORO_PAT(s.speculation_set().max), integer<std::size_t>{1});
    add("speculative_execution.percentile", CQLCORO_PAT(s.speculation_set().percentile), real{0});
    add("speculative_execution.floor", CQLCORO_PAT(s.speculation_set().floor), duration{});
    add("speculative_execution.fallback", CQLCORO_PAT(s.speculation_set().fallback), duration{});
    add("speculative_execution.min_samples", CQLCORO_PAT(s.speculation_set().min_samples), integer<std::uint64_t>{0});
    add("token_aware", CQLCORO_PAT(s.e.token_aware.emplace()), boolean{});
    add("idempotent", CQLCORO_PAT(s.e.idempotent.emplace()), boolean{});
    add("admission_class", CQLCORO_PAT(s.e.admission_class.emplace()),
        one_of<request_class>{{{"interactive", request_class::interactive}, {"background", request_class::background}}});
#undef CQLCORO_PAT
    return k;
}

#undef CQLCORO_AT

std::shared_ptr<const retry_policy> make_retry(std::string_view name) {
    if (name == "fallthrough") return std::make_shared<fallthrough_retry_policy>();
    if (name == "downgrading") return std::make_shared<downgrading_consistency_retry_policy>();
    return std::make_shared<default_retry_policy>();
}

std::shared_ptr<const speculative_execution_policy> make_speculation(const detail::speculation_conf& c, const origin& o) {
    if (c.policy == "constant") return std::make_shared<constant_speculative_execution>(c.delay, c.max);
    if (c.policy == "adaptive") {
        if (!(c.percentile > 0 && c.percentile < 1)) bad(o, fmt::format("percentile {} must be above 0 and below 1", c.percentile));
        return std::make_shared<adaptive_speculative_execution>(
            adaptive_speculation_params{c.percentile, c.floor, c.fallback, c.min_samples, c.max});
    }
    return std::make_shared<no_speculative_execution>();
}

// Walks an object, reading each key through the table; a nested object is walked with the key's
// prefix. Unknown keys are refused with the keys that would be known there.
template <class Entry, class State>
void walk(const json::object& obj, const std::string& prefix, const std::vector<Entry>& table, State& s, std::string_view source,
          const std::string& shown_prefix) {
    for (const auto& [key, value] : obj) {
        const std::string path = prefix + std::string(key);
        const std::string where = shown_prefix + path;
        if (value.is_object()) {
            const bool group = std::any_of(table.begin(), table.end(), [&](const Entry& e) { return e.key.starts_with(path + "."); });
            if (group) {
                walk(value.get_object(), path + ".", table, s, source, shown_prefix);
                continue;
            }
        }
        auto it = std::find_if(table.begin(), table.end(), [&](const Entry& e) { return e.key == path; });
        if (it == table.end()) {
            std::string known;
            for (const auto& e : table)
                if (e.key.starts_with(prefix)) {
                    auto rest = e.key.substr(prefix.size());
                    rest = rest.substr(0, rest.find('.'));
                    if (known.find("\"" + rest + "\"") == std::string::npos) known += (known.empty() ? "\"" : ", \"") + rest + "\"";
                }
            bad(origin{source, where}, fmt::format("unknown key (the keys here: {})", known));
        }
        it->read(value, s, source, where);
    }
}

json::value parse_json(std::string_view text, std::string_view source) {
    json::parse_options opt;
    opt.allow_comments = true;
    opt.allow_trailing_commas = true;
    json::stream_parser p({}, opt);
    boost::system::error_code ec;
    const auto used = p.write_some(text.data(), text.size(), ec);
    if (!ec) p.finish(ec);
    if (ec) {
        const auto at = std::min(used, text.size());
        const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
        const auto col = at - (text.rfind('\n', at == 0 ? 0 : at - 1) == std::string_view::npos ? 0 : text.rfind('\n', at - 1) + 1) + 1;
        throw error(client_errc::invalid_configuration,
                    fmt::format("{}: line {}, column {}: not valid JSON: {}", source, line, col, ec.message()));
    }
    return p.release();
}

void apply_environment(config_state& s, const std::vector<config_entry>& table) {
    for (const auto& e : table) {
        if (e.env == no_env) continue;
        const auto name = detail::env_name(e.key);
        const char* raw = std::getenv(name.c_str());
        if (!raw) continue;
        const std::string_view text(raw);
        json::value v;
        if (e.env == env_text) v = json::string(text);
        else if (e.env == env_list) {
            json::array a;
            std::size_t from = 0;
            while (from <= text.size()) {
                auto to = text.find(',', from);
                if (to == std::string_view::npos) to = text.size();
                auto item = text.substr(from, to - from);
                while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
                while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
                if (!item.empty()) a.emplace_back(json::string(item));
                from = to + 1;
            }
            v = std::move(a);
        } else {
            boost::system::error_code ec;
            v = json::parse(text, ec);
            if (ec) v = json::string(text);  // read as a string: the entry says what it expected
        }
        e.read(v, s, "the environment", name);
    }
}

}  // namespace

namespace detail {

std::string env_name(std::string_view key) {
    std::string n = "CQLCORO_";
    for (char c : key) n += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return n;
}

const std::vector<config_entry>& config_keys() {
    static const std::vector<config_entry> keys = make_keys();
    return keys;
}

const std::vector<profile_entry>& profile_keys() {
    static const std::vector<profile_entry> keys = make_profile_keys();
    return keys;
}

config_state state_of(const session_params& p) {
    config_state s;
    s.p = p;
    s.tls_enabled = p.tls.has_value();
    if (p.tls) s.tls = *p.tls;
    s.retry_budget_ttl = p.retry_budget.ttl;
    if (dynamic_cast<const fallthrough_retry_policy*>(p.retry.get())) s.retry = "fallthrough";
    else if (dynamic_cast<const downgrading_consistency_retry_policy*>(p.retry.get())) s.retry = "downgrading";
    else s.retry = "default";
    if (dynamic_cast<const constant_speculative_execution*>(p.speculative_execution.get())) s.speculation.policy = "constant";
    else if (dynamic_cast<const adaptive_speculative_execution*>(p.speculative_execution.get())) s.speculation.policy = "adaptive";
    return s;
}

session_params finish(config_state s, std::string_view source) {
    auto& p = s.p;
    if (s.tls_enabled) {
        s.tls.context.reset();
        p.tls = s.tls;
    } else {
        p.tls.reset();
    }
    if (!s.username.empty()) p.auth = plain_text(s.username, s.password);
    else if (!s.password.empty()) bad(origin{source, "auth.password"}, "a password without a username: set auth.username too");
    if (s.retry_budget_ttl.count() % 1000 != 0 || s.retry_budget_ttl < std::chrono::seconds(1) || s.retry_budget_ttl > std::chrono::seconds(60))
        bad(origin{source, "retry_budget.ttl"}, "expected whole seconds from \"1s\" to \"60s\"");
    p.retry_budget.ttl = std::chrono::duration_cast<std::chrono::seconds>(s.retry_budget_ttl);
    p.retry = make_retry(s.retry);
    p.speculative_execution = make_speculation(s.speculation, origin{source, "speculative_execution"});
    for (auto& [name, ps] : s.profiles) {
        if (ps.retry) ps.e.retry = make_retry(*ps.retry);
        if (ps.speculation) ps.e.speculative_execution = make_speculation(*ps.speculation, origin{source, "profiles." + name + ".speculative_execution"});
        p.profiles[name] = ps.e;
    }
    return p;
}

}  // namespace detail

std::vector<std::pair<std::string, std::string>> config_environment_keys() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : detail::config_keys())
        if (e.env != no_env) out.emplace_back(detail::env_name(e.key), e.key);
    return out;
}

namespace detail {

config_state read_state(std::string_view text, std::string_view name, bool environment) {
    const auto root = parse_json(text, name);
    if (!root.is_object()) bad(origin{name, "(the top)"}, fmt::format("expected an object of keys, got {}", shown(root)));
    auto s = detail::state_of(session_params{});
    json::object rest = root.get_object();
    if (auto* profiles = rest.if_contains("profiles")) {
        if (!profiles->is_object()) bad(origin{name, "profiles"}, fmt::format("expected an object of profiles by name, got {}", shown(*profiles)));
        for (const auto& [pname, body] : profiles->get_object()) {
            const std::string where = "profiles." + std::string(pname);
            if (!body.is_object()) bad(origin{name, where}, fmt::format("expected an object of options, got {}", shown(body)));
            auto& ps = s.profiles[std::string(pname)];
            walk(body.get_object(), "", detail::profile_keys(), ps, name, where + ".");
        }
        rest.erase("profiles");
    }
    walk(rest, "", detail::config_keys(), s, name, "");
    if (environment) apply_environment(s, detail::config_keys());
    return s;
}

}  // namespace detail

session_params parse_config(std::string_view text, const config_source& source, std::string_view name) {
    auto p = detail::finish(detail::read_state(text, name, source.environment), name);
    if (source.code) source.code(p);
    p.config = source;
    return p;
}

session_params load_config(const config_source& source) {
    if (source.file.empty()) return parse_config("{}", source, "<no file>");
    std::ifstream in(source.file, std::ios::binary);
    if (!in)
        throw error(client_errc::invalid_configuration,
                    fmt::format("{}: cannot be read ({}): check the path, relative to the working directory", source.file.string(),
                                std::strerror(errno)));
    std::ostringstream all;
    all << in.rdbuf();
    return parse_config(all.str(), source, source.file.string());
}

}  // namespace cqlcoro
