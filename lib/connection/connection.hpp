// The connection actor: one CQL connection confined to one strand. It owns the socket, the timers and the
// handshake; its multiplexer (multiplexer.hpp, no I/O) owns the stream ids, the in-flight table, orphans,
// deadlines and the write queue. Requests from any thread are posted to the strand, so nothing on the
// request path takes a mutex, whatever number of threads run the io_context. There is one way in:
// submit() with a request_sink; execute() is submit() with a sink that completes an Asio handler.
//
// Life of a connection: connect() opens TCP (and TLS), negotiates the protocol version (v5 -> v4 -> v3,
// recognising Cassandra 2.1's refusal), sends STARTUP (with compression), authenticates, sends USE and
// REGISTER, then serves requests until it closes. It closes when:
//   - the transport fails or the server sends what cannot be parsed,
//   - a heartbeat (OPTIONS after an idle interval) goes unanswered: the connection is defunct,
//   - abort() is called,
//   - it drains: close() was called, or more abandoned requests await late responses than the orphan
//     budget allows. A draining connection takes no new requests, lets those in flight finish (bounded by
//     drain_timeout), then closes; its owner replaces it.
// Requests still in flight when it closes complete with connection_closed_sent (written: it may have been
// executed) or connection_closed_unsent (never written: safe to retry); failure() says why it closed.
//
// Cancellation (Asio per-operation cancellation slots): a request cancelled before its frame is written is
// dropped and never sent; one cancelled after completes with operation_aborted at once and its stream id
// becomes an orphan, reused only after the late response arrives, which is then dropped. A late response
// can never complete another request.
#pragma once

#include "connection/multiplexer.hpp"
#include "failure.hpp"
#include "protocol/requests.hpp"
#include "protocol/responses.hpp"
#include "protocol/segment.hpp"

#include <cqlcoro/auth.hpp>
#include <cqlcoro/error.hpp>
#include <cqlcoro/tls.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>
#include "../namespaces.hpp"

namespace cqlcoro::connection {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct connection_params {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9042;
    /// The highest protocol version to try; lower ones are tried in turn when the server refuses.
    std::uint8_t max_version = 5;
    /// Only max_version will do: a server that refuses it fails connect(), with an error naming the
    /// highest version it does speak (found by trying the lower ones).
    bool exact_version = false;
    /// Exceeding the orphan budget does not drain the connection: the state handler is told once, with
    /// (ready, orphan_budget_exceeded), and the owner opens a replacement first, then closes this one.
    /// The connection keeps serving meanwhile.
    bool replace_on_orphans = false;
    protocol::compression compression = protocol::compression::none;
    /// Asked for an authenticator when the server requires authentication (plain_text(user, password)).
    std::shared_ptr<auth_provider> auth;
    /// TLS; none: plain TCP.
    std::optional<tls_options> tls;
    /// Keyspace to USE once connected (the name as stored: case-sensitive, no quotes); empty: none.
    std::string keyspace;
    /// Events to REGISTER for ("STATUS_CHANGE", ...); none: no REGISTER.
    std::vector<std::string> events;
    std::uint32_t max_frame_size = protocol::protocol_max_body;
    /// Stream ids: at most this many requests in flight (the protocol allows 32768).
    std::size_t max_requests = stream_ids::max_capacity;
    /// TCP connect, TLS handshake and the CQL handshake together, all version attempts included.
    std::chrono::milliseconds connect_timeout = 5s;
    /// An OPTIONS request after this long without reading anything; zero: no heartbeat.
    std::chrono::milliseconds heartbeat_interval = 30s;
    /// A heartbeat unanswered for this long makes the connection defunct.
    std::chrono::milliseconds heartbeat_timeout = 5s;
    /// Abandoned requests awaiting late responses beyond this make the connection drain (to be replaced).
    std::size_t orphan_budget = 256;
    /// How long a drain waits for requests in flight before closing anyway.
    std::chrono::milliseconds drain_timeout = 10s;
};

/// A response with the bytes its views point into.
struct response_frame {
    protocol::frame_header header;
    protocol::byte_buffer body;  ///< decompressed body; message views point into it
    protocol::response message;
};

/// A response_frame owning a copy of `body`, decoded: what execute(), the handshake and events deliver.
boost::system::result<response_frame> decode_frame(const protocol::frame_header& h, protocol::bytes_view body);

enum class connection_state { ready, draining, closed };

/// What the session's request path needs of a connection: the connection below, or a test's fake node
/// connection (test/unit/policy/request_handler_test.cpp drives the request path without sockets).
class request_target {
public:
    virtual std::uint8_t version() const noexcept = 0;
    virtual protocol::compression frame_compression() const noexcept = 0;
    virtual connection_state state() const noexcept = 0;
    virtual std::size_t in_flight() const noexcept = 0;
    /// See connection::submit.
    virtual void submit(shared_frame frame, request_sink* sink, asio::cancellation_slot slot, clock::time_point deadline,
                        bool notify_written, bool wait_for_id) = 0;
    virtual std::pair<error_code, std::string> failure() const = 0;

protected:
    ~request_target() = default;
};

class connection final : public request_target, public std::enable_shared_from_this<connection> {
public:
    /// Called on the connection's strand for each event pushed on stream -1.
    using event_handler = std::function<void(const response_frame&)>;
    /// Called on the connection's strand when it starts draining and when it closes, with the cause.
    using state_handler = std::function<void(connection_state, error_code)>;

