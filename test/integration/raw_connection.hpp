// A blocking, one-request-at-a-time CQL connection over a plain socket: just enough to drive the codec
// against a real server before the connection actor exists.
#pragma once

#include "target.hpp"

#include "protocol/requests.hpp"
#include "protocol/responses.hpp"

#include <catch2/catch_test_macros.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace cqlcoro::test {

struct received_frame {
    protocol::frame_header header;
    protocol::byte_buffer body;      // as received (maybe compressed)
    protocol::byte_buffer scratch;   // decompressed body, when compressed
    protocol::response message;
};

/// The message of a frame as T; fails the test with the server's error when there is one instead.
template <class T>
const T& body_as(const received_frame& f) {
    if constexpr (!std::is_same_v<T, protocol::error_response>) {
        if (auto e = std::get_if<protocol::error_response>(&f.message.body))
            FAIL("server error " << e->code << ": " << e->message);
    }
    REQUIRE(std::holds_alternative<T>(f.message.body));
    return std::get<T>(f.message.body);
}

/// The RESULT of a frame as the kind T (rows_result, prepared_result, ...).
template <class T>
const T& result_as(const received_frame& f) {
    const auto& r = body_as<protocol::result_response>(f);
    REQUIRE(std::holds_alternative<T>(r.body));
    return std::get<T>(r.body);
}

class raw_connection {
public:
    explicit raw_connection(const std::string& host, unsigned short port = 9042) : socket_(io_) {
        boost::asio::ip::tcp::resolver resolver(io_);
        boost::asio::connect(socket_, resolver.resolve(host, std::to_string(port)));
    }

    protocol::compression compression = protocol::compression::none;
    /// The version startup() speaks: the run's protocol, but v4 for v5 (this connection reads frames,
    /// not v5's segments; the session's tests cover v5).
    std::uint8_t version = std::min<std::uint8_t>(test_protocol(), 4);

    /// Sends one request and returns the decoded response; throws on transport or decode errors.
    received_frame roundtrip(std::uint8_t v, const protocol::request& req, protocol::frame_options opts = {}) {
        opts.compression = compression;
        protocol::byte_buffer out;
        if (auto ec = protocol::encode_request(v, req, opts, out)) throw std::runtime_error(ec.message());
        return roundtrip_bytes(out);
    }

    /// Sends an encoded frame as it is (a test may alter its bytes) and returns the decoded response.
    received_frame roundtrip_bytes(const protocol::byte_buffer& out) {
        boost::asio::write(socket_, boost::asio::buffer(out));
        received_frame f;
        std::uint8_t head[protocol::header_size];
        boost::asio::read(socket_, boost::asio::buffer(head));
        auto h = protocol::decode_header(head);
        if (!h) throw std::runtime_error(h.error().message());
        f.header = *h;
        f.body.resize(h->length);
        boost::asio::read(socket_, boost::asio::buffer(f.body));
        auto body = protocol::frame_body(f.header, f.body, compression, protocol::protocol_max_body, f.scratch);
        if (!body) throw std::runtime_error(body.error().message());
        auto msg = protocol::decode_response(f.header, *body);
        if (!msg) throw std::runtime_error(msg.error().message());
        f.message = std::move(*msg);
        return f;
    }

    /// STARTUP in `version` (logging in as cassandra/cassandra if the node asks), with optional compression.
    /// Throws unless the node ends up ready.
    void startup(protocol::compression comp = protocol::compression::none) {
        using namespace protocol;
        std::array<std::pair<std::string_view, std::string_view>, 2> opts{{{"CQL_VERSION", "3.0.0"}, {"COMPRESSION", startup_name(comp)}}};
        // The server may compress its answer to STARTUP already: decompression must be on before reading it.
        compression = comp;
        auto f = roundtrip(version, startup_request{std::span(opts).first(comp == protocol::compression::none ? 1 : 2)});
        if (std::holds_alternative<authenticate_response>(f.message.body)) {
            std::string_view token("\0cassandra\0cassandra", 20);
            f = roundtrip(version, auth_response_request{as_bytes(token)});
            if (!std::holds_alternative<auth_success_response>(f.message.body)) throw std::runtime_error("login failed");
            return;
        }
        if (!std::holds_alternative<ready_response>(f.message.body)) throw std::runtime_error("STARTUP not answered with READY");
    }

private:
    boost::asio::io_context io_;
    boost::asio::ip::tcp::socket socket_;
};

}  // namespace cqlcoro::test
