// Hooks on every attempt and every completed request, and the slow-request log built on the same
// points:
//
//   struct audit : cqlcoro::request_tracker {
//       void on_complete(const cqlcoro::request& r, cqlcoro::error_code ec, const cqlcoro::diagnostics& d,
//                        std::chrono::nanoseconds took) noexcept override { ... }
//   };
//   params.tracker = std::make_shared<audit>();
//   params.slow_requests.threshold = std::chrono::milliseconds(500);   // logged through params.logger
#pragma once

#include <cqlcoro/chain.hpp>
#include <cqlcoro/error.hpp>
#include <cqlcoro/log.hpp>

#include <chrono>
#include <cstddef>

namespace cqlcoro {

/// Told of each attempt and each request's end. Both run inline on the driver's thread that saw the
/// event (a connection's, or the caller's for a request refused at once), with the request's state
/// locked: keep them short, never block, and make them thread-safe when the io_context runs on
/// several threads. They may start other requests; they must not throw (noexcept).
class request_tracker {
public:
    virtual ~request_tracker() = default;
    /// An attempt ended: answered (`a.ec` empty), failed at its node, or moved on unsent. `r` is the
    /// request as it stands (its diagnostics hold the attempts before this one).
    virtual void on_attempt(const request& r, const attempt_info& a) noexcept {
        (void)r;
        (void)a;
    }
    /// The request completed, once, with `ec` (empty on success) and its diagnostics; `took` runs from
    /// execute() to now (admission, retries and speculative executions included).
    virtual void on_complete(const request& r, error_code ec, const diagnostics& d, std::chrono::nanoseconds took) noexcept {
        (void)r;
        (void)ec;
        (void)d;
        (void)took;
    }
};

/// The slow-request log (session_params::slow_requests): a request that took longer than `threshold`
/// is logged through session_params::logger, at `level`, with its time, coordinator, attempts, outcome
/// and text. Off while the threshold is 0 (the default) or there is no logger.
struct slow_request_options {
    std::chrono::milliseconds threshold{0};
    log_level level = log_level::warn;
    /// The query text is cut to this many characters ("..." marks the cut).
    std::size_t max_query_length = 500;
    /// Bound values are left out unless asked (they may hold personal data); each is cut to
    /// max_value_length characters, and at most max_values are shown.
    bool show_values = false;
    std::size_t max_value_length = 50;
    std::size_t max_values = 50;
    /// Also log failed requests (at any latency), with their error.
    bool log_failures = false;
};

}  // namespace cqlcoro
