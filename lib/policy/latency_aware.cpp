// The latency-aware wrapper: per-node averages that decay with time, learned from every attempt that
// reached a node (timeouts included), and plans that name the slow nodes last.
#include <cqlcoro/error.hpp>
#include <cqlcoro/load_balancing.hpp>

#include <cmath>
#include <mutex>
#include <stdexcept>

namespace cqlcoro {

struct latency_aware_policy::entry {
    std::mutex update;                     // serializes writers; readers load the atomics
    std::atomic<std::int64_t> average_ns{-1};
    std::atomic<std::uint64_t> measured{0};
    std::atomic<std::int64_t> stamp_ns{0}; // steady clock of the last sample
};

namespace {
std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

latency_aware_policy::latency_aware_policy(std::shared_ptr<const load_balancing_policy> child, latency_aware_options o)
    : child_(std::move(child)), o_(o) {
    if (!child_) throw std::invalid_argument("latency_aware_policy: the wrapped policy is null; pass the policy to order (for example default_load_balancing_policy)");
    if (!(o_.exclusion_threshold >= 1.0))
        throw std::invalid_argument("latency_aware_policy: exclusion_threshold must be at least 1 (2.0: twice the fastest node's average)");
    if (o_.scale.count() <= 0 || o_.update_rate.count() <= 0 || o_.retry_period.count() <= 0)
        throw std::invalid_argument("latency_aware_policy: scale, update_rate and retry_period must be positive durations");
}

latency_aware_policy::~latency_aware_policy() = default;

node_distance latency_aware_policy::distance(const node& n, std::string_view local_dc, std::size_t remote_before) const {
    return child_->distance(n, local_dc, remote_before);
}

latency_aware_policy::entry* latency_aware_policy::find(const node& n) const {
    std::shared_lock lock(mutex_);
    const auto it = entries_.find(n.endpoint);
    return it == entries_.end() ? nullptr : it->second.get();
}

bool latency_aware_policy::excluded(const entry& e, std::int64_t now) const {
    const auto min = min_ns_.load(std::memory_order_relaxed);
    const auto avg = e.average_ns.load(std::memory_order_relaxed);
    if (min <= 0 || avg < 0) return false;
    const auto retry = std::chrono::duration_cast<std::chrono::nanoseconds>(o_.retry_period).count();
    return static_cast<double>(avg) > o_.exclusion_threshold * static_cast<double>(min) &&
           now - e.stamp_ns.load(std::memory_order_relaxed) <= retry;
}

void latency_aware_policy::refresh_min(std::int64_t now) const {
    auto due = next_refresh_ns_.load(std::memory_order_relaxed);
    if (now < due) return;
    const auto rate = std::chrono::duration_cast<std::chrono::nanoseconds>(o_.update_rate).count();
    if (!next_refresh_ns_.compare_exchange_strong(due, now + rate, std::memory_order_relaxed)) return;  // another request does it
    std::int64_t min = -1;
    std::shared_lock lock(mutex_);
    for (const auto& [endpoint, e] : entries_) {
        const auto avg = e->average_ns.load(std::memory_order_relaxed);
        if (avg >= 0 && (min < 0 || avg < min)) min = avg;
    }
    min_ns_.store(min, std::memory_order_relaxed);
}

void latency_aware_policy::start(const plan_nodes& v, query_plan& plan) const {
    child_->start(v, plan);
    plan.deferred_count = plan.deferred_pos = 0;
    refresh_min(now_ns());
}

std::uint32_t latency_aware_policy::next(const plan_nodes& v, query_plan& plan) const {
    // No fastest node known yet (too few samples): the child's order as it is.
    const bool judging = min_ns_.load(std::memory_order_relaxed) > 0;
    const auto now = judging ? now_ns() : 0;
    for (;;) {
        const auto i = child_->next(v, plan);
        if (i == query_plan::end) break;
        if (judging && plan.deferred_count < plan.deferred.size() && i < v.nodes.size() && v.nodes[i]) {
            const auto* e = find(*v.nodes[i]);
            if (e && excluded(*e, now)) {
                plan.deferred[plan.deferred_count++] = i;
                continue;
            }
        }
        return i;
    }
    if (plan.deferred_pos < plan.deferred_count) return plan.deferred[plan.deferred_pos++];
    return query_plan::end;
}

void latency_aware_policy::on_attempt(const node& n, std::chrono::nanoseconds latency, const boost::system::error_code& ec) const {
    if (ec && &ec.category() != &server_category() && ec != make_error_code(client_errc::request_timeout)) return;
    entry* e = find(n);
    if (!e) {
        std::unique_lock lock(mutex_);
        auto& slot = entries_[n.endpoint];
        if (!slot) slot = std::make_unique<entry>();
        e = slot.get();
    }
    const auto now = now_ns();
    std::lock_guard lock(e->update);
    const auto measured = e->measured.load(std::memory_order_relaxed) + 1;
    e->measured.store(measured, std::memory_order_relaxed);
    const auto sample = latency.count();
    const auto previous = e->average_ns.load(std::memory_order_relaxed);
    std::int64_t average = -1;
    if (measured < o_.min_measured) {
        average = -1;  // not enough samples to count
    } else if (previous < 0) {
        average = sample;
    } else {
        // The weight of the old average falls with the time since the last sample: ln(d + 1) / d, d in
        // units of `scale` (1 at d = 0, about 0.69 at d = 1, 0.12 at d = 30).
        const auto scale = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(o_.scale).count());
        const double d = std::max(static_cast<double>(now - e->stamp_ns.load(std::memory_order_relaxed)), 1.0) / scale;
        const double w = std::log(d + 1.0) / d;
        average = static_cast<std::int64_t>((1.0 - w) * static_cast<double>(sample) + w * static_cast<double>(previous));
    }
    e->average_ns.store(average, std::memory_order_relaxed);
    e->stamp_ns.store(now, std::memory_order_relaxed);
    // A new fastest average counts at once; a fastest node that slows down is seen by the next refresh.
    if (average > 0) {
        auto min = min_ns_.load(std::memory_order_relaxed);
        while ((min <= 0 || average < min) && !min_ns_.compare_exchange_weak(min, average, std::memory_order_relaxed)) {
        }
    }
}

latency_aware_policy::node_average latency_aware_policy::average(const node& n) const {
    node_average out;
    if (const auto* e = find(n)) {
        out.average_ns = e->average_ns.load(std::memory_order_relaxed);
        out.measured = e->measured.load(std::memory_order_relaxed);
        out.excluded = excluded(*e, now_ns());
    }
    return out;
}

}  // namespace cqlcoro
