// Statements: what session.execute() sends.
//
//   cqlcoro::statement("SELECT name FROM ks.users WHERE id = ?", id).page_size(500)   // QUERY, values typed from C++
//   prepared.bind(id, "john").idempotent(true).consistency(cqlcoro::consistency::quorum)  // EXECUTE, checked against markers
//   cqlcoro::batch(cqlcoro::batch_kind::logged).add(prepared.bind(1, "a")).add(prepared.bind(2, "b"))
//
// Options common to all three (consistency, serial consistency, page size, paging state, client
// timestamp, idempotence, per-request timeout, tracing, custom payload, keyspace and now_in_seconds for
// protocol v5) are fluent setters usable on temporaries and on named statements alike.
#pragma once

#include <cqlcoro/admission.hpp>
#include <cqlcoro/bind.hpp>
#include <cqlcoro/codec.hpp>
#include <cqlcoro/column_spec.hpp>
#include <cqlcoro/consistency.hpp>
#include <cqlcoro/latency_histogram.hpp>
#include <cqlcoro/rows.hpp>
#include <cqlcoro/value_types.hpp>

#include <boost/asio/ip/address.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <forward_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace cqlcoro {

/// An execution profile's name as a statement holds it: a number standing for the name, which is kept
/// for the program's life (a program has a few; at most 4095 distinct ones), so statements copy and move
/// it for nothing and stay as large as they were.
class profile_name {
public:
    profile_name() = default;
    /// Throws cqlcoro::error (invalid_statement) past 4095 distinct names.
    explicit profile_name(std::string_view name);
    std::string_view view() const noexcept;
    bool empty() const noexcept { return id_ == 0; }

private:
    std::uint32_t id_ = 0;  // 0: none (the default profile)
};

/// Options of one execution. Unset optionals take the session's defaults.
struct statement_options {
    std::optional<cqlcoro::consistency> cl;
    std::optional<cqlcoro::consistency> serial_cl;
    std::optional<std::int32_t> page_size;
    std::vector<std::uint8_t> paging_state;       ///< empty: the first page
    std::optional<std::int64_t> timestamp;        ///< client timestamp, microseconds since the epoch
    /// Safe to retry after it may have been executed, and to execute speculatively; unset: read from
    /// the CQL text (SELECT and plain writes yes; conditions, counters, list appends, volatile functions,
    /// DDL no: see docs/retries.md).
    std::optional<bool> idempotent;
    std::optional<std::chrono::milliseconds> timeout;
    bool tracing = false;
    /// Its admission class when it has to wait for a permit (admission.hpp); unset: interactive. (Here,
    /// in the padding after `tracing`: the options stay as large as they were.)
    std::optional<request_class> admission_class;
    /// The execution profile (profile.hpp) whose options fill in those unset here; empty: "default".
    /// (Also in that padding.)
    cqlcoro::profile_name profile;
    std::vector<std::pair<std::string, std::vector<std::uint8_t>>> custom_payload;  ///< v4+
    std::string keyspace;                         ///< v5: the keyspace of unqualified names
    std::optional<std::int32_t> now_in_seconds;   ///< v5: "now" for TTL and deletion, in seconds
    /// Token-aware routing: the partition key as serialized bytes (composite_routing_key() for several
    /// columns) and its keyspace. A bound statement computes both from its partition-key markers;
    /// these override that. (Held apart, so statements that do not set them stay small to move.)
    struct routing_hint {
        std::vector<std::uint8_t> key;
        std::string keyspace;
        std::string node;  ///< "address:port": this node only (node_endpoint()), bypassing the query plan
    };
    std::shared_ptr<const routing_hint> routing;
};

