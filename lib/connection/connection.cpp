#include "connection/connection.hpp"
#include "connection/tls_context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include <cstring>
#include "../namespaces.hpp"

namespace cqlcoro::connection {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t min_read_space = 16 * 1024;
// The read buffer's usual size, and the size beyond which a buffer grown for one large frame is given
// back once that frame is parsed (so one 100 MiB answer does not pin 100 MiB for the connection's life).
constexpr std::size_t usual_read_buffer = 64 * 1024;
constexpr std::size_t kept_read_buffer = 1024 * 1024;

// Requests are encoded before they reach the strand, with stream 0; the strand writes the real id in.
void patch_stream(std::uint8_t* frame, std::int16_t id) noexcept {
    frame[2] = static_cast<std::uint8_t>(static_cast<std::uint16_t>(id) >> 8);
    frame[3] = static_cast<std::uint8_t>(id);
}

bool is_ip_address(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::string quote_identifier(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

}  // namespace

connection::connection(asio::any_io_executor ex, const connection_params& p)
    : strand_(asio::make_strand(ex)),
      socket_(strand_),
      host_(p.host),
      max_frame_(p.max_frame_size),
      orphan_budget_(p.orphan_budget),
      replace_on_orphans_(p.replace_on_orphans),
      heartbeat_interval_(p.heartbeat_interval),
      heartbeat_timeout_(p.heartbeat_timeout),
      drain_timeout_(p.drain_timeout),
      ids_(p.max_requests),
      in_flight_(std::min<std::size_t>(ids_.capacity(), 64)),
      deadline_timer_(strand_),
      heartbeat_timer_(strand_),
      closed_signal_(strand_, clock::time_point::max()),
      assembler_(p.max_frame_size) {}

connection::~connection() = default;

std::pair<error_code, std::string> connection::failure() const {
    std::lock_guard lock(failure_mutex_);
    return {failure_, failure_text_};
}

void connection::set_failure(error_code cause, std::string why) {
    std::lock_guard lock(failure_mutex_);
    if (failure_) return;  // the first cause is the one that matters
    failure_ = cause;
    failure_text_ = std::move(why);
}

asio::awaitable<std::shared_ptr<connection>> connection::connect(asio::any_io_executor ex, connection_params params,
                                                                 event_handler on_event, state_handler on_state) {
    auto c = co_await try_connect(std::move(ex), std::move(params), std::move(on_event), std::move(on_state));
    co_return std::move(c).value();
}

asio::awaitable<detail::fallible<std::shared_ptr<connection>>> connection::try_connect(asio::any_io_executor ex, connection_params params,
                                                                                         event_handler on_event, state_handler on_state) {
    using detail::failure;
    const std::string where = fmt::format("{}:{}", params.host, params.port);
    std::shared_ptr<asio::ssl::context> tls_context;
    if (params.tls) {
        auto made = detail::tls_context_for(*params.tls);
        if (!made) co_return made.error();
        tls_context = std::move(*made);
    }
    if (params.max_version < 3 || params.max_version > 5)
        co_return failure{client_errc::invalid_configuration, fmt::format("max_version {}: cqlcoro speaks protocol v3, v4 and v5", params.max_version)};
    const auto deadline = std::chrono::steady_clock::now() + params.connect_timeout;
    std::string refusals;
    for (std::uint8_t v = params.max_version; v >= 3; --v) {
        auto c = std::make_shared<connection>(ex, params);
        c->tls_context_ = tls_context;
        c->on_event_ = on_event;
        c->on_state_ = on_state;
        auto ec = co_await asio::co_spawn(c->strand_, c->open_until(params, v, deadline), asio::use_awaitable);
        // Past the TCP connect, silence or a hang-up means the peer is not a CQL server as configured.
        const auto port_hint = fmt::format("; is {} the server's CQL native port (native_transport_port, 9042 by default; 7000 is "
                                           "the internode port)?",
                                           params.port);
        if (c->timed_out_)
            co_return failure{client_errc::connect_timeout,
                        fmt::format("{}: no answer within the connect timeout of {} ms (while waiting for the {}){}{}", where,
                                    params.connect_timeout.count(), c->stage_,
                                    params.tls ? "" : "; if the server expects TLS, configure tls",
                                    std::string_view(c->stage_).starts_with("answer") ? std::string_view(port_hint) : std::string_view())};
        if (!ec && params.exact_version && v != params.max_version) {
            // The server speaks v, not the version asked for: say so, and do not use it.
            c->abort();
            co_return failure{protocol_errc::unsupported_version,
                        fmt::format("{}: protocol v{} was asked for, but the server refuses it ({}) and speaks v{} at most: set "
                                    "protocol_version to {}, or to 0 to negotiate",
                                    where, params.max_version, refusals, v, v)};
        }
        if (!ec) {
            c->last_read_ = std::chrono::steady_clock::now();
            asio::post(c->strand_, [c] { c->start_read(); });
            if (c->heartbeat_interval_.count() > 0) asio::co_spawn(c->strand_, [c] { return c->heartbeat_loop(); }, asio::detached);
            co_return c;
        }
        if (ec == protocol_errc::unsupported_version) {
            refusals += fmt::format("{}v{} refused", refusals.empty() ? "" : ", ", v);
            continue;
        }
        auto [fec, text] = c->failure();
        if (ec.category() == asio::error::get_ssl_category() || ec == asio::ssl::error::stream_truncated)
            co_return failure{client_errc::tls_failed, fmt::format("{}: TLS handshake failed: {} (check the CA certificate, the server name "
                                                             "and, if the server requires one, the client certificate)", where, ec.message())};
        if (ec == asio::error::eof || ec == asio::error::connection_reset)
            co_return failure{ec, fmt::format("{}: the server closed the connection during the {}{}{}", where, c->stage_,
                                        params.tls ? " (with TLS: the server may have refused the client certificate, or not speak TLS)"
                                                   : "; if the server expects TLS, configure tls",
                                        port_hint)};
        co_return failure{ec, fmt::format("{}: {}", where, text.empty() ? fmt::format("{} failed: {}", c->stage_, ec.message()) : text)};
    }
    co_return failure{protocol_errc::unsupported_version,
                fmt::format("{} speaks none of protocol v{}..v3 ({})", where, params.max_version, refusals)};
}

// open() bounded by the deadline: when it passes, the socket is closed, which ends whatever step open() waits in.
asio::awaitable<error_code> connection::open_until(const connection_params& p, std::uint8_t version,
                                                   std::chrono::steady_clock::time_point deadline) {
    asio::steady_timer timer(strand_, deadline);
    timer.async_wait([self = shared_from_this()](error_code ec) {
        if (ec) return;
        self->timed_out_ = true;
        error_code ignored;
        self->lowest().close(ignored);
    });
    auto ec = co_await open(p, version);
    timer.cancel();
    co_return ec;
}

// TCP connect, TLS, then the CQL handshake in `version`. unsupported_version when the server refuses it.
asio::awaitable<error_code> connection::open(const connection_params& p, std::uint8_t version) {
    // An IP address needs no resolver (Asio's runs getaddrinfo on a thread of its own): only names do.
    error_code not_ip;
    const auto ip = asio::ip::make_address(p.host, not_ip);
    if (!not_ip) {
        stage_ = "TCP connect";
        auto [cec] = co_await socket_.async_connect(asio::ip::tcp::endpoint(ip, p.port), use_tuple);
        if (cec) co_return cec;
    } else {
        stage_ = "address resolution";
        asio::ip::tcp::resolver resolver(strand_);
        auto [rec, endpoints] = co_await resolver.async_resolve(p.host, std::to_string(p.port), use_tuple);
        if (rec) co_return rec;
        stage_ = "TCP connect";
        auto [cec, ep] = co_await asio::async_connect(socket_, endpoints, use_tuple);
        if (cec) co_return cec;
    }
    socket_.set_option(asio::ip::tcp::no_delay(true));
    if (tls_context_) {
        stage_ = "TLS handshake";
        tls_ = std::make_unique<asio::ssl::stream<socket_type>>(std::move(socket_), *tls_context_);
        const std::string& name = p.tls->server_name.empty() ? p.host : p.tls->server_name;
        if (!is_ip_address(name)) SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());  // SNI takes names only
        if (p.tls->verify_peer && p.tls->verify_hostname) tls_->set_verify_callback(asio::ssl::host_name_verification(name));
        auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, use_tuple);
        if (hec) co_return hec;
    }
    version_ = version;
    co_return co_await handshake(p);
}

