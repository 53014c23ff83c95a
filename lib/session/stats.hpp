// The metrics' counters as the request path writes them (relaxed atomics, no lock); session.metrics()
// reads them into cqlcoro::session_metrics (metrics.cpp).
#pragma once

#include <cqlcoro/latency_histogram.hpp>
#include <cqlcoro/metrics.hpp>

#include <array>
#include <atomic>
#include <cstdint>

namespace cqlcoro::detail {

struct error_counts {
    std::array<std::atomic<std::uint64_t>, error_kind_count> by_kind{};
    void add(const error_code& ec) noexcept { by_kind[static_cast<std::size_t>(kind_of(ec))].fetch_add(1, std::memory_order_relaxed); }
    std::array<std::uint64_t, error_kind_count> read() const noexcept {
        std::array<std::uint64_t, error_kind_count> out{};
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = by_kind[i].load(std::memory_order_relaxed);
        return out;
    }
};

/// A node's: owned by the node (shared by its snapshots), so it outlives its connections.
struct node_stats {
    latency_histogram latency;  // the attempts it answered
    error_counts errors;        // the attempts that failed there
    std::atomic<std::uint64_t> retries{0};
    std::atomic<std::uint64_t> speculative{0};
    std::atomic<std::uint64_t> retired_sent{0};  // frames written by its connections that are gone
    std::atomic<std::uint64_t> retired_unexpected{0};  // answers to nothing its gone connections dropped
    std::atomic<std::int64_t> up_since{0};       // steady_clock ticks when it last came back up; 0: never down
};

/// The session's, one per session.
struct session_stats {
    latency_histogram requests;  // every completed request
    error_counts errors;         // the failed ones, by kind
    std::atomic<std::uint64_t> started{0};
};

}  // namespace cqlcoro::detail