    /// Connects and completes the handshake, or says what failed and what to do.
    static asio::awaitable<detail::fallible<std::shared_ptr<connection>>> try_connect(asio::any_io_executor ex, connection_params params,
                                                                                      event_handler on_event = {},
                                                                                      state_handler on_state = {});
    /// The same, throwing the failure as a cqlcoro::error (for tests and tools).
    static asio::awaitable<std::shared_ptr<connection>> connect(asio::any_io_executor ex, connection_params params,
                                                                event_handler on_event = {}, state_handler on_state = {});

    using shared_frame = ::cqlcoro::connection::shared_frame;
    boost::system::result<shared_frame> encode(const protocol::request& req) const;

    /// Sends one request and completes with its response, void(error_code, response_frame). An ERROR
    /// response is a response, not an error_code; error_codes are transport failures, cancellation,
    /// client_errc, and an answer that does not decode. Safe to call from any thread. Honours the token's
    /// cancellation slot. The handler runs on its associated executor (the strand by default), never
    /// inline. It is submit() with a sink that owns the handler.
    template <class Token>
    auto execute(shared_frame frame, Token&& token) {
        return asio::async_initiate<Token, void(error_code, response_frame)>(
            [self = shared_from_this()](auto handler, shared_frame f) {
                auto slot = asio::get_associated_cancellation_slot(handler);
                auto* sink = handler_sink<decltype(handler)>::make(std::move(handler), self->strand_);
                self->start_request(std::move(f), sink, slot);
            },
            token, std::move(frame));
    }
    template <class Token>
    auto execute(const protocol::request& req, Token&& token) {
        auto f = encode(req);
        return asio::async_initiate<Token, void(error_code, response_frame)>(
            [self = shared_from_this()](auto handler, boost::system::result<shared_frame> f) {
                auto slot = asio::get_associated_cancellation_slot(handler);
                auto* sink = handler_sink<decltype(handler)>::make(std::move(handler), self->strand_);
                if (!f) sink->on_failure(f.error(), false);
                else self->start_request(std::move(*f), sink, slot);
            },
            token, std::move(f));
    }

    /// The session's request path: no completion handler to type-erase and no post when called on the
    /// strand. `slot` (of the sink's own signal) cancels it as for execute(); past `deadline` it
    /// completes with client_errc::request_timeout (and its stream id becomes an orphan if it was
    /// written). Safe to call from any thread.
    /// `notify_written`: call sink->on_written() once the frame is handed to the socket.
    /// `wait_for_id`: when all 32768 stream ids are in use, wait (within the deadline) for the first to
    /// come free instead of completing at once with client_errc::too_many_requests.
    void submit(shared_frame frame, request_sink* sink, asio::cancellation_slot slot, clock::time_point deadline,
                bool notify_written = false, bool wait_for_id = false) override;

