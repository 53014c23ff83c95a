// Speculative execution (hedging): when an idempotent request has no answer after a delay, the same
// request goes to the next node of its query plan too, and the first answer wins.
//
// A policy answers one question per request: after how long (counted from the moment the previous
// execution's frame was written) should execution number n start, if at all. Only idempotent
// statements are hedged; every hedge draws from the session's retry budget.
#pragma once

#include <cqlcoro/latency_histogram.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace cqlcoro {

class speculative_execution_policy {
public:
    virtual ~speculative_execution_policy() = default;
    /// The delay before execution `n` (1 for the first speculative one); nullopt: no more executions.
    /// `first_attempts` holds the latencies of this statement's first, unhedged, successful executions
    /// (the session keeps one per prepared statement and records into it); null for a statement it does
    /// not track, such as a simple statement.
    virtual std::optional<std::chrono::milliseconds> delay(std::size_t n, const latency_histogram* first_attempts) const = 0;
};

/// Never hedges (the default).
class no_speculative_execution final : public speculative_execution_policy {
public:
    std::optional<std::chrono::milliseconds> delay(std::size_t, const latency_histogram*) const override { return std::nullopt; }
};

/// Up to `max_speculative` extra executions, each `delay` after the previous one was written.
class constant_speculative_execution final : public speculative_execution_policy {
public:
    constant_speculative_execution(std::chrono::milliseconds delay, std::size_t max_speculative = 1)
        : delay_(delay), max_(max_speculative) {}
    std::optional<std::chrono::milliseconds> delay(std::size_t n, const latency_histogram*) const override {
        if (n == 0 || n > max_) return std::nullopt;
        return delay_;
    }

private:
    std::chrono::milliseconds delay_;
    std::size_t max_;
};

struct adaptive_speculation_params {
    double percentile = 0.95;                ///< hedge after this percentile of first executions
    std::chrono::milliseconds floor{1};      ///< never sooner than this
    std::chrono::milliseconds fallback{50};  ///< the delay until `min_samples` latencies are known
    std::uint64_t min_samples = 100;
    std::size_t max_speculative = 1;
};

/// The delay is the chosen percentile of the latencies of the statement's first, unhedged, successful
/// executions (a hedge's own latency would pull the percentile down and make hedging feed itself),
/// never below the floor; the fallback until enough samples exist.
class adaptive_speculative_execution final : public speculative_execution_policy {
public:
    explicit adaptive_speculative_execution(adaptive_speculation_params p = {}) : p_(p) {}
    std::optional<std::chrono::milliseconds> delay(std::size_t n, const latency_histogram* first_attempts) const override {
        if (n == 0 || n > p_.max_speculative) return std::nullopt;
        if (!first_attempts || first_attempts->count() < p_.min_samples) return p_.fallback;
        const auto at = std::chrono::ceil<std::chrono::milliseconds>(first_attempts->percentile(p_.percentile));
        return at < p_.floor ? p_.floor : at;
    }

private:
    adaptive_speculation_params p_;
};

}  // namespace cqlcoro
