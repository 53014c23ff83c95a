// The control connection (see control_connection.hpp).
#include "cluster/control_connection.hpp"
#include "session/result_builder.hpp"

#include "cluster/column_reader.hpp"
#include "cluster/node_rows.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include "../namespaces.hpp"

namespace cqlcoro::detail {

using conn_t = connection::connection;


namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

control_connection::control_connection(asio::strand<asio::any_io_executor> strand, const session_params& params, control_listener& listener)
    : strand_(std::move(strand)), params_(params), listener_(listener), wake_(strand_, asio::steady_timer::time_point::max()) {}

asio::awaitable<bool> control_connection::connect(const std::vector<std::pair<std::string, std::uint16_t>>& candidates,
                                                     std::string& failures, std::optional<error_code>* common) {
    std::weak_ptr<control_connection> weak = weak_from_this();
    for (const auto& [host, port] : candidates) {
        if (stopped_) co_return false;
        {
            auto holder = std::make_shared<std::weak_ptr<conn_t>>();
            // Named handlers: GCC 12 destroys capturing lambda temporaries of a co_await expression twice.
            conn_t::event_handler on_ev = [weak](const connection::response_frame& f) {
                const auto* e = std::get_if<protocol::event_response>(&f.message.body);
                auto s = weak.lock();
                if (!e || !s) return;
                asio::post(s->strand_, [s, ev = *e]() mutable { s->on_event(std::move(ev)); });
            };
            conn_t::state_handler on_st = [weak, holder](connection::connection_state st, error_code) {
                auto s = weak.lock();
                if (!s || st != connection::connection_state::closed) return;
                asio::post(s->strand_, [s, holder] {
                    auto c = holder->lock();
                    if (c && c == s->conn_ && !s->stopped_) {
                        s->lost_ = true;
                        s->wake_.cancel();
                    }
                });
            };
            auto cpar = listener_.control_params(host, port);
            auto made = co_await conn_t::try_connect(strand_.get_inner_executor(), std::move(cpar), std::move(on_ev), std::move(on_st));
            if (!made) {
                const auto& f = made.error();
                failures += (failures.empty() ? "" : "; ") + f.message();
                if (common) *common = !*common || **common == f.code ? f.code : error_code();
                continue;
            }
            auto c = std::move(*made);
            *holder = c;
            if (stopped_) {  // stopped while it connected
                c->abort();
                co_return false;
            }
            listener_.control_opened(*c);
            conn_ = std::move(c);
            endpoint_ = fmt::format("{}:{}", host, port);
            co_return true;
        }
    }
    co_return false;
}

asio::awaitable<fallible<std::optional<result>>> control_connection::query(std::string text) {
    if (!conn_) co_return failure{client_errc::connection_closed_unsent, "no control connection"};
    protocol::query_request q{std::move(text), {}};
    q.params.cl = consistency::one;
    auto conn = conn_;  // the connection lives while its request does, even if it is replaced meanwhile
    auto [ec, f] = co_await conn->execute(protocol::request(q), use_tuple);
    if (ec) co_return failure{ec, fmt::format("{}: control query failed: {}", endpoint_, ec.message())};
    if (std::holds_alternative<protocol::error_response>(f.message.body)) co_return std::optional<result>();  // e.g. no such table
    auto r = result_from_frame(f);
    if (!r) co_return failure{r.error().code, fmt::format("{}: control query: {}", endpoint_, r.error().text)};
    co_return std::optional<result>(std::move(*r));
}

// ---------------------------------------------------------------- nodes

asio::awaitable<fallible<void>> control_connection::refresh_nodes() {
    auto read_local = co_await query("SELECT * FROM system.local WHERE key='local'");
    if (!read_local) co_return read_local.error();
    auto& local = *read_local;
    if (!local || local->empty()) co_return failure{protocol_errc::unexpected_opcode, fmt::format("{}: system.local has no row", endpoint_)};
    std::optional<result> peers;
    bool v2 = false;
    if (peers_v2_) {
        auto read = co_await query("SELECT * FROM system.peers_v2");
        if (!read) co_return read.error();
        peers = std::move(*read);
        if (peers) v2 = true;
        else peers_v2_ = false;  // before Cassandra 4.0: fall back, and do not ask again
    }
    if (!v2) {
        auto read = co_await query("SELECT * FROM system.peers");
        if (!read) co_return read.error();
        peers = std::move(*read);
    }

    // The local row: the node of the control connection, at the address we reached it by.
    auto [host, port_text] = [&] {
        auto colon = endpoint_.rfind(':');
        return std::pair(endpoint_.substr(0, colon), endpoint_.substr(colon + 1));
    }();
    boost::system::error_code aec;
    auto address = asio::ip::make_address(host, aec);
    if (aec) {
        asio::ip::tcp::resolver resolver(strand_);
        auto [rec, results] = co_await resolver.async_resolve(host, port_text, use_tuple);
        if (!rec && !results.empty()) address = results.begin()->endpoint().address();
    }
    auto self = cluster::read_local_row(*local, address, static_cast<std::uint16_t>(std::stoi(port_text)));
    layout_ = self.layout;
    cluster_topology t;
    t.partitioner = self.partitioner_kind;
    t.cluster_name = std::move(self.cluster_name);
    t.nodes.push_back(std::move(self.self));
    if (peers)
        for (auto& n : cluster::read_peer_rows(*peers, v2, params_.port, params_.address_translator)) t.nodes.push_back(std::move(n));
    listener_.nodes_read(std::move(t));
    co_return fallible<void>();
}

// ---------------------------------------------------------------- schema

asio::awaitable<fallible<void>> control_connection::read_rows(const std::vector<std::pair<std::string, std::optional<result>*>>& wanted) {
    for (const auto& [text, into] : wanted) {
        auto read = co_await query(text);
        if (!read) co_return read.error();
        *into = std::move(*read);
    }
    co_return fallible<void>();
}

asio::awaitable<fallible<void>> control_connection::refresh_schema(std::string keyspace) {
    const auto q = cluster::queries_for(layout_, keyspace);
    cluster::schema_rows rows;
    std::vector<std::pair<std::string, std::optional<result>*>> wanted{{q.keyspaces, &rows.keyspaces}};
    if (params_.schema_metadata) {
        wanted.insert(wanted.end(), {{q.tables, &rows.tables}, {q.columns, &rows.columns}});
        if (!q.indexes.empty()) wanted.emplace_back(q.indexes, &rows.indexes);
        if (!q.views.empty()) wanted.emplace_back(q.views, &rows.views);
        wanted.insert(wanted.end(), {{q.types, &rows.types}, {q.functions, &rows.functions}, {q.aggregates, &rows.aggregates}});
    }
    if (auto read = co_await read_rows(wanted); !read) co_return read;
    auto fragment = cluster::parse_schema(layout_, rows);
    auto keyspaces = keyspace.empty() ? std::map<std::string, keyspace_metadata>{} : listener_.known_keyspaces();
    if (keyspace.empty()) {
        for (auto& name : fragment.keyspaces_with_rows) keyspaces[name] = std::move(fragment.keyspaces[name]);
    } else if (std::find(fragment.keyspaces_with_rows.begin(), fragment.keyspaces_with_rows.end(), keyspace) != fragment.keyspaces_with_rows.end()) {
        keyspaces[keyspace] = std::move(fragment.keyspaces[keyspace]);
    } else {
        keyspaces.erase(keyspace);  // dropped
    }
    listener_.schema_read(std::move(keyspaces));
    co_return fallible<void>();
}

asio::awaitable<fallible<void>> control_connection::refresh_schema_element(const protocol::schema_change& c) {
    if (c.target == "KEYSPACE") {
        if (c.change_type == "DROPPED") {
            auto keyspaces = listener_.known_keyspaces();
            keyspaces.erase(c.keyspace);
            listener_.schema_read(std::move(keyspaces));
            co_return fallible<void>();
        }
        co_return co_await refresh_schema(c.keyspace);
    }
    auto keyspaces = listener_.known_keyspaces();
    if (!keyspaces.count(c.keyspace)) co_return co_await refresh_schema(c.keyspace);  // an element of a keyspace we do not know yet
    auto& ks = keyspaces[c.keyspace];
    const bool v3 = layout_ == cluster::schema_layout::v3;
    const auto q = cluster::queries_for(layout_, c.keyspace);
    const auto name = cluster::cql_literal(c.name);
    cluster::schema_rows rows;
    std::vector<std::pair<std::string, std::optional<result>*>> wanted;
    if (c.target == "TABLE") {
        ks.tables.erase(c.name);
        ks.views.erase(c.name);
        if (c.change_type != "DROPPED") {
            const auto table_col = v3 ? " AND table_name = " : " AND columnfamily_name = ";
            wanted.insert(wanted.end(), {{q.tables + table_col + name, &rows.tables}, {q.columns + table_col + name, &rows.columns}});
            if (v3)
                wanted.insert(wanted.end(), {{q.indexes + table_col + name, &rows.indexes}, {q.views + " AND view_name = " + name, &rows.views}});
        }
    } else if (c.target == "TYPE") {
        ks.user_types.erase(c.name);
        if (c.change_type != "DROPPED") wanted.emplace_back(q.types + " AND type_name = " + name, &rows.types);
    } else if (c.target == "FUNCTION" || c.target == "AGGREGATE") {
        // Overloads share the name: all of them are read again.
        if (c.target == "FUNCTION") std::erase_if(ks.functions, [&](const auto& kv) { return kv.second.name == c.name; });
        else std::erase_if(ks.aggregates, [&](const auto& kv) { return kv.second.name == c.name; });
        if (c.target == "FUNCTION") wanted.emplace_back(q.functions + " AND function_name = " + name, &rows.functions);
        else wanted.emplace_back(q.aggregates + " AND aggregate_name = " + name, &rows.aggregates);
    }
    if (auto read = co_await read_rows(wanted); !read) co_return read;
    auto fragment = cluster::parse_schema(layout_, rows);
    if (auto it = fragment.keyspaces.find(c.keyspace); it != fragment.keyspaces.end()) {
        for (auto& [n, t] : it->second.tables)
            if (!t.columns.empty() || !t.options.empty()) ks.tables[n] = std::move(t);
        for (auto& [n, t] : it->second.views) ks.views[n] = std::move(t);
        for (auto& [n, t] : it->second.user_types) ks.user_types[n] = std::move(t);
        for (auto& [n, f] : it->second.functions) ks.functions[n] = std::move(f);
        for (auto& [n, a] : it->second.aggregates) ks.aggregates[n] = std::move(a);
    }
    listener_.schema_read(std::move(keyspaces));
    co_return fallible<void>();
}

asio::awaitable<bool> control_connection::wait_schema_agreement(std::chrono::milliseconds timeout, std::optional<uuid> expected,
                                                                 version_source again) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    asio::steady_timer timer(strand_);
    while (!stopped_) {
        // A failed read (the control connection is being replaced) is tried again until the deadline.
        auto local = co_await query("SELECT schema_version FROM system.local WHERE key='local'");
        fallible<std::optional<result>> peers = std::optional<result>();
        if (local) peers = co_await query("SELECT host_id, schema_version FROM system.peers");
        if (local && peers) {
            std::set<uuid> versions;
            if (*local && !(*local)->empty())
                if (auto v = cluster::column_reader(**local).get<uuid>((*local)->one(), "schema_version")) versions.insert(*v);
            if (auto& rows = *peers) {
                const cluster::column_reader cols(*rows);
                for (auto row : rows->rows()) {
                    auto id = cols.get<uuid>(row, "host_id");
                    auto v = cols.get<uuid>(row, "schema_version");
                    if (!id || !v) continue;
                    if (listener_.is_down(*id)) continue;  // only nodes that are up count
                    versions.insert(*v);
                }
            }
            if (versions.size() == 1 && (!expected || *versions.begin() == *expected)) co_return true;
            // Agreement on another version: a later change (another client's, in a storm) may have
            // moved the coordinator on, and the old expected version will never be seen again.
            if (versions.size() == 1 && expected && again) {
                auto now = again();  // named: GCC 12 and temporaries in co_await
                if (auto current = co_await std::move(now)) {
                    if (*current == *versions.begin()) co_return true;
                    expected = current;
                }
            }
        }
        if (std::chrono::steady_clock::now() + params_.schema_agreement_interval > deadline) co_return false;
        timer.expires_after(params_.schema_agreement_interval);
        co_await timer.async_wait(use_tuple);
    }
    co_return false;
}

