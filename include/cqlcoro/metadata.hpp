// What the session knows about the cluster: its nodes and its schema, as immutable snapshots.
//
//   auto md = session.metadata();                       // std::shared_ptr<const cluster_metadata>
//   for (const auto& n : md->nodes()) ... n->datacenter, n->state() ...
//   if (const auto* ks = md->keyspace("shop")) ks->tables.at("orders").partition_key ...
//   auto replicas = md->replicas("shop", routing_key);  // the nodes that own a partition
//
// The session refreshes them from its control connection (system.local, system.peers[_v2], the schema
// tables) and from the server's events, and publishes each change as a new snapshot: a snapshot in
// hand never changes under its reader. A node's state (up, down) and open connections are live values.
#pragma once

#include <cqlcoro/cql_type.hpp>
#include <cqlcoro/value_types.hpp>

#include <boost/asio/ip/address.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cqlcoro {

enum class node_state : std::uint8_t {
    unknown,  ///< known from system.peers, not connected yet
    up,       ///< the session has an open connection to it (or it is ignored and not reported down)
    down,     ///< its connections failed or the cluster reported it down; reconnection is scheduled
};

/// How the load balancing policy ranks a node: connections are opened to local and remote nodes only.
enum class node_distance : std::uint8_t { local, remote, ignored };

namespace detail {
struct metadata_access;
struct node_stats;
}

std::string_view to_string(node_state s) noexcept;
std::string_view to_string(node_distance d) noexcept;

/// A node of the cluster. Its identity (host id, datacenter, rack, tokens) is fixed for a snapshot;
/// state and open connections change as the session sees them.
struct node {
    boost::asio::ip::address address;  ///< where the session connects (after address translation)
    std::uint16_t port = 9042;
    std::string endpoint;              ///< "address:port", as diagnostics and metrics name it
    boost::asio::ip::address broadcast_rpc_address;  ///< as the cluster lists it (before translation)
    uuid host_id{};
    std::string datacenter;
    std::string rack;
    std::string release_version;
    std::optional<uuid> schema_version;
    std::vector<std::string> tokens;

    node_state state() const noexcept { return state_.load(std::memory_order_acquire); }
    node_distance distance() const noexcept { return distance_.load(std::memory_order_acquire); }
    std::size_t open_connections() const noexcept { return open_.load(std::memory_order_relaxed); }

    node() = default;
    node(const node& o)
        : address(o.address), port(o.port), endpoint(o.endpoint), broadcast_rpc_address(o.broadcast_rpc_address), host_id(o.host_id),
          datacenter(o.datacenter), rack(o.rack), release_version(o.release_version), schema_version(o.schema_version),
          tokens(o.tokens), state_(o.state()), distance_(o.distance()), open_(o.open_connections()),
          replaced_(o.replaced_.load(std::memory_order_relaxed)), stats_(o.stats_) {}

private:
    friend struct detail::metadata_access;  // the session writes these, and only these, of a published node
    std::atomic<node_state> state_{node_state::unknown};
    std::atomic<node_distance> distance_{node_distance::ignored};
    std::atomic<std::size_t> open_{0};
    std::atomic<std::uint64_t> replaced_{0};  // connections replaced for their orphaned stream ids
    std::shared_ptr<detail::node_stats> stats_;  // its metrics, shared by its snapshots (set by its pool)
};

/// A keyspace's replication, as the schema lists it.
struct replication_metadata {
    std::string strategy_class;  ///< fully qualified, e.g. org.apache.cassandra.locator.SimpleStrategy
    std::map<std::string, std::string> options;  ///< replication_factor, or per-datacenter factors
};

enum class column_kind : std::uint8_t { partition_key, clustering, regular, static_, compact_value };
std::string_view to_string(column_kind k) noexcept;

struct column_metadata {
    std::string name;
    cql_type type;
    std::string type_text;  ///< the CQL type as text (frozen<...> included)
    column_kind kind = column_kind::regular;
    int position = -1;      ///< within the partition key or the clustering columns; -1 for the others
    bool descending = false;  ///< clustering order
};

struct index_metadata {
    std::string name;
    std::string kind;     ///< KEYS, COMPOSITES, CUSTOM
    std::string target;   ///< the indexed column (or the expression on it)
    std::map<std::string, std::string> options;
};

struct table_metadata {
    std::string keyspace;
    std::string name;
    std::vector<column_metadata> columns;      ///< partition key, clustering columns, then the others by name
    std::vector<std::string> partition_key;    ///< in order
    std::vector<std::string> clustering;       ///< in order
    std::vector<index_metadata> indexes;
    std::map<std::string, std::string> options;  ///< comment, compaction, ... as the schema lists them (text)
    bool is_view = false;
    std::string base_table;       ///< views: the table it selects from
    std::string where_clause;     ///< views
    const column_metadata* column(std::string_view name) const noexcept;
};