// One request and its answer, before the read loop runs.
asio::awaitable<std::optional<response_frame>> connection::exchange(const protocol::request& req) {
    protocol::byte_buffer frame;
    if (auto ec = protocol::encode_request(version_, req, {.compression = framing_ ? protocol::compression::none : compression_}, frame)) {
        set_failure(ec, fmt::format("{} failed: cannot encode the request: {}", stage_, ec.message()));
        co_return std::nullopt;
    }
    protocol::byte_buffer out;
    if (framing_) {
        std::vector<protocol::bytes_view> one{frame};
        protocol::encode_envelopes(one, compression_ == protocol::compression::lz4, out);
    } else {
        out = std::move(frame);
    }
    auto [wec, wn] = tls_ ? co_await asio::async_write(*tls_, asio::buffer(out), use_tuple)
                          : co_await asio::async_write(socket_, asio::buffer(out), use_tuple);
    if (wec) {
        set_failure(wec, "");
        co_return std::nullopt;
    }
    std::optional<response_frame> got;
    on_handshake_frame_ = [&got](response_frame f) { got = std::move(f); };
    while (!got) {
        if (in_.size() - in_used_ < min_read_space) in_.resize(std::max<std::size_t>(in_used_ + min_read_space, usual_read_buffer));
        auto buf = asio::buffer(in_.data() + in_used_, in_.size() - in_used_);
        auto [rec, n] = tls_ ? co_await tls_->async_read_some(buf, use_tuple) : co_await socket_.async_read_some(buf, use_tuple);
        if (rec) {
            set_failure(rec, "");
            break;
        }
        in_used_ += n;
        if (auto ec = parse_frames()) {
            set_failure(ec, fmt::format("{} failed: malformed answer from the server: {}", stage_, ec.message()));
            break;
        }
    }
    on_handshake_frame_ = nullptr;
    co_return got;
}

