// The cqlcoro client of the driver comparison (bench/peers/README.md), written as a user writes it:
// one io_context, `concurrency` coroutines each awaiting its next request, no exceptions on the hot path.
//
//   peer_cqlcoro --host 127.0.0.1 --port 9042 --dc datacenter1 --workload read|write|local
//                --concurrency 256 --warmup 2 --duration 5 [--rows 1000] [--threads 1] [--protocol 3|4|5]
//   peer_cqlcoro --host 127.0.0.1 --port 9042 --setup [--rows 1000]   (creates and fills cqlcoro_peers.kv)
//
// It prints one JSON line: requests and errors completed inside the measured window, its length, and
// the process's user and system CPU seconds over it (getrusage), as every peer client does.
#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9042;
    std::string dc;
    std::string workload = "read";
    std::size_t concurrency = 1;
    double warmup = 2;
    double duration = 5;
    int rows = 1000;
    unsigned threads = 1;
    unsigned protocol = 0;  // 0: the highest both sides speak
    bool setup = false;
};

const std::string value(100, 'v');

struct counters {
    std::atomic<std::uint64_t> ok{0}, errors{0};
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> active{0};
    std::string first_error;
    std::atomic_flag error_taken = ATOMIC_FLAG_INIT;
};

double cpu_now() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
}

asio::awaitable<void> worker(cqlcoro::session& session, const cqlcoro::prepared_statement* prepared, const options& o,
                             counters& c, std::uint32_t seed, asio::steady_timer& done) {
    std::uint32_t x = seed * 2654435761u + 1;
    while (!c.stop.load(std::memory_order_relaxed)) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        const int k = static_cast<int>(x % static_cast<std::uint32_t>(o.rows));
        cqlcoro::error_code ec;
        if (o.workload == "local") {
            auto [e, r] = co_await session.execute(cqlcoro::statement("SELECT release_version FROM system.local"),
                                                   asio::as_tuple(asio::use_awaitable));
            ec = e;
        } else if (o.workload == "read") {
            // A read takes its one value out of the row, as a user does.
            auto [e, r] = co_await session.execute(prepared->bind(k), asio::as_tuple(asio::use_awaitable));
            ec = e;
            if (!ec)
                for (auto row : r.rows())
                    if (row.get<std::string_view>(0).size() != value.size()) ec = cqlcoro::make_error_code(cqlcoro::type_errc::bad_cell_size);
        } else {
            auto [e, r] = co_await session.execute(prepared->bind(k, std::string_view(value)), asio::as_tuple(asio::use_awaitable));
            ec = e;
        }
        if (!ec) {
            c.ok.fetch_add(1, std::memory_order_relaxed);
        } else {
            c.errors.fetch_add(1, std::memory_order_relaxed);
            if (!c.error_taken.test_and_set()) {
                c.first_error = ec.message();
                for (auto& ch : c.first_error)
                    if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) ch = '\'';
            }
        }
    }
    if (c.active.fetch_sub(1) == 1) done.cancel();
}