struct user_type_metadata {
    std::string keyspace;
    std::string name;
    std::vector<std::pair<std::string, std::string>> fields;  ///< name, CQL type text
};

struct function_metadata {
    std::string keyspace;
    std::string name;
    std::vector<std::string> argument_names;
    std::vector<std::string> argument_types;  ///< CQL type text
    std::string return_type;
    std::string language;
    std::string body;
    bool called_on_null_input = false;
    /// "name(type1,type2)": how keyspace_metadata::functions keys it (overloads differ by arguments).
    std::string signature() const;
};

struct aggregate_metadata {
    std::string keyspace;
    std::string name;
    std::vector<std::string> argument_types;
    std::string state_function;
    std::string state_type;
    std::string final_function;
    std::string initial_condition;
    std::string return_type;
    std::string signature() const;
};

struct keyspace_metadata {
    std::string name;
    bool durable_writes = true;
    replication_metadata replication;
    std::map<std::string, table_metadata> tables;
    std::map<std::string, table_metadata> views;
    std::map<std::string, user_type_metadata> user_types;
    std::map<std::string, function_metadata> functions;    ///< by signature()
    std::map<std::string, aggregate_metadata> aggregates;  ///< by signature()
};

class token_map;

/// One snapshot of the cluster as the session knows it.
class cluster_metadata {
public:
    const std::string& cluster_name() const noexcept { return cluster_name_; }
    const std::string& partitioner() const noexcept { return partitioner_; }
    /// Every node known (the ignored ones included).
    const std::vector<std::shared_ptr<const node>>& nodes() const noexcept { return nodes_; }
    const std::map<std::string, keyspace_metadata>& keyspaces() const noexcept { return keyspaces_; }
    /// The keyspace by name as stored (case-sensitive); nullptr when there is none.
    const keyspace_metadata* keyspace(std::string_view name) const noexcept;
    /// The nodes that hold the partition of `routing_key` (the partition key serialized as the session
    /// routes it: the value itself, or the composite form for several columns) in `keyspace`, in the
    /// order the replication strategy places them. Empty when the keyspace or the partitioner is
    /// unknown.
    std::vector<std::shared_ptr<const node>> replicas(std::string_view keyspace, std::span<const std::uint8_t> routing_key) const;
    /// The token of a routing key under the cluster's partitioner, as Cassandra prints it; empty when
    /// the partitioner is unknown.
    std::string token_of(std::span<const std::uint8_t> routing_key) const;
    /// When this snapshot's schema was read (the last refresh applied).
    std::chrono::system_clock::time_point schema_refreshed_at() const noexcept { return refreshed_; }

private:
    friend struct detail::metadata_access;  // the session builds a snapshot before anyone sees it
    std::string cluster_name_;
    std::string partitioner_;
    std::vector<std::shared_ptr<const node>> nodes_;
    std::map<std::string, keyspace_metadata> keyspaces_;
    std::shared_ptr<const token_map> tokens_;
    std::chrono::system_clock::time_point refreshed_{};
};

/// The routing key of a partition key made of several columns, as Cassandra serializes it: per
/// component, a 2-byte length, the value, and a 0 byte. One column: the value itself.
std::vector<std::uint8_t> composite_routing_key(std::span<const std::span<const std::uint8_t>> components);

/// Reconnection: the delay before each attempt to reach a node that is down.
struct reconnection_policy {
    enum class kind { exponential, constant };
    kind how = kind::exponential;
    std::chrono::milliseconds base = std::chrono::seconds(1);   ///< first delay (the only one for constant)
    std::chrono::milliseconds max = std::chrono::minutes(10);   ///< exponential: the cap
    double jitter = 0.15;  ///< exponential: each delay is moved by up to ±jitter of itself, so nodes do not reconnect in step

    static reconnection_policy exponential(std::chrono::milliseconds base, std::chrono::milliseconds max, double jitter = 0.15) {
        return {kind::exponential, base, max, jitter};
    }
    static reconnection_policy constant(std::chrono::milliseconds delay) { return {kind::constant, delay, delay, 0}; }
    /// The delay before attempt `attempt` (0-based) with `unit` in [0, 1) for the jitter.
    std::chrono::milliseconds delay(std::size_t attempt, double unit) const noexcept;
};

/// What a node state listener is told.
enum class node_event_kind : std::uint8_t { added, removed, up, down };
std::string_view to_string(node_event_kind k) noexcept;
struct node_event {
    node_event_kind kind;
    std::shared_ptr<const node> about;
};

}  // namespace cqlcoro
