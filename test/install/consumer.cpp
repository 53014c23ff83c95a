// A program outside the repository, built with nothing but `pkg-config --cflags --libs cqlcoro`: it
// connects (TLS options and errors reach OpenSSL), reads a row and prints a value with fmt, as the
// README shows.
#include <cqlcoro/session.hpp>
#include <cqlcoro/value.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

#include <cstdlib>
#include <exception>

namespace asio = boost::asio;

int main(int argc, char** argv) {
    const char* host = argc > 1 ? argv[1] : "127.0.0.1";
    asio::io_context io;
    int status = 1;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            cqlcoro::session_params p;
            p.contact_points = {host};
            auto s = co_await cqlcoro::session::connect(io.get_executor(), p);
            auto rs = co_await s.execute(cqlcoro::statement("SELECT release_version FROM system.local"));
            fmt::print("release_version {}\n", rs.one().get<cqlcoro::value>(0));
            co_await s.close();
            status = 0;
        },
        [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                fmt::print(stderr, "consumer: {}\n", x.what());
            }
        });
    io.run();
    return status;
}