asio::awaitable<error_code> connection::handshake(const connection_params& p) {
    auto server_error = [&](const protocol::error_response& e, client_errc code, std::string_view advice) {
        set_failure(code, fmt::format("{} refused: {} (server error 0x{:04x}){}", stage_, e.message, static_cast<int>(e.code), advice));
        return error_code(code);
    };
    auto failed = [&]() {
        auto [ec, text] = failure();
        return ec ? ec : error_code(client_errc::handshake_failed);
    };

    stage_ = "answer to STARTUP";
    // The driver's name and release, as servers 4.0+ show them in system_views.clients.
    std::vector<std::pair<std::string_view, std::string_view>> opts{
        {"CQL_VERSION", "3.0.0"}, {"DRIVER_NAME", "cqlcoro"}, {"DRIVER_VERSION", CQLCORO_VERSION}};
    auto comp = p.compression;
    if (version_ >= 5 && comp == protocol::compression::snappy) comp = protocol::compression::none;  // v5 has LZ4 only
    if (comp != protocol::compression::none) opts.emplace_back("COMPRESSION", protocol::startup_name(comp));
    // A server may compress its answer to STARTUP already (Cassandra 2.1 does).
    compression_ = comp;
    auto r = co_await exchange(protocol::startup_request{opts});
    if (!r) co_return failed();
    if (auto e = std::get_if<protocol::error_response>(&r->message.body)) {
        if (protocol::rejects_protocol_version(r->header, *e, version_)) co_return error_code(protocol_errc::unsupported_version);
        co_return server_error(*e, client_errc::handshake_failed, "");
    }
    if (version_ >= 5) {  // v5 segments begin after the answer to STARTUP
        framing_ = true;
        segments_.emplace(compression_ == protocol::compression::lz4);
    }
    if (auto a = std::get_if<protocol::authenticate_response>(&r->message.body)) {
        stage_ = "answer to AUTH_RESPONSE";
        if (!p.auth) {
            set_failure(client_errc::authentication_required,
                        fmt::format("the server requires authentication ({}): configure credentials (plain_text(user, password)) "
                                    "or an auth_provider", a->authenticator));
            co_return error_code(client_errc::authentication_required);
        }
        std::unique_ptr<authenticator> auth;
        std::vector<std::uint8_t> token;
        try {
            auth = p.auth->new_authenticator(p.host, a->authenticator);
            token = auth->initial_response();
        } catch (const std::exception& ex) {
            set_failure(client_errc::authentication_failed, fmt::format("the authenticator failed: {}", ex.what()));
            co_return error_code(client_errc::authentication_failed);
        }
        for (;;) {
            protocol::auth_response_request answer{protocol::bytes_view(token)};
            auto ar = co_await exchange(answer);
            if (!ar) co_return failed();
            if (auto e = std::get_if<protocol::error_response>(&ar->message.body))
                co_return server_error(*e, client_errc::authentication_failed, " (check the user name and password)");
            if (auto s = std::get_if<protocol::auth_success_response>(&ar->message.body)) {
                auth->on_success(s->token ? protocol::bytes_view(*s->token) : protocol::bytes_view{});
                break;
            }
            auto c = std::get_if<protocol::auth_challenge_response>(&ar->message.body);
            if (!c) {
                set_failure(client_errc::handshake_failed, "unexpected answer to AUTH_RESPONSE");
                co_return error_code(client_errc::handshake_failed);
            }
            try {
                token = auth->evaluate_challenge(c->token ? protocol::bytes_view(*c->token) : protocol::bytes_view{});
            } catch (const std::exception& ex) {
                set_failure(client_errc::authentication_failed, fmt::format("the authenticator failed: {}", ex.what()));
                co_return error_code(client_errc::authentication_failed);
            }
        }
    } else if (!std::holds_alternative<protocol::ready_response>(r->message.body)) {
        set_failure(client_errc::handshake_failed, "unexpected answer to STARTUP");
        co_return error_code(client_errc::handshake_failed);
    }
    if (!p.keyspace.empty()) {
        stage_ = "answer to USE";
        const std::string use = "USE " + quote_identifier(p.keyspace);
        auto ur = co_await exchange(protocol::query_request{use, {.cl = consistency::one}});
        if (!ur) co_return failed();
        if (auto e = std::get_if<protocol::error_response>(&ur->message.body)) {
            // The server's own code (invalid request for a keyspace that does not exist), so that code-based
            // handling sees what the server said.
            server_error(*e, client_errc::handshake_failed, " (the keyspace name is case-sensitive, without quotes)");
            co_return e->code_as_error();
        }
    }
    if (!p.events.empty()) {
        stage_ = "answer to REGISTER";
        std::vector<std::string_view> ev(p.events.begin(), p.events.end());
        auto rr = co_await exchange(protocol::register_request{ev});
        if (!rr) co_return failed();
        if (auto e = std::get_if<protocol::error_response>(&rr->message.body)) co_return server_error(*e, client_errc::handshake_failed, "");
    }
    stage_ = "connection to close";
    co_return error_code{};
}

