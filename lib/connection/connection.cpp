#include "connection/connection.hpp"

#include <cqlcoro/error.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

namespace cqlcoro::connection {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Requests are encoded before they reach the strand, with stream 0; the strand writes the real id in.
void patch_stream(protocol::byte_buffer& frame, std::int16_t id) noexcept {
    frame[2] = static_cast<std::uint8_t>(static_cast<std::uint16_t>(id) >> 8);
    frame[3] = static_cast<std::uint8_t>(id);
}

}  // namespace

connection::connection(asio::any_io_executor ex)
    : strand_(asio::make_strand(ex)), socket_(strand_), in_flight_(stream_ids::max_capacity) {}

asio::awaitable<std::shared_ptr<connection>> connection::connect(asio::any_io_executor ex, connection_params params,
                                                                 event_handler on_event) {
    std::string refusals;
    for (std::uint8_t v = params.max_version; v >= 3; --v) {
        auto c = std::make_shared<connection>(ex);
        c->on_event_ = on_event;
        auto ec = co_await asio::co_spawn(c->strand_, c->open(params, v), asio::use_awaitable);
        if (!ec) {
            asio::co_spawn(c->strand_, [c] { return c->read_loop(); }, asio::detached);
            if (!params.events.empty()) {
                std::vector<std::string_view> ev(params.events.begin(), params.events.end());
                auto r = co_await c->execute(protocol::register_request{ev}, asio::use_awaitable);
                if (auto e = std::get_if<protocol::error_response>(&r.message.body))
                    throw error(protocol_errc::unexpected_opcode, fmt::format("{}:{} refused REGISTER: {}", params.host, params.port, e->message));
            }
            co_return c;
        }
        if (ec != protocol_errc::unsupported_version) throw error(ec, fmt::format("{}:{}: {}", params.host, params.port, c->last_error_.empty() ? ec.message() : c->last_error_));
        refusals += fmt::format("{}v{} refused", refusals.empty() ? "" : ", ", v);
    }
    throw error(protocol_errc::unsupported_version,
                fmt::format("{}:{} speaks none of protocol v{}..v3 ({})", params.host, params.port, params.max_version, refusals));
}

// TCP connect, then STARTUP (and login) in `version`. unsupported_version when the server refuses it.
asio::awaitable<error_code> connection::open(const connection_params& p, std::uint8_t version) {
    asio::ip::tcp::resolver resolver(strand_);
    auto [rec, endpoints] = co_await resolver.async_resolve(p.host, std::to_string(p.port), use_tuple);
    if (rec) co_return rec;
    auto [cec, ep] = co_await asio::async_connect(socket_, endpoints, use_tuple);
    if (cec) co_return cec;
    socket_.set_option(asio::ip::tcp::no_delay(true));
    version_ = version;
    max_frame_ = p.max_frame_size;
    co_return co_await handshake(p);
}

asio::awaitable<error_code> connection::handshake(const connection_params& p) {
    // One request and its answer, before the read loop runs.
    auto exchange = [this](const protocol::request& req) -> asio::awaitable<std::optional<response_frame>> {
        protocol::byte_buffer frame;
        if (auto ec = protocol::encode_request(version_, req, {.compression = framing_ ? protocol::compression::none : compression_}, frame)) {
            failure_ = ec;
            co_return std::nullopt;
        }
        protocol::byte_buffer out;
        if (framing_) {
            std::vector<protocol::bytes_view> one{frame};
            protocol::encode_envelopes(one, compression_ == protocol::compression::lz4, out);
        } else {
            out = std::move(frame);
        }
        auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(out), use_tuple);
        if (wec) {
            failure_ = wec;
            co_return std::nullopt;
        }
        std::optional<response_frame> got;
        on_handshake_frame_ = [&got](response_frame f) { got = std::move(f); };
        while (!got) {
            std::array<std::uint8_t, 16384> chunk;
            auto [rec, n] = co_await socket_.async_read_some(asio::buffer(chunk), use_tuple);
            if (rec) {
                failure_ = rec;
                break;
            }
            in_.insert(in_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
            if (auto ec = parse_frames()) {
                failure_ = ec;
                break;
            }
        }
        on_handshake_frame_ = nullptr;
        co_return got;
    };

    std::vector<std::pair<std::string_view, std::string_view>> opts{{"CQL_VERSION", "3.0.0"}, {"DRIVER_NAME", "cqlcoro"}};
    auto comp = p.compression;
    if (version_ >= 5 && comp == protocol::compression::snappy) comp = protocol::compression::none;  // v5 has LZ4 only
    if (comp != protocol::compression::none) opts.emplace_back("COMPRESSION", protocol::startup_name(comp));
    // A server may compress its answer to STARTUP already (Cassandra 2.1 does).
    compression_ = comp;
    auto r = co_await exchange(protocol::startup_request{opts});
    if (!r) co_return failure_;
    if (auto e = std::get_if<protocol::error_response>(&r->message.body)) {
        if (protocol::rejects_protocol_version(r->header, *e, version_)) co_return error_code(protocol_errc::unsupported_version);
        last_error_ = fmt::format("STARTUP refused: {}", e->message);
        co_return error_code(protocol_errc::unexpected_opcode);
    }
    if (version_ >= 5) {  // v5 segments begin after the answer to STARTUP
        framing_ = true;
        segments_.emplace(compression_ == protocol::compression::lz4);
    }
    if (auto a = std::get_if<protocol::authenticate_response>(&r->message.body)) {
        if (!p.credentials) {
            last_error_ = fmt::format("the server requires authentication ({}): set credentials", a->authenticator);
            co_return error_code(protocol_errc::unexpected_opcode);
        }
        std::string token = std::string(1, '\0') + p.credentials->first + std::string(1, '\0') + p.credentials->second;
        auto ar = co_await exchange(protocol::auth_response_request{protocol::as_bytes(token)});
        if (!ar) co_return failure_;
        if (auto e = std::get_if<protocol::error_response>(&ar->message.body)) {
            last_error_ = fmt::format("authentication failed: {} (check the user name and password)", e->message);
            co_return error_code(protocol_errc::unexpected_opcode);
        }
        if (!std::holds_alternative<protocol::auth_success_response>(ar->message.body)) {
            last_error_ = "unexpected answer to AUTH_RESPONSE (SASL challenges beyond PLAIN are not supported yet)";
            co_return error_code(protocol_errc::unexpected_opcode);
        }
    } else if (!std::holds_alternative<protocol::ready_response>(r->message.body)) {
        last_error_ = "unexpected answer to STARTUP";
        co_return error_code(protocol_errc::unexpected_opcode);
    }
    co_return error_code{};
}

