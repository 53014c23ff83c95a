// http_service: a users API over Cassandra on Boost.Beast, with a streamed listing, /metrics and
// /health, and a graceful shutdown on SIGTERM. README.md beside this file shows the routes.
//
//   http_service [--config cqlcoro.json] [--listen 127.0.0.1:8080] [--threads 2] [--seed-items N] [--grace 30]
//
// The driver's settings come from its config file and CQLCORO_* variables (cqlcoro::load_config);
// the flags are the service's own. It prints "listening on ADDRESS:PORT" once it takes requests
// (--listen with port 0 picks a free port).
#include "service.hpp"

#include <cqlcoro/config.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;

namespace {

struct options {
    std::string config;
    http_service::settings service;
    unsigned threads = 2;
    std::size_t seed_items = 0;
};

[[noreturn]] void usage(std::string_view why) {
    fmt::print(stderr,
               "http_service: {}\n"
               "usage: http_service [--config FILE] [--listen ADDRESS:PORT] [--threads N] [--seed-items N] [--grace SECONDS]\n",
               why);
    std::exit(2);
}

template <class T>
T number(std::string_view flag, std::string_view text, T min, T max) {
    T v{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max)
        usage(fmt::format("{} takes a number from {} to {}, not \"{}\"", flag, min, max, text));
    return v;
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc) usage(fmt::format("{} needs a value", flag));
        const std::string_view v = argv[++i];
        if (flag == "--config") {
            o.config = v;
        } else if (flag == "--listen") {
            const auto colon = v.rfind(':');
            if (colon == std::string_view::npos) usage("--listen takes ADDRESS:PORT, such as 127.0.0.1:8080");
            boost::system::error_code ec;
            const auto address = asio::ip::make_address(std::string(v.substr(0, colon)), ec);
            if (ec) usage(fmt::format("--listen: \"{}\" is not an IP address", v.substr(0, colon)));
            o.service.listen = {address, number<unsigned short>("--listen's port", v.substr(colon + 1), 0, 65535)};
        } else if (flag == "--threads") {
            o.threads = number<unsigned>(flag, v, 1, 256);
        } else if (flag == "--seed-items") {
            o.seed_items = number<std::size_t>(flag, v, 0, 100'000'000);
        } else if (flag == "--grace") {
            o.service.grace = std::chrono::seconds(number<int>(flag, v, 0, 3600));
        } else {
            usage(fmt::format("unknown flag {}", flag));
        }
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const options opt = parse(argc, argv);
    asio::io_context io(static_cast<int>(opt.threads));
    auto main_strand = asio::make_strand(io);
    // Installed before anything runs: a SIGTERM during start-up waits here and stops the server as
    // soon as it exists.
    asio::signal_set signals(main_strand, SIGINT, SIGTERM);
    int status = 0;

    auto start = [&]() -> asio::awaitable<void> {
        cqlcoro::config_source source;
        source.file = opt.config;  // empty: defaults and CQLCORO_* variables only
        cqlcoro::session_params params = cqlcoro::load_config(source);
        cqlcoro::session session = co_await cqlcoro::session::connect(io.get_executor(), params);
        std::exception_ptr failed;
        std::shared_ptr<http_service::server> srv;
        try {
            auto st = co_await http_service::prepare_schema(session);
            if (opt.seed_items) {
                co_await http_service::seed_items(session, st, opt.seed_items);
                fmt::print("http_service: {} items in http_service.items\n", opt.seed_items);
            }
            srv = std::make_shared<http_service::server>(io.get_executor(), session, std::move(st), opt.service);
            srv->listen();
        } catch (...) {
            failed = std::current_exception();
        }
        if (failed) {
            co_await session.close();  // the session's timers would keep io.run() going
            std::rethrow_exception(failed);
        }
        const auto ep = srv->local_endpoint();
        fmt::print("http_service: listening on {}:{}\n", ep.address().to_string(), ep.port());
        std::fflush(stdout);
        signals.async_wait([srv](boost::system::error_code ec, int sig) {
            if (ec) return;
            fmt::print("http_service: signal {}: draining\n", sig);
            std::fflush(stdout);
            srv->stop();
        });
        co_await asio::co_spawn(srv->executor(), srv->run(), asio::use_awaitable);
        signals.cancel();
        fmt::print("http_service: stopped\n");
    };
    asio::co_spawn(main_strand, start(), [&](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            fmt::print(stderr, "http_service: {}\n", x.what());
        }
        status = 1;
        signals.cancel();
    });

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < opt.threads; ++i) threads.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : threads) t.join();
    return status;
}