boost::system::result<connection::shared_frame> connection::encode(const protocol::request& req) const {
    auto frame = std::make_shared<protocol::byte_buffer>();
    const auto c = version_ < 5 ? compression_ : protocol::compression::none;  // v5 compresses segments instead
    if (auto ec = protocol::encode_request(version_, req, {.stream = 0, .compression = c}, *frame)) return ec;
    return frame;
}

void connection::reject(handler_t handler, error_code ec) {
    load_.fetch_add(1, std::memory_order_relaxed);
    finish(std::move(handler), ec);
}

std::uint64_t connection::watch_cancellation(asio::cancellation_slot slot) {
    const auto seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
    if (slot.is_connected())
        slot.assign([w = weak_from_this(), seq](asio::cancellation_type) {
            if (auto self = w.lock()) asio::post(self->strand_, [self, seq] { self->cancel(seq); });
        });
    return seq;
}

void connection::start_request(shared_frame frame, handler_t handler) {
    load_.fetch_add(1, std::memory_order_relaxed);
    if (!frame || frame->size() < protocol::header_size) {
        finish(std::move(handler), protocol_errc::truncated_frame);
        return;
    }
    auto slot = asio::get_associated_cancellation_slot(handler);
    const bool cancellable = slot.is_connected();
    pending p;
    p.seq = watch_cancellation(slot);
    p.handler = std::move(handler);
    asio::post(strand_, [self = shared_from_this(), frame = std::move(frame), p = std::move(p), cancellable]() mutable {
        self->enqueue(std::move(frame), std::move(p), cancellable);
    });
}

void connection::submit(shared_frame frame, request_sink* sink, asio::cancellation_slot slot, clock::time_point deadline,
                        bool notify_written) {
    load_.fetch_add(1, std::memory_order_relaxed);
    pending p;
    p.sink = sink;
    p.notify_written = notify_written;
    p.deadline = deadline;
    const bool cancellable = slot.is_connected();
    p.seq = watch_cancellation(slot);
    if (strand_.running_in_this_thread()) {
        enqueue(std::move(frame), std::move(p), cancellable);
        return;
    }
    asio::post(strand_, [self = shared_from_this(), frame = std::move(frame), p = std::move(p), cancellable]() mutable {
        self->enqueue(std::move(frame), std::move(p), cancellable);
    });
}

void connection::enqueue(shared_frame frame, pending p, bool cancellable) {
    if (closed_) {
        settle(std::move(p), client_errc::connection_closed_unsent);
        return;
    }
    if (state_.load(std::memory_order_relaxed) != connection_state::ready) {
        settle(std::move(p), client_errc::connection_draining);
        return;
    }
    if (p.deadline != clock::time_point::max() && p.deadline <= clock::now()) {
        settle(std::move(p), client_errc::request_timeout);
        return;
    }
    auto id = ids_.acquire();
    if (!id) {
        settle(std::move(p), client_errc::too_many_requests);
        return;
    }
    const auto seq = p.seq;
    const bool timed = p.deadline != clock::time_point::max();
    // The table grows with the highest id in use (ids are handed out lowest first), so an idle
    // connection of a large pool does not hold 32768 entries.
    if (static_cast<std::size_t>(*id) >= in_flight_.size())
        in_flight_.resize(std::min(ids_.capacity(), std::max<std::size_t>(in_flight_.size() * 2, static_cast<std::size_t>(*id) + 1)));
    in_flight_[static_cast<std::size_t>(*id)].emplace(std::move(p));
    if (timed) heap_push(*id);
    if (cancellable) cancellable_.emplace(seq, *id);
    auto& q = queue_.emplace_back();
    q.id = *id;
    q.seq = seq;
    if (frame->size() <= copy_limit) {
        q.offset = static_cast<std::uint32_t>(queue_bytes_.size());
        q.size = static_cast<std::uint32_t>(frame->size());
        queue_bytes_.insert(queue_bytes_.end(), frame->begin(), frame->end());
        patch_stream(queue_bytes_.data() + q.offset, *id);
    } else {
        std::copy_n(frame->begin(), protocol::header_size, q.header.begin());
        patch_stream(q.header.data(), *id);
        q.frame = std::move(frame);
    }
    if (!writing_) {
        // The write starts from a post, not here: every request enqueued before it runs (the other
        // completions of the read batch that issue follow-up requests, say) joins the same write.
        writing_ = true;
        asio::post(strand_, [self = shared_from_this()] { self->flush(); });
    }
}

