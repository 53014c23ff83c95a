// Talks to a Cassandra node with the protocol codec over an Asio coroutine: OPTIONS, STARTUP (falling
// back from v4 to v3 the way a driver negotiates), then a QUERY. The session API will replace the
// hand-written exchange; the codec underneath stays.
//
//   raw_codec_query [host] [port]
#include "protocol/requests.hpp"
#include "protocol/responses.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include <array>
#include <exception>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using namespace cqlcoro;
using namespace cqlcoro::protocol;
using asio::ip::tcp;

namespace {

struct reply {
    frame_header header;
    byte_buffer body;
    response message;
};

// One request, one response: encode, write, read the 9-byte header, read the body, decode.
asio::awaitable<reply> roundtrip(tcp::socket& socket, std::uint8_t version, const request& req) {
    byte_buffer out;
    if (auto ec = encode_request(version, req, {}, out)) throw std::runtime_error(ec.message());
    co_await asio::async_write(socket, asio::buffer(out), asio::use_awaitable);

    reply r;
    std::array<std::uint8_t, header_size> head{};
    co_await asio::async_read(socket, asio::buffer(head), asio::use_awaitable);
    auto h = decode_header(head);
    if (!h) throw std::runtime_error(h.error().message());
    r.header = *h;
    r.body.resize(h->length);
    co_await asio::async_read(socket, asio::buffer(r.body), asio::use_awaitable);
    auto msg = decode_response(r.header, r.body);
    if (!msg) throw std::runtime_error(msg.error().message());
    r.message = std::move(*msg);
    co_return r;
}

asio::awaitable<void> run(std::string host, std::string port) {
    auto ex = co_await asio::this_coro::executor;
    tcp::socket socket(ex);
    tcp::resolver resolver(ex);
    co_await asio::async_connect(socket, co_await resolver.async_resolve(host, port, asio::use_awaitable),
                                 asio::use_awaitable);

    // Step 1: what does the server support?
    auto supported = co_await roundtrip(socket, 3, options_request{});
    for (const auto& [key, values] : std::get<supported_response>(supported.message.body).options)
        fmt::print("supported {}: {}\n", key, fmt::join(values, ", "));

    // Step 2: STARTUP at the highest version; a refusal names the version, so step down and reconnect.
    std::array<std::pair<std::string_view, std::string_view>, 1> opts{{{"CQL_VERSION", "3.0.0"}}};
    std::uint8_t version = 5;
    for (;; --version) {
        auto r = co_await roundtrip(socket, version, startup_request{opts});
        auto err = std::get_if<error_response>(&r.message.body);
        if (!err) break;
        if (version == 3 || !rejects_protocol_version(r.header, *err, version))
            throw std::runtime_error(fmt::format("STARTUP failed: {}", err->message));
        fmt::print("protocol v{} refused ({}), trying v{}\n", version, err->message, version - 1);
        socket.close();  // the server closes a connection after a version refusal: start afresh
        socket = tcp::socket(ex);
        co_await asio::async_connect(socket, co_await resolver.async_resolve(host, port, asio::use_awaitable),
                                     asio::use_awaitable);
    }
    fmt::print("connected with protocol v{}\n", version);

    // Step 3: a query; the cells are a view over the received body.
    auto r = co_await roundtrip(socket, version,
                                query_request{"SELECT cluster_name, release_version FROM system.local",
                                              {.cl = consistency::one}});
    if (auto err = std::get_if<error_response>(&r.message.body)) throw std::runtime_error(err->message);
    const auto& rows = std::get<rows_result>(std::get<result_response>(r.message.body).body);
    reader cells(rows.content);
    for (int i = 0; i < rows.row_count; ++i) {
        auto cluster = cells.bytes();
        auto release = cells.bytes();
        fmt::print("cluster {} runs Cassandra {}\n", as_string_view(cluster.value_or(bytes_view{})),
                   as_string_view(release.value_or(bytes_view{})));
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = argc > 1 ? argv[1] : "127.0.0.1";
    std::string port = argc > 2 ? argv[2] : "9042";
    asio::io_context io;
    std::exception_ptr failure;
    asio::co_spawn(io, run(host, port), [&](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            fmt::print(stderr, "error: {} (is a Cassandra node listening on {}:{}?)\n", e.what(), host, port);
            return 1;
        }
    }
    return 0;
}