/// Fluent setters shared by every statement kind; `Derived` is the statement class.
template <class Derived>
class with_options {
public:
    const statement_options& options() const noexcept { return options_; }
    statement_options& options() noexcept { return options_; }

#define CQLCORO_OPTION_SETTER(name, type, member)                                     \
    Derived& name(type v) & { options_.member = std::move(v); return self(); }        \
    Derived&& name(type v) && { options_.member = std::move(v); return std::move(self()); }
    CQLCORO_OPTION_SETTER(consistency, cqlcoro::consistency, cl)
    CQLCORO_OPTION_SETTER(serial_consistency, cqlcoro::consistency, serial_cl)
    CQLCORO_OPTION_SETTER(page_size, std::int32_t, page_size)
    CQLCORO_OPTION_SETTER(paging_state, std::vector<std::uint8_t>, paging_state)
    CQLCORO_OPTION_SETTER(timestamp, std::int64_t, timestamp)
    CQLCORO_OPTION_SETTER(idempotent, bool, idempotent)
    CQLCORO_OPTION_SETTER(timeout, std::chrono::milliseconds, timeout)
    CQLCORO_OPTION_SETTER(tracing, bool, tracing)
    CQLCORO_OPTION_SETTER(keyspace, std::string, keyspace)
    CQLCORO_OPTION_SETTER(now_in_seconds, std::int32_t, now_in_seconds)
    CQLCORO_OPTION_SETTER(admission_class, request_class, admission_class)
#undef CQLCORO_OPTION_SETTER
    /// The execution profile (session_params::profiles) for the options not set here.
    Derived& profile(std::string_view name) & {
        options_.profile = cqlcoro::profile_name(name);
        return self();
    }
    Derived&& profile(std::string_view name) && { return std::move(profile(name)); }
    /// Token-aware routing for a statement whose partition key the driver cannot see (a simple
    /// statement): the key's serialized bytes (composite_routing_key() for several columns) and keyspace.
    Derived& routing_key(std::vector<std::uint8_t> key) & {
        return with_hint([&](statement_options::routing_hint& h) { h.key = std::move(key); });
    }
    Derived&& routing_key(std::vector<std::uint8_t> key) && { return std::move(routing_key(std::move(key))); }
    Derived& routing_keyspace(std::string keyspace) & {
        return with_hint([&](statement_options::routing_hint& h) { h.keyspace = std::move(keyspace); });
    }
    Derived&& routing_keyspace(std::string keyspace) && { return std::move(routing_keyspace(std::move(keyspace))); }
    /// Sends the statement to this node only ("address:port", as node::endpoint and result::coordinator
    /// name it), as Java's Statement.setNode does: no other node is tried, and the request fails with
    /// no_host_available when that node has no open connection. For reading from one node's local data
    /// (system tables, virtual tables) and for keeping a stream's pages on one coordinator.
    Derived& node_endpoint(std::string endpoint) & {
        return with_hint([&](statement_options::routing_hint& h) { h.node = std::move(endpoint); });
    }
    Derived&& node_endpoint(std::string endpoint) && { return std::move(node_endpoint(std::move(endpoint))); }
    /// Adds a custom payload entry (v4+).
    Derived& payload(std::string key, std::vector<std::uint8_t> value) & {
        options_.custom_payload.emplace_back(std::move(key), std::move(value));
        return self();
    }
    Derived&& payload(std::string key, std::vector<std::uint8_t> value) && { return std::move(payload(std::move(key), std::move(value))); }

protected:
    statement_options options_;

private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
    // The routing hint is shared and immutable: a changed copy replaces it.
    template <class Change>
    Derived& with_hint(Change change) {
        auto h = options_.routing ? *options_.routing : statement_options::routing_hint{};
        change(h);
        options_.routing = std::make_shared<const statement_options::routing_hint>(std::move(h));
        return self();
    }
};

