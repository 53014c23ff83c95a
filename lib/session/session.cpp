#include <cqlcoro/session.hpp>

#include "session/session_impl.hpp"

#include "policy/idempotence.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/container/small_vector.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <random>

namespace cqlcoro {

using connection::clock;
using detail::erased_handler;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

/// The result's parts from a response (the builder is a friend of result).
struct result_builder {
    // A received answer, decoded in place, and the index of its rows: one allocation, never moved (the
    // message and the index point into `body`). A small body lives inline.
    struct owned_response {
        owned_response(const protocol::frame_header& h, protocol::bytes_view raw) : body(raw.begin(), raw.end()) {
            auto m = protocol::decode_response(h, protocol::bytes_view(body.data(), body.size()));
            if (m) message = std::move(*m);
            else failure = m.error();
        }
        owned_response(const owned_response&) = delete;
        owned_response& operator=(const owned_response&) = delete;

        boost::container::small_vector<std::uint8_t, 256> body;
        protocol::response message;
        error_code failure;  // the body did not decode
        std::optional<detail::page_data> page;
    };

    static result from(std::shared_ptr<owned_response> f, const prepared_data* prepared, diagnostics d) {
        result r;
        r.diagnostics_ = std::move(d);
        r.warnings_ = std::move(f->message.warnings);
        if (f->message.tracing_id) {
            uuid u;
            std::memcpy(u.data, f->message.tracing_id->data(), 16);
            r.tracing_id_ = u;
        }
        auto& body = std::get<protocol::result_response>(f->message.body).body;
        if (auto* rows = std::get_if<protocol::rows_result>(&body)) {
            if (rows->metadata.paging_state) r.paging_state_ = *rows->metadata.paging_state;
            // With skip_metadata the columns come from PREPARE (indexed once, shared); otherwise they move
            // out of the frame we own.
            const auto count = static_cast<std::size_t>(rows->row_count);
            auto set = rows->metadata.columns.empty() && prepared && !prepared->result_columns().empty()
                           ? prepared->result_set
                           : std::make_shared<const detail::column_set>(std::move(rows->metadata.columns));
            // The page's index lives in the same allocation as the frame it points into.
            f->page.emplace(std::move(set), count);
            r.page_.emplace(std::shared_ptr<detail::page_data>(f, &*f->page), rows->content);
            r.memory_ = sizeof(owned_response) + f->body.capacity() + f->page->cells.capacity() * sizeof(detail::cell);
        } else if (const auto* sc = std::get_if<protocol::schema_change_result>(&body)) {
            r.schema_change_ = schema_change_info{sc->change.change_type, sc->change.target, sc->change.keyspace, sc->change.name,
                                                  sc->change.arg_types};
        } else if (const auto* ks = std::get_if<protocol::set_keyspace_result>(&body)) {
            r.keyspace_set_ = ks->keyspace;
        }
        return r;
    }
    static void agreed(result& r, bool agreement) { r.schema_agreement_ = agreement; }
    static result failed(diagnostics d) {
        result r;
        r.diagnostics_ = std::move(d);
        return r;
    }
};

std::string_view request::text() const noexcept {
    if (const auto* s = std::get_if<statement>(&what)) return s->query();
    if (const auto* b = std::get_if<bound_statement>(&what)) return b->prepared().query;
    const auto& e = std::get<batch>(what).entries();
    if (e.empty()) return "BATCH";
    return std::visit([](const auto& s) -> std::string_view {
        if constexpr (std::is_same_v<std::decay_t<decltype(s)>, statement>) return s.query();
        else return s.prepared().query;
    }, e.front());
}


namespace detail {

result failed_result(diagnostics d) {
    return result_builder::failed(std::move(d));
}

result result_from_frame(const connection::response_frame& f) {
    auto owned = std::make_shared<result_builder::owned_response>(f.header, protocol::bytes_view(f.body.data(), f.body.size()));
    if (owned->failure) throw error(owned->failure, "malformed answer: " + owned->failure.message());
    if (!std::holds_alternative<protocol::result_response>(owned->message.body))
        throw error(protocol_errc::unexpected_opcode, "the answer is not a RESULT");
    return result_builder::from(std::move(owned), nullptr, {});
}

asio::awaitable<outcome> session_impl::run(request& r, std::size_t layer) {
    if (layer < user_middlewares.size()) {
        auto self = shared_from_this();
        next_layer next = [self, layer](request& q) { return self->run(q, layer + 1); };
        co_return co_await user_middlewares[layer](r, std::move(next));
    }
    co_return co_await built_in(r);
}

asio::awaitable<prepared_statement> session_impl::prepare_on_strand(std::string query) {
    auto self = shared_from_this();
    auto key = std::make_pair(params.keyspace, query);
    if (auto it = prepared.find(key); it != prepared.end()) {
        auto entry = it->second;
        if (!entry->finished) co_await entry->done.async_wait(use_tuple);
        if (entry->failure) std::rethrow_exception(entry->failure);
        co_return entry->value;
    }
    auto entry = std::make_shared<prepare_entry>(strand);
    prepared.emplace(key, entry);
    try {
        entry->value = co_await send_prepare(query);
    } catch (...) {
        entry->failure = std::current_exception();
        prepared.erase(key);  // a later prepare tries again
    }
    entry->finished = true;
    entry->done.cancel();
    if (entry->failure) std::rethrow_exception(entry->failure);
    co_return entry->value;
}

namespace {

// PREPARE on one connection: the prepared result, or the error that says why not.
asio::awaitable<prepared_statement> prepare_on(session_impl& s, conn_t& conn, const std::string& name, const std::string& query) {
    auto frame = std::make_shared<protocol::byte_buffer>();
    auto ctx = s.encoding();
    ctx.version = conn.version();
    ctx.compression = conn.frame_compression();
    if (auto ec = session_detail::encode_prepare(ctx, query, "", *frame)) throw error(ec, "PREPARE: " + ec.message());
    auto [ec, f] = co_await conn.execute(conn_t::shared_frame(std::move(frame)), use_tuple);
    if (ec) throw error(ec, fmt::format("{}: PREPARE failed: {}", name, ec.message()));
    if (auto* e = std::get_if<protocol::error_response>(&f.message.body)) {
        auto x = make_server_error(*e, name);
        throw error(x.boost_code(), fmt::format("{} (preparing \"{}\")", x.what(), query), x.diagnostics());
    }
    const auto* res = std::get_if<protocol::result_response>(&f.message.body);
    const auto* p = res ? std::get_if<protocol::prepared_result>(&res->body) : nullptr;
    if (!p) throw error(protocol_errc::unexpected_opcode, fmt::format("{}: the answer to PREPARE is not a prepared result", name));
    auto data = std::make_shared<prepared_data>();
    data->query = query;
    data->keyspace = s.params.keyspace;
    data->id = p->id;
    data->result_metadata_id = p->result_metadata_id;
    data->markers = p->variables.columns;
    data->pk_indexes = p->variables.pk_indexes;
    data->is_read = policy::is_read_statement(query);
    data->idempotent = policy::infer_idempotence(query);
    data->conditional = policy::is_conditional(query);
    if (data->pk_indexes.empty() && !data->markers.empty() && s.md) {
        // Protocol v3 does not send the partition key's marker positions: find them from the schema,
        // by the table's partition key column names among the markers.
        const auto& first = data->markers.front();
        if (const auto* ks = s.md->keyspace(first.keyspace)) {
            auto t = ks->tables.find(first.table);
            if (t != ks->tables.end() && !t->second.partition_key.empty()) {
                std::vector<std::uint16_t> found;
                for (const auto& column : t->second.partition_key) {
                    auto m = std::find_if(data->markers.begin(), data->markers.end(), [&](const column_spec& c) {
                        return c.name == column && c.keyspace == first.keyspace && c.table == first.table;
                    });
                    if (m == data->markers.end()) break;
                    found.push_back(static_cast<std::uint16_t>(m - data->markers.begin()));
                }
                if (found.size() == t->second.partition_key.size()) data->pk_indexes = std::move(found);
            }
        }
    }
    data->result_set = std::make_shared<const detail::column_set>(p->result.columns);
    co_return prepared_statement(std::move(data));
}

}  // namespace

asio::awaitable<prepared_statement> session_impl::send_prepare(const std::string& query) {
    auto v = current();
    const auto start = plan_start();
    std::vector<std::uint32_t> plan;
    for (std::size_t i = 0; i < v->local.size(); ++i) plan.push_back(v->local[(start + i) % v->local.size()]);
    plan.insert(plan.end(), v->remote.begin(), v->remote.end());
    for (auto i : plan) {
        const auto& h = *v->hosts[i];
        auto* conn = h.pick();
        if (!conn) continue;
        try {
            auto p = co_await prepare_on(*this, *conn, h.name(), query);
            if (params.prepare_on_all_hosts) co_await prepare_on_others(query, h.name());
            co_return p;
        } catch (const error& e) {
            if (e.boost_code() == client_errc::connection_closed_unsent || e.boost_code() == client_errc::connection_draining ||
                e.boost_code() == client_errc::connection_closed_sent)
                continue;
            throw;
        }
    }
    throw error(client_errc::no_host_available, fmt::format("PREPARE \"{}\": no host has an open connection", query));
}

namespace {

// The other nodes' PREPAREs run side by side; the last to finish wakes the waiter.
struct prepare_fanout {
    explicit prepare_fanout(asio::any_io_executor ex) : done(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;
    std::size_t pending = 0;
};

asio::awaitable<void> prepare_one(std::shared_ptr<session_impl> s, std::shared_ptr<const routing_view> v, std::uint32_t host,
                                  std::string query, std::shared_ptr<prepare_fanout> f) {
    const auto& h = *v->hosts[host];
    if (auto* conn = h.pick()) {
        try {
            co_await prepare_on(*s, *conn, h.name(), query);
        } catch (const error&) {
            // that node prepares it on first use instead (UNPREPARED is handled)
        }
    }
    if (--f->pending == 0) f->done.cancel();
}

}  // namespace

asio::awaitable<void> session_impl::prepare_on_others(const std::string& query, const std::string& answered_by) {
    auto v = current();
    auto fan = std::make_shared<prepare_fanout>(strand);
    for (const auto* list : {&v->local, &v->remote})
        for (auto i : *list) {
            if (v->hosts[i]->name() == answered_by) continue;
            ++fan->pending;
            asio::co_spawn(strand, prepare_one(shared_from_this(), v, i, query, fan), asio::detached);
        }
    if (fan->pending == 0) co_return;
    fan->done.expires_after(params.request_timeout);  // bounded: a node that does not answer does not hold prepare() up
    co_await fan->done.async_wait(use_tuple);
}

asio::awaitable<void> session_impl::reprepare_all(std::shared_ptr<pool> p) {
    auto queue = std::make_shared<std::deque<std::string>>();
    for (const auto& [key, entry] : prepared)
        if (entry->finished && !entry->failure && key.first == params.keyspace) queue->push_back(key.second);
    if (queue->empty()) co_return;
    auto self = shared_from_this();
    // Bounded parallelism: a few workers take statements from one queue.
    auto worker = [](std::shared_ptr<session_impl> s, std::shared_ptr<pool> pl, std::shared_ptr<std::deque<std::string>> q) -> asio::awaitable<void> {
        while (!q->empty() && !s->closing && !pl->removed) {
            auto query = std::move(q->front());
            q->pop_front();
            std::shared_ptr<conn_t> conn;
            for (const auto& c : pl->connections)
                if (c->state() == connection::connection_state::ready) conn = c;
            if (!conn) co_return;
            try {
                co_await prepare_on(*s, *conn, pl->info->endpoint, query);
            } catch (const error&) {
            }
        }
    };
    const auto n = std::min(queue->size(), std::max<std::size_t>(1, params.reprepare_parallelism));
    for (std::size_t i = 0; i < n; ++i) asio::co_spawn(strand, worker(self, p, queue), asio::detached);
}

// The built-in part of the chain (request timeout, round-robin query plan, node attempt) as one
// operation object, not coroutines: it is the hot path, and each coroutine layer costs frames,
// cancellation slots and posts. Objects are pooled per thread and keep their frame buffer and
// cancellation signal, so a request in the steady state allocates nothing here.
struct request_op final : connection::request_sink {
    std::shared_ptr<request_op> keep;  // set while running: the pool's reference, handed back at the end
    std::shared_ptr<session_impl> impl;
    std::shared_ptr<const routing_view> view;  // the hosts and connections this request may use
    std::optional<request> req;
    erased_handler handler;
    protocol::byte_buffer frame;  // encoded once for frame_version; connections share it while writing
    protocol::byte_buffer aux;    // a PREPARE sent again after UNPREPARED
    std::uint8_t frame_version = 0;
    asio::cancellation_signal attempt_signal;  // the application's cancellation, forwarded to the connection
    asio::cancellation_slot user_slot;
    std::atomic<bool> cancelled{false};
    std::atomic<bool> initiating{false};  // completions during execute() itself are posted, never inline
    clock::time_point deadline;
    std::chrono::milliseconds timeout{0};
    // The query plan: local replicas of the partition (shuffled), then the local datacenter's hosts
    // round robin, then the remote ones.
    boost::container::small_vector<std::uint32_t, 8> replicas;
    std::size_t plan_start = 0, stage = 0, pos = 0;
    conn_t* conn = nullptr;       // the attempt's connection (the view keeps it alive)
    bool repreparing = false;     // the answer awaited is to the PREPARE in aux
    std::uint64_t cached_generation = 0;  // route()'s last lookup: the map (by generation, never by
    std::string cached_keyspace;          // address, which a new map may reuse), the keyspace, its table
    const token_map::replica_table* cached_table = nullptr;
    bool reprepared = false;
    bool pinned = false;          // the statement names its node: the plan is that node only
    // Retries: the node of the current attempt, the policy's state for this request (made at its first
    // failure that reached a node), the attempts that reached a node, and the backoff's timer.
    const host_conns* host = nullptr;
    bool same_host = false;       // the next attempt goes to `host` again
    std::size_t tries = 0;
    std::unique_ptr<retry_state> retry;
    std::unique_ptr<asio::steady_timer> backoff;
    std::optional<std::int64_t> write_timestamp;  // fixed once, so every attempt carries the same
    error_code last_error;                         // the last retried failure, and its server error:
    std::optional<protocol::error_response> last_server;  // the request's error if the plan runs out

