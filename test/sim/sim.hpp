// Simulated Cassandra nodes: our own CQL server for tests and benchmarks.
//
// A sim::cluster runs N nodes on one thread of its own (its io_context). Every API call is applied on
// that thread before it returns, so a test observes the new state without sleeping:
//
//   sim::cluster c({.nodes = 3});
//   c.prime({.query = "SELECT * FROM ks.t"}, sim::rows(cols).row(1, "a").row(2, "b"));
//   c.push_status_change(1, "DOWN");
//   for (auto& r : c.requests()) ...
#pragma once

#include "protocol/responses.hpp"

#include <cqlcoro/codec.hpp>
#include <cqlcoro/column_spec.hpp>
#include <cqlcoro/consistency.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace cqlcoro::sim {

using protocol::byte_buffer;
using protocol::bytes_view;

struct tls_files {
    std::string certificate_chain;  ///< PEM
    std::string private_key;        ///< PEM
    std::string client_ca;          ///< PEM; when set, clients must present a certificate signed by it
};

struct cluster_config {
    std::size_t nodes = 1;
    /// Nodes per datacenter (dc1, dc2, ...); empty: all `nodes` in dc1.
    std::vector<std::size_t> datacenters;
    /// Racks per datacenter: a datacenter's nodes go to rack1, rack2, ... in turn.
    std::size_t racks = 1;
    /// Nodes on 127.0.0.1, .2, ... all on `port`; or, with distinct_ports, all on 127.0.0.1, ports port, port+1, ...
    std::uint16_t port = 9042;
    bool distinct_ports = false;
    /// Highest protocol version spoken (3, 4 or 5); lower ones are accepted too.
    std::uint8_t max_version = 5;
    /// Refuse unsupported versions as Cassandra 2.1 does (server error 0x0000 in a v3 frame) rather than as
    /// newer servers do (protocol error in the client's version).
    bool cassandra21_refusals = false;
    /// PasswordAuthenticator with these credentials (user, password); none: AllowAllAuthenticator.
    std::optional<std::pair<std::string, std::string>> credentials;
    std::optional<tls_files> tls;
    std::string cluster_name = "cqlcoro-sim";
    std::string release_version = "3.11.16";
    std::size_t tokens_per_node = 4;
    /// Keyspaces listed in the schema tables besides the system ones: name and replication (with its
    /// "class": SimpleStrategy, NetworkTopologyStrategy, ...).
    std::vector<std::pair<std::string, std::map<std::string, std::string>>> keyspaces;
    /// Keep every request for requests()/wait_for_requests(); load benchmarks turn it off.
    bool record_requests = true;
};

/// Which requests a prime applies to.
struct prime_when {
    std::string query;                ///< exact text, or an ECMAScript regex with regex = true
    bool regex = false;
    std::optional<std::size_t> node;  ///< 1-based; none: any node
    std::optional<consistency> cl;    ///< none: any consistency
    /// 1-based page of a paged read (the paging state's offset over the page size); none: any page.
    std::optional<std::size_t> page;
};

/// A rows answer: columns and pre-encoded cells. Build it with rows(columns).row(v1, v2, ...).
struct rows_answer {
    std::vector<column_spec> columns;
    std::vector<std::vector<std::optional<byte_buffer>>> data;

    /// Appends a row, encoding each value against its column's type (std::nullopt for null).
    template <class... V>
    rows_answer& row(const V&... values) {
        static_assert(sizeof...(V) > 0);
        if (sizeof...(V) != columns.size()) throw std::invalid_argument("rows_answer::row: one value per column");
        auto& r = data.emplace_back();
        std::size_t i = 0;
        (append(r, columns[i++].type, values), ...);
        return *this;
    }

private:
    template <class V>
    static void append(std::vector<std::optional<byte_buffer>>& r, const cql_type& t, const V& v) {
        using B = std::conditional_t<std::is_convertible_v<V, std::string_view> && !std::is_same_v<V, std::string>, std::string_view, V>;
        if constexpr (std::is_same_v<V, std::nullopt_t>) {
            r.emplace_back();
        } else {
            byte_buffer b;
            if (auto ec = codec<B>::encode(B(v), t, b)) throw std::invalid_argument("rows_answer::row: " + ec.message());
            r.emplace_back(std::move(b));
        }
    }
};

inline rows_answer rows(std::vector<column_spec> columns) { return {std::move(columns), {}}; }
/// A column of ks "sim", table "t", for rows answers.
inline column_spec column(std::string name, cql_type type) { return {"sim", "t", std::move(name), std::move(type)}; }

struct void_answer {};
struct close_connection {};     ///< close the connection instead of answering
struct hang {};                 ///< never answer (the stream id stays in use)
struct half_close {};           ///< shut down the sending side: the client reads EOF, its writes still arrive
struct undecodable {};          ///< a RESULT of an unknown kind in an intact frame (uncompressed connections)
/// Envelopes made by the test instead of an answer, from the request's stream id and version; each is
/// queued as it is (inside v5 segments once framing began). Hostile input: lengths past the limit,
/// compression bombs, answers on streams nothing was sent on.
struct raw_envelopes {
    std::function<std::vector<byte_buffer>(std::int16_t stream, std::uint8_t version)> make;
};

