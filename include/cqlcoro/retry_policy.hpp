// Retry policies: what to do when an attempt of a request fails.
//
// A request asks its policy for a per-request state (new_state(), only once something has failed, so a
// request that succeeds at once allocates nothing for it), then shows that state each failure and
// follows its decision: the same node again, the next node of the query plan, give up (rethrow), or
// give up quietly (ignore). A decision may carry a new consistency level and a delay before the retry.
//
// Failures that certainly left the data untouched because the request never reached a node (no
// connection, no free stream id, a connection closed before the write) are not the policy's business:
// the request moves to the next node by itself, for free.
//
// Every failure comes with its outcome (request_outcome): what the failed attempt may have done to the
// data. A request's outcome is the worst of its attempts', so "maybe applied" sticks.
#pragma once

#include <cqlcoro/consistency.hpp>
#include <cqlcoro/error.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace cqlcoro {

/// The outcome of an attempt that ended with `ec` (a server_errc for an ERROR answer, with `server`
/// its fields), once its frame was `written` or not, for a statement that `writes` data.
request_outcome classify_failure(const error_code& ec, const server_error_info* server, bool written, bool writes) noexcept;

/// One failed attempt, as a retry policy sees it.
struct failed_attempt {
    error_code ec;                              ///< the error: a server_errc for an ERROR answer
    const server_error_info* server = nullptr;  ///< the ERROR's fields, for server errors
    request_outcome outcome = request_outcome::failed;
    bool idempotent = false;                    ///< the statement may run twice with the effect of once
    consistency cl = consistency::local_one;    ///< the consistency of the failed attempt
    std::size_t retries = 0;                    ///< retries this execution has made so far
};

/// What to do about a failed attempt.
struct retry_decision {
    using action = retry_action;  // rethrow, retry_same_node, retry_next_node, ignore (error.hpp)
    action what = action::rethrow;
    std::optional<consistency> cl;       ///< retry at this consistency instead (reported in the result)
    std::chrono::milliseconds delay{0};  ///< wait this long first (a cancellable timer, within the deadline)

    static retry_decision rethrow() { return {}; }
    static retry_decision same_node(std::optional<consistency> at = {}) { return {action::retry_same_node, at, {}}; }
    static retry_decision next_node(std::chrono::milliseconds after = {}) { return {action::retry_next_node, {}, after}; }
    friend bool operator==(const retry_decision&, const retry_decision&) = default;
};

/// The retry decisions of one request: it may keep counts of its own between failures.
class retry_state {
public:
    virtual ~retry_state() = default;
    virtual retry_decision decide(const failed_attempt& f) = 0;
};

/// Makes a retry_state per request. Shared by every request of a session: new_state() must be
/// thread-safe.
class retry_policy {
public:
    virtual ~retry_policy() = default;
    virtual std::unique_ptr<retry_state> new_state() const = 0;
};

/// Backoff before a retry on another node after OVERLOADED or a server error: a random wait between 0
/// and min(cap, base * 2^retries) ("full jitter").
struct retry_backoff {
    std::chrono::milliseconds base{10};
    std::chrono::milliseconds cap{1000};
};

/// The default (the Java 4 driver's rules, made honest about writes and with backoff):
/// - READ_TIMEOUT: the same node once, if enough replicas answered but the data did not come; else fail.
/// - WRITE_TIMEOUT: the same node once for an idempotent write of a logged batch's batchlog; else fail
///   (the outcome says "maybe applied").
/// - UNAVAILABLE: the next node once. IS_BOOTSTRAPPING: the next node.
/// - OVERLOADED, SERVER_ERROR, TRUNCATE_ERROR, and a connection lost or an attempt timed out after the
///   write: the next node if the statement is idempotent (after the backoff for the server errors);
///   else fail.
/// - Everything else (syntax, invalid, unauthorized, read and write failures, CAS unknown, ...): fail.
class default_retry_policy final : public retry_policy {
public:
    explicit default_retry_policy(retry_backoff backoff = {}) : backoff_(backoff) {}
    std::unique_ptr<retry_state> new_state() const override;

private:
    retry_backoff backoff_;
};

/// Never retries.
class fallthrough_retry_policy final : public retry_policy {
public:
    std::unique_ptr<retry_state> new_state() const override;
};

/// The default's rules, and where too few replicas answered, the same node again at the consistency
/// they could meet (THREE, TWO or ONE), as Java's ConsistencyDowngradingRetryPolicy does. An idempotent
/// simple or batch write that timed out after at least one replica wrote it is ignored: the request
/// succeeds, and its result says it was downgraded. Opt-in: it trades consistency for availability.
class downgrading_consistency_retry_policy final : public retry_policy {
public:
    explicit downgrading_consistency_retry_policy(retry_backoff backoff = {}) : backoff_(backoff) {}
    std::unique_ptr<retry_state> new_state() const override;

private:
    retry_backoff backoff_;
};

}  // namespace cqlcoro
