// The connection actor: one CQL connection confined to one strand. It alone owns the socket, the stream
// ids, the in-flight table and the write queue; requests from any thread are posted to it.
//
// First cut: plain TCP, protocol negotiation (v5 -> v4 -> v3, recognising Cassandra 2.1's refusal),
// STARTUP with compression, PasswordAuthenticator login, multiplexed requests with coalesced writes, and
// events on stream -1. TLS, heartbeats, orphan budgets and graceful close are still to come (issue 5).
#pragma once

#include "connection/stream_ids.hpp"
#include "protocol/requests.hpp"
#include "protocol/responses.hpp"
#include "protocol/segment.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cqlcoro::connection {

namespace asio = boost::asio;

struct connection_params {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9042;
    /// The highest protocol version to try; lower ones are tried in turn when the server refuses.
    std::uint8_t max_version = 5;
    protocol::compression compression = protocol::compression::none;
    /// PasswordAuthenticator credentials, used when the server asks.
    std::optional<std::pair<std::string, std::string>> credentials;
    /// Events to REGISTER for ("STATUS_CHANGE", ...); none: no REGISTER.
    std::vector<std::string> events;
    std::uint32_t max_frame_size = protocol::protocol_max_body;
};

/// A response with the bytes its views point into.
struct response_frame {
    protocol::frame_header header;
    protocol::byte_buffer body;  ///< decompressed body; message views point into it
    protocol::response message;
};

class connection : public std::enable_shared_from_this<connection> {
public:
    using event_handler = std::function<void(const response_frame&)>;

    /// Connects and completes the handshake. Completion: void(error_code, std::shared_ptr<connection>).
    static asio::awaitable<std::shared_ptr<connection>> connect(asio::any_io_executor ex, connection_params params,
                                                                event_handler on_event = {});

    /// Sends one request and completes with its response (an ERROR response is a response, not an
    /// error_code; error_codes are transport and protocol failures). Safe to call from any thread.
    template <class Token>
    auto execute(protocol::request req, Token&& token) {
        return asio::async_initiate<Token, void(error_code, response_frame)>(
            [self = shared_from_this()](auto handler, protocol::request r) {
                self->start_request(std::move(r), asio::any_completion_handler<void(error_code, response_frame)>(std::move(handler)));
            },
            token, std::move(req));
    }

    std::uint8_t version() const noexcept { return version_; }
    /// Closes the socket: requests in flight complete with operation_aborted.
    void abort();
    std::size_t in_flight() const noexcept { return ids_.in_flight(); }

    explicit connection(asio::any_io_executor ex);

private:
    using handler_t = asio::any_completion_handler<void(error_code, response_frame)>;

    asio::awaitable<error_code> open(const connection_params& p, std::uint8_t version);
    asio::awaitable<error_code> handshake(const connection_params& p);
    asio::awaitable<void> read_loop();
    asio::awaitable<void> write_loop();
    void start_request(protocol::request req, handler_t handler);
    void complete(std::int16_t stream, error_code ec, response_frame f);
    void fail_all(error_code ec);
    error_code parse_frames();

    asio::strand<asio::any_io_executor> strand_;
    asio::ip::tcp::socket socket_;
    std::uint8_t version_ = 0;
    protocol::compression compression_ = protocol::compression::none;
    bool framing_ = false;
    std::uint32_t max_frame_ = protocol::protocol_max_body;
    stream_ids ids_;
    std::vector<std::optional<handler_t>> in_flight_;
    std::vector<protocol::byte_buffer> queue_;  // encoded envelopes waiting for the next write
    bool writing_ = false;
    bool closed_ = false;
    error_code failure_;
    protocol::byte_buffer in_;
    std::optional<protocol::segment_decoder> segments_;
    protocol::envelope_assembler assembler_;
    event_handler on_event_;
    std::function<void(response_frame)> on_handshake_frame_;  // set while the handshake reads its answers
    std::string last_error_;                                   // what the server said when the handshake failed
};

}  // namespace cqlcoro::connection