// A sink is called right here, on the strand; a handler gets a post to its executor (finish).
void connection::settle(pending p, error_code ec, response_frame f) {
    if (p.sink) {  // an answer to a sink goes to on_frame (parse_frames): here `ec` is always a failure
        load_.fetch_sub(1, std::memory_order_relaxed);
        p.sink->on_failure(ec, p.written);
        return;
    }
    finish(std::move(p.handler), ec, std::move(f));
}

// Posted to the handler's own executor, never run inline on the strand's stack. The cancellation slot is
// cleared there, just before the handler runs, as Asio requires.
void connection::finish(handler_t h, error_code ec, response_frame f) {
    load_.fetch_sub(1, std::memory_order_relaxed);
    auto ex = asio::prefer(asio::get_associated_executor(h, strand_), asio::execution::blocking.never);
    ex.execute([h = std::move(h), ec, f = std::move(f)]() mutable {
        asio::get_associated_cancellation_slot(h).clear();
        std::move(h)(ec, std::move(f));
    });
}

void connection::cancel(std::uint64_t seq) {
    auto it = cancellable_.find(seq);
    if (it == cancellable_.end()) return;  // already completed
    const auto id = it->second;
    const auto& slot = in_flight_[static_cast<std::size_t>(id)];
    if (!slot || slot->seq != seq) return;
    abandon(id, asio::error::operation_aborted);
}

// Completes the request on `id` without its answer: cancelled or past its deadline. Written, its id
// becomes an orphan until the late answer; not yet written, its queued frame is skipped (seq mismatch).
void connection::abandon(std::int16_t id, error_code why) {
    auto& slot = in_flight_[static_cast<std::size_t>(id)];
    if (slot->heap_pos != no_deadline) heap_erase(id);
    pending p = std::move(*slot);
    slot.reset();
    if (!cancellable_.empty()) cancellable_.erase(p.seq);
    const bool written = p.written;
    if (written) {
        ids_.orphan(id);  // its late response must find the id still taken
        orphans_.store(ids_.orphans(), std::memory_order_relaxed);
    } else {
        ids_.release(id);
    }
    settle(std::move(p), why);
    if (written && ids_.orphans() > orphan_budget_) {
        if (!replace_on_orphans_ || !on_state_) {
            drain(client_errc::orphan_budget_exceeded,
                  fmt::format("{} abandoned requests await late responses on a connection to {}, more than the orphan budget of {}",
                              ids_.orphans(), host_, orphan_budget_));
        } else if (!replacement_asked_) {
            replacement_asked_ = true;
            on_state_(connection_state::ready, client_errc::orphan_budget_exceeded);
        }
    }
    finish_drain_if_idle();
}

// The in-flight entry of an answered stream, out of the table, the deadline heap and the cancellables.
connection::pending connection::take_pending(std::int16_t stream) {
    auto& slot = in_flight_[static_cast<std::size_t>(stream)];
    if (slot->heap_pos != no_deadline) heap_erase(stream);
    pending p = std::move(*slot);
    slot.reset();
    if (!cancellable_.empty()) cancellable_.erase(p.seq);
    return p;
}

void connection::complete(std::int16_t stream, error_code ec, response_frame f) {
    if (!in_flight_[static_cast<std::size_t>(stream)]) return;
    settle(take_pending(stream), ec, std::move(f));
}

bool connection::heap_less(std::uint32_t a, std::uint32_t b) const noexcept {
    return in_flight_[static_cast<std::size_t>(deadlines_[a])]->deadline < in_flight_[static_cast<std::size_t>(deadlines_[b])]->deadline;
}

void connection::heap_place(std::uint32_t pos, std::int16_t id) {
    deadlines_[pos] = id;
    in_flight_[static_cast<std::size_t>(id)]->heap_pos = pos;
}

