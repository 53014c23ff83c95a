// Quickstart: connect, create a keyspace and a table, insert with a prepared statement, select, print.
//
//   quickstart [host=127.0.0.1]
#include <cqlcoro/session.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

namespace asio = boost::asio;

asio::awaitable<void> quickstart(asio::any_io_executor ex, std::string host) {
    cqlcoro::session_params p;
    p.contact_points = {host};
    auto session = co_await cqlcoro::session::connect(ex, p);
    fmt::print("connected to {} (protocol v{})\n", host, session.protocol_version());

    co_await session.execute(cqlcoro::statement(
        "CREATE KEYSPACE IF NOT EXISTS quickstart WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"));
    co_await session.execute(cqlcoro::statement("CREATE TABLE IF NOT EXISTS quickstart.users (id int PRIMARY KEY, name text, email text)"));

    auto insert = co_await session.prepare("INSERT INTO quickstart.users (id, name, email) VALUES (?, ?, ?)");
    co_await session.execute(insert.bind(1, "Ada", "ada@example.org").idempotent(true));
    co_await session.execute(insert.bind(2, "Brian", "brian@example.org").idempotent(true));

    auto rows = co_await session.execute(cqlcoro::statement("SELECT id, name, email FROM quickstart.users"));
    for (auto row : rows.rows())
        fmt::print("{} {} <{}>\n", row.get<int>("id"), row.get<std::string_view>("name"), row.get<std::string_view>("email"));
    co_await session.close();
}

int main(int argc, char** argv) {
    asio::io_context io;
    int status = 0;
    asio::co_spawn(io, quickstart(io.get_executor(), argc > 1 ? argv[1] : "127.0.0.1"), [&](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            fmt::print(stderr, "quickstart: {}\n", x.what());
            status = 1;
        }
    });
    io.run();
    return status;
}
