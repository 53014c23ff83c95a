// The session's one hedge timer: entries come due in time order, a cancelled entry never does, an
// earlier entry moves the timer, and under threads every arm ends exactly once (cancelled, or due).
#include "policy/hedge_timer.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <catch2/catch_test_macros.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace cqlcoro::detail;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct probe final : hedge_timer::entry {
    std::vector<int>* order = nullptr;
    int id = 0;
    std::atomic<int> calls{0};
    void due() override {
        if (order) order->push_back(id);
        calls.fetch_add(1);
    }
};

}  // namespace

TEST_CASE("hedge timer: entries come due in time order; a cancelled one never does") {
    asio::io_context io;
    hedge_timer t(io.get_executor());
    std::vector<int> order;
    probe a, b, c, d;
    for (auto* p : {&a, &b, &c, &d}) p->order = &order;
    a.id = 1, b.id = 2, c.id = 3, d.id = 4;
    const auto now = hedge_timer::clock::now();
    t.arm(a, now + 30ms);
    t.arm(b, now + 10ms);  // earlier than the head: the timer moves to it
    t.arm(c, now + 20ms);
    t.arm(d, now + 15ms);
    CHECK(t.waiting() == 4);
    CHECK(t.cancel(d));
    CHECK_FALSE(t.cancel(d));  // once only
    CHECK(t.waiting() == 3);
    while (order.size() < 3) REQUIRE(io.run_one() == 1);
    CHECK(order == std::vector<int>{2, 3, 1});
    CHECK(d.calls == 0);
    CHECK_FALSE(t.cancel(a));  // already due
    CHECK(t.waiting() == 0);
    // An entry can be armed again once it came due, and the timer, idle, is set again.
    t.arm(a, hedge_timer::clock::now() + 1ms);
    io.restart();  // it had run out of work
    while (a.calls < 2) REQUIRE(io.run_one() == 1);
    CHECK(order.back() == 1);
}

TEST_CASE("hedge timer: cancelling the head leaves the others due on time") {
    asio::io_context io;
    hedge_timer t(io.get_executor());
    probe a, b;
    const auto now = hedge_timer::clock::now();
    t.arm(a, now + 5ms);
    t.arm(b, now + 10ms);
    CHECK(t.cancel(a));  // the timer still fires at 5 ms, finds b not due, and waits for it
    while (b.calls == 0) REQUIRE(io.run_one() == 1);
    CHECK(hedge_timer::clock::now() >= now + 10ms);
    CHECK(a.calls == 0);
}

TEST_CASE("hedge timer: destroyed with entries waiting, it calls none of them") {
    asio::io_context io;
    probe a;
    {
        hedge_timer t(io.get_executor());
        t.arm(a, hedge_timer::clock::now());
    }
    io.run();  // the timer's wait ends, aborted: nothing is called
    CHECK(a.calls == 0);
}

TEST_CASE("hedge timer: under threads, every arm ends exactly once, cancelled or due", "[threads]") {
    asio::io_context io;
    hedge_timer t(io.get_executor());
    auto work = asio::make_work_guard(io);
    std::vector<std::thread> runners;
    for (int i = 0; i < 2; ++i) runners.emplace_back([&] { io.run(); });
    constexpr int per_thread = 20000;
    std::vector<probe> probes(4 * per_thread);
    std::atomic<int> cancelled{0};
    std::vector<std::thread> armers;
    for (int k = 0; k < 4; ++k)
        armers.emplace_back([&, k] {
            for (int i = 0; i < per_thread; ++i) {
                auto& p = probes[static_cast<std::size_t>(k * per_thread + i)];
                t.arm(p, hedge_timer::clock::now() + std::chrono::microseconds(i % 7 * 50));
                if (i % 2 && t.cancel(p)) cancelled.fetch_add(1);
            }
        });
    for (auto& a : armers) a.join();
    auto settled = [&] {
        std::size_t n = static_cast<std::size_t>(cancelled.load());
        for (auto& p : probes) n += static_cast<std::size_t>(p.calls.load());
        return n;
    };
    // What was not cancelled comes due within a few hundred microseconds; a lost entry would leave
    // this waiting until the bound, and fail below.
    const auto bound = std::chrono::steady_clock::now() + 30s;
    while (settled() < probes.size() && std::chrono::steady_clock::now() < bound) std::this_thread::yield();
    work.reset();
    for (auto& r : runners) r.join();
    CHECK(t.waiting() == 0);
    CHECK(cancelled.load() > 0);
    std::size_t twice = 0;
    for (auto& p : probes) twice += p.calls.load() > 1;
    CHECK(twice == 0);
    CHECK(settled() == probes.size());
}