asio::awaitable<void> run(asio::any_io_executor ex, options o, int& status) {
    cqlcoro::session_params p;
    p.contact_points = {o.host};
    p.port = o.port;
    p.local_datacenter = o.dc;
    p.default_consistency = cqlcoro::consistency::local_one;
    p.protocol_version = static_cast<std::uint8_t>(o.protocol);
    auto session = co_await cqlcoro::session::connect(ex, p);
    if (o.setup) {
        co_await session.execute(cqlcoro::statement(
            "CREATE KEYSPACE IF NOT EXISTS cqlcoro_peers WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"));
        co_await session.execute(cqlcoro::statement("CREATE TABLE IF NOT EXISTS cqlcoro_peers.kv (k int PRIMARY KEY, v text)"));
        auto insert = co_await session.prepare("INSERT INTO cqlcoro_peers.kv (k, v) VALUES (?, ?)");
        std::vector<cqlcoro::bound_statement> all;
        for (int k = 0; k < o.rows; ++k) all.push_back(insert.bind(k, std::string_view(value)).idempotent(true));
        auto filled = co_await session.execute_many(std::move(all));
        if (!filled.ok()) throw std::runtime_error(fmt::format("{} of {} inserts failed", filled.failed, o.rows));
        fmt::print("{{\"setup\": {}}}\n", o.rows);
        co_await session.close();
        co_return;
    }
    std::optional<cqlcoro::prepared_statement> prepared;
    if (o.workload == "read") prepared = co_await session.prepare("SELECT v FROM cqlcoro_peers.kv WHERE k = ?");
    if (o.workload == "write") prepared = co_await session.prepare("INSERT INTO cqlcoro_peers.kv (k, v) VALUES (?, ?)");

    counters c;
    asio::steady_timer done(ex, asio::steady_timer::time_point::max());
    c.active = o.concurrency;
    for (std::size_t i = 0; i < o.concurrency; ++i)
        asio::co_spawn(ex, worker(session, prepared ? &*prepared : nullptr, o, c, static_cast<std::uint32_t>(i + 1), done), asio::detached);

    asio::steady_timer t(ex);
    t.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(o.warmup)));
    co_await t.async_wait(asio::use_awaitable);
    const auto ok0 = c.ok.load(), err0 = c.errors.load();
    const auto cpu0 = cpu_now();
    const auto t0 = std::chrono::steady_clock::now();
    t.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(o.duration)));
    co_await t.async_wait(asio::use_awaitable);
    const auto ok1 = c.ok.load(), err1 = c.errors.load();
    const auto cpu1 = cpu_now();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    c.stop = true;
    auto [ignored] = co_await done.async_wait(asio::as_tuple(asio::use_awaitable));  // the last worker cancels it
    (void)ignored;
    fmt::print("{{\"driver\": \"cqlcoro\", \"version\": \"{}\", \"workload\": \"{}\", \"concurrency\": {}, \"requests\": {}, "
               "\"errors\": {}, \"seconds\": {:.4f}, \"cpu_seconds\": {:.4f}, \"first_error\": \"{}\"}}\n",
               CQLCORO_PEER_VERSION, o.workload, o.concurrency, ok1 - ok0, err1 - err0, seconds, cpu1 - cpu0, c.first_error);
    co_await session.close();
    if (ok1 == ok0) status = 1;
}

[[noreturn]] void usage(const std::string& why) {
    fmt::print(stderr, "peer_cqlcoro: {}\nsee the comment at the top of bench/peers/cqlcoro/peer.cpp\n", why);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        try {
            if (a == "--host") o.host = next();
            else if (a == "--port") o.port = static_cast<std::uint16_t>(std::stoul(next()));
            else if (a == "--dc") o.dc = next();
            else if (a == "--workload") o.workload = next();
            else if (a == "--concurrency") o.concurrency = std::stoul(next());
            else if (a == "--warmup") o.warmup = std::stod(next());
            else if (a == "--duration") o.duration = std::stod(next());
            else if (a == "--rows") o.rows = std::stoi(next());
            else if (a == "--threads") o.threads = static_cast<unsigned>(std::stoul(next()));
            else if (a == "--protocol") o.protocol = static_cast<unsigned>(std::stoul(next()));
            else if (a == "--setup") o.setup = true;
            else usage("unknown option " + a);
        } catch (const std::logic_error&) {
            usage("bad value for " + a);
        }
    }
    if (o.workload != "read" && o.workload != "write" && o.workload != "local") usage("--workload is read, write or local");
    if (o.concurrency == 0 || o.rows <= 0 || o.threads == 0) usage("--concurrency, --rows and --threads must be positive");
    asio::io_context io(static_cast<int>(o.threads));
    int status = 0;
    asio::co_spawn(io, run(io.get_executor(), o, status), [&](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            fmt::print(stderr, "peer_cqlcoro: {}\n", x.what());
            status = 1;
        }
    });
    std::vector<std::thread> extra;
    for (unsigned i = 1; i < o.threads; ++i) extra.emplace_back([&] { io.run(); });
    io.run();
    for (auto& t : extra) t.join();
    return status;
}
