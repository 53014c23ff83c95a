// The session: what applications talk to.
//
//   auto session = co_await cqlcoro::session::connect(ex, params);
//   auto rs = co_await session.execute(cqlcoro::statement("SELECT ..."));             // throws cqlcoro::error
//   auto [ec, r] = co_await session.execute(stmt, boost::asio::as_tuple(boost::asio::use_awaitable)); // no throw
//   session.execute(stmt, [](cqlcoro::error_code ec, cqlcoro::result r) { ... });      // callback
//
// Every asynchronous operation takes an Asio completion token (cqlcoro/completion.hpp); a request's
// signature is void(error_code, result), and the result carries diagnostics (hosts tried, the server's
// error with its fields) also on failure. The default token awaits and throws cqlcoro::error with those
// diagnostics. Cancellation slots work: a request not yet written is never sent; one already written
// completes with operation_aborted.
//
// Requests run through the chain (cqlcoro/chain.hpp): the application's middlewares and the built-in
// layers (the deadline, speculative execution, retries over the query plan, each node attempt) in the
// order session_params::chain gives.
// The session follows the cluster through a control connection: see cqlcoro/metadata.hpp.
#pragma once

#include <cqlcoro/admission.hpp>
#include <cqlcoro/auth.hpp>
#include <cqlcoro/chain.hpp>
#include <cqlcoro/completion.hpp>
#include <cqlcoro/config.hpp>
#include <cqlcoro/detail/erased_handler.hpp>
#include <cqlcoro/consistency.hpp>
#include <cqlcoro/error.hpp>
#include <cqlcoro/fan_out.hpp>
#include <cqlcoro/load_balancing.hpp>
#include <cqlcoro/log.hpp>
#include <cqlcoro/metadata.hpp>
#include <cqlcoro/metrics.hpp>
#include <cqlcoro/pager.hpp>
#include <cqlcoro/profile.hpp>
#include <cqlcoro/request_tracker.hpp>
#include <cqlcoro/result.hpp>
#include <cqlcoro/retry_budget.hpp>
#include <cqlcoro/retry_policy.hpp>
#include <cqlcoro/speculative_execution.hpp>
#include <cqlcoro/statement.hpp>
#include <cqlcoro/stream_options.hpp>
#include <cqlcoro/tls.hpp>
#include <cqlcoro/trace.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace cqlcoro {

enum class compression { none, lz4, snappy };

struct session_params {
    /// Hosts to connect to (names are resolved). Port: `port`.
    std::vector<std::string> contact_points{"127.0.0.1"};
    std::uint16_t port = 9042;
    std::shared_ptr<auth_provider> auth;  ///< plain_text(user, password), or your own
    std::optional<tls_options> tls;
    cqlcoro::compression compression = compression::none;
    std::string keyspace;                 ///< USE on every connection (as stored: case-sensitive)
    /// 3, 4 or 5: exactly that version (connect fails, naming the versions the server offers, if it
    /// does not speak it); 0: the highest both sides speak.
    std::uint8_t protocol_version = 0;
    std::size_t connections_per_host = 1;
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
    std::chrono::milliseconds request_timeout = std::chrono::seconds(12);  ///< per request, all attempts included; statements may override
    std::chrono::milliseconds heartbeat_interval = std::chrono::seconds(30);
    /// Abandoned requests (cancelled or timed out after their frame was written) whose stream ids wait
    /// for late answers, per connection, beyond which the connection is replaced: a new one is opened
    /// first, then the old one drains. Three quarters of the 32768 stream ids by default, as in the Java
    /// driver.
    std::size_t orphan_budget = 24576;
    /// Requests in flight per connection: the stream ids it uses (1 to 32768, the protocol's limit). When
    /// every connection of every node a request's plan offers has none free, the request waits for the
    /// first to come free, within its deadline, rather than fail. A lower limit also lowers the orphan
    /// budget to three quarters of it.
    std::size_t max_requests_per_connection = 32768;
    /// The largest frame body (after decompression) a connection accepts from a node, in bytes: 4 KiB
    /// to 2 GiB - 1. A longer one, or a compressed body that declares more, is refused before anything
    /// is allocated for it, and the connection closes (its requests fail; the pool reconnects). The
    /// default, 256 MiB, is Cassandra's own largest; raise it only for single pages that large.
    std::uint32_t max_frame_size = 256u * 1024 * 1024;
    consistency default_consistency = consistency::local_one;
    std::int32_t default_page_size = 5000;
    /// Bytes that the pages of all the session's streams (session.stream()) may hold together; a
    /// stream waits for room rather than go over it. 0: no session-wide limit (each stream is still
    /// bounded by its prefetch depth).
    std::size_t stream_memory_budget = 0;

