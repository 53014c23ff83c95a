// A session-wide budget for retries and speculative executions, as Finagle's RetryBudget: each request
// deposits, each retry or hedge withdraws, and deposits expire after a window. So retries stay within
// `ratio` of the requests of the last `ttl` (20% of 10 s by default), plus `min_per_second` always,
// and a failing cluster does not get a retry storm on top of its load. Retries of requests that were
// never sent are free and do not come here.
//
// Lock-free: a ring of one-second slots of atomic counters. Under heavy contention a withdrawal may
// overdraw by the few that raced it; the budget is a bound on load, not an account.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace cqlcoro {

struct retry_budget_params {
    double ratio = 0.2;                 ///< retries allowed per request deposited (0: only the minimum)
    std::uint32_t min_per_second = 10;  ///< retries allowed even without requests
    std::chrono::seconds ttl{10};       ///< how long a deposit counts (1 to 60 s)
};

class retry_budget {
public:
    using clock = std::chrono::steady_clock;

    explicit retry_budget(retry_budget_params p = {}) noexcept;

    /// A logical request began (retries and hedges do not deposit).
    void deposit(clock::time_point now) noexcept;
    /// A retry or hedge wants to go: true if the budget allows it (and charges it), false if denied.
    bool try_withdraw(clock::time_point now) noexcept;

    /// Retries the budget allows now, rounded down.
    std::int64_t available(clock::time_point now) const noexcept;
    std::uint64_t withdrawals() const noexcept { return withdrawn_.load(std::memory_order_relaxed); }
    std::uint64_t denials() const noexcept { return denied_.load(std::memory_order_relaxed); }

private:
    static constexpr std::size_t max_slots = 60;
    static constexpr std::int64_t scale = 1000;  // fixed point: one deposit is `scale`
    struct slot {
        std::atomic<std::int64_t> second{-1};  // which second the value belongs to
        std::atomic<std::int64_t> value{0};
    };
    static std::int64_t second_of(clock::time_point t) noexcept {
        return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    }
    void add(clock::time_point now, std::int64_t amount) noexcept;
    std::int64_t balance(std::int64_t second) const noexcept;

    std::int64_t slots_;             // ttl in seconds
    std::int64_t deposit_amount_;    // per request
    std::int64_t withdrawal_cost_;   // per retry
    std::int64_t reserve_;           // min_per_second over the window
    std::array<slot, max_slots> ring_;
    std::atomic<std::uint64_t> withdrawn_{0}, denied_{0};
};

}  // namespace cqlcoro
