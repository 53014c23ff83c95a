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
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>
#include "../namespaces.hpp"

namespace cqlcoro::connection {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
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

boost::system::result<response_frame> decode_frame(const protocol::frame_header& h, protocol::bytes_view body) {
    response_frame f;
    f.header = h;
    f.body.assign(body.begin(), body.end());
    auto m = protocol::decode_response(h, f.body);  // views into f.body, whose heap block moves with it
    if (!m) return m.error();
    f.message = std::move(*m);
    return f;
}

connection::connection(asio::any_io_executor ex, const connection_params& p)
    : strand_(asio::make_strand(ex)),
      socket_(strand_),
      host_(p.host),
      orphan_budget_(p.orphan_budget),
      replace_on_orphans_(p.replace_on_orphans),
      heartbeat_interval_(p.heartbeat_interval),
      heartbeat_timeout_(p.heartbeat_timeout),
      drain_timeout_(p.drain_timeout),
      mux_(p.max_requests, p.max_frame_size),
      deadline_timer_(strand_),
      heartbeat_timer_(strand_),
      closed_signal_(strand_, clock::time_point::max()) {
    mux_.on_unsolicited([this](const protocol::frame_header& h, protocol::bytes_view body) { return on_unsolicited(h, body); });
}

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
            c->last_read_at_.store(c->last_read_.time_since_epoch().count(), std::memory_order_relaxed);
            asio::post(c->strand_, [c] { c->start_read(); });
            if (c->heartbeat_interval_.count() > 0) asio::co_spawn(c->strand_, [c] { return c->heartbeat_loop(); }, asio::detached);
            co_return c;
        }
        if (ec == protocol_errc::unsupported_version) {
            refusals += fmt::format("{}v{} refused", refusals.empty() ? "" : ", ", v);
            continue;
        }
        auto [fec, text] = c->failure();
        if (ec.category() == asio::error::get_ssl_category() || ec == asio::ssl::error::stream_truncated) {
            // OpenSSL's "certificate verify failed" does not say why; the verification result does
            // ("certificate has expired", "unable to get local issuer certificate", ...).
            std::string why = ec.message();
            if (c->tls_) {
                const long verify = SSL_get_verify_result(c->tls_->native_handle());
                if (verify != X509_V_OK) why += fmt::format(": {}", X509_verify_cert_error_string(verify));
            }
            co_return failure{client_errc::tls_failed, fmt::format("{}: TLS handshake failed: {} (check the CA certificate, the server name "
                                                             "and, if the server requires one, the client certificate)", where, why)};
        }
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

// The sink of a handshake request: it keeps the decoded answer. Told twice at most (an answer that came
// on an event stream, then the abandonment of the request): the first word counts.
class connection::frame_catcher final : public request_sink {
public:
    void on_frame(const protocol::frame_header& h, protocol::bytes_view body) override {
        if (done) return;
        done = true;
        auto f = decode_frame(h, body);
        if (!f) malformed = f.error();
        else got = std::move(*f);
    }
    void on_failure(error_code ec, bool) override {
        if (done) return;
        done = true;
        failed = ec;
    }

    bool done = false;
    std::optional<response_frame> got;
    error_code malformed, failed;
};

