// The session's insides, shared by the request path (session.cpp) and the cluster layer (cluster.cpp).
//
// Threads: the request path runs on whatever thread calls execute(), and reads only an immutable
// routing_view (hosts, their connections, the token map), swapped atomically when anything changes.
// Everything that changes the view (the control connection, events, pools, reconnection, schema) runs
// on the session's strand.
#pragma once

#include <cqlcoro/metadata.hpp>
#include <cqlcoro/session.hpp>

#include "cluster/control_connection.hpp"
#include "cluster/schema.hpp"
#include "cluster/token_map.hpp"
#include "connection/connection.hpp"
#include "policy/admission.hpp"
#include "policy/hedge_timer.hpp"
#include "pool/node_pool.hpp"
#include "session/encode.hpp"
#include "session/profiles.hpp"
#include "session/stats.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include "../namespaces.hpp"

namespace cqlcoro {

using conn_t = connection::connection;

namespace detail {

/// The open connection with the fewest requests in flight among `all` (`get` gives each one's pointer).
template <class Range, class Get>
auto least_loaded(const Range& all, Get get) noexcept {
    decltype(get(*all.begin())) best = nullptr;
    std::size_t best_load = 0;
    for (const auto& c : all) {
        auto* t = get(c);
        if (t->state() != connection::connection_state::ready) continue;
        const auto load = t->in_flight();
        if (!best || load < best_load) {
            best = t;
            best_load = load;
        }
    }
    return best;
}

/// A host as requests see it: fixed for one view.
struct host_conns {
    std::shared_ptr<node> info;
    std::vector<std::shared_ptr<conn_t>> connections;
    /// The same connections as the request path sees them (a test puts fake ones here).
    std::vector<connection::request_target*> targets;

    const std::string& name() const noexcept { return info->endpoint; }
    /// The open connection with the fewest requests in flight (ids reserved at submit count, so
    /// concurrent pickers see each other's requests).
    conn_t* pick() const noexcept { return least_loaded(connections, [](const auto& c) { return c.get(); }); }
    /// The same choice among the request path's view of the connections.
    connection::request_target* pick_target() const noexcept { return least_loaded(targets, [](auto* c) { return c; }); }
};

/// What the request path reads: immutable, replaced as a whole. The plan_nodes part is what load
/// balancing policies see (nodes[i] is hosts[i]->info).
struct routing_view : plan_nodes {
    std::vector<std::shared_ptr<const host_conns>> hosts;  // the order of md->nodes() (the token map's host indexes)
    std::shared_ptr<const cluster_metadata> md;
    const token_map* tokens = nullptr;
    std::shared_ptr<const profile_set> profiles;  // the execution profiles (never null once published)
};

struct prepare_entry {
    explicit prepare_entry(asio::any_io_executor ex) : done(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;  // cancelled when the PREPARE completes
    bool finished = false;
    prepared_statement value;
    std::optional<detail::failure> failed;
};

/// The session's recycler of request objects (a recycler<request_op>, whose type is the request path's own).
std::shared_ptr<void> make_request_recycler();
/// A result that carries only diagnostics (a request that failed before any answer).
result failed_result(diagnostics d);
/// The code for "nothing could be connected" when each attempt failed with `common` (if they agree):
/// that code when it says more than no_host_available would (the server's or the protocol's own, an
/// authentication failure), else no_host_available.
error_code connect_failure_code(const std::optional<error_code>& common);
/// The message of a failed request: the server's error, or each host's reason, each fact once.
std::string describe_request_failure(error_code ec, const diagnostics& d);

struct session_impl : std::enable_shared_from_this<session_impl>, control_listener, pool_listener {
    asio::any_io_executor ex;
    asio::strand<asio::any_io_executor> strand;  // the cluster layer and the prepare cache
    session_params params;
    std::uint8_t version = 0;
    protocol::compression frame_compression = protocol::compression::none;
    std::atomic<std::size_t> next_host{0};
    // The chain (session_params::chain), cut at the built-in layers: the middlewares that wrap the whole
    // request (the first `deadline_at` of them before the deadline), and those that wrap each attempt.
    std::vector<middleware> request_layers;
    std::size_t deadline_at = 0;
    std::vector<middleware> attempt_layers;
    std::map<std::pair<std::string, std::string>, std::shared_ptr<prepare_entry>> prepared;
    std::atomic<bool> closing{false};
    std::atomic<bool> abandoned{false};  // the last handle went away without close(): shut down at once
    std::shared_ptr<memory_budget> stream_budget;  // streams' pages (session_params::stream_memory_budget)
    std::unique_ptr<retry_budget> retries;         // session_params::retry_budget
    std::unique_ptr<admission> gate;               // session_params::admission; null when off
    std::shared_ptr<const load_balancing_policy> lb;  // session_params::load_balancing, or the default
    std::atomic<std::int64_t> last_timestamp{0};   // the client timestamp generator's last value
    // request_metrics, as atomics.
    struct counters {
        std::atomic<std::uint64_t> retries{0}, read_timeout{0}, write_timeout{0}, unavailable{0}, overloaded{0}, connection_lost{0},
            not_sent_moves{0}, budget_denials{0}, attempts_exhausted{0}, ignored{0}, speculative{0}, speculative_wins{0},
            speculative_denials{0};
        std::array<std::atomic<std::uint64_t>, 4> failed_by_outcome{};
    } counts;
    session_stats stats;  // requests, their latency and errors (metrics.cpp reads them)
    // Set at connect: a request's completion is shown to the tracker or the slow-request log; the
    // server's warnings are logged.
    bool observing = false;
    bool warnings_logged = false;

