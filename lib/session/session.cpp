#include <cqlcoro/session.hpp>

#include "connection/connection.hpp"
#include "session/encode.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/container/small_vector.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cstring>
#include <map>

namespace cqlcoro {

using conn_t = connection::connection;
using connection::clock;
using detail::erased_handler;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

protocol::compression to_protocol(cqlcoro::compression c) {
    switch (c) {
    case compression::lz4: return protocol::compression::lz4;
    case compression::snappy: return protocol::compression::snappy;
    default: return protocol::compression::none;
    }
}

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
        } else if (const auto* sc = std::get_if<protocol::schema_change_result>(&body)) {
            r.schema_change_ = schema_change_info{sc->change.change_type, sc->change.target, sc->change.keyspace, sc->change.name,
                                                  sc->change.arg_types};
        } else if (const auto* ks = std::get_if<protocol::set_keyspace_result>(&body)) {
            r.keyspace_set_ = ks->keyspace;
        }
        return r;
    }
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

struct host {
    std::string name;  // "address:port"
    std::vector<std::shared_ptr<conn_t>> connections;

    // The open connection with the fewest requests in flight.
    std::shared_ptr<conn_t> pick() const {
        std::shared_ptr<conn_t> best;
        for (const auto& c : connections)
            if (c->state() == connection::connection_state::ready && (!best || c->in_flight() < best->in_flight())) best = c;
        return best;
    }
};

struct prepare_entry {
    explicit prepare_entry(asio::any_io_executor ex) : done(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;  // cancelled when the PREPARE completes
    bool finished = false;
    prepared_statement value;
    std::exception_ptr failure;
};

struct session_impl : std::enable_shared_from_this<session_impl> {
    asio::any_io_executor ex;
    asio::strand<asio::any_io_executor> strand;  // the prepare cache
    session_params params;
    std::vector<std::shared_ptr<host>> hosts;
    std::uint8_t version = 0;
    protocol::compression frame_compression = protocol::compression::none;
    std::atomic<std::size_t> next_host{0};
    std::vector<middleware> user_middlewares;
    std::map<std::pair<std::string, std::string>, std::shared_ptr<prepare_entry>> prepared;
    std::atomic<bool> closing{false};

    explicit session_impl(asio::any_io_executor e) : ex(e), strand(asio::make_strand(e)) {}

    session_detail::encode_context encoding() const {
        return {.version = version, .compression = frame_compression, .default_cl = params.default_consistency,
                .default_page_size = params.default_page_size};
    }

    // The chain: user middlewares, then timeout, query plan and node attempt.
    asio::awaitable<outcome> run(request& r, std::size_t layer) {
        if (layer < user_middlewares.size()) {
            auto self = shared_from_this();
            next_layer next = [self, layer](request& q) { return self->run(q, layer + 1); };
            co_return co_await user_middlewares[layer](r, std::move(next));
        }
        co_return co_await built_in(r);
    }

    // The built-in chain (request_op, below) for a request coming out of the application's middlewares;
    // `r` stays theirs (they may send it again), so the operation takes a copy.
    asio::awaitable<outcome> built_in(request& r);
    auto start_built_in(request q);

    // The query plan, round robin: hosts in order from a start that advances with every request.
    std::size_t plan_start() noexcept { return next_host.fetch_add(1, std::memory_order_relaxed); }
    const host& planned(std::size_t start, std::size_t i) const noexcept { return *hosts[(start + i) % hosts.size()]; }

