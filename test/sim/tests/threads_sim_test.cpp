// One session shared by threads, as a multi-threaded server uses it: four threads run the io_context,
// four others start requests, read streams page by page and cancel, and the session closes while they
// are at it. Built with the other [threads] tests under ThreadSanitizer by the test command.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/completion.hpp>
#include <cqlcoro/session.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <catch2/catch_test_macros.hpp>

#include <fmt/format.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

using namespace cqlcoro;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t port = 19182;
constexpr int keys = 50;

std::string read_of(int k) { return fmt::format("SELECT v FROM ks.kv WHERE k = {}", k); }

void prime(sim::cluster& c) {
    // Each key's answer is the key itself: a request that got another request's answer would show.
    for (int k = 0; k < keys; ++k) c.prime({.query = read_of(k)}, sim::rows({sim::column("v", cql_type::of(type_kind::int_))}).row(k));
    sim::prime_then slow{sim::rows({sim::column("v", cql_type::of(type_kind::int_))}).row(-1)};
    slow.delay = 200ms;
    c.prime({.query = "SELECT v FROM ks.slow"}, slow);
    c.prime({.query = "SELECT id, name FROM ks.big"}, cqlcoro::test::id_name_table(120));
}

session_params params_for(const sim::cluster& c) {
    auto p = cqlcoro::test::sim_session_params(c);
    p.contact_points.clear();
    for (std::size_t i = 1; i <= c.size(); ++i) p.contact_points.push_back(c.address(i));
    p.request_timeout = 30s;
    return p;
}

// Runs an io_context on `n` threads until stopped (or its work runs out once released).
struct io_threads {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::vector<std::thread> threads;
    explicit io_threads(int n) {
        for (int i = 0; i < n; ++i) threads.emplace_back([this] { io.run(); });
    }
    ~io_threads() {
        work.reset();
        for (auto& t : threads) t.join();
    }
};

// `n` threads, each calling fn(id) for its `per_thread` ids (thread t: t * per_thread ...).
template <class F>
std::vector<std::thread> start_threads(int n, int per_thread, F fn) {
    std::vector<std::thread> threads;
    for (int t = 0; t < n; ++t)
        threads.emplace_back([=] {
            for (int i = 0; i < per_thread; ++i) fn(t * per_thread + i);
        });
    return threads;
}

// Three primed nodes, and a session on an io_context that four threads run.
struct shared_session {
    sim::cluster c{{.nodes = 3, .port = port, .record_requests = false}};
    io_threads runner{4};
    session s;
    shared_session() {
        prime(c);
        s = asio::co_spawn(runner.io, session::connect(runner.io.get_executor(), params_for(c)), asio::use_future).get();
    }
};

}  // namespace

TEST_CASE("threads: foreign threads execute, stream and cancel on a four-thread io_context; each request completes once with its own answer",
          "[threads]") {
    shared_session shared;
    auto& s = shared.s;

    constexpr int per_thread = 600;
    constexpr int senders = 4;
    struct tally {
        std::atomic<int> completions{0};
        std::atomic<int> value{-2};
        std::atomic<bool> failed{false};
    };
    std::vector<tally> ledger(senders * per_thread);
    std::atomic<int> done{0}, cancelled{0}, streamed_rows{0}, streams{0};
    std::promise<void> all;
    auto threads = start_threads(senders, per_thread, [&](int id) {
        const int i = id % per_thread;
        auto finish = [&, id](error_code ec, int v) {
            auto& e = ledger[static_cast<std::size_t>(id)];
            e.value.store(v);
            e.failed.store(static_cast<bool>(ec));
            e.completions.fetch_add(1);
            if (done.fetch_add(1) + 1 == senders * per_thread) all.set_value();
        };
        if (i % 10 == 9) {
            // A slow read with a 5 ms deadline: cancelled by a timer on one of the io threads,
            // while the answer may be arriving on another.
            s.execute(statement("SELECT v FROM ks.slow"), cancel_after(5ms, [&, finish](error_code ec, result r) {
                if (ec) cancelled.fetch_add(1);
                finish(ec, ec ? -1 : r.one().get<std::int32_t>(0));
            }));
        } else if (i % 50 == 25) {
            // A stream read to its end from this thread, page by page (20 rows a page).
            auto p = s.stream(statement("SELECT id, name FROM ks.big").page_size(20));
            int rows = 0;
            error_code ec;
            try {
                while (auto page = p.next_page(asio::use_future).get()) rows += static_cast<int>(page.rows().size());
            } catch (const cqlcoro::error& e) {
                ec = e.boost_code();
            }
            streamed_rows.fetch_add(rows);
            streams.fetch_add(1);
            finish(ec, rows);
        } else {
            const int k = id % keys;
            s.execute(statement(read_of(k)), [finish](error_code ec, result r) { finish(ec, ec ? -1 : r.one().get<std::int32_t>(0)); });
        }
    });
    for (auto& t : threads) t.join();
    REQUIRE(all.get_future().wait_for(120s) == std::future_status::ready);
    int wrong = 0, failed = 0;
    for (int id = 0; id < senders * per_thread; ++id) {
        const auto& e = ledger[static_cast<std::size_t>(id)];
        CHECK(e.completions.load() == 1);
        const int i = id % per_thread;
        if (i % 10 == 9) continue;  // the slow reads: counted in `cancelled`
        failed += e.failed.load();
        const int expected = i % 50 == 25 ? 120 : id % keys;
        wrong += !e.failed.load() && e.value.load() != expected;
    }
    CHECK(failed == 0);
    CHECK(wrong == 0);
    CHECK(cancelled.load() == senders * per_thread / 10);  // 200 ms answers against 5 ms deadlines
    CHECK(streamed_rows.load() == streams.load() * 120);
    asio::co_spawn(shared.runner.io, s.close(), asio::use_future).get();
}

TEST_CASE("threads: requests started on foreign threads while the session closes each complete exactly once", "[threads]") {
    shared_session shared;
    auto& s = shared.s;
    constexpr int per_thread = 2000;
    constexpr int senders = 3;
    std::vector<std::atomic<int>> completions(senders * per_thread);
    std::atomic<int> done{0}, succeeded{0}, closed{0}, other{0};
    std::atomic<int> started{0};
    std::promise<void> all;
    auto threads = start_threads(senders, per_thread, [&](int id) {
        s.execute(statement(read_of(id % keys)), [&, id](error_code ec, result r) {
            if (!ec && r.one().get<std::int32_t>(0) == id % keys) succeeded.fetch_add(1);
            else if (ec == client_errc::session_closed) closed.fetch_add(1);
            else if (ec) other.fetch_add(1);
            completions[static_cast<std::size_t>(id)].fetch_add(1);
            if (done.fetch_add(1) + 1 == senders * per_thread) all.set_value();
        });
        started.fetch_add(1);
    });
    // Close once a third of the requests are started: the rest race the close.
    while (started.load() < senders * per_thread / 3) std::this_thread::yield();
    auto closing = asio::co_spawn(shared.runner.io, s.close(), asio::use_future);
    for (auto& t : threads) t.join();
    REQUIRE(all.get_future().wait_for(120s) == std::future_status::ready);
    closing.get();
    for (const auto& n : completions) CHECK(n.load() == 1);
    INFO("succeeded " << succeeded.load() << ", session_closed " << closed.load() << ", other " << other.load());
    CHECK(succeeded.load() + closed.load() + other.load() == senders * per_thread);
    CHECK(closed.load() > 0);
    CHECK(succeeded.load() > 0);
}