    // ---- Cluster awareness: contact points are for bootstrap; the control connection finds the rest.
    /// The datacenter whose nodes are local; empty: the datacenter of the first contact point that answers.
    std::string local_datacenter;
    /// Nodes of each other datacenter that query plans may use after the local ones (0: none, as in
    /// the Java driver); they are `remote`, the others `ignored` (no connections).
    std::size_t remote_hosts_per_dc = 0;
    std::size_t connections_per_remote_host = 1;
    /// Remote datacenters whose nodes plans use first, in this order (then the other datacenters').
    std::vector<std::string> preferred_remote_dcs;
    /// Whether requests at LOCAL_ONE, LOCAL_QUORUM or LOCAL_SERIAL may go to remote nodes; false (as in
    /// the Java driver): they stay in the local datacenter, and fail with no_host_available when it has
    /// no usable node. Use ONE, QUORUM, ... (or set this) for requests that may fail over.
    bool allow_remote_for_local_consistency = false;
    /// The local rack: within the replicas, and within the other local nodes, its nodes come first.
    /// Empty: no rack preference.
    std::string local_rack;
    /// Node filters: a node is used only if allow_nodes is empty or names it (by address, "address:port",
    /// datacenter or rack) and deny_nodes does not. A filtered node gets no connections and is in no plan.
    node_filter allow_nodes, deny_nodes;
    /// Health-aware order among a partition's replicas (default_policy_options::health_options): warm-up
    /// of a node back from down, busy-and-silent and black-hole nodes to the back, power of two choices.
    default_policy_options::health_options health;
    /// Latency-aware order (latency_aware_policy), opt-in: when on, the session's policy (the default or
    /// `load_balancing`) is wrapped, and plans name last the nodes whose average latency is above
    /// `latency_aware.exclusion_threshold` times the fastest node's.
    bool latency_aware_enabled = false;
    latency_aware_options latency_aware;
    /// Route statements with a routing key to a replica of their partition first (replicas shuffled).
    bool token_aware = true;
    bool shuffle_replicas = true;
    /// Nodes' distances and each request's query plan (cqlcoro/load_balancing.hpp); null: the default
    /// policy with the options above (remote_hosts_per_dc, preferred_remote_dcs, local_rack, the filters,
    /// shuffle_replicas, ...).
    std::shared_ptr<const load_balancing_policy> load_balancing;
    /// The delay before each reconnection attempt to a node that is down.
    reconnection_policy reconnection = reconnection_policy::exponential(std::chrono::seconds(1), std::chrono::minutes(1));
    /// Server events are applied in batches: after `event_window` without a new one, or at once when
    /// `event_max_batch` are waiting.
    std::chrono::milliseconds event_window = std::chrono::seconds(1);
    std::size_t event_max_batch = 20;
    /// Read schema metadata (keyspaces, tables, ...); the token map needs the keyspaces' replication.
    bool schema_metadata = true;
    /// After a schema change through the session: wait (at most this long) until every up node reports
    /// the same schema version; 0: do not wait. result::schema_in_agreement() tells the outcome.
    std::chrono::milliseconds schema_agreement_timeout = std::chrono::seconds(10);
    std::chrono::milliseconds schema_agreement_interval = std::chrono::milliseconds(200);
    /// prepare() prepares on every up node, not just the one that answers; nodes coming back up (and new
    /// ones) get the session's prepared statements again, `reprepare_parallelism` at a time.
    bool prepare_on_all_hosts = true;
    bool reprepare_on_up = true;
    std::size_t reprepare_parallelism = 8;
    /// Maps the address a node advertises (system.peers) to the one the session connects to (NAT, cloud).
    /// Contact points are used as given.
    std::function<boost::asio::ip::tcp::endpoint(const boost::asio::ip::tcp::endpoint&)> address_translator;
    /// Told when nodes are added, removed, come up or go down; runs on the session's strand: keep it short.
    std::function<void(const node_event&)> on_node_event;
    /// When connect() returns: once every pool's first connection attempt has finished, each up or
    /// marked down (the default, as in the Java and DataStax C++ drivers: the first requests are
    /// routed to their replicas), or as soon as the first node has an open pool.
    enum class readiness { first_host, all_pools };
    readiness ready_when = readiness::all_pools;
    /// Where the driver's own messages go (connections replaced, nodes down and up, slow requests, the
    /// server's warnings); none: nowhere. The driver prints nothing by itself.
    log_sink logger;
    /// Messages below this level are neither formatted nor passed to the logger.
    log_level min_log_level = log_level::info;
    /// Log the warnings a server attaches to an answer (v4+: a large batch, too many tombstones, an
    /// aggregation without a partition key), at warn, with the request's text.
    bool log_server_warnings = true;
    /// Requests slower than a threshold, logged (cqlcoro/request_tracker.hpp); off by default.
    slow_request_options slow_requests;
    /// Told of every attempt and every completed request (cqlcoro/request_tracker.hpp); none by default.
    std::shared_ptr<request_tracker> tracker;