    // The request path's view. Published whole (publish() on the strand, set_profiles() from any thread),
    // under view_mutex; read without it.
    std::atomic<std::shared_ptr<const routing_view>> view;
    std::mutex view_mutex;
    std::shared_ptr<const profile_set> profiles;  // under view_mutex: what the next view carries
    mutable std::mutex profiles_given_mutex;      // set_profiles() one at a time, and profiles() reading
    execution_profiles profiles_given;            // the set as the application gave it
    /// Replaces the execution profiles: the next requests use the new set, those in flight keep theirs.
    void set_profiles(std::shared_ptr<const profile_set> set);

    // Strand-confined cluster state.
    std::shared_ptr<const cluster_metadata> md;
    std::vector<std::shared_ptr<node_pool>> pools;  // md->nodes() order (lib/pool/)
    std::optional<cluster::partitioner> partitioner;
    std::string local_dc;
    std::string cluster_name;
    std::shared_ptr<control_connection> control;  // discovery, events and schema (lib/cluster/)
    asio::steady_timer readiness;  // cancelled whenever a pool's first attempt finishes
    std::mt19937_64 rng{std::random_device{}()};
    hedge_timer hedges;  // every request's speculative execution delay
    std::shared_ptr<void> request_ops = make_request_recycler();  // finished requests, for reuse (request_handler.cpp)

    explicit session_impl(asio::any_io_executor e)
        : ex(e), strand(asio::make_strand(e)), readiness(strand, asio::steady_timer::time_point::max()), hedges(e) {}

    session_detail::encode_context encoding() const {
        return {.version = version, .compression = frame_compression, .default_cl = params.default_consistency,
                .default_page_size = params.default_page_size};
    }
    /// What a request's frame is encoded with under `profile`.
    session_detail::encode_context encoding(const resolved_profile& profile) const {
        return {.version = version, .compression = frame_compression, .default_cl = profile.cl, .default_page_size = profile.page_size,
                .default_serial_cl = profile.serial_cl};
    }
    /// The request timeout of a statement with these options: its own, else its profile's (the default
    /// profile's for an unknown name: the request then fails on its own).
    std::chrono::milliseconds timeout_for(const statement_options& o) const {
        if (o.timeout) return *o.timeout;
        const auto v = current();
        const auto* p = v && v->profiles ? v->profiles->find(o.profile.view()) : nullptr;
        return p ? p->timeout : params.request_timeout;
    }
    std::shared_ptr<const routing_view> current() const noexcept { return view.load(std::memory_order_acquire); }
    /// A client write timestamp in microseconds: the wall clock, but always above the last one given.
    std::int64_t next_timestamp() noexcept {
        const auto now = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
        auto last = last_timestamp.load(std::memory_order_relaxed);
        for (;;) {
            const auto next = now > last ? now : last + 1;
            if (last_timestamp.compare_exchange_weak(last, next, std::memory_order_relaxed)) return next;
        }
    }
    void log(log_level level, std::string_view message) const noexcept;
    /// Whether a message at `level` would reach the logger (so it is worth formatting).
    bool logs(log_level level) const noexcept { return params.logger && level >= params.min_log_level; }
    /// The error for a request that finds the session closed, saying how it was closed.
    std::string closed_reason() const;
    /// The last handle went away without close(): stop everything at once (posted to the strand).
    void shutdown();

