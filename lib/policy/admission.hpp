// The session's admission gate: permits for running requests, a bounded queue in two weighted classes,
// and a rate limit. No I/O and no timers: a waiting request is told by a callback when it holds a permit,
// and its owner keeps the deadline and the cancellation (withdraw()).
//
//   enter()      admitted: a permit is taken (lock-free while nobody waits and a permit is free);
//                queued: the request waits, and waiter::admitted() will be called, exactly once, unless
//                withdraw() takes it out first (it may be called from within enter() itself, on another
//                thread, or from leave());
//                queue_full: refused.
//   leave()      a request holding a permit ended: the permit goes to the next waiter, or back.
//   withdraw()   a waiting request gave up (deadline, cancellation): true if it was still waiting (no
//                admitted() call will come), false if its permit is already on the way.
//   reserve()    the rate limit (GCRA): when the request may start, or nothing when that is past its deadline.
//   close()      the session closes: every waiter is admitted (to fail at once as the session is closed),
//                and later requests are admitted without limit.
//
// Ordering: a request that finds others waiting joins the queue rather than overtaking them. Between
// the classes, a smooth weighted round robin: with both waiting, interactive_weight interactive starts
// for every background_weight background ones.
//
// Thread-safe: requests enter and leave on any thread. A permit freed while a request queues is never
// lost: leave() publishes the free permit before it looks for waiters, enter() publishes the waiter
// before it looks for a free permit (both sequentially consistent), so at least one of them sees the other.
#pragma once

#include <cqlcoro/admission.hpp>

#include <boost/intrusive/list.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace cqlcoro::detail {

class admission {
public:
    using clock = std::chrono::steady_clock;

    class waiter : public boost::intrusive::list_base_hook<> {
    public:
        /// This request now holds a permit. Called without the admission's lock held.
        virtual void admitted() = 0;

    protected:
        ~waiter() = default;

    private:
        friend class admission;
        bool queued_ = false;
        request_class class_ = request_class::interactive;
    };

    enum class verdict { admitted, queued, queue_full, would_miss_deadline };

    explicit admission(const admission_options& o);

    /// `deadline`: the request's; with refuse_unmeetable, a request whose expected wait (set in
    /// `expected_wait`) passes it is refused rather than queued.
    verdict enter(waiter& w, request_class c, clock::time_point now = clock::now(), clock::time_point deadline = clock::time_point::max(),
                  clock::duration* expected_wait = nullptr);
    /// enter()'s fast path, inline for the request path: a permit when there is no rate limit, nobody
    /// waits and one is free. False: call reserve() and enter().
    bool try_enter() noexcept { return interval_ns_ == 0 && waiting_.load(std::memory_order_seq_cst) == 0 && take_permit(); }
    /// `now`: for the handoff rate, when a waiter takes the permit.
    void leave(clock::time_point now = clock::now());
    bool withdraw(waiter& w);
    /// The time the rate limit lets a request start (now or later), or nullopt when that would be after
    /// `deadline` (nothing is reserved then). Always now without a rate limit.
    std::optional<clock::time_point> reserve(clock::time_point now, clock::time_point deadline);
    void close();

    admission_metrics metrics() const;
    /// Counted by the request's owner, which knows why it gave up.
    void count_timed_out() noexcept { timed_out_.fetch_add(1, std::memory_order_relaxed); }
    void count_cancelled() noexcept { cancelled_.fetch_add(1, std::memory_order_relaxed); }
    bool rate_limited() const noexcept { return interval_ns_ > 0; }

private:
    using fifo = boost::intrusive::list<waiter>;
    // A permit, if one is free.
    bool take_permit() noexcept {
        auto r = running_.load(std::memory_order_seq_cst);
        while (r < max_concurrent_)
            if (running_.compare_exchange_weak(r, r + 1, std::memory_order_seq_cst)) return true;
        return false;
    }
    void dispatch(clock::time_point now);
    void note_handoff_locked(clock::time_point now);
    waiter* pop_locked();

    const std::size_t max_concurrent_;
    const std::size_t max_queue_;
    const std::array<int, 2> weight_;
    const std::int64_t interval_ns_;  // 1 s / max_per_second; 0: no rate limit
    const std::int64_t burst_ns_;
    const bool refuse_unmeetable_;

    std::atomic<std::size_t> running_{0};
    std::atomic<std::size_t> waiting_{0};
    std::atomic<std::int64_t> tat_{0};  // GCRA: the theoretical arrival time of the next request, ns

    mutable std::mutex mutex_;
    std::array<fifo, 2> queues_;
    std::array<int, 2> credit_{};
    bool closed_ = false;
    // The rate of handoffs (a freed permit to a waiter) while requests wait, as an exponentially decayed
    // count over busy time (time constant rate_tau_s): each handoff adds 1/tau, and the sum decays with
    // the time between handoffs. A pause of the nodes thus lowers the rate by how long it lasted, not by
    // how many handoffs it spanned: a one-second stall leaves e^-1 of the rate, where an average of the
    // last intervals would take the stall for the rate itself. Time while nobody waits does not count.
    clock::time_point last_handoff_{};
    double handoff_rate_ = 0;  // decayed count / tau, per second
    double busy_s_ = 0;        // busy time observed, for the start-up correction
    std::size_t handoffs_seen_ = 0;
    // The expected interval between handoffs from the decayed rate (seconds); 0: no estimate yet.
    double handoff_interval_s_locked() const noexcept;

    std::atomic<std::uint64_t> waited_{0}, refused_queue_full_{0}, refused_rate_{0}, refused_deadline_{0}, timed_out_{0}, cancelled_{0};
};

}  // namespace cqlcoro::detail