// One request and its answer, before the read loop runs: through the multiplexer, with the writes and
// reads done here.
asio::awaitable<std::optional<response_frame>> connection::exchange(const protocol::request& req) {
    auto frame = std::make_shared<protocol::byte_buffer>();
    if (auto ec = protocol::encode_request(version_, req, {.compression = mux_.framing() ? protocol::compression::none : compression_}, *frame)) {
        set_failure(ec, fmt::format("{} failed: cannot encode the request: {}", stage_, ec.message()));
        co_return std::nullopt;
    }
    frame_catcher sink;
    const auto seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
    mux_.note_submitted();
    mux_.add(std::move(frame), {.sink = &sink, .seq = seq, .cancellable = true}, clock::now());
    handshake_ = &sink;
    if (mux_.prepare_write() > 0) {
        const auto& out = mux_.write_buffers();
        auto [wec, wn] = tls_ ? co_await asio::async_write(*tls_, out, use_tuple) : co_await asio::async_write(socket_, out, use_tuple);
        mux_.prepare_write();  // nothing else is queued: ends the write
        if (wec) set_failure(wec, "");
        while (!wec && !sink.done) {
            auto space = mux_.read_buffer();
            auto buf = asio::buffer(space.data(), space.size());
            auto [rec, n] = tls_ ? co_await tls_->async_read_some(buf, use_tuple) : co_await socket_.async_read_some(buf, use_tuple);
            if (rec) {
                set_failure(rec, "");
                break;
            }
            if (auto ec = mux_.commit_read(n)) {
                set_failure(ec, fmt::format("{} failed: malformed answer from the server: {}", stage_, ec.message()));
                break;
            }
        }
    }
    handshake_ = nullptr;
    mux_.cancel(seq);  // unanswered (a failure above): abandoned now, while its sink lives
    if (sink.malformed) set_failure(sink.malformed, fmt::format("{} failed: malformed answer from the server: {}", stage_, sink.malformed.message()));
    else if (!sink.got && sink.failed) set_failure(sink.failed, "");
    co_return std::move(sink.got);
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
    mux_.set_compression(comp);
    auto r = co_await exchange(protocol::startup_request{opts});
    if (!r) co_return failed();
    if (auto e = std::get_if<protocol::error_response>(&r->message.body)) {
        if (protocol::rejects_protocol_version(r->header, *e, version_)) co_return error_code(protocol_errc::unsupported_version);
        co_return server_error(*e, client_errc::handshake_failed, "");
    }
    if (version_ >= 5) mux_.set_framing(compression_ == protocol::compression::lz4);  // v5 segments begin after the answer to STARTUP
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

// Always through a post, even from the strand: a request started on the strand then still waits behind a
// write the caller started just before, as it would from any other thread.
void connection::start_request(shared_frame frame, request_sink* sink, asio::cancellation_slot slot) {
    mux_.note_submitted();
    const multiplexer::submission s{.sink = sink, .seq = watch_cancellation(slot), .cancellable = slot.is_connected()};
    asio::post(strand_, [self = shared_from_this(), frame = std::move(frame), s]() mutable { self->enqueue(std::move(frame), s); });
}

std::uint64_t connection::watch_cancellation(asio::cancellation_slot slot) {
    const auto seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
    if (slot.is_connected())
        slot.assign([w = weak_from_this(), seq](asio::cancellation_type) {
            if (auto self = w.lock()) asio::post(self->strand_, [self, seq] { self->cancel(seq); });
        });
    return seq;
}

void connection::submit(shared_frame frame, request_sink* sink, asio::cancellation_slot slot, clock::time_point deadline,
                        bool notify_written, bool wait_for_id) {
    mux_.note_submitted();
    const multiplexer::submission s{.sink = sink,
                                    .seq = watch_cancellation(slot),
                                    .deadline = deadline,
                                    .cancellable = slot.is_connected(),
                                    .notify_written = notify_written,
                                    .wait_for_id = wait_for_id};
    if (strand_.running_in_this_thread()) {
        enqueue(std::move(frame), s);
        return;
    }
    asio::post(strand_, [self = shared_from_this(), frame = std::move(frame), s]() mutable { self->enqueue(std::move(frame), s); });
}

void connection::enqueue(shared_frame frame, const multiplexer::submission& s) {
    const auto now = s.deadline == clock::time_point::max() ? clock::time_point{} : clock::now();
    if (mux_.add(std::move(frame), s, now)) {
        // The write starts from a post, not here: every request submitted before it runs (the other
        // completions of the read batch that issue follow-up requests, say) joins the same write.
        asio::post(strand_, [self = shared_from_this()] { self->flush(); });
    }
    // The timer is re-armed only for an earlier deadline than it has: with one request timeout for all,
    // deadlines come in order and the timer fires about once per timeout, whatever the request rate.
    if (mux_.earliest_deadline() < deadline_armed_) arm_deadline_timer();
}

void connection::cancel(std::uint64_t seq) {
    mux_.cancel(seq);
    after_abandon();
}

// A stream id set free went to a parked request: it goes out with the next write.
void connection::flush_parked() {
    if (mux_.take_write_start()) asio::post(strand_, [self = shared_from_this()] { self->flush(); });
}

// After requests were abandoned: too many orphans drain the connection (or ask for its replacement), and
// a draining connection with nothing left in flight closes.
void connection::after_abandon() {
    flush_parked();
    if (mux_.orphans() > orphan_budget_ && !closed_) {
        if (!replace_on_orphans_ || !on_state_) {
            drain(client_errc::orphan_budget_exceeded,
                  fmt::format("{} abandoned requests await late responses on a connection to {}, more than the orphan budget of {}",
                              mux_.orphans(), host_, orphan_budget_));
        } else if (!replacement_asked_) {
            replacement_asked_ = true;
            on_state_(connection_state::ready, client_errc::orphan_budget_exceeded);
        }
    }
    finish_drain_if_idle();
}

void connection::arm_deadline_timer() {
    const auto first = mux_.earliest_deadline();
    if (closed_ || first >= deadline_armed_) return;
    deadline_armed_ = first;
    deadline_timer_.expires_at(first);
    deadline_timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (ec || self->closed_) return;  // re-armed earlier, or closed
        self->deadline_armed_ = clock::time_point::max();
        self->expire_deadlines();
    });
}

