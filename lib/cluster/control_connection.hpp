// The control connection: one connection that reads the cluster's nodes (system.local,
// system.peers_v2 or system.peers) and schema, listens for TOPOLOGY_CHANGE, STATUS_CHANGE and
// SCHEMA_CHANGE events, applies them in batches, and moves to another node when its own goes. It
// decides nothing about pools or routing: what it reads goes to its listener (the session), always on
// the strand it runs on. A test can give it any listener and a simulated cluster, without a session.
#pragma once

#include <cqlcoro/metadata.hpp>
#include <cqlcoro/result.hpp>
#include <cqlcoro/session.hpp>

#include "cluster/schema.hpp"
#include "cluster/replicas.hpp"
#include "connection/connection.hpp"
#include "failure.hpp"
#include "protocol/responses.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace cqlcoro::detail {

/// Hosts to try, in order: (name or address, port).
using endpoint_list = std::vector<std::pair<std::string, std::uint16_t>>;

/// The nodes system.local and system.peers list (the control node first), and what system.local
/// says of the cluster.
struct cluster_topology {
    std::vector<std::shared_ptr<node>> nodes;
    std::optional<cluster::partitioner> partitioner;
    std::string cluster_name;
};

/// What the control connection tells, and asks of, the session. Every call is made on the strand.
class control_listener {
public:
    virtual ~control_listener() = default;
    /// The settings of a control connection to host:port.
    virtual connection::connection_params control_params(const std::string& host, std::uint16_t port) const = 0;
    /// A control connection opened (the first one fixes the session's protocol version).
    virtual void control_opened(const connection::connection& c) = 0;
    /// The nodes were read (at connect, after a topology event, or for an unknown node that came up).
    virtual void nodes_read(cluster_topology t) = 0;
    /// The schema as it now stands: the whole of it, or what the session knew with one keyspace or
    /// element read again.
    virtual void schema_read(std::map<std::string, keyspace_metadata> keyspaces) = 0;
    /// The schema the session knows now (a partial refresh merges into it).
    virtual std::map<std::string, keyspace_metadata> known_keyspaces() const = 0;
    /// STATUS_CHANGE events of one batch, the last word per node ("UP" or "DOWN"). True when one of
    /// them names a node the session does not know that came up: the nodes are then read again.
    virtual bool status_changed(const std::vector<std::pair<inet_address, std::string>>& changes) = 0;
    /// Where to go when the control node is lost, in order of preference.
    virtual endpoint_list reconnect_candidates() const = 0;
    /// Whether the node with this host id is down: its schema version does not count for agreement.
    virtual bool is_down(const uuid& host_id) const = 0;
};

class control_connection : public std::enable_shared_from_this<control_connection> {
public:
    /// `listener` outlives every coroutine of the control connection (the session runs them while it
    /// lives); `params` is copied, as handlers posted by the connection may outlive the session.
    control_connection(asio::strand<asio::any_io_executor> strand, const session_params& params, control_listener& listener);

    /// Opens the control connection to the first of `candidates` that answers; false when none does,
    /// with each failure in `failures` and, in `common`, the code they all share (if they do).
    asio::awaitable<bool> connect(const endpoint_list& candidates, std::string& failures, std::optional<error_code>* common = nullptr);
    /// A query on the control connection: its rows, or nullopt for an ERROR answer (no such table);
    /// a failure when there is no connection or it fails.
    asio::awaitable<fallible<std::optional<result>>> query(std::string text);
    /// Reads the nodes and tells the listener. A failure (the connection failed, or the node has no
    /// system.local row) tells the listener nothing.
    asio::awaitable<fallible<void>> refresh_nodes();
    /// Reads the schema (of `keyspace` only, when given) and tells the listener.
    asio::awaitable<fallible<void>> refresh_schema(std::string keyspace = {});
    /// Reads the element a SCHEMA_CHANGE names and tells the listener.
    asio::awaitable<fallible<void>> refresh_schema_element(const protocol::schema_change& c);
    /// Reads again the version a change must reach (the coordinator's own, which moves on when later
    /// changes land there); none when it cannot be read.
    using version_source = std::function<asio::awaitable<std::optional<uuid>>()>;
    /// True once every node that is not down reports one schema version, false when `timeout` passes
    /// first. With `expected`, that version must be it: when the nodes agree on another one, `again`
    /// (if given) reads the version to reach once more, as concurrent changes move it on; the nodes
    /// agreeing on the coordinator's current version have every change it had applied.
    asio::awaitable<bool> wait_schema_agreement(std::chrono::milliseconds timeout, std::optional<uuid> expected = {}, version_source again = {});
    /// Follows the cluster until stop(): applies events in batches (session_params::event_window,
    /// event_max_batch), and when the connection is lost opens another one (reconnection policy
    /// delays between rounds) and reads everything again.
    asio::awaitable<void> run();
    /// Closes the connection and ends run().
    void stop();

    bool connected() const noexcept { return conn_ != nullptr; }
    /// "host:port" of the control node.
    const std::string& endpoint() const noexcept { return endpoint_; }
    cluster::schema_layout layout() const noexcept { return layout_; }

private:
    void on_event(protocol::event_response e);
    /// Reads each query's rows into its place, in order; the first failure ends it.
    asio::awaitable<fallible<void>> read_rows(const std::vector<std::pair<std::string, std::optional<result>*>>& wanted);
    asio::awaitable<fallible<void>> process_events(std::vector<protocol::event_response> batch);

    asio::strand<asio::any_io_executor> strand_;
    const session_params params_;
    control_listener& listener_;
    std::shared_ptr<connection::connection> conn_;
    std::string endpoint_;
    cluster::schema_layout layout_ = cluster::schema_layout::v2;
    bool peers_v2_ = true;  // until the server says it has no such table
    std::deque<protocol::event_response> events_;
    asio::steady_timer::time_point last_event_{};
    asio::steady_timer wake_;  // run()'s sleep: cancelled to wake it
    bool lost_ = false;
    bool stopped_ = false;
    std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace cqlcoro::detail