// Moves the entry at `pos` up or down until the heap order holds.
void connection::sift(std::uint32_t pos) {
    while (pos > 0) {
        const auto parent = (pos - 1) / 2;
        if (!heap_less(pos, parent)) break;
        const auto a = deadlines_[pos], b = deadlines_[parent];
        heap_place(pos, b);
        heap_place(parent, a);
        pos = parent;
    }
    const auto n = static_cast<std::uint32_t>(deadlines_.size());
    for (;;) {
        auto least = pos;
        for (auto child : {2 * pos + 1, 2 * pos + 2})
            if (child < n && heap_less(child, least)) least = child;
        if (least == pos) break;
        const auto a = deadlines_[pos], b = deadlines_[least];
        heap_place(pos, b);
        heap_place(least, a);
        pos = least;
    }
}

void connection::heap_push(std::int16_t id) {
    deadlines_.push_back(id);
    const auto pos = static_cast<std::uint32_t>(deadlines_.size() - 1);
    heap_place(pos, id);
    sift(pos);
    arm_deadline_timer();
}

// `id` is still in flight (its pending entry is read for the positions).
void connection::heap_erase(std::int16_t id) {
    auto& p = *in_flight_[static_cast<std::size_t>(id)];
    const auto pos = p.heap_pos;
    p.heap_pos = no_deadline;
    const auto last = deadlines_.back();
    deadlines_.pop_back();
    if (pos == deadlines_.size()) return;
    heap_place(pos, last);
    sift(pos);
}

// The timer is re-armed only for an earlier deadline than it has: with one request timeout for all,
// deadlines come in order and the timer fires about once per timeout, whatever the request rate.
void connection::arm_deadline_timer() {
    if (deadlines_.empty()) return;
    const auto first = in_flight_[static_cast<std::size_t>(deadlines_.front())]->deadline;
    if (first >= deadline_armed_) return;
    deadline_armed_ = first;
    deadline_timer_.expires_at(first);
    deadline_timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (ec || self->closed_) return;  // re-armed earlier, or closed
        self->deadline_armed_ = clock::time_point::max();
        self->expire_deadlines();
    });
}

void connection::expire_deadlines() {
    const auto now = clock::now();
    while (!deadlines_.empty() && !closed_) {
        const auto id = deadlines_.front();
        if (in_flight_[static_cast<std::size_t>(id)]->deadline > now) break;
        abandon(id, client_errc::request_timeout);
    }
    arm_deadline_timer();
}

// Everything queued while a write is in flight goes out in the next single write. A plain completion
// handler, not a coroutine: a coroutine would be spawned anew whenever the queue empties, which at one
// request in flight is every request.
void connection::flush() {
    while (!queue_.empty() && !closed_) {
        batch_.clear();
        batch_.swap(queue_);
        batch_bytes_.clear();
        batch_bytes_.swap(queue_bytes_);
        buffers_.clear();
        envelopes_.clear();
        std::vector<std::size_t>& sizes = envelope_sizes_;  // v5: each envelope's size in envelopes_
        sizes.clear();
        std::size_t count = 0;
        for (const auto& q : batch_) {
            auto& slot = in_flight_[static_cast<std::size_t>(q.id)];
            if (!slot || slot->seq != q.seq) continue;  // cancelled before it was written
            slot->written = true;
            if (slot->notify_written) slot->sink->on_written();  // arms a timer at most: never re-enters
            ++count;
            if (framing_) {
                if (q.frame) {
                    envelopes_.insert(envelopes_.end(), q.header.begin(), q.header.end());
                    envelopes_.insert(envelopes_.end(), q.frame->begin() + protocol::header_size, q.frame->end());
                    sizes.push_back(q.frame->size());
                } else {
                    envelopes_.insert(envelopes_.end(), batch_bytes_.begin() + q.offset, batch_bytes_.begin() + q.offset + q.size);
                    sizes.push_back(q.size);
                }
            } else if (q.frame) {
                buffers_.emplace_back(asio::buffer(q.header));
                buffers_.emplace_back(asio::buffer(q.frame->data() + protocol::header_size, q.frame->size() - protocol::header_size));
            } else {
                const auto* at = batch_bytes_.data() + q.offset;
                if (!buffers_.empty() && static_cast<const std::uint8_t*>(buffers_.back().data()) + buffers_.back().size() == at)
                    buffers_.back() = asio::const_buffer(buffers_.back().data(), buffers_.back().size() + q.size);  // adjacent: one buffer
                else
                    buffers_.emplace_back(at, q.size);
            }
        }
        if (count == 0) continue;
        sent_.fetch_add(count, std::memory_order_relaxed);
        if (framing_) {
            // v5: envelopes travel in segments (self-contained where they fit, with CRCs, maybe LZ4).
            std::vector<protocol::bytes_view> views;
            views.reserve(sizes.size());
            std::size_t at = 0;
            for (const auto n : sizes) {
                views.emplace_back(envelopes_.data() + at, n);
                at += n;
            }
            segments_out_.clear();
            protocol::encode_envelopes(views, compression_ == protocol::compression::lz4, segments_out_);
            buffers_.assign(1, asio::buffer(segments_out_));
        }
        ++stats_.writes;
        // The socket's executor is the strand: the completion runs there.
        auto done = [self = shared_from_this()](error_code ec, std::size_t) { self->on_written(ec); };
        if (tls_) asio::async_write(*tls_, buffers_, std::move(done));
        else asio::async_write(socket_, buffers_, std::move(done));
        return;
    }
    batch_.clear();
    writing_ = false;
}