    // The chain: the request's middlewares and the deadline, then the built-in operation.
    asio::awaitable<outcome> run(request& r, std::size_t layer);
    /// Cuts session_params::chain into the layers above; throws invalid_configuration for a chain
    /// whose built-in layers are missing, repeated or out of order.
    void set_chain(const std::vector<chain_member>& chain);
    asio::awaitable<outcome> built_in(request& r);
    auto start_built_in(request q);

    std::size_t plan_start() noexcept { return next_host.fetch_add(1, std::memory_order_relaxed); }

    // Prepared statements (strand).
    asio::awaitable<fallible<prepared_statement>> prepare_on_strand(std::string query);
    asio::awaitable<fallible<prepared_statement>> send_prepare(const std::string& query);
    asio::awaitable<void> prepare_on_others(const std::string& query, const std::string& answered_by);
    asio::awaitable<void> reprepare_all(std::shared_ptr<node_pool> p);

    // The cluster layer (cluster.cpp), all on the strand.
    connection::connection_params connection_params_for(const std::string& host, std::uint16_t port, bool control) const;
    /// Discovery, the schema and the pools, until session_params::ready_when holds; a failure says why
    /// nothing usable could be connected, and leaves nothing open.
    asio::awaitable<fallible<void>> start();
    void stop_pools();

    // What the control connection tells the session, and asks of it (control_listener).
    connection::connection_params control_params(const std::string& host, std::uint16_t port) const override;
    void control_opened(const connection::connection& c) override;
    void nodes_read(cluster_topology t) override;
    void schema_read(std::map<std::string, keyspace_metadata> keyspaces) override;
    std::map<std::string, keyspace_metadata> known_keyspaces() const override;
    bool status_changed(const std::vector<std::pair<inet_address, std::string>>& changes) override;
    endpoint_list reconnect_candidates() const override;
    bool is_down(const uuid& host_id) const override;
    void apply_nodes(std::vector<std::shared_ptr<node>> found);
    void set_schema(std::map<std::string, keyspace_metadata> keyspaces);
    /// A new snapshot of `nodes` and `keyspaces` (the schema read at `refreshed`; none: as before).
    void rebuild_metadata(std::vector<std::shared_ptr<const node>> nodes, std::map<std::string, keyspace_metadata> keyspaces,
                          std::optional<std::chrono::system_clock::time_point> refreshed = std::nullopt);
    void update_distances();
    void notify(node_event_kind k, const std::shared_ptr<node>& n);
    void publish();
    std::shared_ptr<node_pool> pool_for(const boost::asio::ip::address& a, std::optional<std::uint16_t> port = {}) const;

    // What the pools tell the session, and ask of it (pool_listener).
    connection::connection_params pool_connection_params(const node& n) const override;
    std::chrono::milliseconds pool_retry_delay(std::size_t attempt) override;
    void pool_changed(node_pool& p) override;
    void pool_progress(node_pool& p) override;
    void pool_node_up(node_pool& p, bool first) override;
    void pool_node_down(node_pool& p) override;
    void pool_replacing(node_pool& p, const conn_t& c) override;
    void pool_connection_lost(node_pool& p, const std::string& why) override;
    bool pools_ready(session_params::readiness r) const;
};

/// What a `session` object holds: the session lives on while requests and internal tasks hold
/// session_impl, but destroying the last handle shuts it down.
struct session_handle {
    std::shared_ptr<session_impl> impl;
    explicit session_handle(std::shared_ptr<session_impl> i) : impl(std::move(i)) {}
    session_handle(const session_handle&) = delete;
    session_handle& operator=(const session_handle&) = delete;
    ~session_handle() { impl->shutdown(); }
};

}  // namespace detail
}  // namespace cqlcoro