    asio::awaitable<prepared_statement> prepare_on_strand(std::string query) {
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

    asio::awaitable<prepared_statement> send_prepare(const std::string& query) {
        diagnostics d;
        const auto start = plan_start();
        for (std::size_t i = 0; i < hosts.size(); ++i) {
            const auto* h = &planned(start, i);
            d.host = h->name;
            auto conn = h->pick();
            if (!conn) continue;
            auto frame = std::make_shared<protocol::byte_buffer>();
            auto ctx = encoding();
            ctx.version = conn->version();
            ctx.compression = conn->frame_compression();
            if (auto ec = session_detail::encode_prepare(ctx, query, "", *frame)) throw error(ec, "PREPARE: " + ec.message());
            auto [ec, f] = co_await conn->execute(conn_t::shared_frame(std::move(frame)), use_tuple);
            if (ec == client_errc::connection_closed_unsent || ec == client_errc::connection_draining) continue;
            if (ec) throw error(ec, fmt::format("{}: PREPARE failed: {}", h->name, ec.message()));
            if (auto* e = std::get_if<protocol::error_response>(&f.message.body)) {
                auto x = make_server_error(*e, h->name);
                throw error(x.boost_code(), fmt::format("{} (preparing \"{}\")", x.what(), query), x.diagnostics());
            }
            const auto* res = std::get_if<protocol::result_response>(&f.message.body);
            const auto* p = res ? std::get_if<protocol::prepared_result>(&res->body) : nullptr;
            if (!p) throw error(protocol_errc::unexpected_opcode, fmt::format("{}: the answer to PREPARE is not a prepared result", h->name));
            auto data = std::make_shared<prepared_data>();
            data->query = query;
            data->keyspace = params.keyspace;
            data->id = p->id;
            data->result_metadata_id = p->result_metadata_id;
            data->markers = p->variables.columns;
            data->pk_indexes = p->variables.pk_indexes;
            data->result_set = std::make_shared<const detail::column_set>(p->result.columns);
            co_return prepared_statement(std::move(data));
        }
        throw error(client_errc::no_host_available, fmt::format("PREPARE \"{}\": no host has an open connection", query));
    }
};

// The built-in part of the chain (request timeout, round-robin query plan, node attempt) as one
// operation object, not coroutines: it is the hot path, and each coroutine layer costs frames,
// cancellation slots and posts. Objects are pooled per thread and keep their frame buffer and
// cancellation signal, so a request in the steady state allocates nothing here.
struct request_op final : connection::request_sink {
    std::shared_ptr<request_op> keep;  // set while running: the pool's reference, handed back at the end
    std::shared_ptr<session_impl> impl;
    std::optional<request> req;
    erased_handler handler;
    protocol::byte_buffer frame;  // encoded once for frame_version; connections share it while writing
    std::uint8_t frame_version = 0;
    asio::cancellation_signal attempt_signal;  // the application's cancellation, forwarded to the connection
    asio::cancellation_slot user_slot;
    std::atomic<bool> cancelled{false};
    std::atomic<bool> initiating{false};  // completions during execute() itself are posted, never inline
    clock::time_point deadline;
    std::chrono::milliseconds timeout{0};
    std::size_t plan_start = 0, tried = 0;