    // ---- Execution profiles (cqlcoro/profile.hpp): named sets of request options a statement picks by
    // name (statement::profile()). "default", when given, overrides the options above and below for
    // every request. session::set_profiles() replaces them at run time.
    execution_profiles profiles;

    /// Where load_config() read these parameters from, for session::reload_config(); none: set in code.
    std::optional<config_source> config;

    // ---- Admission (cqlcoro/admission.hpp): how many requests run at once, how many wait, in which order.
    admission_options admission;

    // ---- Retries (cqlcoro/retry_policy.hpp; docs/retries.md has the decision table).
    /// Decides, after each failed attempt that reached a node, whether and where to try again.
    /// fallthrough_retry_policy never retries; downgrading_consistency_retry_policy is opt-in.
    std::shared_ptr<const retry_policy> retry = std::make_shared<default_retry_policy>();
    /// Attempts per request that reached a node, the first included (moves past nodes that were never
    /// sent the request do not count).
    std::size_t max_attempts = 3;
    /// Shared by every request's retries: about 20% of the requests of the last 10 s, and at least 10 a second.
    retry_budget_params retry_budget;
    /// One attempt's share of the request timeout: past it, a written attempt is abandoned (an orphaned
    /// stream id) and counts as lost, so a hung coordinator cannot eat the whole timeout; 0: no limit.
    std::chrono::milliseconds attempt_timeout{0};
    /// Give each request a client-side write timestamp, fixed once and reused by every retry, so that a
    /// retried plain write is a true no-op (as the Java driver's timestamp generator does, but once per
    /// request rather than per attempt). A statement's own timestamp() wins.
    bool client_timestamps = true;

    // ---- Speculative execution (cqlcoro/speculative_execution.hpp): off by default.
    /// When an idempotent request has had no answer for the policy's delay after its last execution was
    /// written, the same request also goes to the next node of its plan; the first answer wins, the
    /// others are cancelled. Each speculative execution draws from the retry budget.
    std::shared_ptr<const speculative_execution_policy> speculative_execution = std::make_shared<no_speculative_execution>();

    // ---- The chain (cqlcoro/chain.hpp): the application's middlewares among the built-in layers, which
    // appear once each, in the order deadline, speculative_execution, retry.
    std::vector<chain_member> chain = default_chain();
};

namespace detail {
struct session_impl;
struct session_handle;
}  // namespace detail

/// A handle to a session: copies share it. The session lives while a handle (or a pager of it) does;
/// when the last one is destroyed without close(), the session shuts down at once, as an Asio socket
/// does: requests in flight complete with session_closed (or connection_closed_sent when already
/// written), connections and timers stop, and the io_context runs out of the session's work. close()
/// stays the graceful way. A default-constructed or moved-from session is empty: its operations
/// complete with client_errc::empty_handle.
class session {
public:
    session() = default;
    /// True when the handle holds a connected session (closed or not).
    bool valid() const noexcept { return handle_ != nullptr; }
    explicit operator bool() const noexcept { return valid(); }