    void begin(std::shared_ptr<session_impl> s, request r, erased_handler h) {
        impl = std::move(s);
        view = impl->current();
        req.emplace(std::move(r));
        handler = std::move(h);
        frame_version = 0;
        cancelled.store(false, std::memory_order_relaxed);
        repreparing = reprepared = pinned = false;
        timeout = req->options().timeout.value_or(impl->params.request_timeout);
        const auto now = clock::now();
        deadline = now + timeout;
        impl->retries->deposit(now);
        host = nullptr;
        same_host = false;
        tries = 0;
        last_error = {};
        last_server.reset();
        write_timestamp.reset();
        if (impl->params.client_timestamps && !req->options().timestamp) write_timestamp = impl->next_timestamp();
        plan_start = impl->plan_start();
        stage = pos = 0;
        replicas.clear();
        if (const auto& h = req->options().routing; h && !h->node.empty()) pin(h->node);
        else if (impl->params.token_aware && view->tokens) route();
        user_slot = handler.cancellation_slot();
        if (user_slot.is_connected())
            user_slot.assign([this](asio::cancellation_type t) {
                cancelled.store(true, std::memory_order_relaxed);
                attempt_signal.emit(t);  // reaches the connection while an attempt is there
            });
        initiating.store(true, std::memory_order_relaxed);
        attempt();
        initiating.store(false, std::memory_order_release);
    }

