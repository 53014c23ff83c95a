// The no-throw style: as_tuple gives the error code and the result, whose diagnostics say what the
// server answered.
//
//   no_throw [host=127.0.0.1]
#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

namespace asio = boost::asio;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

asio::awaitable<int> run(asio::any_io_executor ex, std::string host) {
    cqlcoro::session_params p;
    p.contact_points = {host};
    auto session = co_await cqlcoro::session::connect(ex, p);

    auto [ec, r] = co_await session.execute(cqlcoro::statement("SELECT no_such_column FROM system.local"), no_throw);
    if (ec) {
        fmt::print("failed as expected: {} (code {} in {})\n", ec.message(), ec.value(), ec.category().name());
        if (const auto& server = r.diagnostics().server) fmt::print("  the server said: {}\n", server->message);
        fmt::print("  tried: {}\n", r.diagnostics().host);
    }
    auto [ec2, ok] = co_await session.execute(cqlcoro::statement("SELECT release_version FROM system.local"), no_throw);
    if (!ec2) fmt::print("release_version {}\n", ok.one().get<std::string>(0));
    co_await session.close();
    co_return ec && !ec2 ? 0 : 1;
}

int main(int argc, char** argv) {
    asio::io_context io;
    int status = 1;
    asio::co_spawn(io, run(io.get_executor(), argc > 1 ? argv[1] : "127.0.0.1"), [&](std::exception_ptr e, int s) {
        status = e ? 1 : s;
    });
    io.run();
    return status;
}