// ---------------------------------------------------------------- events and the loop

void control_connection::on_event(protocol::event_response e) {
    if (stopped_) return;
    events_.push_back(std::move(e));
    last_event_ = std::chrono::steady_clock::now();
    if (events_.size() == 1 || events_.size() >= params_.event_max_batch) wake_.cancel();
}

asio::awaitable<fallible<void>> control_connection::process_events(std::vector<protocol::event_response> batch) {
    bool topology = false;
    std::vector<std::pair<inet_address, std::string>> status;  // the last word per node wins (2.1 repeats UP)
    std::vector<protocol::schema_change> schema;
    for (auto& e : batch) {
        if (std::holds_alternative<protocol::topology_change_event>(e.event)) {
            topology = true;
        } else if (auto* s = std::get_if<protocol::status_change_event>(&e.event)) {
            auto it = std::find_if(status.begin(), status.end(), [&](const auto& x) { return x.first == s->address; });
            if (it != status.end()) it->second = s->change;
            else status.emplace_back(s->address, s->change);
        } else if (auto* c = std::get_if<protocol::schema_change_event>(&e.event)) {
            auto same = [&](const protocol::schema_change& x) {
                return x.target == c->change.target && x.keyspace == c->change.keyspace && x.name == c->change.name;
            };
            // One refresh per element; the latest change decides (CREATED then DROPPED is DROPPED).
            if (auto it = std::find_if(schema.begin(), schema.end(), same); it != schema.end()) *it = c->change;
            else schema.push_back(c->change);
        }
    }
    if (topology)
        if (auto read = co_await refresh_nodes(); !read) co_return read;
    const bool unknown_up = !status.empty() && listener_.status_changed(status);
    if (unknown_up && !topology)
        if (auto read = co_await refresh_nodes(); !read) co_return read;
    // Schema: a keyspace-level change covers its elements.
    std::set<std::string> whole;
    for (const auto& c : schema)
        if (c.target == "KEYSPACE") whole.insert(c.keyspace);
    for (const auto& c : schema) {
        if (c.target != "KEYSPACE" && whole.count(c.keyspace)) continue;
        if (auto read = co_await refresh_schema_element(c); !read) co_return read;
    }
    co_return fallible<void>();
}

