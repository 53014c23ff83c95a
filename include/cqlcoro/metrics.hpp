// What the session did, counted as it runs, per session and per node:
//
//   const auto m = session.metrics();                  // a snapshot: cqlcoro::session_metrics
//   m.requests.count, m.requests.p99, m.errors[kind], m.retries.retries_read_timeout, m.admission.waiting
//   for (const auto& n : m.nodes) n.host, n.in_flight, n.latency.p99, n.errors[...] ...
//   std::string text = cqlcoro::to_prometheus(m);     // the Prometheus text exposition format
//
// Recording costs the request path a few relaxed atomic increments: no lock, no allocation. A node's
// counters belong to the node for as long as the session knows it; they survive its connections (and
// its pool's connections) being replaced.
#pragma once

#include <cqlcoro/admission.hpp>
#include <cqlcoro/error.hpp>
#include <cqlcoro/latency_histogram.hpp>
#include <cqlcoro/metadata.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cqlcoro {

/// What kind of failure an error is, as the metrics count it (kind_of()).
enum class error_kind : std::uint8_t {
    request_timeout,    ///< the client's deadline passed (request_timeout; an attempt_timeout at a node)
    read_timeout,       ///< the coordinator's READ_TIMEOUT
    write_timeout,      ///< WRITE_TIMEOUT (and CAS_WRITE_UNKNOWN)
    unavailable,        ///< UNAVAILABLE: too few replicas alive
    overloaded,         ///< OVERLOADED, IS_BOOTSTRAPPING, SERVER_ERROR, TRUNCATE_ERROR
    request_error,      ///< any other server error: syntax, invalid, unauthorized, unprepared, read/write failure ...
    connection,         ///< a connection lost, closed or refused, TLS, stream ids exhausted
    no_host_available,  ///< no node of the plan could take the request
    aborted,            ///< cancelled by the application
    refused,            ///< refused before it was sent: admission, a closed session, a bad configuration
    other,              ///< client-side errors: values that do not encode, malformed answers, ...
};
inline constexpr std::size_t error_kind_count = 11;
std::string_view to_string(error_kind k) noexcept;
/// The kind of an error code, for counting (never fails: unknown codes are `other`).
error_kind kind_of(const error_code& ec) noexcept;

/// A latency_histogram read once: its count, sum and percentiles (each within 1/16 of the truth).
struct latency_summary {
    std::uint64_t count = 0;
    std::chrono::microseconds sum{0};
    std::chrono::microseconds p50{0}, p95{0}, p99{0}, p999{0};
    std::chrono::microseconds max{0};  ///< the upper bound of the highest bucket in use
    /// Cumulative counts at each power of two from 128 us to about 34 s (upper bound, count at or
    /// below it): exact, as the histogram's buckets split there; what Prometheus buckets are made of.
    std::vector<std::pair<std::chrono::microseconds, std::uint64_t>> buckets;
    double mean_microseconds() const noexcept { return count ? static_cast<double>(sum.count()) / static_cast<double>(count) : 0.0; }
};
latency_summary summarize(const latency_histogram& h);

/// A node's figures, as session::metrics() reports them.
struct host_metrics {
    std::string host;                 ///< "address:port"
    std::string datacenter, rack;
    node_state state = node_state::unknown;
    node_distance distance = node_distance::ignored;
    std::size_t open_connections = 0;
    std::size_t in_flight = 0;        ///< requests accepted by its connections and not yet completed
    std::size_t orphaned_streams = 0; ///< stream ids held by abandoned requests whose answers have not arrived
    /// Frames written to its connections (heartbeats and the handshake included), over every connection
    /// it has had: a replaced connection's count stays.
    std::uint64_t requests_sent = 0;
    /// Answers that came on stream ids carrying no request, over every connection it has had: dropped.
    /// Not 0 means a broken server or proxy between (a late answer to an abandoned request is not one).
    std::uint64_t unexpected_answers = 0;
    /// Connections replaced because too many of their stream ids were orphaned (session_params::orphan_budget).
    std::uint64_t connections_replaced = 0;
    /// Attempts at this node that failed, by kind (error_kind); attempts never sent to it for want of
    /// a connection count as `connection`.
    std::array<std::uint64_t, error_kind_count> errors{};
    std::uint64_t retries = 0;                ///< retries the policy made after a failure here
    std::uint64_t speculative_executions = 0; ///< speculative executions started on it
    /// Each attempt it answered (ERROR answers included), from the write to the answer.
    latency_summary latency;
};

/// What the session's retries did, counted since it connected (each figure exact on its own).
struct request_metrics {
    std::uint64_t retries = 0;                 ///< retries the policy asked for and the request made
    std::uint64_t retries_read_timeout = 0;
    std::uint64_t retries_write_timeout = 0;
    std::uint64_t retries_unavailable = 0;
    std::uint64_t retries_overloaded = 0;      ///< OVERLOADED, SERVER_ERROR, TRUNCATE_ERROR, IS_BOOTSTRAPPING
    std::uint64_t retries_connection_lost = 0; ///< a connection lost, or an attempt timed out, after the write
    std::uint64_t not_sent_moves = 0;          ///< free moves to the next node for requests never sent
    std::uint64_t budget_denials = 0;          ///< retries the retry budget refused
    std::uint64_t attempts_exhausted = 0;      ///< retries refused at max_attempts
    std::uint64_t ignored = 0;                 ///< failures a policy turned into an empty success
    std::uint64_t speculative_executions = 0;  ///< speculative executions started
    std::uint64_t speculative_wins = 0;        ///< requests whose answer came from a speculative execution
    std::uint64_t speculative_denials = 0;     ///< speculative executions the retry budget refused
    /// Failed requests by outcome: not_sent, rejected, failed, maybe_applied.
    std::array<std::uint64_t, 4> failed_by_outcome{};
};

/// The session's figures at one moment (each exact on its own, not as a set).
struct session_metrics {
    /// Every request completed, failed ones included, from execute() to the handler's call (admission
    /// waits, retries and speculative executions included).
    latency_summary requests;
    std::array<std::uint64_t, error_kind_count> errors{};  ///< failed requests by kind
    std::uint64_t in_flight = 0;                            ///< requests started and not completed
    request_metrics retries;
    cqlcoro::admission_metrics admission;
    std::vector<host_metrics> nodes;  ///< every node the session knows, in the cluster's order
};

/// The figures in the Prometheus text exposition format (version 0.0.4): counters, gauges and
/// histograms (in seconds), named `<prefix>_...`, nodes labelled by host, datacenter and rack, and
/// `labels` (for example `service="orders"`) added to every sample. Serve it at /metrics.
std::string to_prometheus(const session_metrics& m, std::string_view prefix = "cqlcoro", std::string_view labels = {});

}  // namespace cqlcoro
