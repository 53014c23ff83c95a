// A simulated node's connections: a read loop that feeds the request handler, and a write loop that
// coalesces every response queued while a write is in flight into the next write.
#include "sim_internal.hpp"

#include "protocol/segment.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace cqlcoro::sim {
namespace {

using tls_stream = asio::ssl::stream<tcp::socket>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

template <class Stream>
class connection final : public connection_base, public std::enable_shared_from_this<connection<Stream>> {
public:
    connection(node& n, std::uint64_t id, Stream s)
        : connection_base(n, id), stream_(std::move(s)), resume_(stream_.get_executor()) {}

    void run() {
        asio::co_spawn(stream_.get_executor(), [self = this->shared_from_this()] { return self->read_loop(); }, asio::detached);
    }

    void close() override {
        if (closed_) return;
        closed_ = true;
        boost::system::error_code ignored;
        stream_.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.lowest_layer().close(ignored);
        resume_.cancel();
        auto& list = node_.connections;
        list.remove_if([this](const auto& c) { return c.get() == this; });
    }

    void shutdown_send() override {
        boost::system::error_code ignored;
        stream_.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
    }

    void resume_reading() override { resume_.cancel(); }

    void start_framing(bool lz4) override {
        framing_ = true;
        segments_ = protocol::segment_decoder(lz4);
    }

protected:
    void start_writing() override {
        writing_ = true;
        asio::co_spawn(stream_.get_executor(), [self = this->shared_from_this()] { return self->write_loop(); }, asio::detached);
    }

private:
    asio::awaitable<void> read_loop() {
        auto self = this->shared_from_this();  // alive until the loop ends
        if constexpr (std::is_same_v<Stream, tls_stream>) {
            auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, use_tuple);
            if (ec) {
                close();
                co_return;
            }
        }
        std::array<std::uint8_t, 64 * 1024> chunk;
        while (!closed_) {
            while (node_.paused && !closed_) {
                resume_.expires_at(asio::steady_timer::time_point::max());
                co_await resume_.async_wait(use_tuple);
            }
            if (closed_) break;
            auto [ec, n] = co_await stream_.async_read_some(asio::buffer(chunk), use_tuple);
            if (ec || closed_) break;
            in_.insert(in_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
            // A read already pending when the node was paused completes anyway: hold what it brought,
            // unprocessed, until resume.
            while (node_.paused && !closed_) {
                resume_.expires_at(asio::steady_timer::time_point::max());
                co_await resume_.async_wait(use_tuple);
            }
            if (closed_ || !process()) break;
        }
        close();
    }

    // Handles every whole frame (or segment) in in_. False when the connection must close.
    bool process() {
        std::size_t used = 0;
        request_handler handler{*this};
        processing_ = true;
        struct done_processing {  // then write what the batch produced, as one write
            connection& c;
            ~done_processing() {
                c.processing_ = false;
                if (!c.pending_.empty() && !c.writing_ && !c.closed_) c.start_writing();
            }
        } done{*this};
        while (!closed_) {
            bytes_view rest = bytes_view(in_).subspan(used);
            if (framing_) {
                auto s = segments_.decode(rest);
                if (!s) return false;  // a corrupt segment: nothing can be trusted after it
                if (!*s) break;
                auto ec = assembler_.feed(**s, [&](const protocol::frame_header& h, bytes_view body) {
                    if (!closed_) handler.handle(h, body);
                });
                if (ec) return false;
                used += (*s)->consumed;
                continue;
            }
            if (rest.size() < protocol::header_size) break;
            auto h = protocol::decode_header(rest);
            if (!h) {
                // A version we cannot even frame (v1, v2, v6+), or garbage: refuse, then close.
                if (h.error() == protocol_errc::unsupported_version) handler.refuse_version(rest[0] & 0x7F, 0);
                return false;
            }
            if (rest.size() - protocol::header_size < h->length) break;
            auto body = protocol::frame_body(*h, rest.subspan(protocol::header_size, h->length), compression_,
                                             protocol::protocol_max_body, scratch_);
            used += protocol::header_size + h->length;
            if (!body) return false;
            handler.handle(*h, *body);
        }
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(used));
        return !closed_;
    }

