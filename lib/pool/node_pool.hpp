// A node's connection pool: the I/O shell around pool_fsm. It opens connections, arms the reconnection
// timer, aborts and drains connections, and feeds what happens back into the machine, which decides.
// It runs on the session's strand (every member function is called there, and every completion is
// posted there); the request path never touches it and sees its connections through the published view.
#pragma once

#include "connection/connection.hpp"
#include "pool/pool_fsm.hpp"

#include <cqlcoro/metadata.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <memory>
#include <utility>
#include <vector>

namespace cqlcoro::detail {

class node_pool;

/// What a pool tells its owner (the session) and asks of it; called on the strand.
class pool_listener {
public:
    virtual ~pool_listener() = default;
    /// The parameters for a new connection to `n`.
    virtual connection::connection_params pool_connection_params(const node& n) const = 0;
    /// The reconnection delay before attempt `attempt` (0 for the first after a failure).
    virtual std::chrono::milliseconds pool_retry_delay(std::size_t attempt) = 0;
    /// The pool's open connections or its node's state changed: the request path's view is stale.
    virtual void pool_changed(node_pool& p) = 0;
    /// A connect finished, either way (readiness waits on this).
    virtual void pool_progress(node_pool& p) = 0;
    /// The node came up (`first`: its state was unknown before), or went down, as the pool sees it.
    virtual void pool_node_up(node_pool& p, bool first) = 0;
    virtual void pool_node_down(node_pool& p) = 0;
    /// A connection is being replaced: it holds more orphaned stream ids than its budget.
    virtual void pool_replacing(node_pool& p, const connection::connection& c) = 0;
    /// A connection of the pool closed (not by the session): `why` is its failure, for the log.
    virtual void pool_connection_lost(node_pool& /*p*/, const std::string& /*why*/) {}
};

class node_pool : public std::enable_shared_from_this<node_pool> {
public:
    using conn_ptr = std::shared_ptr<connection::connection>;

    node_pool(asio::strand<asio::any_io_executor> strand, std::shared_ptr<node> info, std::weak_ptr<pool_listener> listener,
              std::chrono::milliseconds drain_timeout);

    /// The node as last read; a new snapshot of the same node keeps the pool and its connections.
    const std::shared_ptr<node>& info() const noexcept { return info_; }
    void set_info(std::shared_ptr<node> n);

    /// Feeds an event to the machine and does what it says.
    void resume(const pool_event& e);

    void set_target(std::size_t n) { resume(pool_event::target(n)); }
    void cluster_up() { resume(pool_event::cluster_up()); }
    void cluster_down() { resume(pool_event::cluster_down()); }
    /// The node left the cluster: its connections drain and nothing opens again.
    void remove() { resume(pool_event::remove()); }
    /// The session closes: nothing opens again. Returns every connection not yet closed (draining ones
    /// too), for the caller to close or abort.
    std::vector<conn_ptr> stop();

    /// The connections the pool counts as open, oldest first.
    std::vector<conn_ptr> connections() const;
    const pool_fsm& state() const noexcept { return fsm_; }
    bool removed() const noexcept { return fsm_.stopped(); }

private:
    void apply(pool_actions a);
    void start_connect();
    void on_state(std::uint64_t id, connection::connection_state st, error_code ec);
    conn_ptr find(std::uint64_t id) const;

    asio::strand<asio::any_io_executor> strand_;
    std::shared_ptr<node> info_;
    std::weak_ptr<pool_listener> listener_;
    std::chrono::milliseconds drain_timeout_;
    pool_fsm fsm_;
    std::vector<std::pair<std::uint64_t, conn_ptr>> conns_;  // every connection not yet closed, by id
    std::uint64_t next_id_ = 1;
    asio::steady_timer retry_;
    std::uint64_t retry_generation_ = 0;  // a timer's completion that is not the latest one's is ignored
};

}  // namespace cqlcoro::detail