    // A statement for one node: the plan is that node, if it has connections, and nothing else.
    void pin(const std::string& endpoint) {
        stage = 3;
        const auto& v = *view;
        for (std::uint32_t i = 0; i < v.hosts.size(); ++i)
            if (v.hosts[i] && v.hosts[i]->name() == endpoint) {
                replicas.push_back(i);
                stage = 0;
                pos = 0;
                break;
            }
        if (replicas.empty())
            req->diagnostics.attempts.push_back({endpoint, client_errc::no_host_available,
                                                 "the statement is pinned to " + endpoint + ", which the session has no connections to"});
        pinned = true;
    }

    // The replicas of the request's partition that are local and usable, shuffled.
    void route() {
        const auto& o = req->options();
        std::string_view keyspace;
        bytes_view key;
        if (o.routing) {
            keyspace = o.routing->keyspace;
            key = bytes_view(o.routing->key.data(), o.routing->key.size());
        }
        boost::container::small_vector<std::uint8_t, 64> composite;
        const bound_statement* bound = std::get_if<bound_statement>(&req->what);
        if (!bound)
            if (const auto* b = std::get_if<batch>(&req->what))  // a batch routes as its first bound statement
                for (const auto& e : b->entries())
                    if ((bound = std::get_if<bound_statement>(&e)) && !bound->prepared().pk_indexes.empty()) break;
        if (key.empty() && bound) {
            const auto& p = bound->prepared();
            const auto& pk = p.pk_indexes;
            const auto& values = bound->values();
            if (pk.empty()) return;
            for (auto i : pk)
                if (i >= values.size() || values.is_null(i) || values.is_unset(i)) return;
            if (pk.size() == 1) {
                key = values.value(pk[0]);
            } else {
                for (auto i : pk) {
                    auto v = values.value(i);
                    composite.push_back(static_cast<std::uint8_t>(v.size() >> 8));
                    composite.push_back(static_cast<std::uint8_t>(v.size()));
                    composite.insert(composite.end(), v.begin(), v.end());
                    composite.push_back(0);
                }
                key = bytes_view(composite.data(), composite.size());
            }
            if (keyspace.empty() && pk[0] < p.markers.size()) keyspace = p.markers[pk[0]].keyspace;
        }
        if (key.empty()) return;
        if (keyspace.empty()) keyspace = o.keyspace.empty() ? std::string_view(impl->params.keyspace) : std::string_view(o.keyspace);
        // The keyspace's table, remembered by this (pooled) operation: a request usually routes in the
        // keyspace its predecessor did.
        if (view->tokens->generation() != cached_generation || keyspace != cached_keyspace) {
            cached_generation = view->tokens->generation();
            cached_keyspace.assign(keyspace);
            cached_table = view->tokens->table(keyspace);
        }
        const auto* table = cached_table;
        if (!table) return;
        for (auto i : view->tokens->replicas(*table, cluster::token_of(view->tokens->kind(), key))) {
            if (i >= view->hosts.size()) continue;
            if (std::find(view->local.begin(), view->local.end(), i) == view->local.end()) continue;
            replicas.push_back(i);
        }
        // Lightweight transactions keep the ring order, so that concurrent Paxos rounds on one partition
        // meet at one coordinator instead of contending from several.
        if (impl->params.shuffle_replicas && replicas.size() > 1 && !is_lwt(bound)) {
            thread_local std::minstd_rand rng{std::random_device{}()};
            for (std::size_t i = replicas.size() - 1; i > 0; --i) std::swap(replicas[i], replicas[rng() % (i + 1)]);
        }
    }

