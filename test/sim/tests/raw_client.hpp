// A blocking CQL client for the simulated nodes' tests: any version, compression, and v5 segments.
#pragma once

#include "protocol/requests.hpp"
#include "protocol/responses.hpp"
#include "protocol/segment.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <deque>
#include <stdexcept>
#include <string>

namespace cqlcoro::sim::test {

struct reply {
    protocol::frame_header header;
    protocol::byte_buffer body;  // owns the bytes the message's views point into
    protocol::response message;
};

class raw_client {
public:
    raw_client(const std::string& host, std::uint16_t port, std::uint8_t version = 4) : socket_(io_), version_(version) {
        socket_.connect({boost::asio::ip::make_address(host), port});
    }

    std::uint8_t version() const noexcept { return version_; }

    /// Sends one request on `stream` (framed once STARTUP has been answered in v5).
    void send(const protocol::request& r, std::int16_t stream = 0, std::uint8_t version = 0) {
        protocol::byte_buffer frame;
        if (auto ec = protocol::encode_request(version ? version : version_, r, {.stream = stream, .compression = framing_ ? protocol::compression::none : compression_}, frame))
            throw std::runtime_error(ec.message());
        protocol::byte_buffer out;
        if (framing_) {
            std::vector<protocol::bytes_view> one{frame};
            protocol::encode_envelopes(one, compression_ == protocol::compression::lz4, out);
        } else {
            out = std::move(frame);
        }
        boost::asio::write(socket_, boost::asio::buffer(out));
    }

    /// The next response (throws on EOF or a decoding error).
    reply receive() {
        while (envelopes_.empty()) read_more();
        auto e = std::move(envelopes_.front());
        envelopes_.pop_front();
        reply r{e.first, {}, {}};
        protocol::byte_buffer scratch;
        auto body = protocol::frame_body(e.first, e.second, compression_, protocol::protocol_max_body, scratch);
        if (!body) throw std::runtime_error(body.error().message());
        r.body.assign(body->begin(), body->end());
        auto m = protocol::decode_response(e.first, r.body);
        if (!m) throw std::runtime_error(m.error().message());
        r.message = std::move(*m);
        return r;
    }

    reply roundtrip(const protocol::request& r, std::int16_t stream = 0) {
        send(r, stream);
        return receive();
    }

    /// STARTUP (with compression), logging in if asked; v5 switches to segments afterwards.
    reply startup(protocol::compression c = protocol::compression::none, std::string user = "cassandra", std::string pass = "cassandra") {
        std::array<std::pair<std::string_view, std::string_view>, 2> opts{{{"CQL_VERSION", "3.0.0"}, {"COMPRESSION", protocol::startup_name(c)}}};
        auto r = roundtrip(protocol::startup_request{std::span(opts).first(c == protocol::compression::none ? 1 : 2)});
        if (std::holds_alternative<protocol::error_response>(r.message.body)) return r;
        compression_ = c;
        if (version_ >= 5) framing_ = true;
        if (std::holds_alternative<protocol::authenticate_response>(r.message.body)) {
            std::string token = std::string(1, '\0') + user + std::string(1, '\0') + pass;
            r = roundtrip(protocol::auth_response_request{protocol::as_bytes(token)});
        }
        return r;
    }

    /// True once the server has closed (or half-closed) the connection.
    bool at_eof() {
        try {
            read_more();
            return false;
        } catch (const boost::system::system_error& e) {
            return e.code() == boost::asio::error::eof || e.code() == boost::asio::error::connection_reset;
        }
    }

private:
    void read_more() {
        std::array<std::uint8_t, 65536> chunk;
        const auto n = socket_.read_some(boost::asio::buffer(chunk));
        in_.insert(in_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
        std::size_t used = 0;
        for (;;) {
            protocol::bytes_view rest = protocol::bytes_view(in_).subspan(used);
            if (framing_) {
                auto s = segments().decode(rest);
                if (!s) throw std::runtime_error(s.error().message());
                if (!*s) break;
                auto ec = assembler_.feed(**s, [&](const protocol::frame_header& h, protocol::bytes_view b) {
                    envelopes_.emplace_back(h, protocol::byte_buffer(b.begin(), b.end()));
                });
                if (ec) throw std::runtime_error(ec.message());
                used += (*s)->consumed;
            } else {
                if (rest.size() < protocol::header_size) break;
                auto h = protocol::decode_header(rest);
                if (!h) throw std::runtime_error(h.error().message());
                if (rest.size() - protocol::header_size < h->length) break;
                auto b = rest.subspan(protocol::header_size, h->length);
                envelopes_.emplace_back(*h, protocol::byte_buffer(b.begin(), b.end()));
                used += protocol::header_size + h->length;
            }
        }
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(used));
    }

    protocol::segment_decoder& segments() {
        if (!segments_) segments_.emplace(compression_ == protocol::compression::lz4);
        return *segments_;
    }

    boost::asio::io_context io_;
    boost::asio::ip::tcp::socket socket_;
    std::uint8_t version_;
    protocol::compression compression_ = protocol::compression::none;
    bool framing_ = false;
    protocol::byte_buffer in_;
    std::optional<protocol::segment_decoder> segments_;
    protocol::envelope_assembler assembler_;
    std::deque<std::pair<protocol::frame_header, protocol::byte_buffer>> envelopes_;
};

template <class T>
const T& as(const reply& r) {
    if constexpr (!std::is_same_v<T, protocol::error_response>) {
        if (auto e = std::get_if<protocol::error_response>(&r.message.body))
            throw std::runtime_error("server error " + std::to_string(e->code) + ": " + e->message);
    }
    return std::get<T>(r.message.body);
}

template <class T>
const T& result(const reply& r) {
    return std::get<T>(as<protocol::result_response>(r).body);
}

}  // namespace cqlcoro::sim::test