    void begin(std::shared_ptr<session_impl> s, request r, erased_handler h) {
        impl = std::move(s);
        req.emplace(std::move(r));
        handler = std::move(h);
        frame_version = 0;
        cancelled.store(false, std::memory_order_relaxed);
        timeout = req->options().timeout.value_or(impl->params.request_timeout);
        deadline = clock::now() + timeout;
        plan_start = impl->plan_start();
        tried = 0;
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

    void attempt() {
        const auto& hosts = impl->hosts;
        for (; tried < hosts.size(); ++tried) {
            const auto& h = impl->planned(plan_start, tried);
            req->diagnostics.host = h.name;
            auto c = h.pick();
            if (!c) {
                req->diagnostics.attempts.push_back({h.name, client_errc::connection_closed_unsent, "no open connection to the host"});
                continue;
            }
            if (cancelled.load(std::memory_order_relaxed)) return fail(asio::error::operation_aborted, "cancelled by the application");
            if (frame_version != c->version()) {
                frame.clear();
                auto ctx = impl->encoding();
                ctx.version = c->version();
                ctx.compression = c->frame_compression();
                const auto ec = std::visit([&](const auto& s) { return session_detail::encode_statement(ctx, s, frame); }, req->what);
                if (ec) return fail(ec, fmt::format("cannot encode the request: {}", ec.message()));
                frame_version = c->version();
            }
            // Only a cancellable request pays for cancellation at the connection. The session's host list
            // keeps the connection alive while it holds the request.
            const auto slot = user_slot.is_connected() ? attempt_signal.slot() : asio::cancellation_slot();
            c->submit(conn_t::shared_frame(keep, &frame), this, slot, deadline);
            return;
        }
        complete(client_errc::no_host_available, result_builder::failed(std::move(req->diagnostics)));
    }

    // On the connection's strand: the request got no answer.
    void on_failure(error_code ec) override {
        auto& d = req->diagnostics;
        if (ec == client_errc::connection_closed_unsent || ec == client_errc::connection_draining || ec == client_errc::too_many_requests) {
            d.attempts.push_back({d.host, ec, ec.message()});
            ++tried;  // not executed: the next host may take it
            return attempt();
        }
        if (ec == client_errc::request_timeout) return fail(ec, fmt::format("no response within {} ms", timeout.count()));
        if (ec == asio::error::operation_aborted) return fail(ec, "cancelled by the application");
        fail(ec, ec.message());
    }

    // On the connection's strand: the answer, decoded here into the allocation the result keeps.
    void on_frame(const protocol::frame_header& h, protocol::bytes_view body) override {
        auto& d = req->diagnostics;
        auto f = std::make_shared<result_builder::owned_response>(h, body);
        if (f->failure) return fail(f->failure, fmt::format("malformed answer: {}", f->failure.message()));
        if (auto* e = std::get_if<protocol::error_response>(&f->message.body)) {
            const auto code = e->code_as_error();
            d.attempts.push_back({d.host, code, e->message});
            d.server = std::move(*e);
            return complete(code, result_builder::failed(std::move(d)));
        }
        if (!std::holds_alternative<protocol::result_response>(f->message.body))
            return fail(protocol_errc::unexpected_opcode, "the answer is not a RESULT");
        const prepared_data* prepared = nullptr;
        if (const auto* b = std::get_if<bound_statement>(&req->what)) prepared = &b->prepared();
        try {
            auto r = result_builder::from(std::move(f), prepared, std::move(d));
            complete({}, std::move(r));
        } catch (const cqlcoro::error& bad) {  // rows that do not match their metadata
            complete(bad.boost_code(), result_builder::failed(std::move(d)));
        }
    }

    void fail(error_code ec, std::string why) {
        req->diagnostics.attempts.push_back({req->diagnostics.host, ec, std::move(why)});
        complete(ec, result_builder::failed(std::move(req->diagnostics)));
    }

    // Hands the object back to the pool, then completes the application's handler.
    void complete(error_code ec, result r) {
        if (user_slot.is_connected()) user_slot.clear();
        user_slot = {};
        const bool may_run_inline = !initiating.load(std::memory_order_acquire);
        auto h = std::move(handler);
        auto s = std::move(impl);
        req.reset();
        release(std::move(keep));
        h.complete(s->ex, may_run_inline, ec, std::move(r));
    }

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

asio::awaitable<outcome> session_impl::built_in(request& r) {
    request copy{r.what, r.diagnostics};  // a named local: GCC 12 mishandles aggregate temporaries in co_await
    auto [ec, res] = co_await start_built_in(std::move(copy));
    r.diagnostics = res.diagnostics();
    co_return outcome{ec, std::move(res)};
}

std::exception_ptr make_request_exception(error_code ec, const result& r) {
    const auto& d = r.diagnostics();
    std::string what;
    if (d.server) what = describe_server_error(*d.server, d.host);
    else if (!d.attempts.empty() && !d.attempts.back().message.empty()) what = fmt::format("{}: {}", d.host, d.attempts.back().message);
    else what = d.host.empty() ? ec.message() : fmt::format("{}: {}", d.host, ec.message());
    if (d.attempts.size() > 1) what += fmt::format(" ({} attempts)", d.attempts.size());
    return std::make_exception_ptr(error(ec, what, d));
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

asio::awaitable<session> session::connect(asio::any_io_executor ex, session_params params) {
    if (params.contact_points.empty()) throw error(client_errc::invalid_configuration, "session_params.contact_points is empty");
    if (params.connections_per_host == 0) throw error(client_errc::invalid_configuration, "connections_per_host must be at least 1");
    if (params.protocol_version != 0 && (params.protocol_version < 3 || params.protocol_version > 5))
        throw error(client_errc::invalid_configuration, fmt::format("protocol_version {}: use 3, 4, 5, or 0 to negotiate", params.protocol_version));
    auto impl = std::make_shared<detail::session_impl>(ex);
    impl->params = params;
    std::uint8_t max_version = params.protocol_version ? params.protocol_version : 5;
    if (params.tls) params.tls->context = make_tls_context(*params.tls);  // read the files once, share the context
    std::vector<std::string> failures;
    for (const auto& cp : params.contact_points) {
        auto h = std::make_shared<detail::host>();
        h->name = fmt::format("{}:{}", cp, params.port);
        for (std::size_t i = 0; i < params.connections_per_host; ++i) {
            connection::connection_params cpar;
            cpar.host = cp;
            cpar.port = params.port;
            cpar.max_version = max_version;
            cpar.compression = to_protocol(params.compression);
            cpar.auth = params.auth;
            cpar.tls = params.tls;
            cpar.keyspace = params.keyspace;
            cpar.connect_timeout = params.connect_timeout;
            cpar.heartbeat_interval = params.heartbeat_interval;
            try {
                auto c = co_await conn_t::connect(ex, cpar);
                // Every connection of the session speaks the version the first one negotiated.
                if (impl->version == 0) {
                    impl->version = c->version();
                    impl->frame_compression = c->frame_compression();
                    max_version = c->version();
                }
                h->connections.push_back(std::move(c));
            } catch (const error& e) {
                failures.push_back(e.what());
                break;  // the host is unreachable or refuses: do not try its other connections now
            }
        }
        impl->hosts.push_back(std::move(h));
    }
    if (impl->version == 0) {
        std::string all;
        for (const auto& f : failures) all += (all.empty() ? "" : "; ") + f;
        throw error(client_errc::no_host_available, "no contact point could be reached: " + all);
    }
    session s;
    s.impl_ = std::move(impl);
    co_return s;
}

void session::launch(const std::shared_ptr<detail::session_impl>& impl, request r, handler_t handler) {
    if (impl->closing.load(std::memory_order_relaxed)) {
        handler.complete(impl->ex, false, client_errc::connection_draining, result{});
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
    co_return co_await asio::co_spawn(impl_->strand, impl_->prepare_on_strand(std::move(query)), asio::use_awaitable);
}

void session::add_middleware(middleware m) { impl_->user_middlewares.push_back(std::move(m)); }

asio::awaitable<void> session::close(std::chrono::milliseconds timeout) {
    impl_->closing = true;
    for (const auto& h : impl_->hosts)
        for (const auto& c : h->connections) co_await c->close(timeout);
}

std::vector<host_metrics> session::metrics() const {
    std::vector<host_metrics> out;
    for (const auto& h : impl_->hosts) {
        auto& m = out.emplace_back();
        m.host = h->name;
        for (const auto& c : h->connections) {
            m.open_connections += c->state() == connection::connection_state::ready ? 1 : 0;
            m.in_flight += c->in_flight();
            m.orphaned_streams += c->orphans();
            m.requests_sent += c->sent();
        }
    }
    return out;
}

std::uint8_t session::protocol_version() const noexcept { return impl_->version; }
asio::any_io_executor session::initiation::get_executor() const noexcept { return impl->ex; }
const session_params& session::params() const noexcept { return impl_->params; }

}  // namespace cqlcoro