    // A conditional statement, or one at a serial consistency (a Paxos read).
    bool is_lwt(const bound_statement* bound) const {
        const auto cl = req->options().cl;
        if (cl && (*cl == consistency::serial || *cl == consistency::local_serial)) return true;
        if (bound) return bound->prepared().conditional;
        if (const auto* s = std::get_if<statement>(&req->what)) return policy::is_conditional(s->query());
        return false;
    }

    const host_conns* next_host() noexcept {
        const auto& v = *view;
        for (;;) {
            switch (stage) {
            case 0:
                if (pos < replicas.size()) return v.hosts[replicas[pos++]].get();
                if (pinned) return nullptr;
                stage = 1;
                pos = 0;
                continue;
            case 1:
                while (pos < v.local.size()) {
                    const auto i = v.local[(plan_start + pos++) % v.local.size()];
                    if (std::find(replicas.begin(), replicas.end(), i) == replicas.end()) return v.hosts[i].get();
                }
                stage = 2;
                pos = 0;
                continue;
            case 2:
                if (pos < v.remote.size()) return v.hosts[v.remote[(plan_start + pos++) % v.remote.size()]].get();
                stage = 3;
                continue;
            default: return nullptr;
            }
        }
    }

    void attempt() {
        if (impl->closing.load(std::memory_order_relaxed)) return fail(client_errc::session_closed, impl->closed_reason());
        for (;;) {
            const host_conns* h = same_host ? host : next_host();
            same_host = false;
            if (!h) break;
            host = h;
            req->diagnostics.host = h->name();
            auto* c = h->pick();
            if (!c) {
                not_sent(client_errc::connection_closed_unsent, "no open connection to the host");
                continue;
            }
            if (cancelled.load(std::memory_order_relaxed)) return fail(asio::error::operation_aborted, "cancelled by the application");
            if (frame_version != c->version()) {
                frame.clear();
                auto ctx = impl->encoding();
                ctx.version = c->version();
                ctx.compression = c->frame_compression();
                ctx.default_timestamp = write_timestamp;
                const auto ec = std::visit([&](const auto& s) { return session_detail::encode_statement(ctx, s, frame); }, req->what);
                if (ec) return fail(ec, fmt::format("cannot encode the request: {}", ec.message()));
                frame_version = c->version();
            }
            conn = c;
            submit(frame);
            return;
        }
        if (last_error) {
            // A retry found no other node: the request fails with the error that asked for the retry.
            req->diagnostics.attempts.back().message += " (no other node to retry on)";
            req->diagnostics.host = req->diagnostics.attempts.back().host;
            return finish(last_error, last_server ? &*last_server : nullptr);
        }
        if (req->diagnostics.attempts.empty())
            req->diagnostics.attempts.push_back({req->diagnostics.host, client_errc::no_host_available,
                                                 "no node is up in the query plan (local datacenter: " + impl->local_dc + ")"});
        finish(client_errc::no_host_available);
    }

    // A node that never got the request: recorded, and the next node is free to take it.
    void not_sent(error_code ec, std::string why) {
        req->diagnostics.attempts.push_back({host ? host->name() : std::string(), ec, std::move(why), request_outcome::not_sent,
                                             retry_action::retry_next_node});
        impl->counts.not_sent_moves.fetch_add(1, std::memory_order_relaxed);
    }

    // Only a cancellable request pays for cancellation at the connection. An attempt timeout shortens
    // this attempt's deadline, not the request's.
    void submit(protocol::byte_buffer& f) {
        const auto slot = user_slot.is_connected() ? attempt_signal.slot() : asio::cancellation_slot();
        auto until = deadline;
        if (const auto a = impl->params.attempt_timeout; a.count() > 0) until = std::min(deadline, clock::now() + a);
        conn->submit(conn_t::shared_frame(keep, &f), this, slot, until);
    }

    // What the statement is, for the outcome and the retry policy (read from its text only on failure).
    bool is_read() const {
        if (const auto* b = std::get_if<bound_statement>(&req->what)) return b->prepared().is_read;
        if (const auto* s = std::get_if<statement>(&req->what)) return policy::is_read_statement(s->query());
        return false;
    }
    bool is_idempotent() const {
        if (const auto& flag = req->options().idempotent) return *flag;
        if (const auto* b = std::get_if<bound_statement>(&req->what)) return b->prepared().idempotent;
        if (const auto* s = std::get_if<statement>(&req->what)) return policy::infer_idempotence(s->query());
        const auto& b = std::get<batch>(req->what);
        if (b.kind() == batch_kind::counter) return false;
        return std::all_of(b.entries().begin(), b.entries().end(), [](const auto& e) {
            return std::visit([](const auto& x) -> bool {
                if (const auto& flag = x.options().idempotent) return *flag;
                if constexpr (std::is_same_v<std::decay_t<decltype(x)>, statement>) return policy::infer_idempotence(x.query());
                else return x.prepared().idempotent;
            }, e);
        });
    }
    consistency current_consistency() const { return req->options().cl.value_or(impl->params.default_consistency); }