namespace detail {

// The CQL type a C++ value is sent as in a simple (unprepared) statement, where no marker types are
// known: the server reads the bytes as the marker's type, so the C++ type must match it (int32 for int,
// int64 for bigint, ...), as in the Java driver.
template <class T, class = void>
struct default_cql_type;  // not defined: a type with no natural CQL type (bind it through a prepared statement)

#define CQLCORO_DEFAULT_TYPE(T, kind) \
    template <>                       \
    struct default_cql_type<T> {      \
        static cql_type get() { return cql_type::of(type_kind::kind); } \
    };
CQLCORO_DEFAULT_TYPE(bool, boolean)
CQLCORO_DEFAULT_TYPE(std::int8_t, tinyint)
CQLCORO_DEFAULT_TYPE(std::int16_t, smallint)
CQLCORO_DEFAULT_TYPE(std::int32_t, int_)
CQLCORO_DEFAULT_TYPE(std::int64_t, bigint)
CQLCORO_DEFAULT_TYPE(long long, bigint)
CQLCORO_DEFAULT_TYPE(float, float_)
CQLCORO_DEFAULT_TYPE(double, double_)
CQLCORO_DEFAULT_TYPE(std::string, varchar)
CQLCORO_DEFAULT_TYPE(std::string_view, varchar)
CQLCORO_DEFAULT_TYPE(std::vector<std::uint8_t>, blob)
CQLCORO_DEFAULT_TYPE(bytes_view, blob)
CQLCORO_DEFAULT_TYPE(uuid, uuid)
CQLCORO_DEFAULT_TYPE(date, date)
CQLCORO_DEFAULT_TYPE(time_of_day, time)
CQLCORO_DEFAULT_TYPE(cql_duration, duration)
CQLCORO_DEFAULT_TYPE(boost::asio::ip::address, inet)
CQLCORO_DEFAULT_TYPE(varint, varint)
CQLCORO_DEFAULT_TYPE(decimal, decimal)
CQLCORO_DEFAULT_TYPE(unset_t, blob)
CQLCORO_DEFAULT_TYPE(std::nullopt_t, blob)
#undef CQLCORO_DEFAULT_TYPE

template <class D>
struct default_cql_type<std::chrono::time_point<std::chrono::system_clock, D>,
                        std::enable_if_t<!std::is_same_v<D, std::chrono::days>>> {
    static cql_type get() { return cql_type::of(type_kind::timestamp); }
};
template <class T>
struct default_cql_type<std::optional<T>> {
    static cql_type get() { return default_cql_type<T>::get(); }
};
template <class E, class A>
struct default_cql_type<std::vector<E, A>, std::enable_if_t<!std::is_same_v<E, std::uint8_t>>> {
    static cql_type get() { return cql_type::list_of(default_cql_type<E>::get()); }
};
template <class E, class C, class A>
struct default_cql_type<std::set<E, C, A>> {
    static cql_type get() { return cql_type::set_of(default_cql_type<E>::get()); }
};
template <class E, class H, class Q, class A>
struct default_cql_type<std::unordered_set<E, H, Q, A>> {
    static cql_type get() { return cql_type::set_of(default_cql_type<E>::get()); }
};
template <class K, class V, class C, class A>
struct default_cql_type<std::map<K, V, C, A>> {
    static cql_type get() { return cql_type::map_of(default_cql_type<K>::get(), default_cql_type<V>::get()); }
};
template <class K, class V, class H, class Q, class A>
struct default_cql_type<std::unordered_map<K, V, H, Q, A>> {
    static cql_type get() { return cql_type::map_of(default_cql_type<K>::get(), default_cql_type<V>::get()); }
};
// A fixed-size array is a Cassandra 5 vector (vector<float, n> from std::array<float, n>), as it binds.
template <class E, std::size_t N>
struct default_cql_type<std::array<E, N>> {
    static cql_type get() { return cql_type::vector_of(default_cql_type<E>::get(), static_cast<std::int32_t>(N)); }
};
template <class... Ts>
struct default_cql_type<std::tuple<Ts...>> {
    static cql_type get() { return cql_type::tuple_of({default_cql_type<Ts>::get()...}); }
};

template <class T>
cql_type default_type_of() {
    return default_cql_type<bind_type<T>>::get();
}

[[noreturn]] void throw_simple_value_error(error_code ec, std::size_t i, const std::string& cpp_type);

}  // namespace detail

