// A node's connection pool as a state machine without I/O.
//
// The machine decides; its shell (node_pool.hpp) acts. Each thing that happens to the pool (a connect
// that finished, a connection that closed, the reconnection timer, the cluster's word on the node, a new
// target from the load-balancing distance) goes in through resume(), which returns what the shell must do
// now: connects to start, connections to abort or drain, the reconnection timer to arm or cancel, the
// node's state to change, and whether the request path's view must be republished.
//
// Connections are named by ids the shell chooses. The machine counts a connection as open from the
// `connected` event until it closes or until the machine itself asks for it to be aborted or drained;
// a `closed` event for a connection it no longer counts is ignored, so each connection's end is
// handled once.
//
// Rules the machine keeps:
// - It never opens more than `target` connections, plus one for each connection being replaced.
// - A connect that fails while the pool has no open connection marks the node down; one that fails
//   while others are open only schedules a retry (the node answers, the pool is short).
// - A connection that closes with a node failure (a reset, a dead heartbeat) marks the node down now;
//   one that closes otherwise is replaced at once.
// - At most one reconnection is scheduled at a time; its attempt number grows with each failure in a
//   row and goes back to 0 on a successful connect or when the cluster says the node is up.
// - A connection over its orphan budget is replaced: a new one opens first, and the old one drains
//   only once the new one is up, so the node never goes without a usable connection meanwhile.
// - After `remove` or `stop`, nothing opens again.
#pragma once

#include <cqlcoro/error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cqlcoro::detail {

/// The pool's state as a whole (status()).
enum class pool_status {
    /// No connection is wanted: the load-balancing policy ignores the node (target 0).
    idle,
    /// Connects are under way toward the target.
    filling,
    /// The target is met and no connect is under way.
    ready,
    /// A reconnection is scheduled: the node is down, or a connect failed and the pool is short.
    backing_off,
    /// The node left the cluster or the session stopped: nothing opens again.
    stopped,
};

/// The node's state as the pool sees it.
enum class pool_node_state { unknown, up, down };

/// What happened to the pool.
struct pool_event {
    enum class kind {
        set_target,    // `count` connections are wanted now (the node's distance changed)
        connected,     // the connect for `id` succeeded
        connect_failed,  // a connect failed with `code` and `text`
        over_budget,   // connection `id` holds more orphaned stream ids than its budget allows
        draining,      // connection `id` stopped taking requests (it finishes those in flight)
        closed,        // connection `id` closed, with `code` and `text` when it failed
        retry_due,     // the reconnection timer fired
        cluster_up,    // the cluster says the node is up (STATUS_CHANGE UP)
        cluster_down,  // the cluster says the node is down (STATUS_CHANGE DOWN)
        remove,        // the node left the cluster: drain every connection, open nothing more
        stop,          // the session closes: cancel the retry; the caller closes the connections
    };
    kind what;
    std::uint64_t id = 0;
    std::size_t count = 0;
    error_code code{};
    std::string text{};

    static pool_event target(std::size_t n) { return {kind::set_target, 0, n}; }
    static pool_event connected(std::uint64_t id) { return {kind::connected, id}; }
    static pool_event connect_failed(error_code ec, std::string why) { return {kind::connect_failed, 0, 0, ec, std::move(why)}; }
    static pool_event over_budget(std::uint64_t id) { return {kind::over_budget, id}; }
    static pool_event draining(std::uint64_t id) { return {kind::draining, id}; }
    static pool_event closed(std::uint64_t id, error_code ec = {}, std::string why = {}) { return {kind::closed, id, 0, ec, std::move(why)}; }
    static pool_event retry_due() { return {kind::retry_due}; }
    static pool_event cluster_up() { return {kind::cluster_up}; }
    static pool_event cluster_down() { return {kind::cluster_down}; }
    static pool_event remove() { return {kind::remove}; }
    static pool_event stop() { return {kind::stop}; }
};

/// What the shell must do, in this order: change the node's state, abort and drain connections,
/// republish, start connects, then arm or cancel the timer.
struct pool_actions {
    enum class node_change {
        none,
        up,            // the node is up: tell the listeners (and reprepare)
        down,          // the node is down: tell the listeners
        up_quietly,    // an ignored node's state follows the cluster's word; nobody is told
        down_quietly,
    };
    node_change node = node_change::none;
    std::vector<std::uint64_t> abort;  // close now; their requests in flight fail
    std::vector<std::uint64_t> drain;  // close once their requests in flight finish
    std::optional<std::uint64_t> replacing;  // this connection is being replaced (a new one is opening)
    bool publish = false;     // the open connections or the node's state changed
    std::size_t connect = 0;  // start this many connects
    std::optional<std::size_t> retry_attempt;  // arm the reconnection timer for this attempt (0 first)
    bool cancel_retry = false;  // the armed timer is no longer wanted
};

class pool_fsm {
public:
    pool_actions resume(const pool_event& e);

    pool_status status() const noexcept;
    pool_node_state node() const noexcept { return node_; }
    /// The connections the pool counts as open, oldest first.
    const std::vector<std::uint64_t>& open() const noexcept { return open_; }
    std::size_t opening() const noexcept { return opening_; }
    std::size_t target() const noexcept { return target_; }
    bool retry_armed() const noexcept { return retry_armed_; }
    /// The pool's first connect finished, either way (or no connection is wanted).
    bool first_attempt_done() const noexcept { return first_attempt_done_; }
    bool stopped() const noexcept { return stopped_; }
    /// Why the node was last marked down or a connect last failed, and that failure's code.
    const std::string& last_failure() const noexcept { return last_failure_; }
    error_code last_error() const noexcept { return last_error_; }

    /// For a node whose identity changed (a new snapshot of it): its state carries over.
    void set_node_state(pool_node_state s) noexcept { node_ = s; }

private:
    void fill(pool_actions& a);
    void mark_down(pool_actions& a, const std::string& why);
    void schedule_retry(pool_actions& a);
    void cancel_retry(pool_actions& a);
    bool forget(std::uint64_t id);

    std::size_t target_ = 0;
    std::vector<std::uint64_t> open_;
    std::vector<std::uint64_t> replacing_;  // open connections over their orphan budget, oldest first
    std::size_t opening_ = 0;
    std::size_t attempt_ = 0;  // failed reconnections in a row
    bool retry_armed_ = false;
    bool stopped_ = false;
    bool first_attempt_done_ = false;
    pool_node_state node_ = pool_node_state::unknown;
    std::string last_failure_;
    error_code last_error_;
};

}  // namespace cqlcoro::detail
