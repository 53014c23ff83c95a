// Execution profiles: named sets of request options, as the Java driver's. A statement picks one by
// name; what it does not set comes from its profile, what the profile does not set from the profile it
// inherits from, and so on up to "default", whose unset options are session_params' own.
//
//   params.profiles["oltp"] = {.request_timeout = 2s, .speculative_execution = adaptive};
//   params.profiles["bulk"] = {.request_timeout = 60s, .page_size = 10000, .admission_class = request_class::background};
//   co_await session.execute(statement("SELECT ...").profile("oltp"));
//   session.set_profiles(new_profiles);   // at run time: requests in flight keep the profile they started with
//
// Precedence, lowest first: session_params < profiles["default"] < the named profile's ancestors < the
// named profile < the statement's own options.
#pragma once

#include <cqlcoro/admission.hpp>
#include <cqlcoro/consistency.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace cqlcoro {

class retry_policy;
class speculative_execution_policy;
class load_balancing_policy;

/// One profile. Every member is optional: unset, it is inherited.
struct execution_profile {
    /// The profile this one takes its unset options from; empty or "default": the default profile.
    std::string inherits;
    std::optional<cqlcoro::consistency> consistency;
    /// For the Paxos phase of conditional updates (SERIAL or LOCAL_SERIAL); unset everywhere: the
    /// server's default (SERIAL).
    std::optional<cqlcoro::consistency> serial_consistency;
    /// The whole request, every attempt and wait included.
    std::optional<std::chrono::milliseconds> request_timeout;
    /// One attempt's share (session_params::attempt_timeout); 0: none.
    std::optional<std::chrono::milliseconds> attempt_timeout;
    std::optional<std::int32_t> page_size;
    std::shared_ptr<const retry_policy> retry;
    std::optional<std::size_t> max_attempts;
    std::shared_ptr<const speculative_execution_policy> speculative_execution;
    /// The query plan of its requests (which nodes get connections stays session_params' policy's choice:
    /// a plan can only use nodes the session connects to).
    std::shared_ptr<const load_balancing_policy> load_balancing;
    std::optional<bool> token_aware;
    /// Whether its statements are idempotent when they do not say (statement::idempotent()); unset: read
    /// from the CQL text.
    std::optional<bool> idempotent;
    std::optional<request_class> admission_class;
};

/// Profiles by name. "default", when present, changes the defaults of every profile and statement.
using execution_profiles = std::map<std::string, execution_profile, std::less<>>;

}  // namespace cqlcoro
