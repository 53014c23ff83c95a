#include <cqlcoro/session.hpp>

#include "connection/connection.hpp"
#include "session/encode.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cstring>
#include <map>

namespace cqlcoro {

using conn_t = connection::connection;
using namespace boost::asio::experimental::awaitable_operators;

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
    static result from(std::shared_ptr<connection::response_frame> f, const prepared_data* prepared, diagnostics d) {
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
            // With skip_metadata the columns come from PREPARE; otherwise they move out of the frame we own.
            auto columns = rows->metadata.columns.empty() && prepared ? prepared->result_columns
                                                                      : std::move(rows->metadata.columns);
            r.page_.emplace(std::move(columns), static_cast<std::size_t>(rows->row_count), rows->content, f);
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

struct request::state {
    conn_t::shared_frame frame;  // encoded once, shared by every attempt
    std::uint8_t version = 0;
};

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
        co_return co_await with_timeout(r);
    }

    asio::awaitable<outcome> with_timeout(request& r) {
        const auto timeout = r.options().timeout.value_or(params.request_timeout);
        asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
        auto planned = attempt(r, plan_start());
        auto first = co_await (std::move(planned) || timer.async_wait(use_tuple));
        if (first.index() == 0) co_return std::get<0>(std::move(first));
        if (auto [tec] = std::get<1>(first); tec) {  // the timer was cancelled with the request: not a timeout
            r.diagnostics.attempts.push_back({r.diagnostics.host, asio::error::operation_aborted, "cancelled by the application"});
            co_return outcome{asio::error::operation_aborted, result_builder::failed(r.diagnostics)};
        }
        r.diagnostics.attempts.push_back({r.diagnostics.host, client_errc::request_timeout,
                                          fmt::format("no response within {} ms", timeout.count())});
        co_return outcome{client_errc::request_timeout, result_builder::failed(r.diagnostics)};
    }

    // The query plan, round robin: hosts in order from a start that advances with every request.
    std::size_t plan_start() noexcept { return next_host.fetch_add(1, std::memory_order_relaxed); }
    const host& planned(std::size_t start, std::size_t i) const noexcept { return *hosts[(start + i) % hosts.size()]; }

    // Tries the plan's hosts in turn while the failure says the request was not executed.
    asio::awaitable<outcome> attempt(request& r, std::size_t start) {
        if (!r.internal) r.internal = std::make_shared<request::state>();
        auto& st = *r.internal;
        for (std::size_t i = 0; i < hosts.size(); ++i) {
            const auto* h = &planned(start, i);
            r.diagnostics.host = h->name;
            auto conn = h->pick();
            if (!conn) {
                r.diagnostics.attempts.push_back({h->name, client_errc::connection_closed_unsent, "no open connection to the host"});
                continue;
            }
            if (!st.frame || st.version != conn->version()) {
                auto frame = std::make_shared<protocol::byte_buffer>();
                auto ctx = encoding();
                ctx.version = conn->version();
                ctx.compression = conn->frame_compression();
                const auto ec = std::visit([&](const auto& s) { return session_detail::encode_statement(ctx, s, *frame); }, r.what);
                if (ec) {
                    r.diagnostics.attempts.push_back({h->name, ec, fmt::format("cannot encode the request: {}", ec.message())});
                    co_return outcome{ec, result_builder::failed(r.diagnostics)};
                }
                st.frame = std::move(frame);
                st.version = conn->version();
            }
            auto [ec, f] = co_await conn->execute(st.frame, use_tuple);
            if (ec == client_errc::connection_closed_unsent || ec == client_errc::connection_draining || ec == client_errc::too_many_requests) {
                r.diagnostics.attempts.push_back({h->name, ec, ec.message()});
                continue;  // not executed: the next host may take it
            }
            if (ec) {
                r.diagnostics.attempts.push_back({h->name, ec, ec.message()});
                co_return outcome{ec, result_builder::failed(r.diagnostics)};
            }
            if (auto* e = std::get_if<protocol::error_response>(&f.message.body)) {
                const auto code = e->code_as_error();
                r.diagnostics.attempts.push_back({h->name, code, e->message});
                r.diagnostics.server = std::move(*e);
                co_return outcome{code, result_builder::failed(r.diagnostics)};
            }
            if (!std::holds_alternative<protocol::result_response>(f.message.body)) {
                r.diagnostics.attempts.push_back({h->name, protocol_errc::unexpected_opcode, "the answer is not a RESULT"});
                co_return outcome{protocol_errc::unexpected_opcode, result_builder::failed(r.diagnostics)};
            }
            r.diagnostics.attempts.push_back({h->name, {}, ""});
            const prepared_data* prepared = nullptr;
            if (const auto* b = std::get_if<bound_statement>(&r.what)) prepared = &b->prepared();
            try {
                co_return outcome{{}, result_builder::from(std::make_shared<connection::response_frame>(std::move(f)), prepared, r.diagnostics)};
            } catch (const cqlcoro::error& bad) {  // rows that do not match their metadata
                co_return outcome{bad.boost_code(), result_builder::failed(r.diagnostics)};
            }
        }
        co_return outcome{client_errc::no_host_available, result_builder::failed(r.diagnostics)};
    }

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
            data->result_columns = p->result.columns;
            co_return prepared_statement(std::move(data));
        }
        throw error(client_errc::no_host_available, fmt::format("PREPARE \"{}\": no host has an open connection", query));
    }
};

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
    static const result_page empty({}, 0, {}, nullptr);
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
        auto ex = asio::prefer(asio::get_associated_executor(handler, impl->ex), asio::execution::blocking.never);
        ex.execute([h = std::move(handler)]() mutable { std::move(h)(client_errc::connection_draining, result{}); });
        return;
    }
    auto slot = asio::get_associated_cancellation_slot(handler);
    auto req = std::make_shared<request>(std::move(r));
    asio::co_spawn(
        impl->ex, impl->run(*req, 0),  // impl and req live on in the completion handler below
        asio::bind_cancellation_slot(slot, [h = std::move(handler), req, impl](std::exception_ptr e, outcome o) mutable {
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
            std::move(h)(o.ec, std::move(o.result));
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
