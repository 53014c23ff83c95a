#include <cqlcoro/retry_budget.hpp>

#include <algorithm>
#include <cmath>

namespace cqlcoro {

retry_budget::retry_budget(retry_budget_params p) noexcept
    : slots_(std::clamp<std::int64_t>(p.ttl.count(), 1, max_slots)),
      deposit_amount_(p.ratio > 0 ? scale : 0),
      // ratio 0.2: five deposits pay for one retry; with no ratio, only the reserve pays.
      withdrawal_cost_(p.ratio > 0 ? static_cast<std::int64_t>(std::llround(static_cast<double>(scale) / std::min(p.ratio, 1000.0))) : scale),
      reserve_(static_cast<std::int64_t>(p.min_per_second) * slots_ * withdrawal_cost_) {
    if (withdrawal_cost_ <= 0) withdrawal_cost_ = 1;
}

void retry_budget::add(clock::time_point now, std::int64_t amount) noexcept {
    const auto sec = second_of(now);
    auto& s = ring_[static_cast<std::size_t>(sec % slots_)];
    auto seen = s.second.load(std::memory_order_acquire);
    if (seen != sec) {
        // The slot holds an expired second: the first to notice starts it afresh.
        if (s.second.compare_exchange_strong(seen, sec, std::memory_order_acq_rel)) s.value.store(0, std::memory_order_release);
    }
    s.value.fetch_add(amount, std::memory_order_acq_rel);
}

std::int64_t retry_budget::balance(std::int64_t sec) const noexcept {
    std::int64_t sum = reserve_;
    for (std::int64_t i = 0; i < slots_; ++i) {
        const auto& s = ring_[static_cast<std::size_t>(i)];
        const auto at = s.second.load(std::memory_order_acquire);
        if (at > sec - slots_ && at <= sec) sum += s.value.load(std::memory_order_acquire);
    }
    return sum;
}

void retry_budget::deposit(clock::time_point now) noexcept {
    if (deposit_amount_ > 0) add(now, deposit_amount_);
}

bool retry_budget::try_withdraw(clock::time_point now) noexcept {
    if (balance(second_of(now)) < withdrawal_cost_) {
        denied_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    add(now, -withdrawal_cost_);
    withdrawn_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

std::int64_t retry_budget::available(clock::time_point now) const noexcept {
    return std::max<std::int64_t>(0, balance(second_of(now)) / withdrawal_cost_);
}

}  // namespace cqlcoro
