// The same session used from an io_context run by four threads: 1,000 concurrent requests.
//
//   multithreaded [host=127.0.0.1]
#include <cqlcoro/session.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <fmt/format.h>

#include <atomic>
#include <thread>

namespace asio = boost::asio;

int main(int argc, char** argv) {
    asio::io_context io(4);
    auto work = asio::make_work_guard(io);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&] { io.run(); });

    cqlcoro::session_params p;
    p.contact_points = {argc > 1 ? argv[1] : "127.0.0.1"};
    p.connections_per_host = 2;
    int status = 0;
    try {
        auto session = asio::co_spawn(io, cqlcoro::session::connect(io.get_executor(), p), asio::use_future).get();
        std::atomic<int> ok{0}, failed{0};
        std::promise<void> all;
        constexpr int total = 1000;
        for (int i = 0; i < total; ++i) {
            // Callbacks run on whichever thread runs the io_context; the session is safe to call from any.
            session.execute(cqlcoro::statement("SELECT release_version FROM system.local"), [&](cqlcoro::error_code ec, cqlcoro::result r) {
                (ec || r.empty() ? failed : ok)++;
                if (ok + failed == total) all.set_value();
            });
        }
        all.get_future().get();
        fmt::print("{} requests from 4 threads: {} ok, {} failed\n", total, ok.load(), failed.load());
        status = failed == 0 ? 0 : 1;
        asio::co_spawn(io, session.close(), asio::use_future).get();
    } catch (const std::exception& e) {
        fmt::print(stderr, "multithreaded: {}\n", e.what());
        status = 1;
    }
    work.reset();
    for (auto& t : threads) t.join();
    return status;
}