void connection::on_written(error_code ec) {
    if (ec) {
        fail_all(ec, fmt::format("writing to {} failed: {}", host_, ec.message()));
        batch_.clear();
        writing_ = false;
        return;
    }
    flush();
}

// Reads straight into in_ and dispatches every whole frame; plain completion handlers, like flush().
void connection::start_read() {
    if (closed_) return;
    if (in_.size() - in_used_ < min_read_space) in_.resize(std::max<std::size_t>({in_used_ + min_read_space, in_.size() * 2, usual_read_buffer}));
    auto buf = asio::buffer(in_.data() + in_used_, in_.size() - in_used_);
    auto done = [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); };
    if (tls_) tls_->async_read_some(buf, std::move(done));
    else socket_.async_read_some(buf, std::move(done));
}

void connection::on_read(error_code ec, std::size_t n) {
    if (closed_) return;
    if (ec) {
        fail_all(ec, ec == asio::error::eof ? fmt::format("{} closed the connection", host_)
                                            : fmt::format("reading from {} failed: {}", host_, ec.message()));
        return;
    }
    ++stats_.reads;
    last_read_ = std::chrono::steady_clock::now();
    in_used_ += n;
    if (auto perr = parse_frames()) {
        fail_all(perr, fmt::format("{} sent a malformed frame: {}", host_, perr.message()));
        return;
    }
    start_read();
}

// After an idle interval without reads, an OPTIONS; no answer within the timeout: defunct.
asio::awaitable<void> connection::heartbeat_loop() {
    auto self = shared_from_this();
    while (!closed_) {
        const auto due = last_read_ + heartbeat_interval_;
        if (std::chrono::steady_clock::now() < due || ids_.available() == 0) {
            heartbeat_timer_.expires_at(std::max(due, std::chrono::steady_clock::now() + 1ms));
            co_await heartbeat_timer_.async_wait(use_tuple);
            continue;
        }
        auto frame = encode(protocol::options_request{});
        if (!frame) co_return;
        heartbeat_pending_ = true;
        ++stats_.heartbeats;
        load_.fetch_add(1, std::memory_order_relaxed);
        pending beat;
        beat.handler = handler_t(asio::bind_executor(strand_, [this, self](error_code, response_frame) {
            heartbeat_pending_ = false;
            heartbeat_timer_.cancel();
        }));
        beat.seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
        enqueue(std::move(*frame), std::move(beat), false);
        heartbeat_timer_.expires_after(heartbeat_timeout_);
        co_await heartbeat_timer_.async_wait(use_tuple);
        if (closed_) break;
        if (heartbeat_pending_) {
            fail_all(client_errc::heartbeat_timeout,
                     fmt::format("{} did not answer a heartbeat within {} ms: the connection is defunct", host_, heartbeat_timeout_.count()));
            break;
        }
    }
}