/// A CQL string sent as QUERY, with values bound by position or by name (named(...)). Each value is
/// serialized from its C++ type (int32_t as int, int64_t as bigint, std::string as text, ...): use a
/// prepared statement when the column types should decide, or for UDTs.
class statement : public with_options<statement> {
public:
    explicit statement(std::string query) : query_(std::move(query)) {}
    template <class... Args>
    statement(std::string query, const Args&... args) : query_(std::move(query)) {
        constexpr std::size_t named_count = (std::size_t{0} + ... + detail::is_named<Args>::value);
        static_assert(named_count == 0 || named_count == sizeof...(Args), "bind either all values by name or none");
        values_.reset(sizeof...(Args));
        std::size_t i = 0;
        auto one = [&](const auto& a) {
            if constexpr (detail::is_named<std::remove_cvref_t<decltype(a)>>::value) {
                names_.emplace_back(a.name);
                set(i++, a.value);
            } else {
                set(i++, a);
            }
        };
        (one(args), ...);
        (void)one;
    }

    const std::string& query() const noexcept { return query_; }
    const bound_values& values() const noexcept { return values_; }
    /// One name per value when bound by name; empty when positional.
    const std::vector<std::string>& names() const noexcept { return names_; }

private:
    template <class V>
    void set(std::size_t i, const V& v) {
        using B = detail::bind_type<V>;
        if (auto ec = values_.set(i, v, detail::default_type_of<V>())) detail::throw_simple_value_error(ec, i, codec_name<B>());
    }

    std::string query_;
    bound_values values_;
    std::vector<std::string> names_;
};

class bound_statement;

/// The rows a prepared statement returns, as the server last described them: the v5 result metadata
/// id and the columns (none for writes). A schema change (ALTER TABLE ... ADD under a `SELECT *`)
/// replaces them: v5 says so in the rows it returns (METADATA_CHANGED), earlier versions through a
/// PREPARE sent again after UNPREPARED.
struct prepared_result_metadata {
    std::vector<std::uint8_t> id;                      ///< v5; empty before
    std::shared_ptr<const detail::column_set> set;     ///< indexed once, shared by every result page; may be null

    std::span<const column_spec> columns() const noexcept {
        return set ? std::span<const column_spec>(set->columns) : std::span<const column_spec>();
    }
};

/// What PREPARE returned, shared by every bound_statement made from it. Immutable but for the result
/// metadata, which follows the server's schema (see prepared_result_metadata).
struct prepared_data {
    std::string query;
    std::string keyspace;                    ///< the keyspace it was prepared in (v5 per-request keyspace, or the session's)
    std::vector<std::uint8_t> id;
    std::vector<column_spec> markers;        ///< bind markers, in order
    std::vector<std::uint16_t> pk_indexes;   ///< marker positions of the partition key columns
    bool is_read = false;                    ///< a SELECT (its failures can apply nothing)
    bool idempotent = false;                 ///< as read from the CQL text (statement_options::idempotent overrides)
    bool conditional = false;                ///< a lightweight transaction (IF ...): routed to its replicas in ring order
    /// Latencies of its first, unhedged, successful executions: what adaptive speculative execution
    /// hedges after (recorded only when the session's speculative policy is on).
    mutable latency_histogram first_attempts;

    /// The result metadata as the server last described it. The reference stays valid as long as this
    /// prepared_data: replaced versions are kept (one per schema change of the table), never freed early.
    const prepared_result_metadata& result() const noexcept { return *current_.load(std::memory_order_acquire); }
    std::span<const column_spec> result_columns() const noexcept { return result().columns(); }