    // An attempt that reached a node (or may have) failed: the retry policy decides what comes next.
    void handle_failure(error_code ec, protocol::error_response* server, bool written, std::string why) {
        auto& d = req->diagnostics;
        const auto outcome = classify_failure(ec, server, written, !is_read());
        auto& a = d.attempts.emplace_back(attempt_info{d.host, ec, std::move(why), outcome, retry_action::rethrow});
        ++tries;
        if (!retry) retry = impl->params.retry->new_state();
        failed_attempt f;
        f.ec = ec;
        f.server = server;
        f.outcome = outcome;
        f.idempotent = is_idempotent();
        f.cl = current_consistency();
        f.retries = d.retries;
        const auto decision = retry->decide(f);
        if (decision.what == retry_action::rethrow) return finish(ec, server);
        if (decision.what == retry_action::ignore) {
            a.decision = retry_action::ignore;
            impl->counts.ignored.fetch_add(1, std::memory_order_relaxed);
            return complete({}, result_builder::failed(std::move(d)));
        }
        const auto now = clock::now();
        if (tries >= impl->params.max_attempts) {
            impl->counts.attempts_exhausted.fetch_add(1, std::memory_order_relaxed);
            a.message += fmt::format(" (not retried: max_attempts {} reached)", impl->params.max_attempts);
            return finish(ec, server);
        }
        if (cancelled.load(std::memory_order_relaxed)) return finish(ec, server);
        if (now + decision.delay >= deadline) {
            a.message += " (not retried: the request timeout would pass first)";
            return finish(ec, server);
        }
        if (!impl->retries->try_withdraw(now)) {
            impl->counts.budget_denials.fetch_add(1, std::memory_order_relaxed);
            a.message += " (not retried: the session's retry budget is spent)";
            return finish(ec, server);
        }
        a.decision = decision.what;
        ++d.retries;
        count_retry(ec, written);
        last_error = ec;
        if (server) last_server = std::move(*server);
        else last_server.reset();
        if (decision.cl && *decision.cl != current_consistency()) {
            std::visit([&](auto& st) { st.options().cl = *decision.cl; }, req->what);
            d.downgraded_to = *decision.cl;
            frame_version = 0;  // encoded again, at the new consistency (and the same timestamp)
        }
        same_host = decision.what == retry_action::retry_same_node;
        if (decision.delay.count() <= 0) return attempt();
        backoff = std::make_unique<asio::steady_timer>(impl->ex, decision.delay);
        auto done = [this](error_code tec) {
            if (tec || cancelled.load(std::memory_order_relaxed))
                return fail(asio::error::operation_aborted, "cancelled by the application during a retry's backoff");
            attempt();
        };
        if (user_slot.is_connected()) backoff->async_wait(asio::bind_cancellation_slot(attempt_signal.slot(), std::move(done)));
        else backoff->async_wait(std::move(done));
    }

    void count_retry(error_code ec, bool written) {
        auto& c = impl->counts;
        c.retries.fetch_add(1, std::memory_order_relaxed);
        auto* which = ec == server_errc::read_timeout    ? &c.read_timeout
                      : ec == server_errc::write_timeout ? &c.write_timeout
                      : ec == server_errc::unavailable   ? &c.unavailable
                      : &ec.category() == &server_category() ? &c.overloaded
                      : written                          ? &c.connection_lost
                                                         : nullptr;
        if (which) which->fetch_add(1, std::memory_order_relaxed);
    }

    // Fails the request: the worst outcome of its attempts, the server's error if it was one.
    void finish(error_code ec, protocol::error_response* server = nullptr) {
        auto& d = req->diagnostics;
        d.outcome = request_outcome::not_sent;
        for (const auto& a : d.attempts) d.outcome = std::max(d.outcome, a.outcome);
        if (server) d.server = std::move(*server);
        impl->counts.failed_by_outcome[static_cast<std::size_t>(d.outcome)].fetch_add(1, std::memory_order_relaxed);
        complete(ec, result_builder::failed(std::move(d)));
    }

    // On the connection's strand: the request got no answer.
    void on_failure(error_code ec, bool written) override {
        repreparing = false;
        if (impl->closing.load(std::memory_order_relaxed)) {
            if (ec == client_errc::connection_closed_sent)
                return fail(ec, impl->closed_reason() + " after the request was written: it may or may not have been executed", true);
            if (ec != asio::error::operation_aborted && ec != client_errc::request_timeout)
                return fail(client_errc::session_closed, impl->closed_reason() + " before the request was written: it was not executed");
        }
        if (ec == client_errc::connection_closed_unsent || ec == client_errc::connection_draining || ec == client_errc::too_many_requests) {
            not_sent(ec, ec.message());
            return attempt();  // not executed: the next host may take it
        }
        if (ec == asio::error::operation_aborted) return fail(ec, "cancelled by the application", written);
        if (ec == client_errc::request_timeout) {
            if (clock::now() >= deadline) return fail(ec, fmt::format("no response within {} ms", timeout.count()), written);
            // Only this attempt's time ran out (attempt_timeout): a lost attempt, for the policy to judge.
            return handle_failure(ec, nullptr, written,
                                  fmt::format("no response within the attempt timeout of {} ms", impl->params.attempt_timeout.count()));
        }
        auto [cause, text] = conn->failure();
        handle_failure(ec, nullptr, written, text.empty() ? ec.message() : std::move(text));
    }

    // The statement of the request that has this prepared id (a batch may hold several).
    const prepared_data* prepared_with(const std::vector<std::uint8_t>& id) const {
        if (const auto* b = std::get_if<bound_statement>(&req->what)) return b->prepared().id == id ? &b->prepared() : nullptr;
        if (const auto* b = std::get_if<batch>(&req->what))
            for (const auto& e : b->entries())
                if (const auto* s = std::get_if<bound_statement>(&e); s && s->prepared().id == id) return &s->prepared();
        return nullptr;
    }

