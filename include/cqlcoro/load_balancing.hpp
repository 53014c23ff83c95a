// Load balancing: which nodes a request may use, and in which order (its query plan).
//
// A policy answers two questions. For the pools: how far is a node (local: connections_per_host,
// remote: connections_per_remote_host and only after the local nodes, ignored: no connections). For
// each request: the nodes to try, in order. The plan is lazy: the session asks for the first node when
// the request starts and for each later one only when an attempt needs it (a retry on the next node, a
// speculative execution, a node with no open connection), so a plan costs nothing beyond its first
// node on the happy path and allocates nothing.
//
// The session fills what it knows before the policy starts the plan: the usable nodes (up, with open
// connections) by distance, and the local replicas of the request's partition in ring order when the
// statement has a routing key and the token map knows its keyspace. A statement pinned to a node
// (routing_hint::node) bypasses the policy.
#pragma once

#include <cqlcoro/metadata.hpp>

#include <boost/container/small_vector.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <string_view>
#include <vector>

namespace cqlcoro {

/// A node's load as the session sees it now, for health-aware ordering.
struct node_load {
    /// Requests at its connections, orphaned stream ids (abandoned, awaiting a late answer) included.
    std::size_t in_flight = 0;
    /// How long its connections have read nothing while requests were outstanding (zero when idle or
    /// reading).
    std::chrono::steady_clock::duration silent_for{};
    /// How long since it last came up (max: up since the session knows it, or unknown).
    std::chrono::steady_clock::duration up_for = std::chrono::steady_clock::duration::max();
};

/// The nodes a plan may name, as one request sees them: immutable for the request's life. Plans name
/// nodes by their index in `nodes` (null where the session holds no node).
struct plan_nodes {
    std::vector<std::shared_ptr<const node>> nodes;
    std::vector<std::uint32_t> local, remote;  ///< usable nodes (up, with open connections) by distance
    /// Node i's load now (the session's own; a test may give its own); null: unknown, no health order.
    node_load (*load)(const plan_nodes&, std::uint32_t i) = nullptr;
};

/// One request's plan: the session fills `replicas`, the policy's start() arranges it and sets its own
/// cursor, next() walks on. Lives inside the request: no allocation for up to 8 replicas.
struct query_plan {
    static constexpr std::uint32_t end = 0xffffffffu;
    /// The partition's replicas that are local and usable, in ring order (empty: no routing key, or
    /// the token map does not know the keyspace).
    boost::container::small_vector<std::uint32_t, 8> replicas;
    /// The request is a lightweight transaction (a conditional statement, or at SERIAL/LOCAL_SERIAL):
    /// its Paxos rounds contend less at one coordinator, so replicas should keep the ring order.
    bool lwt = false;
    /// The request's consistency is LOCAL_ONE, LOCAL_QUORUM or LOCAL_SERIAL: it names the local
    /// datacenter, so by default its plan has no remote node.
    bool local_consistency = false;
    /// A per-request counter (the session's round robin): where a rotation over the nodes starts.
    std::size_t rotation = 0;
    /// The policy's cursor, free for its own use.
    std::size_t stage = 0, pos = 0;
    /// The default policy's own: a node passed over for the first place of a tier (health order), given
    /// next (`held_last` false) or at the end of the tier; and whether the tier has named a node yet.
    std::uint32_t held = end;
    bool held_last = false, picked = false;
    /// A wrapping policy's own (latency_aware_policy): nodes it passed over, to name after the rest.
    std::array<std::uint32_t, 4> deferred{};
    std::uint8_t deferred_count = 0, deferred_pos = 0;
};

class load_balancing_policy {
public:
    virtual ~load_balancing_policy() = default;
    /// A node's distance. `local_dc`: the session's local datacenter; `remote_before`: how many nodes
    /// of `n`'s datacenter this call already answered `remote` for in the same pass (nodes are asked
    /// in metadata order whenever the cluster changes).
    virtual node_distance distance(const node& n, std::string_view local_dc, std::size_t remote_before) const = 0;
    /// Starts a request's plan (on the request path, from any thread: no allocation, no blocking).
    virtual void start(const plan_nodes& v, query_plan& plan) const = 0;
    /// The next node of the plan (an index into v.nodes), or query_plan::end when it has no more.
    virtual std::uint32_t next(const plan_nodes& v, query_plan& plan) const = 0;
    /// What an attempt on `n` taught: its latency, from the write to the answer (`ec` empty: a result;
    /// a server error category: the server's error) or to the client's time-out (`ec` request_timeout:
    /// the latency is at least this). Called on every such attempt, from any thread; the default
    /// learns nothing. Attempts that never reached a node, or whose connection broke, are not reported.
    virtual void on_attempt(const node& n, std::chrono::nanoseconds latency, const boost::system::error_code& ec) const {
        (void)n, (void)latency, (void)ec;
    }
};

/// Nodes picked by address ("10.0.0.1" or "10.0.0.1:9042"), datacenter or rack; a node matches when any
/// list names it.
struct node_filter {
    std::vector<std::string> hosts, datacenters, racks;
    bool empty() const noexcept { return hosts.empty() && datacenters.empty() && racks.empty(); }
    bool matches(const node& n) const;
};

struct default_policy_options {
    /// Nodes of each other datacenter that plans may use after the local ones (0: none).
    std::size_t remote_hosts_per_dc = 0;
    bool shuffle_replicas = true;
    /// The rack whose nodes come first within each tier: the partition's replicas in it before the
    /// other local replicas, and likewise the other local nodes. Empty: no rack preference.
    std::string local_rack;
    /// Remote datacenters whose nodes come first, in this order, before those of the other datacenters.
    std::vector<std::string> preferred_remote_dcs;
    /// Whether a request at LOCAL_ONE, LOCAL_QUORUM or LOCAL_SERIAL may go to a remote node (it then
    /// runs at that datacenter's level); false, as in the Java driver: its plan ends with the local nodes.
    bool allow_remote_for_local_consistency = false;
    /// A node is used only if `allow` is empty or names it, and `deny` does not; any other is ignored:
    /// no connections, in no plan.
    node_filter allow, deny;
    /// Health-aware order among the partition's replicas (when there are more than two, and never for a
    /// lightweight transaction), within each rack group so that rack preference is never overridden:
    /// a replica that came up less than `warm_up` ago gives up the first two places in 3 plans of 4;
    /// otherwise unhealthy replicas (busy: `busy_threshold` requests or more in flight, orphans
    /// included, and nothing read for `busy_silence`; or a black hole: requests outstanding and nothing
    /// read for `black_hole`) go to the back, when fewer than half are unhealthy; then the less loaded
    /// of the first two goes first (power of two choices).
    /// The other local nodes (each of the two local tiers with a local rack) and each remote tier (a
    /// preferred datacenter, or the others) are rotations, and health decides a tier's first place the
    /// same way between the first two of its rotation: an unhealthy node
    /// yields it to a healthy one and goes to the end of the tier; a warming one yields it in 3 plans of
    /// 4 and comes second; otherwise the one with fewer requests in flight comes first.
    struct health_options {
        bool enabled = true;
        std::size_t busy_threshold = 10;
        std::chrono::milliseconds busy_silence{200};
        std::chrono::milliseconds black_hole{2000};
        std::chrono::milliseconds warm_up{60000};
    } health;
};

/// The default: the partition's local replicas first (shuffled, except for lightweight transactions,
/// which keep the ring order), then the other local nodes round robin, then `remote_hosts_per_dc`
/// nodes of each other datacenter (the preferred ones first). With a local rack, its nodes lead each
/// of the two local tiers. Each node at most once per plan.
class default_load_balancing_policy : public load_balancing_policy {
public:
    explicit default_load_balancing_policy(std::size_t remote_hosts_per_dc = 0, bool shuffle_replicas = true) {
        o_.remote_hosts_per_dc = remote_hosts_per_dc;
        o_.shuffle_replicas = shuffle_replicas;
    }
    explicit default_load_balancing_policy(default_policy_options o) : o_(std::move(o)) {}
    node_distance distance(const node& n, std::string_view local_dc, std::size_t remote_before) const override;
    void start(const plan_nodes& v, query_plan& plan) const override;
    std::uint32_t next(const plan_nodes& v, query_plan& plan) const override;
    const default_policy_options& options() const noexcept { return o_; }

private:
    bool in_local_rack(const plan_nodes& v, std::uint32_t i) const { return v.nodes[i] && v.nodes[i]->rack == o_.local_rack; }
    void order_by_health(const plan_nodes& v, std::uint32_t* first, std::uint32_t* last) const;
    bool is_unhealthy(const node_load& l) const noexcept;
    template <class Candidate>
    std::uint32_t next_in_tier(const plan_nodes& v, query_plan& plan, const std::vector<std::uint32_t>& list, Candidate candidate) const;
    /// Whether `b` should take the first place of a tier from `a`; `a_last`: `a` then goes to its end.
    bool second_first(const plan_nodes& v, std::uint32_t a, std::uint32_t b, bool& a_last) const;
    default_policy_options o_;
};

struct latency_aware_options {
    /// A node whose average latency is above `exclusion_threshold` times the fastest node's is passed
    /// over: named after every other node of the plan.
    double exclusion_threshold = 2.0;
    /// The time scale of the average: a sample weighs more the longer it follows the previous one
    /// (an average after a pause of `scale` gives the new sample about a third of the weight).
    std::chrono::milliseconds scale{100};
    /// A passed-over node is tried again once this long has gone by without a sample from it.
    std::chrono::milliseconds retry_period{10000};
    /// How often the fastest node's average is recomputed (on the request path, by one request); a
    /// new fastest average counts at once.
    std::chrono::milliseconds update_rate{100};
    /// Samples a node needs before its average counts.
    std::size_t min_measured = 50;
};

/// Latency-aware order (opt-in): wraps another policy and moves the nodes whose average latency is far
/// above the fastest node's to the end of each plan, the DataStax C++ and Java 3 drivers' rule (their
/// defaults too), except that it learns from every attempt that reached a node: results, server
/// errors, and client time-outs (which those drivers never see, so a node that stops answering never
/// looks slow to them). It can move a slow replica behind a fast non-replica: a coordinator that
/// answers quickly beats a replica that does not. At most four nodes per plan are passed over (the rest
/// keep their place). Costs a map lookup per node named, so leave it off unless latencies differ.
class latency_aware_policy : public load_balancing_policy {
public:
    explicit latency_aware_policy(std::shared_ptr<const load_balancing_policy> child, latency_aware_options o = {});
    ~latency_aware_policy() override;
    node_distance distance(const node& n, std::string_view local_dc, std::size_t remote_before) const override;
    void start(const plan_nodes& v, query_plan& plan) const override;
    std::uint32_t next(const plan_nodes& v, query_plan& plan) const override;
    void on_attempt(const node& n, std::chrono::nanoseconds latency, const boost::system::error_code& ec) const override;

    /// A node's average as the policy sees it now (nanoseconds; negative: fewer than min_measured
    /// samples), and whether plans pass it over.
    struct node_average {
        std::int64_t average_ns = -1;
        std::uint64_t measured = 0;
        bool excluded = false;
    };
    node_average average(const node& n) const;
    const latency_aware_options& options() const noexcept { return o_; }
    const std::shared_ptr<const load_balancing_policy>& child() const noexcept { return child_; }

private:
    struct entry;
    entry* find(const node& n) const;
    bool excluded(const entry& e, std::int64_t now_ns) const;
    void refresh_min(std::int64_t now_ns) const;

    std::shared_ptr<const load_balancing_policy> child_;
    latency_aware_options o_;
    mutable std::shared_mutex mutex_;
    mutable std::unordered_map<std::string, std::unique_ptr<entry>> entries_;  // by node endpoint
    mutable std::atomic<std::int64_t> min_ns_{-1}, next_refresh_ns_{0};
};

}  // namespace cqlcoro