    asio::awaitable<void> write_loop() {
        auto self = this->shared_from_this();
        while (!pending_.empty() && !closed_) {
            byte_buffer out;
            std::vector<byte_buffer> batch;
            batch.swap(pending_);
            // Envelopes queued before v5 framing began go out bare; the rest inside segments.
            std::vector<bytes_view> framed;
            for (auto& e : batch) {
                if (e.empty()) continue;
                if (e[0] == 0) {  // marker byte: 0 = framed, 1 = bare (see connection_base::send)
                    framed.emplace_back(bytes_view(e).subspan(1));
                } else {
                    if (!framed.empty()) {
                        protocol::encode_envelopes(framed, compression_ == protocol::compression::lz4, out);
                        framed.clear();
                    }
                    out.insert(out.end(), e.begin() + 1, e.end());
                }
            }
            if (!framed.empty()) protocol::encode_envelopes(framed, compression_ == protocol::compression::lz4, out);
            auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(out), use_tuple);
            if (ec) {
                close();
                break;
            }
        }
        writing_ = false;
    }

    Stream stream_;
    asio::steady_timer resume_;
    byte_buffer in_;
    byte_buffer scratch_;
    protocol::segment_decoder segments_{false};
    protocol::envelope_assembler assembler_;

};

}  // namespace

void connection_base::send(byte_buffer envelope) {
    if (closed_) return;
    // One marker byte says whether the envelope travels in v5 segments (framing began) or bare.
    envelope.insert(envelope.begin(), framing_ ? 0 : 1);
    pending_.push_back(std::move(envelope));
    if (!writing_ && !processing_) start_writing();
}

void connection_base::respond(std::int16_t stream, const protocol::response& r, std::chrono::milliseconds delay) {
    byte_buffer out;
    const auto version = version_ ? version_ : std::uint8_t{4};
    const auto c = version < 5 ? compression_ : protocol::compression::none;
    if (protocol::encode_response(version, stream, r, out, c)) return;
    if (delay.count() <= 0) {
        send(std::move(out));
        return;
    }
    auto timer = std::make_shared<asio::steady_timer>(node_.sim.io, delay);
    // The connection is kept alive by the node's list; a closed one drops the late answer in send().
    std::weak_ptr<connection_base> weak;
    for (auto& c2 : node_.connections)
        if (c2.get() == this) weak = c2;
    timer->async_wait([timer, weak, out = std::move(out)](boost::system::error_code ec) mutable {
        if (auto self = weak.lock(); self && !ec) self->send(std::move(out));
    });
}

void node::start() {
    if (acceptor) return;
    acceptor.emplace(sim.io);
    acceptor->open(endpoint.protocol());
    acceptor->set_option(tcp::acceptor::reuse_address(true));
    acceptor->bind(endpoint);
    acceptor->listen();
    asio::co_spawn(
        sim.io,
        [this]() -> asio::awaitable<void> {
            auto* a = &*acceptor;
            for (;;) {
                auto [ec, socket] = co_await a->async_accept(use_tuple);
                if (ec) co_return;
                socket.set_option(tcp::no_delay(true));
                const auto id = sim.next_connection++;
                if (sim.tls) {
                    auto c = std::make_shared<connection<tls_stream>>(*this, id, tls_stream(std::move(socket), *sim.tls));
                    connections.push_back(c);
                    c->run();
                } else {
                    auto c = std::make_shared<connection<tcp::socket>>(*this, id, std::move(socket));
                    connections.push_back(c);
                    c->run();
                }
            }
        },
        asio::detached);
}

void node::stop() {
    if (acceptor) {
        boost::system::error_code ignored;
        acceptor->close(ignored);
        acceptor.reset();
    }
    auto all = connections;  // close() removes from the list
    for (auto& c : all) c->close();
}

}  // namespace cqlcoro::sim