// Dispatches every whole frame (or v5 segment) in in_[0, in_used_).
error_code connection::parse_frames() {
    std::size_t used = 0;
    error_code ec;
    auto deliver = [&](const protocol::frame_header& h, protocol::bytes_view raw) {
        protocol::byte_buffer scratch;  // for a compressed body only
        auto b = protocol::frame_body(h, raw, compression_, max_frame_, scratch);
        if (!b) {
            ec = b.error();
            return;
        }
        auto decoded = [&]() -> std::optional<response_frame> {
            response_frame f;
            f.header = h;
            f.body.assign(b->begin(), b->end());
            auto m = protocol::decode_response(h, f.body);
            if (!m) {
                ec = m.error();
                return std::nullopt;
            }
            f.message = std::move(*m);
            return f;
        };
        if (on_handshake_frame_ || h.stream < 0) {
            auto f = decoded();
            if (!f) return;
            if (on_handshake_frame_) on_handshake_frame_(std::move(*f));
            else if (on_event_) on_event_(*f);
            return;
        }
        switch (ids_.on_response(h.stream)) {
        case stream_ids::arrival::active: {
            const auto& slot = in_flight_[static_cast<std::size_t>(h.stream)];
            if (!slot) break;
            if (slot->sink) {  // the session: it decodes the body into the memory that keeps its result
                pending p = take_pending(h.stream);
                load_.fetch_sub(1, std::memory_order_relaxed);
                p.sink->on_frame(h, *b);
                break;
            }
            if (auto f = decoded()) complete(h.stream, {}, std::move(*f));
            break;
        }
        case stream_ids::arrival::orphan:  // a late response to an abandoned request: dropped
            orphans_.store(ids_.orphans(), std::memory_order_relaxed);
            break;
        case stream_ids::arrival::unexpected: break;  // nothing was in flight on it: dropped
        }
        finish_drain_if_idle();
    };
    while (!ec && !closed_) {
        protocol::bytes_view rest = protocol::bytes_view(in_.data(), in_used_).subspan(used);
        if (framing_) {
            auto s = segments_->decode(rest);
            if (!s) return s.error();
            if (!*s) break;
            if (auto fe = assembler_.feed(**s, deliver)) return fe;
            used += (*s)->consumed;
            continue;
        }
        if (rest.size() < protocol::header_size) break;
        auto h = protocol::decode_header(rest, max_frame_);
        if (!h) return h.error();
        if (rest.size() - protocol::header_size < h->length) break;
        deliver(*h, rest.subspan(protocol::header_size, h->length));
        used += protocol::header_size + h->length;
    }
    if (used > 0) {
        std::memmove(in_.data(), in_.data() + used, in_used_ - used);
        in_used_ -= used;
        if (in_.size() > kept_read_buffer && in_used_ <= usual_read_buffer - min_read_space) {
            protocol::byte_buffer usual(usual_read_buffer);
            std::memcpy(usual.data(), in_.data(), in_used_);
            in_.swap(usual);
        }
    }
    return ec;
}

void connection::drain(error_code cause, std::string why) {
    if (closed_ || state_.load(std::memory_order_relaxed) != connection_state::ready) return;
    set_failure(cause, std::move(why));
    state_.store(connection_state::draining, std::memory_order_release);
    if (on_state_) on_state_(connection_state::draining, cause);
    drain_timer_.emplace(strand_, drain_timeout_);
    drain_timer_->async_wait([self = shared_from_this()](error_code ec) {
        if (!ec && !self->closed_)
            self->fail_all(client_errc::close_timeout,
                           fmt::format("requests still in flight after the drain timeout of {} ms", self->drain_timeout_.count()));
    });
    finish_drain_if_idle();
}

void connection::finish_drain_if_idle() {
    if (closed_ || state_.load(std::memory_order_relaxed) != connection_state::draining || ids_.in_flight() != 0) return;
    auto [cause, why] = failure();
    fail_all(cause, why);
}

void connection::fail_all(error_code cause, std::string why) {
    if (closed_) return;
    closed_ = true;
    set_failure(cause, std::move(why));
    state_.store(connection_state::closed, std::memory_order_release);
    error_code ignored;
    lowest().close(ignored);
    heartbeat_timer_.cancel();
    if (drain_timer_) drain_timer_->cancel();
    closed_signal_.cancel();
    deadline_timer_.cancel();
    deadlines_.clear();
    for (std::size_t i = 0; i < in_flight_.size(); ++i) {  // by index: a completion may run code that queues
        auto& slot = in_flight_[i];
        if (!slot) continue;
        pending p = std::move(*slot);
        slot.reset();
        const bool written = p.written;
        settle(std::move(p), written ? client_errc::connection_closed_sent : client_errc::connection_closed_unsent);
    }
    queue_.clear();
    cancellable_.clear();
    if (on_state_) on_state_(connection_state::closed, failure().first);
}

asio::awaitable<void> connection::close(std::chrono::milliseconds timeout) {
    // A member coroutine rather than a lambda: GCC 12 destroys a capturing lambda temporary inside a
    // co_await expression twice.
    co_await asio::co_spawn(strand_, close_on_strand(timeout), asio::use_awaitable);
}

asio::awaitable<void> connection::close_on_strand(std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    if (closed_) co_return;
    if (state_.load(std::memory_order_relaxed) == connection_state::ready) {
        drain_timeout_ = timeout;
        drain(client_errc::connection_draining, "closed by the application");
    }
    if (!closed_) co_await closed_signal_.async_wait(use_tuple);
}

void connection::abort() {
    asio::post(strand_, [self = shared_from_this()] { self->fail_all(asio::error::operation_aborted, "aborted by the application"); });
}

}  // namespace cqlcoro::connection