    // UNPREPARED: the node lost the statement (it restarted, or never had it). PREPARE it there again
    // and send the request once more, on the same connection; the application sees nothing of it.
    bool reprepare(const protocol::error_response& e) {
        if (reprepared || cancelled.load(std::memory_order_relaxed)) return false;
        const auto* u = std::get_if<unprepared_error>(&e.detail);
        const auto* p = u ? prepared_with(u->id) : nullptr;
        if (!p) return false;
        aux.clear();
        auto ctx = impl->encoding();
        ctx.version = conn->version();
        ctx.compression = conn->frame_compression();
        if (session_detail::encode_prepare(ctx, p->query, "", aux)) return false;
        reprepared = repreparing = true;
        submit(aux);
        return true;
    }

    // On the connection's strand: the answer, decoded here into the allocation the result keeps.
    void on_frame(const protocol::frame_header& h, protocol::bytes_view body) override {
        auto& d = req->diagnostics;
        auto f = std::make_shared<result_builder::owned_response>(h, body);
        if (f->failure) return fail(f->failure, fmt::format("malformed answer: {}", f->failure.message()), true);
        if (repreparing) {
            repreparing = false;
            if (auto* e = std::get_if<protocol::error_response>(&f->message.body)) {
                d.attempts.push_back({d.host, e->code_as_error(), "preparing again after UNPREPARED: " + e->message, request_outcome::rejected,
                                      retry_action::rethrow});
                return finish(e->code_as_error(), e);
            }
            return submit(frame);
        }
        if (auto* e = std::get_if<protocol::error_response>(&f->message.body)) {
            if (e->code == static_cast<std::int32_t>(server_errc::unprepared) && reprepare(*e)) return;
            const auto code = e->code_as_error();
            auto message = e->message;
            return handle_failure(code, e, true, std::move(message));
        }
        if (!std::holds_alternative<protocol::result_response>(f->message.body))
            return fail(protocol_errc::unexpected_opcode, "the answer is not a RESULT", true);
        const prepared_data* prepared = nullptr;
        if (const auto* b = std::get_if<bound_statement>(&req->what)) prepared = &b->prepared();
        try {
            auto r = result_builder::from(std::move(f), prepared, std::move(d));
            complete({}, std::move(r));
        } catch (const cqlcoro::error& bad) {  // rows that do not match their metadata
            fail(bad.boost_code(), bad.what(), true);
        }
    }

    // Fails the request at once with this attempt's error (no retry): `written` says whether the node
    // may have executed it.
    void fail(error_code ec, std::string why, bool written = false) {
        const auto outcome = written ? classify_failure(ec, nullptr, true, !is_read()) : request_outcome::not_sent;
        req->diagnostics.attempts.push_back({req->diagnostics.host, ec, std::move(why), outcome, retry_action::rethrow});
        finish(ec);
    }

    // Hands the object back to the pool, then completes the application's handler.
    void complete(error_code ec, result r) {
        if (user_slot.is_connected()) user_slot.clear();
        user_slot = {};
        const bool may_run_inline = !initiating.load(std::memory_order_acquire);
        auto h = std::move(handler);
        auto s = std::move(impl);
        view.reset();
        conn = nullptr;
        host = nullptr;
        retry.reset();
        backoff.reset();
        req.reset();
        release(std::move(keep));
        if (!ec && r.schema_change() && s->params.schema_agreement_timeout.count() > 0)
            return after_schema_change(std::move(s), std::move(h), std::move(r));
        h.complete(s->ex, may_run_inline, ec, std::move(r));
    }

    // A schema change through the session: the schema is read again and the nodes' agreement awaited
    // before the application sees the result (as the Java driver does).
    static void after_schema_change(std::shared_ptr<session_impl> s, erased_handler h, result r);

    // The pool: per thread, bounded. An object whose frame a connection still references (the write
    // that carried it has not completed yet, or it is queued behind a cancellation) stays in the pool
    // until it is free; the last few released are looked at.
    static std::vector<std::shared_ptr<request_op>>& pool() {
        thread_local std::vector<std::shared_ptr<request_op>> free;
        return free;
    }
    static std::shared_ptr<request_op> take() {
        auto& free = pool();
        const std::size_t n = free.size(), look = std::min<std::size_t>(n, 4);
        // The newest (still warm in the cache), then the oldest (most likely let go by now).
        for (std::size_t i = 0; i < 2 * look; ++i) {
            auto& candidate = free[i < look ? n - 1 - i : i - look];
            if (candidate.use_count() != 1) continue;
            std::swap(candidate, free.back());
            auto op = std::move(free.back());
            free.pop_back();
            return op;
        }
        return std::make_shared<request_op>();
    }
    static void release(std::shared_ptr<request_op> op) {
        auto& free = pool();
        if (free.size() < 4096) free.push_back(std::move(op));
    }