    /// Stops taking requests, waits (at most `timeout`) for those in flight, then closes. Completes when
    /// the connection is closed.
    asio::awaitable<void> close(std::chrono::milliseconds timeout = 10s);
    /// Closes at once: requests in flight complete with connection_closed_sent / _unsent.
    void abort();

    std::uint8_t version() const noexcept override { return version_; }
    /// The body compression of request frames (v5 compresses segments instead, so none there).
    protocol::compression frame_compression() const noexcept override { return version_ < 5 ? compression_ : protocol::compression::none; }
    const std::string& host() const noexcept { return host_; }
    /// Requests accepted and not yet completed (approximate from other threads; exact on the strand).
    std::size_t in_flight() const noexcept override { return mux_.load(); }
    /// Stream ids held by abandoned requests whose late responses have not arrived.
    std::size_t orphans() const noexcept { return mux_.orphans(); }
    /// When it last read anything from its node (any thread).
    std::chrono::steady_clock::time_point last_read() const noexcept {
        return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(last_read_at_.load(std::memory_order_relaxed)));
    }
    /// Requests handed to the socket so far (heartbeats included).
    std::uint64_t sent() const noexcept { return mux_.sent(); }
    std::uint64_t unexpected_answers() const noexcept { return mux_.unexpected(); }
    connection_state state() const noexcept override { return state_.load(std::memory_order_acquire); }
    /// Why the connection drained or closed (empty while ready), with a description.
    std::pair<error_code, std::string> failure() const override;

    struct counters {
        std::uint64_t reads = 0;   ///< read calls that returned data
        std::uint64_t writes = 0;  ///< gather writes issued
        std::uint64_t heartbeats = 0;
        std::size_t read_buffer = 0;  ///< bytes the read buffer holds now (it shrinks back after a large frame)
    };
    /// Socket operation counts (read on the strand, or after the io_context stopped).
    counters stats() const noexcept {
        auto c = stats_;
        c.read_buffer = mux_.read_buffer_capacity();
        return c;
    }

    connection(asio::any_io_executor ex, const connection_params& p);
    ~connection();

private:
    template <class Handler>
    class handler_sink;
    class heartbeat_sink final : public request_sink {
    public:
        explicit heartbeat_sink(connection& c) noexcept : c_(c) {}
        void on_frame(const protocol::frame_header&, protocol::bytes_view) override { c_.on_heartbeat_answer(); }
        void on_failure(error_code, bool) override { c_.on_heartbeat_answer(); }

    private:
        connection& c_;
    };
    class frame_catcher;

    asio::awaitable<error_code> open(const connection_params& p, std::uint8_t version);
    asio::awaitable<error_code> open_until(const connection_params& p, std::uint8_t version, std::chrono::steady_clock::time_point deadline);
    asio::awaitable<void> close_on_strand(std::chrono::milliseconds timeout);
    asio::awaitable<error_code> handshake(const connection_params& p);
    asio::awaitable<std::optional<response_frame>> exchange(const protocol::request& req);
    void start_read();
    void on_read(error_code ec, std::size_t n);
    void flush();
    void on_written(error_code ec);
    asio::awaitable<void> heartbeat_loop();
    void on_heartbeat_answer();
    error_code on_unsolicited(const protocol::frame_header& h, protocol::bytes_view body);
    void start_request(shared_frame frame, request_sink* sink, asio::cancellation_slot slot);
    void enqueue(shared_frame frame, const multiplexer::submission& s);
    std::uint64_t watch_cancellation(asio::cancellation_slot slot);
    void cancel(std::uint64_t seq);
    void after_abandon();
    void flush_parked();
    void arm_deadline_timer();
    void expire_deadlines();
    void drain(error_code cause, std::string why);
    void finish_drain_if_idle();
    void fail_all(error_code cause, std::string why);
    void set_failure(error_code cause, std::string why);
    // The socket and timers name the strand as their executor type, not any_io_executor: a handler's
    // executor is then a plain strand, which Asio copies and tracks work on without allocating.
    using strand_type = asio::strand<asio::any_io_executor>;
    using socket_type = asio::basic_stream_socket<asio::ip::tcp, strand_type>;
    using timer_type = asio::basic_waitable_timer<clock, asio::wait_traits<clock>, strand_type>;
    socket_type& lowest() noexcept { return tls_ ? tls_->next_layer() : socket_; }