void connection::start_request(protocol::request req, handler_t handler) {
    protocol::byte_buffer frame;
    const auto c = version_ < 5 ? compression_ : protocol::compression::none;
    auto ec = protocol::encode_request(version_, req, {.stream = 0, .compression = c}, frame);
    asio::post(strand_, [self = shared_from_this(), ec, frame = std::move(frame), handler = std::move(handler)]() mutable {
        if (!ec && self->closed_) ec = self->failure_ ? self->failure_ : error_code(asio::error::not_connected);
        std::optional<std::int16_t> id;
        if (!ec) {
            id = self->ids_.acquire();
            if (!id) ec = asio::error::no_buffer_space;  // every stream id is in flight
        }
        if (ec) {
            asio::post(self->strand_, asio::append(std::move(handler), ec, response_frame{}));
            return;
        }
        patch_stream(frame, *id);
        self->in_flight_[static_cast<std::size_t>(*id)].emplace(std::move(handler));
        self->queue_.push_back(std::move(frame));
        if (!self->writing_) {
            self->writing_ = true;
            asio::co_spawn(self->strand_, [self] { return self->write_loop(); }, asio::detached);
        }
    });
}

// Everything queued while a write is in flight goes out in the next single (gather) write.
asio::awaitable<void> connection::write_loop() {
    auto self = shared_from_this();
    std::vector<protocol::byte_buffer> batch;
    while (!queue_.empty() && !closed_) {
        batch.clear();
        batch.swap(queue_);
        error_code ec;
        if (framing_) {
            std::vector<protocol::bytes_view> views(batch.begin(), batch.end());
            protocol::byte_buffer out;
            protocol::encode_envelopes(views, compression_ == protocol::compression::lz4, out);
            std::tie(ec, std::ignore) = co_await asio::async_write(socket_, asio::buffer(out), use_tuple);
        } else {
            std::vector<asio::const_buffer> buffers;
            buffers.reserve(batch.size());
            for (const auto& f : batch) buffers.emplace_back(asio::buffer(f));
            std::tie(ec, std::ignore) = co_await asio::async_write(socket_, buffers, use_tuple);
        }
        if (ec) {
            fail_all(ec);
            break;
        }
    }
    writing_ = false;
}

asio::awaitable<void> connection::read_loop() {
    auto self = shared_from_this();
    std::array<std::uint8_t, 64 * 1024> chunk;
    while (!closed_) {
        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(chunk), use_tuple);
        if (ec) {
            fail_all(ec);
            break;
        }
        in_.insert(in_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
        if (auto perr = parse_frames()) {
            fail_all(perr);
            break;
        }
    }
}

// Dispatches every whole frame (or v5 segment) in in_.
error_code connection::parse_frames() {
    std::size_t used = 0;
    error_code ec;
    auto deliver = [&](const protocol::frame_header& h, protocol::bytes_view body) {
        response_frame f;
        f.header = h;
        protocol::byte_buffer scratch;
        auto b = protocol::frame_body(h, body, compression_, max_frame_, scratch);
        if (!b) {
            ec = b.error();
            return;
        }
        f.body.assign(b->begin(), b->end());
        auto m = protocol::decode_response(h, f.body);
        if (!m) {
            ec = m.error();
            return;
        }
        f.message = std::move(*m);
        if (on_handshake_frame_) {
            on_handshake_frame_(std::move(f));
            return;
        }
        if (h.stream < 0) {
            if (on_event_) on_event_(f);
            return;
        }
        if (ids_.on_response(h.stream) == stream_ids::arrival::active) complete(h.stream, {}, std::move(f));
        // An orphan's late response, or a stray one, is dropped: it must never complete another request.
    };
    while (!ec) {
        protocol::bytes_view rest = protocol::bytes_view(in_).subspan(used);
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
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(used));
    return ec;
}

void connection::complete(std::int16_t stream, error_code ec, response_frame f) {
    auto& slot = in_flight_[static_cast<std::size_t>(stream)];
    if (!slot) return;
    auto h = std::move(*slot);
    slot.reset();
    // Posted, never run inline: the handler runs on its own executor, outside this strand's stack.
    asio::post(strand_, asio::append(std::move(h), ec, std::move(f)));
}

void connection::fail_all(error_code ec) {
    if (!failure_) failure_ = ec;
    closed_ = true;
    error_code ignored;
    socket_.close(ignored);
    for (std::size_t i = 0; i < in_flight_.size(); ++i) {
        if (!in_flight_[i]) continue;
        ids_.on_response(static_cast<std::int16_t>(i));
        complete(static_cast<std::int16_t>(i), ec, {});
    }
}

void connection::abort() {
    asio::post(strand_, [self = shared_from_this()] { self->fail_all(asio::error::operation_aborted); });
}

}  // namespace cqlcoro::connection