    static void launch(std::shared_ptr<session_impl> s, request r, erased_handler h) {
        auto op = take();
        auto* raw = op.get();
        raw->keep = std::move(op);
        raw->begin(std::move(s), std::move(r), std::move(h));
    }
};

// Not a coroutine: GCC 12 destroys a capturing lambda temporary inside a co_await expression twice.
auto session_impl::start_built_in(request q) {
    return asio::async_initiate<decltype(use_tuple), void(error_code, result)>(
        [self = shared_from_this()](auto handler, request r) { request_op::launch(self, std::move(r), erased_handler(std::move(handler))); },
        use_tuple, std::move(q));
}

void request_op::after_schema_change(std::shared_ptr<session_impl> s, erased_handler h, result r) {
    auto handler = std::make_shared<erased_handler>(std::move(h));
    auto change = *r.schema_change();
    auto work = [](std::shared_ptr<session_impl> s, schema_change_info c, result r) -> asio::awaitable<result> {
        bool agreed = false;
        try {
            agreed = co_await s->wait_schema_agreement(s->params.schema_agreement_timeout);
            protocol::schema_change changed{c.change_type, c.target, c.keyspace, c.name, c.arg_types};  // named: GCC 12
            co_await s->refresh_schema_element(changed);
        } catch (const cqlcoro::error&) {
            // the control connection is being replaced; the refresh comes with the new one
        }
        result_builder::agreed(r, agreed);
        co_return r;
    };
    asio::co_spawn(s->strand, work(s, std::move(change), std::move(r)), [s, handler](std::exception_ptr, result out) {
        handler->complete(s->ex, false, {}, std::move(out));
    });
}

asio::awaitable<outcome> session_impl::built_in(request& r) {
    request copy{r.what, r.diagnostics};  // a named local: GCC 12 mishandles aggregate temporaries in co_await
    auto [ec, res] = co_await start_built_in(std::move(copy));
    r.diagnostics = res.diagnostics();
    co_return outcome{ec, std::move(res)};
}

// "...: maybe applied": what the failed request may have done, said once at the end of its message.
std::string with_outcome(std::string what, const diagnostics& d) {
    if (d.attempts.empty()) return what;
    switch (d.outcome) {
    case request_outcome::not_sent: return what + " [not sent: it was not executed]";
    case request_outcome::rejected: return what + " [rejected: nothing was executed]";
    case request_outcome::failed: return what + " [failed: nothing was applied]";
    case request_outcome::maybe_applied: return what + " [maybe applied: the write may or may not have been executed]";
    }
    return what;
}

std::string describe_request_failure(error_code ec, const diagnostics& d) {
    auto with_host = [](std::string_view host, std::string_view text) {
        if (host.empty() || text.starts_with(host)) return std::string(text);
        return fmt::format("{}: {}", host, text);
    };
    if (d.server) return with_outcome(describe_server_error(*d.server, d.host), d);
    if (ec == client_errc::no_host_available && !d.attempts.empty()) {
        // Every host of the plan, each with its own reason, once.
        std::string what = "no host could take the request: ";
        for (std::size_t i = 0; i < d.attempts.size(); ++i) {
            const auto& a = d.attempts[i];
            what += (i ? "; " : "") + with_host(a.host, a.message.empty() ? a.ec.message() : a.message);
        }
        return with_outcome(what, d);
    }
    std::string what;
    if (!d.attempts.empty() && !d.attempts.back().message.empty()) what = with_host(d.host, d.attempts.back().message);
    else what = d.host.empty() ? ec.message() : with_host(d.host, ec.message());
    if (d.attempts.size() > 1) what += fmt::format(" (after {} attempts)", d.attempts.size());
    return with_outcome(what, d);
}


std::exception_ptr make_request_exception(error_code ec, const result& r) {
    return std::make_exception_ptr(error(ec, describe_request_failure(ec, r.diagnostics()), r.diagnostics()));
}

}  // namespace detail

row_view result::one() const {
    return rows()[0];
}

rows_view result::rows() const noexcept {
    static const result_page empty(std::vector<column_spec>{}, 0, {}, nullptr);
    return page_ ? page_->rows() : empty.rows();
}

const std::vector<column_spec>& result::columns() const noexcept {
    static const std::vector<column_spec> none;
    return page_ ? page_->columns() : none;
}

namespace {

// A failed result naming what the application did with an empty or closed session.
result misuse(error_code ec, std::string what) {
    return detail::failed_result({.attempts = {{"", ec, std::move(what)}}});
}

const std::string empty_session_text =
    "this session handle is empty (default-constructed or moved-from): assign it from session::connect() first";

}  // namespace

namespace detail {

void session_impl::log(log_level level, std::string_view message) const noexcept {
    if (!params.logger) return;
    try {
        params.logger(level, message);
    } catch (...) {  // a sink's failure is its own
    }
}

std::string session_impl::closed_reason() const {
    return abandoned.load(std::memory_order_relaxed) ? "the session was shut down (its last handle was destroyed without close())"
                                                     : "the session was closed (close() was called)";
}

void session_impl::shutdown() {
    if (closing.exchange(true)) return;  // close() came first
    abandoned = true;
    asio::post(strand, [self = shared_from_this()] {
        self->wake.cancel();
        self->readiness.cancel();
        if (self->control) self->control->abort();
        for (auto& p : self->pools) {
            if (p->retry) {
                p->retry->cancel();
                p->retry.reset();
            }
            for (auto& c : p->connections) c->abort();  // requests in flight complete with an error now
        }
        self->log(log_level::info, "session shut down: its last handle was destroyed without close()");
        self->publish();
    });
}

}  // namespace detail

const std::shared_ptr<detail::session_impl>& session::impl_or_null() const noexcept {
    static const std::shared_ptr<detail::session_impl> none;
    return handle_ ? handle_->impl : none;
}

detail::session_impl& session::impl() const {
    if (!handle_) throw error(client_errc::empty_handle, empty_session_text);
    return *handle_->impl;
}

asio::awaitable<session> session::connect(asio::any_io_executor ex, session_params params) {
    if (params.contact_points.empty()) throw error(client_errc::invalid_configuration, "session_params.contact_points is empty");
    if (params.connections_per_host == 0) throw error(client_errc::invalid_configuration, "connections_per_host must be at least 1");
    if (params.connections_per_remote_host == 0)
        throw error(client_errc::invalid_configuration, "connections_per_remote_host must be at least 1 (remote_hosts_per_dc = 0 uses no remote nodes)");
    if (params.protocol_version != 0 && (params.protocol_version < 3 || params.protocol_version > 5))
        throw error(client_errc::invalid_configuration, fmt::format("protocol_version {}: use 3, 4, 5, or 0 to negotiate", params.protocol_version));
    if (params.event_max_batch == 0) throw error(client_errc::invalid_configuration, "event_max_batch must be at least 1");
    if (!params.retry)
        throw error(client_errc::invalid_configuration, "session_params.retry is null: use fallthrough_retry_policy to never retry");
    if (params.max_attempts == 0) throw error(client_errc::invalid_configuration, "max_attempts must be at least 1 (1: no retries)");
    if (params.retry_budget.ratio < 0 || params.retry_budget.ttl.count() < 1 || params.retry_budget.ttl.count() > 60)
        throw error(client_errc::invalid_configuration, "retry_budget: the ratio must not be negative, the ttl 1 to 60 s");
    if (params.attempt_timeout.count() < 0) throw error(client_errc::invalid_configuration, "attempt_timeout must not be negative");
    if (params.reconnection.base.count() <= 0 || params.reconnection.max < params.reconnection.base)
        throw error(client_errc::invalid_configuration, "reconnection: the base delay must be positive and not above the maximum");
    auto impl = std::make_shared<detail::session_impl>(ex);
    if (params.tls) params.tls->context = make_tls_context(*params.tls);  // read the files once, share the context
    impl->params = std::move(params);
    impl->stream_budget = memory_budget::create(impl->params.stream_memory_budget);
    impl->retries = std::make_unique<retry_budget>(impl->params.retry_budget);
    co_await asio::co_spawn(impl->strand, impl->start(), asio::use_awaitable);
    session s;
    s.handle_ = std::make_shared<detail::session_handle>(std::move(impl));
    co_return s;
}

void session::launch(const std::shared_ptr<detail::session_impl>& impl, request r, handler_t handler) {
    if (!impl) {
        handler.complete(asio::any_io_executor(asio::system_executor()), false, client_errc::empty_handle,
                         misuse(client_errc::empty_handle, "execute() on an empty session: " + empty_session_text));
        return;
    }
    if (impl->closing.load(std::memory_order_relaxed)) {
        handler.complete(impl->ex, false, client_errc::session_closed, misuse(client_errc::session_closed, impl->closed_reason()));
        return;
    }
    if (impl->user_middlewares.empty()) {
        detail::request_op::launch(impl, std::move(r), std::move(handler));
        return;
    }
    // The application's middlewares are coroutines: the request runs through them in one.
    auto slot = handler.cancellation_slot();
    auto req = std::make_shared<request>(std::move(r));
    asio::co_spawn(
        impl->ex, impl->run(*req, 0),  // impl and req live on in the completion handler below
        asio::bind_cancellation_slot(slot, [h = std::make_shared<handler_t>(std::move(handler)), req, impl](std::exception_ptr e, outcome o) mutable {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const cqlcoro::error& x) {
                    o.ec = x.boost_code();
                } catch (const boost::system::system_error& x) {  // operation_aborted: cancelled before it started
                    o.ec = x.code();
                } catch (...) {
                    o.ec = asio::error::fault;  // a middleware threw something else
                }
            }
            h->complete(impl->ex, false, o.ec, std::move(o.result));
        }));
}