    /// Takes the server's newer description of the rows, unless it is the one held already (same id
    /// and columns). Safe from any thread; requests in flight keep the version they read.
    void update_result(std::vector<std::uint8_t> id, std::vector<column_spec> columns) const;
    /// How many times update_result() replaced the metadata (0 until the table's schema changes).
    std::size_t result_updates() const;

private:
    mutable std::mutex versions_mutex_;
    mutable std::forward_list<prepared_result_metadata> versions_;  // newest first; nodes never move
    mutable std::atomic<const prepared_result_metadata*> current_{&empty_result_};
    static const prepared_result_metadata empty_result_;
};

/// A prepared statement: cheap to copy (shared), bound with bind().
class prepared_statement {
public:
    prepared_statement() = default;
    explicit prepared_statement(std::shared_ptr<const prepared_data> d) : data_(std::move(d)) {}

    /// Binds values by position (one per marker) or by name (named(...); missing markers stay unset).
    /// Throws cqlcoro::error naming the marker, its CQL type and the C++ type when a value does not fit.
    /// An empty statement (default-constructed or moved-from) throws client_errc::empty_handle.
    template <class... Args>
    bound_statement bind(const Args&... args) const;

    /// The statement's data; throws client_errc::empty_handle for an empty statement.
    const prepared_data& data() const { return checked(); }
    const std::shared_ptr<const prepared_data>& shared() const noexcept { return data_; }
    const std::string& query() const { return checked().query; }
    std::span<const column_spec> markers() const noexcept { return data_ ? std::span<const column_spec>(data_->markers) : std::span<const column_spec>(); }
    std::span<const column_spec> result_columns() const noexcept {
        return data_ ? data_->result_columns() : std::span<const column_spec>();
    }
    /// False for an empty statement: one not given by session.prepare().
    explicit operator bool() const noexcept { return data_ != nullptr; }

private:
    const prepared_data& checked() const {
        if (!data_)
            throw error(client_errc::empty_handle,
                        "this prepared_statement is empty (default-constructed or moved-from): assign it from session.prepare() first");
        return *data_;
    }
    std::shared_ptr<const prepared_data> data_;
};

/// A prepared statement with its values, sent as EXECUTE.
class bound_statement : public with_options<bound_statement> {
public:
    bound_statement(std::shared_ptr<const prepared_data> p, bound_values v) : prepared_(std::move(p)), values_(std::move(v)) {}

    const prepared_data& prepared() const noexcept { return *prepared_; }
    const std::shared_ptr<const prepared_data>& shared_prepared() const noexcept { return prepared_; }
    const bound_values& values() const noexcept { return values_; }

private:
    std::shared_ptr<const prepared_data> prepared_;
    bound_values values_;
};

template <class... Args>
bound_statement prepared_statement::bind(const Args&... args) const {
    return bound_statement(data_, bind_values(std::span<const column_spec>(checked().markers), args...));
}

enum class batch_kind : std::uint8_t { logged = 0, unlogged = 1, counter = 2 };

/// Several statements applied together (BATCH). Values are positional only: Cassandra refuses named
/// values in batches, so a simple statement bound by name is rejected when the batch is encoded.
class batch : public with_options<batch> {
public:
    explicit batch(batch_kind kind = batch_kind::logged) : kind_(kind) {}

    batch& add(statement s) & {
        entries_.emplace_back(std::move(s));
        return *this;
    }
    batch& add(bound_statement s) & {
        entries_.emplace_back(std::move(s));
        return *this;
    }
    batch&& add(statement s) && { return std::move(add(std::move(s))); }
    batch&& add(bound_statement s) && { return std::move(add(std::move(s))); }

    batch_kind kind() const noexcept { return kind_; }
    const std::vector<std::variant<statement, bound_statement>>& entries() const noexcept { return entries_; }

private:
    batch_kind kind_;
    std::vector<std::variant<statement, bound_statement>> entries_;
};

}  // namespace cqlcoro