    /// Connects to the contact points (connections_per_host each) on `ex`, with no threads of its own,
    /// and follows the cluster from then on (cqlcoro/metadata.hpp).
    ///
    /// - Completion: void(error_code, session). The default token throws cqlcoro::error naming each
    ///   contact point's failure (or the setting that cannot work: client_errc::invalid_configuration).
    /// - Lifetimes: `params` is copied; nothing of the caller's needs to outlive the call.
    /// - Executor: the session's timers and connections run on `ex` (its strands); the handler runs on
    ///   its associated executor, `ex` when it has none.
    /// - Cancellation: terminal cancellation stops the connect; the session is not created.
    /// - Errors: no_host_available (each host's failure in the text), authentication_failed,
    ///   tls_failed, connect_timeout, invalid_configuration.
    template <class Token = default_token>
    static auto connect(boost::asio::any_io_executor ex, session_params params, Token&& token = {}) {
        return detail::run_as_operation<session>(
            ex, [ex, p = std::move(params)]() mutable { return connect_op(ex, std::move(p)); }, std::forward<Token>(token));
    }

    /// Executes a statement, a bound prepared statement or a batch through the chain: the deadline,
    /// speculative executions, retries over the query plan (session_params::chain).
    ///
    /// - Completion: void(error_code, result); the result carries diagnostics (hosts tried, the server's
    ///   error with its fields, the outcome: not sent, rejected, failed or maybe applied) also on
    ///   failure. The default token throws cqlcoro::error with them.
    /// - Lifetimes: the statement is taken by value; the session may be destroyed before completion
    ///   (the request then completes with session_closed).
    /// - Executor: the handler runs on its associated executor (the session's when it has none); it is
    ///   never invoked inline from execute() itself.
    /// - Cancellation: terminal, partial and total. Before the request is written it is never sent;
    ///   after, it completes with operation_aborted and its stream id waits for the late answer.
    /// - Thread safety: any thread may call it, concurrently.
    /// - Errors: server errors (server_errc, with server_error_info), request_timeout,
    ///   no_host_available, connection_closed_sent (maybe applied), type errors of the values.
    template <class Token = default_token>
    auto execute(statement s, Token&& token = {}) {
        return start(request{std::move(s), {}, {}}, std::forward<Token>(token));
    }
    template <class Token = default_token>
    auto execute(bound_statement s, Token&& token = {}) {
        return start(request{std::move(s), {}, {}}, std::forward<Token>(token));
    }
    template <class Token = default_token>
    auto execute(batch b, Token&& token = {}) {
        return start(request{std::move(b), {}, {}}, std::forward<Token>(token));
    }
    template <class Token = default_token>
    auto execute(std::string query, Token&& token = {}) {
        return execute(statement(std::move(query)), std::forward<Token>(token));
    }

    /// Executes many bound statements (typically one prepared statement bound for many partition keys),
    /// grouped by replica with the token map: up to o.concurrency at once, interleaved across replica
    /// groups so that no node takes them all first, each routed to a replica of its partition, within
    /// one deadline (o.timeout); with o.batch_writes, writes that share a replica set go as unlogged
    /// batches (cqlcoro/fan_out.hpp).
    ///
    /// - Completion: void(error_code, fan_out_result): every statement's result or error, in the caller's
    ///   order; the operation itself fails only for bad options (invalid_configuration) or an empty
    ///   handle. A statement's failure does not stop the others.
    /// - Lifetimes: the statements are taken by value; the session may be destroyed meanwhile (the
    ///   statements not yet ended complete with session_closed).
    /// - Executor: the handler runs on its associated executor (the session's when it has none).
    /// - Cancellation: terminal. Requests in flight are cancelled as execute()'s are; statements not yet
    ///   sent end with operation_aborted, not sent.
    /// - Thread safety: any thread, concurrently.
    template <class Token = default_token>
    auto execute_many(std::vector<bound_statement> statements, fan_out_options o = {}, Token&& token = {}) {
        return detail::run_as_operation<fan_out_result>(
            executor_or_system(), [s = *this, v = std::move(statements), o]() mutable { return fan_out_op(std::move(s), std::move(v), o); },
            std::forward<Token>(token));
    }