asio::awaitable<prepared_statement> session::prepare(std::string query) {
    auto s = impl().shared_from_this();
    if (s->closing) throw error(client_errc::session_closed, fmt::format("prepare(\"{}\"): {}", query, s->closed_reason()));
    co_return co_await asio::co_spawn(s->strand, s->prepare_on_strand(std::move(query)), asio::use_awaitable);
}

void session::add_middleware(middleware m) { impl().user_middlewares.push_back(std::move(m)); }

namespace {

asio::awaitable<void> close_on_strand(std::shared_ptr<detail::session_impl> impl, std::chrono::milliseconds timeout) {
    impl->closing = true;
    impl->wake.cancel();
    impl->readiness.cancel();
    if (impl->control) impl->control->abort();
    std::vector<std::shared_ptr<conn_t>> all;
    for (auto& p : impl->pools) {
        if (p->retry) {
            p->retry->cancel();
            p->retry.reset();
        }
        all.insert(all.end(), p->connections.begin(), p->connections.end());
    }
    for (auto& c : all) co_await c->close(timeout);
    impl->publish();
}

}  // namespace

asio::awaitable<void> session::close(std::chrono::milliseconds timeout) {
    if (!handle_) co_return;  // nothing to close, as for a socket that is not open
    auto impl = handle_->impl;
    co_await asio::co_spawn(impl->strand, close_on_strand(impl, timeout), asio::use_awaitable);
}

std::vector<host_metrics> session::metrics() const {
    std::vector<host_metrics> out;
    if (!handle_) return out;
    auto v = handle_->impl->current();
    for (const auto& h : v->hosts) {
        auto& m = out.emplace_back();
        m.host = h->name();
        for (const auto& c : h->connections) {
            m.open_connections += c->state() == connection::connection_state::ready ? 1 : 0;
            m.in_flight += c->in_flight();
            m.orphaned_streams += c->orphans();
            m.requests_sent += c->sent();
        }
        m.connections_replaced = h->info->replaced_.load(std::memory_order_relaxed);
    }
    return out;
}

request_metrics session::retry_metrics() const {
    request_metrics m;
    if (!handle_) return m;
    const auto& c = handle_->impl->counts;
    auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    m.retries = get(c.retries);
    m.retries_read_timeout = get(c.read_timeout);
    m.retries_write_timeout = get(c.write_timeout);
    m.retries_unavailable = get(c.unavailable);
    m.retries_overloaded = get(c.overloaded);
    m.retries_connection_lost = get(c.connection_lost);
    m.not_sent_moves = get(c.not_sent_moves);
    m.budget_denials = get(c.budget_denials);
    m.attempts_exhausted = get(c.attempts_exhausted);
    m.ignored = get(c.ignored);
    for (std::size_t i = 0; i < m.failed_by_outcome.size(); ++i) m.failed_by_outcome[i] = get(c.failed_by_outcome[i]);
    return m;
}

std::shared_ptr<const cluster_metadata> session::metadata() const { return impl().current()->md; }

asio::awaitable<bool> session::check_schema_agreement(std::chrono::milliseconds timeout) {
    auto impl = this->impl().shared_from_this();
    if (impl->closing) throw error(client_errc::session_closed, "check_schema_agreement(): " + impl->closed_reason());
    auto work = [](std::shared_ptr<detail::session_impl> s, std::chrono::milliseconds t) -> asio::awaitable<bool> {
        co_return co_await s->wait_schema_agreement(t);
    };
    co_return co_await asio::co_spawn(impl->strand, work(impl, timeout), asio::use_awaitable);
}

std::uint8_t session::protocol_version() const noexcept { return handle_ ? handle_->impl->version : 0; }
asio::any_io_executor session::initiation::get_executor() const noexcept {
    return impl ? impl->ex : asio::any_io_executor(asio::system_executor());
}
const session_params& session::params() const { return impl().params; }

}  // namespace cqlcoro
