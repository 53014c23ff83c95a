// Admission: how many of a session's requests run at once, how many may wait for their turn, in which
// order, and how fast they may start. On by default with generous limits, so that overload becomes a
// bounded wait rather than a storm of failures at the nodes.
//
// One permit per request as the application sees it: its retries and speculative executions take none
// (the retry budget governs those). A request that cannot start at once waits, within its deadline and
// cancellable; it is refused up front, with admission_queue_full, when max_queue requests already
// wait, with admission_deadline when the queue's expected wait is longer than its time left, or with
// admission_rate_limited when the rate limit could not let it start before its deadline.
// Its permit goes back exactly once, whichever way it ends.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace cqlcoro {

/// Which waiting requests go first: interactive ones, by weight (4 to 1 by default), without
/// starving background ones. Set per statement with admission_class().
enum class request_class : std::uint8_t { interactive, background };

struct admission_options {
    /// false: every request starts at once, without limit or queue.
    bool enabled = true;
    /// Requests running at once (from their start until their handler is called).
    std::size_t max_concurrent = 2048;
    /// Requests waiting for a permit; beyond it, a request is refused with admission_queue_full.
    std::size_t max_queue = 16384;
    /// While both classes wait, interactive_weight interactive requests start for every
    /// background_weight background ones.
    unsigned interactive_weight = 4;
    unsigned background_weight = 1;
    /// Refuse at once (admission_deadline) a request that would have to wait longer than its deadline
    /// allows, as expected from the requests ahead of it and the rate at which permits came free
    /// lately (a rate over about the last second that requests waited, which a pause of the nodes lowers
    /// by its length), instead of letting it wait and time out. Needs 8 handoffs seen; false: every
    /// request waits for its turn or its deadline.
    bool refuse_unmeetable = true;
    /// Requests that may start per second, session-wide; 0: no rate limit. A request the limit cannot
    /// let start before its deadline is refused at once with admission_rate_limited.
    double max_per_second = 0;
    /// How far ahead of the rate an idle session may run: a burst of max_per_second * burst requests
    /// starts at once.
    std::chrono::milliseconds burst{1000};
};

/// The admission's state and history, as session::admission_metrics() reports them.
struct admission_metrics {
    std::size_t running = 0;          ///< requests holding a permit now
    std::size_t waiting = 0;          ///< requests waiting for one now
    std::uint64_t waited = 0;         ///< requests that started after waiting
    std::uint64_t refused_queue_full = 0;
    std::uint64_t refused_rate = 0;   ///< refused because the rate limit would pass their deadline
    std::uint64_t refused_deadline = 0;  ///< refused because the queue's expected wait would pass their deadline
    std::uint64_t timed_out = 0;      ///< requests whose deadline passed while they waited
    std::uint64_t cancelled = 0;      ///< requests cancelled while they waited
};

}  // namespace cqlcoro