    /// Streams the statement's rows page by page, fetching ahead of the reader with bounded memory (see
    /// cqlcoro/pager.hpp). Nothing is sent until the first next()/next_page().
    pager stream(statement s, stream_options o = {});
    pager stream(bound_statement s, stream_options o = {});
    /// The budget the session's streams share (session_params::stream_memory_budget), with its figures.
    std::shared_ptr<memory_budget> stream_budget() const;

    /// Prepares `query` (in the session's keyspace), or gives the cached statement. Concurrent prepares
    /// of the same text share one PREPARE; with prepare_on_all_hosts, the other up nodes are prepared too.
    ///
    /// - Completion: void(error_code, prepared_statement). The default token throws cqlcoro::error with
    ///   the server's message (a syntax error names the position) and the host.
    /// - Lifetimes: the query is copied. The session may be destroyed meanwhile (session_closed).
    /// - Executor: the handler runs on its associated executor (the session's when it has none).
    /// - Cancellation: terminal; a PREPARE already written still completes on the server and its answer
    ///   fills the cache for the next caller.
    /// - Thread safety: any thread, concurrently.
    /// - Errors: server errors (syntax_error, invalid, unauthorized, ...), request_timeout,
    ///   no_host_available, session_closed, empty_handle.
    template <class Token = default_token>
    auto prepare(std::string query, Token&& token = {}) {
        auto impl = impl_or_null();
        return detail::run_as_operation<prepared_statement>(
            executor_or_system(), [impl, q = std::move(query)]() mutable { return prepare_op(impl, std::move(q)); },
            std::forward<Token>(token));
    }

    /// Stops taking requests (new ones complete with session_closed), waits for those in flight
    /// (bounded by `timeout`: past it they complete with close_timeout), closes every connection and
    /// stops the session's timers; the io_context then runs out of the session's work.
    ///
    /// - Completion: void(error_code); it does not fail (an empty session closes at once).
    /// - Lifetimes: the session lives until completion even if every handle is destroyed meanwhile.
    /// - Executor: the handler runs on its associated executor (the session's when it has none).
    /// - Cancellation: terminal cancellation stops waiting for requests in flight (they then fail).
    /// - Thread safety: any thread; a second close() waits as the first does.
    template <class Token = default_token>
    auto close(std::chrono::milliseconds timeout = std::chrono::seconds(10), Token&& token = {}) {
        auto impl = impl_or_null();
        return detail::run_as_operation<void>(
            executor_or_system(), [impl, timeout]() mutable { return close_op(impl, timeout); }, std::forward<Token>(token));
    }

    std::uint8_t protocol_version() const noexcept;
    const session_params& params() const;
    /// The session's figures now (cqlcoro/metrics.hpp): requests with their latency histogram, errors
    /// by kind, retries, admission, and each node's counters and latency; read without stopping
    /// anything (each figure is exact on its own, not as a set). Any thread. to_prometheus() renders it.
    session_metrics metrics() const;
    /// The session's retry and outcome counters (empty for an empty handle).
    request_metrics retry_metrics() const;
    /// The admission gate's state (requests running and waiting now) and what it did so far; all zero
    /// when admission is off (session_params::admission.enabled).
    cqlcoro::admission_metrics admission_metrics() const;
    /// Replaces the execution profiles (session_params::profiles): requests started after it returns use
    /// the new set; those in flight keep the profile they started with. Any thread. Throws error with
    /// invalid_configuration, naming the profile and the option, when the set is not valid (an unknown
    /// parent, a cycle, a timeout that is not positive, ...); the old set then stays.
    void set_profiles(execution_profiles profiles);
    /// The execution profiles in use now, as given (session_params::profiles or the last set_profiles()).
    execution_profiles profiles() const;
    /// Reads the configuration again from where load_config() read it (session_params::config), and
    /// applies what can change at run time: the profiles and the request defaults (consistency, page
    /// size, timeouts, retry policy and attempts, speculative execution, token awareness), as
    /// set_profiles() does. Returns the keys whose new values take effect only at the next connect (the
    /// values in use stay). Throws error with invalid_configuration when the file is not valid, or
    /// when the session's parameters came from code (no config); nothing is then changed.
    std::vector<std::string> reload_config();
    /// The cluster as the session knows it now: nodes (with their state), schema, token map. An immutable
    /// snapshot; call again for a later one.
    std::shared_ptr<const cluster_metadata> metadata() const;

