#include "policy/admission.hpp"

#include <algorithm>
#include <cmath>

namespace cqlcoro::detail {

admission::admission(const admission_options& o)
    : max_concurrent_(std::max<std::size_t>(o.max_concurrent, 1)),
      max_queue_(o.max_queue),
      weight_{static_cast<int>(std::max(o.interactive_weight, 1u)), static_cast<int>(std::max(o.background_weight, 1u))},
      interval_ns_(o.max_per_second > 0 ? std::max<std::int64_t>(1, std::llround(1e9 / o.max_per_second)) : 0),
      burst_ns_(std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(o.burst).count())),
      refuse_unmeetable_(o.refuse_unmeetable) {}

admission::verdict admission::enter(waiter& w, request_class c, clock::time_point now, clock::time_point deadline,
                                    clock::duration* expected_wait) {
    // The fast path: nobody waits and a permit is free.
    if (waiting_.load(std::memory_order_seq_cst) == 0 && take_permit()) return verdict::admitted;
    {
        std::lock_guard lock(mutex_);
        if (closed_) {
            running_.fetch_add(1, std::memory_order_seq_cst);
            return verdict::admitted;
        }
        if (waiting_.load(std::memory_order_relaxed) == 0 && take_permit()) return verdict::admitted;
        if (waiting_.load(std::memory_order_relaxed) >= max_queue_) {
            refused_queue_full_.fetch_add(1, std::memory_order_relaxed);
            return verdict::queue_full;
        }
        constexpr std::size_t min_handoffs = 8;
        const double interval_s = refuse_unmeetable_ && handoffs_seen_ >= min_handoffs ? handoff_interval_s_locked() : 0;
        if (interval_s > 0) {
            // Those ahead of it, and itself: each takes a freed permit at the recent rate.
            const auto ahead = static_cast<double>(waiting_.load(std::memory_order_relaxed)) + 1;
            const auto wait = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(std::min(ahead * interval_s, 1e9)));
            if (expected_wait) *expected_wait = wait;
            if (now + wait > deadline) {
                refused_deadline_.fetch_add(1, std::memory_order_relaxed);
                return verdict::would_miss_deadline;
            }
        }
        w.class_ = c;
        w.queued_ = true;
        queues_[static_cast<std::size_t>(c)].push_back(w);
        waiting_.fetch_add(1, std::memory_order_seq_cst);
    }
    dispatch(now);  // a permit freed while this one queued goes to the head of the queue now
    return verdict::queued;
}

void admission::leave(clock::time_point now) {
    running_.fetch_sub(1, std::memory_order_seq_cst);
    if (waiting_.load(std::memory_order_seq_cst) != 0) dispatch(now);
}

namespace {
constexpr double rate_tau_s = 1.0;  // the rate's memory: a stall of this long leaves e^-1 of it
}

void admission::note_handoff_locked(clock::time_point now) {
    if (last_handoff_ != clock::time_point{} && now >= last_handoff_) {
        const double dt = std::chrono::duration<double>(now - last_handoff_).count();
        handoff_rate_ = handoff_rate_ * std::exp(-dt / rate_tau_s) + 1 / rate_tau_s;
        busy_s_ += dt;
        ++handoffs_seen_;
    }
    // The next interval counts only if requests still wait after this one (an idle gap is no rate).
    last_handoff_ = waiting_.load(std::memory_order_relaxed) != 0 ? now : clock::time_point{};
}

double admission::handoff_interval_s_locked() const noexcept {
    if (handoff_rate_ <= 0 || busy_s_ <= 0) return 0;
    // Early on the decayed sum has seen only busy_s of time: scale it up to a full time constant.
    const double rate = handoff_rate_ / -std::expm1(-busy_s_ / rate_tau_s);
    // For handoffs every h seconds the scaled sum is 1 / (tau (1 - e^-h/tau)): solved for h, exactly.
    const double x = 1 / (rate_tau_s * rate);
    return x < 1 ? -rate_tau_s * std::log1p(-x) : 10 * rate_tau_s;
}

// Hands free permits to waiters, one at a time, each admitted() called outside the lock.
void admission::dispatch(clock::time_point now) {
    for (;;) {
        waiter* w = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (waiting_.load(std::memory_order_relaxed) == 0 || !take_permit()) return;
            w = pop_locked();
            note_handoff_locked(now);
        }
        waited_.fetch_add(1, std::memory_order_relaxed);
        w->admitted();
    }
}

// The next waiter (there is one): by smooth weighted round robin while both classes wait.
admission::waiter* admission::pop_locked() {
    std::size_t pick = queues_[0].empty() ? 1 : 0;
    if (!queues_[0].empty() && !queues_[1].empty()) {
        credit_[0] += weight_[0];
        credit_[1] += weight_[1];
        pick = credit_[0] >= credit_[1] ? 0 : 1;
        credit_[pick] -= weight_[0] + weight_[1];
    }
    waiter& w = queues_[pick].front();
    queues_[pick].pop_front();
    w.queued_ = false;
    waiting_.fetch_sub(1, std::memory_order_seq_cst);
    return &w;
}

bool admission::withdraw(waiter& w) {
    std::lock_guard lock(mutex_);
    if (!w.queued_) return false;
    auto& q = queues_[static_cast<std::size_t>(w.class_)];
    q.erase(q.iterator_to(w));
    w.queued_ = false;
    waiting_.fetch_sub(1, std::memory_order_seq_cst);
    return true;
}

std::optional<admission::clock::time_point> admission::reserve(clock::time_point now, clock::time_point deadline) {
    if (interval_ns_ == 0) return now;
    const std::int64_t t = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    const std::int64_t limit = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    auto tat = tat_.load(std::memory_order_relaxed);
    for (;;) {
        // GCRA: a request may start once the theoretical arrival time is within the burst of it; each
        // start moves that time on by one interval.
        const std::int64_t start = std::max(t, tat - burst_ns_);
        if (start > limit) {
            refused_rate_.fetch_add(1, std::memory_order_relaxed);
            return std::nullopt;
        }
        const std::int64_t next = std::max(tat, t) + interval_ns_;
        if (tat_.compare_exchange_weak(tat, next, std::memory_order_relaxed))
            return clock::time_point(std::chrono::duration_cast<clock::duration>(std::chrono::nanoseconds(start)));
    }
}

void admission::close() {
    fifo all;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        for (auto& q : queues_) {
            for (auto& w : q) w.queued_ = false;
            all.splice(all.end(), q);
        }
        const auto n = waiting_.exchange(0, std::memory_order_seq_cst);
        running_.fetch_add(n, std::memory_order_seq_cst);
    }
    while (!all.empty()) {
        waiter& w = all.front();
        all.pop_front();  // first: admitted() may let the waiter go
        w.admitted();
    }
}

admission_metrics admission::metrics() const {
    admission_metrics m;
    m.running = running_.load(std::memory_order_relaxed);
    m.waiting = waiting_.load(std::memory_order_relaxed);
    m.waited = waited_.load(std::memory_order_relaxed);
    m.refused_queue_full = refused_queue_full_.load(std::memory_order_relaxed);
    m.refused_rate = refused_rate_.load(std::memory_order_relaxed);
    m.refused_deadline = refused_deadline_.load(std::memory_order_relaxed);
    m.timed_out = timed_out_.load(std::memory_order_relaxed);
    m.cancelled = cancelled_.load(std::memory_order_relaxed);
    return m;
}

}  // namespace cqlcoro::detail