void connection::expire_deadlines() {
    mux_.expire(clock::now());
    after_abandon();
    arm_deadline_timer();
}

// Everything queued while a write is in flight goes out in the next single write. A plain completion
// handler, not a coroutine: a coroutine would be spawned anew whenever the queue empties, which at one
// request in flight is every request.
void connection::flush() {
    if (closed_ || mux_.prepare_write() == 0) return;
    ++stats_.writes;
    // The socket's executor is the strand: the completion runs there.
    auto done = [self = shared_from_this()](error_code ec, std::size_t) { self->on_written(ec); };
    if (tls_) asio::async_write(*tls_, mux_.write_buffers(), std::move(done));
    else asio::async_write(socket_, mux_.write_buffers(), std::move(done));
}

void connection::on_written(error_code ec) {
    if (ec) {
        fail_all(ec, fmt::format("writing to {} failed: {}", host_, ec.message()));
        return;
    }
    flush();
}

// Reads straight into the multiplexer's buffer; plain completion handlers, like flush().
void connection::start_read() {
    if (closed_) return;
    auto space = mux_.read_buffer();
    auto buf = asio::buffer(space.data(), space.size());
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
    last_read_at_.store(last_read_.time_since_epoch().count(), std::memory_order_relaxed);
    if (auto perr = mux_.commit_read(n)) {
        fail_all(perr, fmt::format("{} sent a malformed frame: {}", host_, perr.message()));
        return;
    }
    flush_parked();
    finish_drain_if_idle();
    start_read();
}

// Frames on negative streams: events, and during the handshake an answer a server sent there.
error_code connection::on_unsolicited(const protocol::frame_header& h, protocol::bytes_view body) {
    if (handshake_) {
        handshake_->on_frame(h, body);
        return {};
    }
    auto f = decode_frame(h, body);
    if (!f) return f.error();
    if (on_event_) on_event_(*f);
    return {};
}

// After an idle interval without reads, an OPTIONS; no answer within the timeout: defunct.
asio::awaitable<void> connection::heartbeat_loop() {
    auto self = shared_from_this();
    while (!closed_) {
        const auto due = last_read_ + heartbeat_interval_;
        if (std::chrono::steady_clock::now() < due || mux_.available() == 0) {
            heartbeat_timer_.expires_at(std::max(due, std::chrono::steady_clock::now() + 1ms));
            co_await heartbeat_timer_.async_wait(use_tuple);
            continue;
        }
        auto frame = encode(protocol::options_request{});
        if (!frame) co_return;
        heartbeat_pending_ = true;
        ++stats_.heartbeats;
        // Armed before the request goes in: a refusal tells the sink at once, which cancels the timer.
        heartbeat_timer_.expires_after(heartbeat_timeout_);
        mux_.note_submitted();
        const multiplexer::submission beat{.sink = &heartbeat_sink_, .seq = next_seq_.fetch_add(1, std::memory_order_relaxed)};
        enqueue(std::move(*frame), beat);
        co_await heartbeat_timer_.async_wait(use_tuple);
        if (closed_) break;
        if (heartbeat_pending_) {
            fail_all(client_errc::heartbeat_timeout,
                     fmt::format("{} did not answer a heartbeat within {} ms: the connection is defunct", host_, heartbeat_timeout_.count()));
            break;
        }
    }
}

void connection::on_heartbeat_answer() {
    heartbeat_pending_ = false;
    heartbeat_timer_.cancel();
}

void connection::drain(error_code cause, std::string why) {
    if (closed_ || state_.load(std::memory_order_relaxed) != connection_state::ready) return;
    set_failure(cause, std::move(why));
    state_.store(connection_state::draining, std::memory_order_release);
    mux_.refuse_new(client_errc::connection_draining);
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
    if (closed_ || state_.load(std::memory_order_relaxed) != connection_state::draining || mux_.in_flight() != 0) return;
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
    mux_.fail_all();
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