/// What a primed request gets.
struct prime_then {
    std::variant<rows_answer, void_answer, protocol::error_response, close_connection, hang, half_close, undecodable,
                 protocol::schema_change, raw_envelopes>
        answer = void_answer{};  ///< a schema_change answers as DDL does (RESULT of kind SCHEMA_CHANGE)
    std::chrono::milliseconds delay{0};
    /// For PREPARE of this query: the bind markers and partition-key indexes to return.
    std::vector<column_spec> markers;
    std::vector<std::uint16_t> pk_indexes;
    /// Warnings sent with the answer (v4+), as Cassandra 2.2+ sends them.
    std::vector<std::string> warnings;
};

/// A request as the node received it.
struct recorded_request {
    std::size_t node = 0;        ///< 1-based
    std::uint64_t connection = 0;
    std::int16_t stream = 0;
    std::uint8_t version = 0;
    protocol::opcode op{};
    std::string query;           ///< QUERY/PREPARE text; for EXECUTE, the prepared query's text
    byte_buffer prepared_id;     ///< EXECUTE
    std::optional<consistency> cl;
    std::vector<std::optional<byte_buffer>> values;  ///< bound values (unset as nullopt too)
    std::vector<bool> unset;                         ///< per value: sent as unset (v4+)
    std::string keyspace;                            ///< v5 per-request keyspace (QUERY, EXECUTE, PREPARE, BATCH)
    std::optional<std::int32_t> now_in_seconds;      ///< v5
    std::optional<std::int64_t> timestamp;           ///< the client's default timestamp (QUERY, EXECUTE, BATCH)
    std::optional<std::int32_t> page_size;
    bool has_paging_state = false;
};

class cluster {
public:
    explicit cluster(cluster_config config = {});
    ~cluster();
    cluster(const cluster&) = delete;
    cluster& operator=(const cluster&) = delete;

    const cluster_config& config() const noexcept;
    std::size_t size() const noexcept;
    std::string address(std::size_t node) const;   ///< "127.0.0.N"
    std::uint16_t port(std::size_t node) const;

    /// Answers requests matching `when` with `then`; later primes take precedence over earlier ones.
    void prime(prime_when when, prime_then then);
    void prime(prime_when when, rows_answer rows) { prime(std::move(when), prime_then{std::move(rows)}); }
    void clear_primes();

    /// Every request received so far, in order of arrival.
    std::vector<recorded_request> requests() const;
    /// Blocks until at least `count` requests have arrived (a condition wait, not a poll), then returns
    /// them; throws after `timeout`, so a missing request fails the test instead of hanging it.
    std::vector<recorded_request> wait_for_requests(std::size_t count,
                                                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
    void clear_requests();
    /// The requests received since the last take (or clear), and forgets them: at once, so none is
    /// lost between reading and clearing.
    std::vector<recorded_request> take_requests();

    /// Node control (1-based). stop closes the listener and every connection; start reopens it.
    void stop(std::size_t node);
    void start(std::size_t node);
    /// Stop reading from the node's connections (requests pile up unread); resume reads them.
    void pause(std::size_t node);
    void resume(std::size_t node);
    /// Close every connection of the node; it keeps listening.
    void drop_connections(std::size_t node);
    /// The schema version the node reports in system.local / system.peers; none: the cluster's (all agree).
    void set_schema_version(std::size_t node, std::optional<uuid> version);
    /// Forget prepared statements: EXECUTE of an unknown id gets UNPREPARED.
    void forget_prepared(std::size_t node);
    std::size_t connection_count(std::size_t node) const;
    /// CPU time the sim's thread has used so far (to measure its cost per request).
    std::chrono::nanoseconds cpu_time() const;

    /// Events to every connection that REGISTERed for them (on every running node, or on `via` only).
    void push_status_change(std::size_t about, std::string change, std::optional<std::size_t> via = {});
    void push_topology_change(std::size_t about, std::string change, std::optional<std::size_t> via = {});
    void push_schema_change(protocol::schema_change change, std::optional<std::size_t> via = {});

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

// ---- Helpers for tests of the session against a cluster.
/// A one-row answer: column v (int) = 1.
inline rows_answer one_int_row() { return rows({column("v", cql_type::of(type_kind::int_))}).row(1); }
/// The requests of `query` as the nodes saw them, in arrival order.
inline std::vector<recorded_request> requests_of(const cluster& c, std::string_view query) {
    std::vector<recorded_request> out;
    for (auto& r : c.requests())
        if (r.query == query) out.push_back(std::move(r));
    return out;
}
/// A node's "address:port", as the session names hosts.
inline std::string endpoint(const cluster& c, std::size_t node) { return c.address(node) + ":" + std::to_string(c.port(node)); }

}  // namespace cqlcoro::sim
