#include "pool/pool_fsm.hpp"

#include "policy/error_class.hpp"

#include <algorithm>

namespace cqlcoro::detail {

pool_status pool_fsm::status() const noexcept {
    if (stopped_) return pool_status::stopped;
    if (target_ == 0) return pool_status::idle;
    if (retry_armed_) return pool_status::backing_off;
    if (opening_ > 0) return pool_status::filling;
    return pool_status::ready;
}

bool pool_fsm::forget(std::uint64_t id) {
    std::erase(replacing_, id);
    const auto it = std::find(open_.begin(), open_.end(), id);
    if (it == open_.end()) return false;
    open_.erase(it);
    return true;
}

void pool_fsm::fill(pool_actions& a) {
    if (stopped_) return;
    const auto wanted = target_ + replacing_.size();
    while (open_.size() + opening_ < wanted) {
        ++opening_;
        ++a.connect;
    }
}

void pool_fsm::schedule_retry(pool_actions& a) {
    if (stopped_ || retry_armed_ || target_ == 0) return;
    retry_armed_ = true;
    a.retry_attempt = attempt_++;
}

void pool_fsm::cancel_retry(pool_actions& a) {
    if (!retry_armed_) return;
    retry_armed_ = false;
    a.cancel_retry = true;
}

void pool_fsm::mark_down(pool_actions& a, const std::string& why) {
    if (!why.empty()) last_failure_ = why;
    if (node_ != pool_node_state::down) {
        node_ = pool_node_state::down;
        a.node = pool_actions::node_change::down;
    }
    // Every open connection goes: requests find the node unusable now, not when each one fails.
    a.abort.insert(a.abort.end(), open_.begin(), open_.end());
    open_.clear();
    replacing_.clear();
    a.publish = true;
    schedule_retry(a);
}

pool_actions pool_fsm::resume(const pool_event& e) {
    using k = pool_event::kind;
    pool_actions a;
    switch (e.what) {
    case k::set_target:
        target_ = e.count;
        if (target_ == 0) {
            // Ignored: no connection at all, and nothing to wait for.
            a.abort.insert(a.abort.end(), open_.begin(), open_.end());
            open_.clear();
            replacing_.clear();
            first_attempt_done_ = true;
            cancel_retry(a);
            a.publish = true;
            break;
        }
        // A node that is down waits for its scheduled reconnection; others fill up now.
        if (node_ != pool_node_state::down || !retry_armed_) fill(a);
        break;

    case k::connected:
        if (opening_ > 0) --opening_;
        first_attempt_done_ = true;
        if (stopped_ || open_.size() >= target_ + replacing_.size()) {
            a.abort.push_back(e.id);  // not wanted any more (the target fell, or the pool was stopped)
            break;
        }
        open_.push_back(e.id);
        if (!replacing_.empty()) {
            // The replacement is up: the connection it replaces drains (its requests in flight finish).
            const auto old = replacing_.front();
            replacing_.erase(replacing_.begin());
            std::erase(open_, old);
            a.drain.push_back(old);
        }
        attempt_ = 0;
        if (node_ != pool_node_state::up) {
            node_ = pool_node_state::up;
            a.node = pool_actions::node_change::up;
        }
        a.publish = true;
        fill(a);
        break;

    case k::connect_failed:
        if (opening_ > 0) --opening_;
        first_attempt_done_ = true;
        last_failure_ = e.text;
        last_error_ = e.code;
        if (stopped_) break;
        if (open_.empty()) mark_down(a, e.text);
        else schedule_retry(a);  // the node answers on other connections: the pool is short, try again later
        break;

    case k::over_budget:
        if (stopped_ || std::find(open_.begin(), open_.end(), e.id) == open_.end()) break;
        if (std::find(replacing_.begin(), replacing_.end(), e.id) != replacing_.end()) break;
        replacing_.push_back(e.id);
        a.replacing = e.id;
        fill(a);
        break;

    case k::draining:
        a.publish = true;  // no longer picked
        break;

    case k::closed:
        if (!forget(e.id)) break;  // aborted or drained by the pool: already accounted for
        a.publish = true;
        if (stopped_) break;
        if (is_node_failure(e.code)) {
            // A reset or a dead heartbeat: the node is down now, not when gossip says so 20 s later.
            mark_down(a, e.text.empty() ? e.code.message() : e.text);
            break;
        }
        fill(a);  // closed by the server or drained: the node is fine, open another
        break;

    case k::retry_due:
        retry_armed_ = false;
        fill(a);
        break;

    case k::cluster_up:
        if (target_ == 0) {
            if (node_ != pool_node_state::up) {
                node_ = pool_node_state::up;
                a.node = pool_actions::node_change::up_quietly;
            }
            break;
        }
        if (node_ == pool_node_state::up) break;
        // Reconnect now rather than at the scheduled time, from the first delay again.
        cancel_retry(a);
        attempt_ = 0;
        fill(a);
        break;

    case k::cluster_down:
        // Open connections are the better witness: a node that still answers us stays up.
        if (!open_.empty() || opening_ > 0) break;
        if (target_ == 0) {
            if (node_ != pool_node_state::down) {
                node_ = pool_node_state::down;
                a.node = pool_actions::node_change::down_quietly;
            }
            break;
        }
        mark_down(a, "the cluster reported it down");
        break;

    case k::remove:
        stopped_ = true;
        cancel_retry(a);
        a.drain.insert(a.drain.end(), open_.begin(), open_.end());
        open_.clear();
        replacing_.clear();
        a.publish = true;
        break;

    case k::stop:
        stopped_ = true;
        cancel_retry(a);
        break;
    }
    return a;
}

}  // namespace cqlcoro::detail