    /// Waits (at most `timeout`) until every up node reports the same schema version as the control
    /// connection's node.
    ///
    /// - Completion: void(error_code, bool): true when they agree, false when `timeout` passed first.
    /// - Executor: the handler runs on its associated executor (the session's when it has none).
    /// - Cancellation: terminal; the wait stops.
    /// - Thread safety: any thread, concurrently.
    /// - Errors: session_closed, empty_handle; a node that cannot be asked counts as disagreeing.
    template <class Token = default_token>
    auto check_schema_agreement(std::chrono::milliseconds timeout = std::chrono::seconds(10), Token&& token = {}) {
        auto impl = impl_or_null();
        return detail::run_as_operation<bool>(
            executor_or_system(), [impl, timeout]() mutable { return schema_agreement_op(impl, timeout); },
            std::forward<Token>(token));
    }

    /// The trace of a request executed with tracing(true), by its result's tracing_id(). The server
    /// writes the trace after answering: this reads system_traces (through execute(), so the query plan,
    /// retries and timeouts apply) until the trace is complete.
    ///
    /// - Completion: void(error_code, query_trace).
    /// - Executor: the handler runs on its associated executor (the session's when it has none).
    /// - Cancellation: terminal; the reads stop.
    /// - Errors: request_timeout, saying so, when the trace is not complete after o.attempts reads;
    ///   those of execute().
    template <class Token = default_token>
    auto fetch_trace(uuid tracing_id, trace_options o = {}, Token&& token = {}) {
        return detail::run_as_operation<query_trace>(
            executor_or_system(), [s = *this, tracing_id, o]() mutable { return fetch_trace_op(std::move(s), tracing_id, o); },
            std::forward<Token>(token));
    }

private:
    using handler_t = detail::erased_handler;

    // The initiation names its executor, so token adapters such as cancel_after can run timers on it.
    struct initiation {
        std::shared_ptr<detail::session_impl> impl;
        using executor_type = boost::asio::any_io_executor;
        executor_type get_executor() const noexcept;
        template <class Handler>
        void operator()(Handler&& handler, request req) const {
            launch(impl, std::move(req), handler_t(std::forward<Handler>(handler)));
        }
    };

    template <class Token>
    auto start(request r, Token&& token) {
        return boost::asio::async_initiate<Token, void(error_code, result)>(initiation{impl_or_null()}, token, std::move(r));
    }
    static void launch(const std::shared_ptr<detail::session_impl>& impl, request r, handler_t handler);
    static boost::asio::awaitable<session> connect_op(boost::asio::any_io_executor ex, session_params params);
    static boost::asio::awaitable<prepared_statement> prepare_op(std::shared_ptr<detail::session_impl> impl, std::string query);
    static boost::asio::awaitable<void> close_op(std::shared_ptr<detail::session_impl> impl, std::chrono::milliseconds timeout);
    static boost::asio::awaitable<bool> schema_agreement_op(std::shared_ptr<detail::session_impl> impl,
                                                            std::chrono::milliseconds timeout);
    static boost::asio::awaitable<query_trace> fetch_trace_op(session s, uuid tracing_id, trace_options o);
    static boost::asio::awaitable<fan_out_result> fan_out_op(session s, std::vector<bound_statement> statements, fan_out_options o);
    /// The session's executor, or the system executor for an empty handle (whose operations fail at once).
    boost::asio::any_io_executor executor_or_system() const noexcept;
    const std::shared_ptr<detail::session_impl>& impl_or_null() const noexcept;
    /// The session, or throws empty_handle.
    detail::session_impl& impl() const;

    std::shared_ptr<detail::session_handle> handle_;
};

}  // namespace cqlcoro
