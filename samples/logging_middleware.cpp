// A middleware that logs every request: its CQL, how long it took, and how it ended.
//
//   logging_middleware [host=127.0.0.1]
#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

namespace asio = boost::asio;

cqlcoro::middleware logging() {
    return [](cqlcoro::request& r, cqlcoro::next_layer next) -> asio::awaitable<cqlcoro::outcome> {
        const auto t0 = std::chrono::steady_clock::now();
        auto o = co_await next(r);
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
        fmt::print("[cql] {} us  {}  -> {} (via {})\n", us, r.text(), o.ec ? o.ec.message() : "ok", o.result.diagnostics().host);
        co_return o;
    };
}

asio::awaitable<void> run(asio::any_io_executor ex, std::string host) {
    cqlcoro::session_params p;
    p.contact_points = {host};
    // Within the deadline, before speculative execution and retries: it sees each request once.
    p.chain = {cqlcoro::built_in_layer::deadline, logging(), cqlcoro::built_in_layer::speculative_execution,
               cqlcoro::built_in_layer::retry};
    auto session = co_await cqlcoro::session::connect(ex, p);
    co_await session.execute(cqlcoro::statement("SELECT release_version FROM system.local"));
    co_await session.execute(cqlcoro::statement("SELECT cluster_name FROM system.local"));
    co_await session.execute(cqlcoro::statement("SELECT nothing FROM system.local"), asio::as_tuple(asio::use_awaitable));
    co_await session.close();
}

int main(int argc, char** argv) {
    asio::io_context io;
    int status = 0;
    asio::co_spawn(io, run(io.get_executor(), argc > 1 ? argv[1] : "127.0.0.1"), [&](std::exception_ptr e) { status = e ? 1 : 0; });
    io.run();
    return status;
}