    strand_type strand_;
    socket_type socket_;
    std::shared_ptr<asio::ssl::context> tls_context_;
    std::unique_ptr<asio::ssl::stream<socket_type>> tls_;
    std::string host_;
    std::uint8_t version_ = 0;
    protocol::compression compression_ = protocol::compression::none;
    std::size_t orphan_budget_;
    bool replace_on_orphans_ = false;
    bool replacement_asked_ = false;
    std::chrono::milliseconds heartbeat_interval_, heartbeat_timeout_, drain_timeout_;

    // Strand-confined state.
    multiplexer mux_;
    timer_type deadline_timer_;
    clock::time_point deadline_armed_ = clock::time_point::max();  // when deadline_timer_ fires
    bool closed_ = false;
    bool heartbeat_pending_ = false;
    bool timed_out_ = false;  // the connect deadline passed
    std::chrono::steady_clock::time_point last_read_;
    std::atomic<std::chrono::steady_clock::rep> last_read_at_{0};  // last_read_, readable from any thread
    timer_type heartbeat_timer_;
    heartbeat_sink heartbeat_sink_{*this};
    std::optional<timer_type> drain_timer_;
    timer_type closed_signal_;  // never expires; cancelled when the connection closes
    const char* stage_ = "TCP connect";  // what connect() is doing, for its error messages
    frame_catcher* handshake_ = nullptr;  // the handshake's request waiting for its answer
    event_handler on_event_;
    state_handler on_state_;
    counters stats_;

    // Readable from any thread (and the multiplexer's counters).
    std::atomic<std::uint64_t> next_seq_{1};
    std::atomic<connection_state> state_{connection_state::ready};
    mutable std::mutex failure_mutex_;  // failure is written once on the strand and read rarely
    error_code failure_;
    std::string failure_text_;
};

// execute()'s sink: it holds the completion handler (in memory from the handler's associated allocator,
// freed before the handler runs), decodes the answer for it, and posts it to the handler's executor
// (the strand by default; never inline on the strand's stack). The cancellation slot is cleared there,
// just before the handler runs, as Asio requires.
template <class Handler>
class connection::handler_sink final : public request_sink {
    using allocator = typename std::allocator_traits<
        asio::associated_allocator_t<Handler, asio::recycling_allocator<void>>>::template rebind_alloc<handler_sink>;
    using traits = std::allocator_traits<allocator>;

public:
    static handler_sink* make(Handler h, const strand_type& strand) {
        allocator a(asio::get_associated_allocator(h, asio::recycling_allocator<void>()));
        auto* p = traits::allocate(a, 1);
        return ::new (static_cast<void*>(p)) handler_sink(std::move(h), strand);
    }

    void on_frame(const protocol::frame_header& h, protocol::bytes_view body) override {
        auto f = decode_frame(h, body);
        if (!f) return finish(f.error(), {});
        finish({}, std::move(*f));
    }
    void on_failure(error_code ec, bool) override { finish(ec, {}); }

private:
    handler_sink(Handler h, const strand_type& strand) : handler_(std::move(h)), strand_(strand) {}

    void finish(error_code ec, response_frame f) {
        Handler h = std::move(handler_);
        auto ex = asio::prefer(asio::get_associated_executor(h, strand_), asio::execution::blocking.never);
        allocator a(asio::get_associated_allocator(h, asio::recycling_allocator<void>()));
        this->~handler_sink();
        traits::deallocate(a, this, 1);
        ex.execute([h = std::move(h), ec, f = std::move(f)]() mutable {
            asio::get_associated_cancellation_slot(h).clear();
            std::move(h)(ec, std::move(f));
        });
    }

    Handler handler_;
    strand_type strand_;
};

}  // namespace cqlcoro::connection