asio::awaitable<void> control_connection::run() {
    auto self = shared_from_this();
    std::size_t failures = 0;
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    while (!stopped_) {
        if (lost_ || !conn_) {
            lost_ = false;
            if (conn_) {
                conn_->abort();
                conn_.reset();
            }
            std::string why;
            bool ok = co_await connect(listener_.reconnect_candidates(), why);
            if (ok) {
                auto read = co_await refresh_nodes();
                if (read) read = co_await refresh_schema();
                ok = read.has_value();
                if (ok) failures = 0;
            }
            if (!ok && !stopped_) {
                lost_ = true;
                wake_.expires_after(params_.reconnection.delay(failures++, unit(rng_)));
                co_await wake_.async_wait(use_tuple);
            }
            continue;
        }
        if (events_.empty()) {
            wake_.expires_at(asio::steady_timer::time_point::max());
            co_await wake_.async_wait(use_tuple);
            continue;
        }
        const auto due = last_event_ + params_.event_window;
        if (events_.size() < params_.event_max_batch && std::chrono::steady_clock::now() < due) {
            wake_.expires_at(due);
            co_await wake_.async_wait(use_tuple);
            continue;
        }
        const auto n = std::min(events_.size(), params_.event_max_batch);
        std::vector<protocol::event_response> batch(std::make_move_iterator(events_.begin()),
                                                    std::make_move_iterator(events_.begin() + static_cast<std::ptrdiff_t>(n)));
        events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(n));
        auto applied = co_await process_events(std::move(batch));
        if (!applied) lost_ = true;  // the connection failed mid-refresh: reconnect and read everything again
    }
}

void control_connection::stop() {
    stopped_ = true;
    wake_.cancel();
    if (conn_) conn_->abort();
}

}  // namespace cqlcoro::detail
