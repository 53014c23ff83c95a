// The admission gate without I/O: permits, the bounded queue, the classes' weights, withdrawal, the rate
// limit, closing, and many threads entering and leaving at once.
#include "policy/admission.hpp"

#include <catch2/catch_test_macros.hpp>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

using cqlcoro::admission_options;
using cqlcoro::request_class;
using cqlcoro::detail::admission;
using verdict = admission::verdict;
using namespace std::chrono_literals;

namespace {

struct waiter final : admission::waiter {
    std::atomic<int> told{0};
    std::string name;
    std::vector<std::string>* order = nullptr;
    void admitted() override {
        if (order) order->push_back(name);
        ++told;  // last: the thread that waits on it may end this object as soon as it sees it
    }
};

admission_options limits(std::size_t running, std::size_t queue) {
    admission_options o;
    o.max_concurrent = running;
    o.max_queue = queue;
    return o;
}

}  // namespace

TEST_CASE("admission: permits up to the limit, then a queue; a permit given back goes to the first waiter") {
    admission a(limits(2, 10));
    waiter w1, w2, w3, w4;
    CHECK(a.enter(w1, request_class::interactive) == verdict::admitted);
    CHECK(a.enter(w2, request_class::interactive) == verdict::admitted);
    CHECK(a.enter(w3, request_class::interactive) == verdict::queued);
    CHECK(a.enter(w4, request_class::interactive) == verdict::queued);
    CHECK(a.metrics().running == 2);
    CHECK(a.metrics().waiting == 2);
    CHECK(w3.told == 0);
    a.leave();
    CHECK(w3.told == 1);  // first come, first served
    CHECK(w4.told == 0);
    CHECK(a.metrics().running == 2);  // handed over, not given back
    CHECK(a.metrics().waiting == 1);
    waiter w5;
    CHECK(a.enter(w5, request_class::interactive) == verdict::queued);  // no overtaking the one waiting
    a.leave();
    a.leave();
    CHECK(w4.told == 1);
    CHECK(w5.told == 1);
    a.leave();
    a.leave();
    CHECK(a.metrics().running == 0);
    CHECK(a.metrics().waited == 3);
    CHECK(w1.told == 0);  // admitted at once: told by the verdict, not the callback
}

TEST_CASE("admission: a full queue refuses at once") {
    waiter w[4];  // declared first: the queue lets go of them before they go
    admission a(limits(1, 2));
    CHECK(a.enter(w[0], request_class::interactive) == verdict::admitted);
    CHECK(a.enter(w[1], request_class::background) == verdict::queued);
    CHECK(a.enter(w[2], request_class::interactive) == verdict::queued);
    CHECK(a.enter(w[3], request_class::interactive) == verdict::queue_full);
    CHECK(a.metrics().refused_queue_full == 1);
    CHECK(a.metrics().waiting == 2);
}

TEST_CASE("admission: a withdrawn waiter is never admitted; one already admitted cannot withdraw") {
    admission a(limits(1, 10));
    waiter holder, gone, stays;
    a.enter(holder, request_class::interactive);
    a.enter(gone, request_class::interactive);
    a.enter(stays, request_class::interactive);
    CHECK(a.withdraw(gone));
    CHECK_FALSE(a.withdraw(gone));  // once only
    CHECK(a.metrics().waiting == 1);
    a.leave();
    CHECK(gone.told == 0);
    CHECK(stays.told == 1);
    CHECK_FALSE(a.withdraw(stays));  // its permit is on its way: it must take it and give it back
    a.leave();
    CHECK(a.metrics().running == 0);
}

TEST_CASE("admission: with both classes waiting, interactive ones start by weight and background ones are not starved") {
    admission_options o = limits(1, 100);
    o.interactive_weight = 4;
    o.background_weight = 1;
    admission a(o);
    waiter holder;
    a.enter(holder, request_class::interactive);
    std::vector<std::string> order;
    std::vector<waiter> in(10), bg(4);
    for (std::size_t i = 0; i < bg.size(); ++i) {
        bg[i].name = "b";
        bg[i].order = &order;
        a.enter(bg[i], request_class::background);
    }
    for (std::size_t i = 0; i < in.size(); ++i) {
        in[i].name = "i";
        in[i].order = &order;
        a.enter(in[i], request_class::interactive);
    }
    for (int i = 0; i < 14; ++i) a.leave();
    std::string seq;
    for (const auto& s : order) seq += s;
    // A smooth 4:1 while both wait ("iibii" over and over), then the rest of the background ones.
    CHECK(seq == "iibiiiibiiiibb");
}

TEST_CASE("admission: the rate limit lets a burst through, then spaces starts, and refuses what would pass its deadline") {
    admission_options o;
    o.max_per_second = 10;  // one per 100 ms
    o.burst = 200ms;
    admission a(o);
    const auto t0 = admission::clock::time_point{} + 1h;
    const auto far = t0 + 1h;
    CHECK(a.reserve(t0, far) == t0);
    CHECK(a.reserve(t0, far) == t0);
    CHECK(a.reserve(t0, far) == t0);  // a burst of 200 ms worth, and the one at its start
    CHECK(a.reserve(t0, far) == t0 + 100ms);
    CHECK_FALSE(a.reserve(t0, t0 + 150ms).has_value());  // would start at 200 ms: refused, nothing reserved
    CHECK(a.metrics().refused_rate == 1);
    CHECK(a.reserve(t0, far) == t0 + 200ms);
    // Idle for a while: the burst is there again, not more.
    const auto later = t0 + 10s;
    for (int i = 0; i < 3; ++i) CHECK(a.reserve(later, far) == later);
    CHECK(a.reserve(later, far) == later + 100ms);

    admission unlimited{admission_options{}};
    CHECK(unlimited.reserve(t0, t0) == t0);
    CHECK_FALSE(unlimited.rate_limited());
}

TEST_CASE("admission: closing admits every waiter, and every later request") {
    admission a(limits(1, 10));
    waiter holder, w1, w2, w3;
    a.enter(holder, request_class::interactive);
    a.enter(w1, request_class::interactive);
    a.enter(w2, request_class::background);
    a.close();
    CHECK(w1.told == 1);
    CHECK(w2.told == 1);
    CHECK(a.enter(w3, request_class::interactive) == verdict::admitted);
    CHECK(a.metrics().running == 4);
    for (int i = 0; i < 4; ++i) a.leave();
    CHECK(a.metrics().running == 0);
}

TEST_CASE("admission: many threads entering, withdrawing and leaving never exceed the limit nor lose a permit", "[threads]") {
    constexpr std::size_t limit = 3;
    admission a(limits(limit, 1'000'000));
    std::atomic<std::size_t> inside{0}, most{0}, refused{0};  // (Catch2's assertions are for the main thread)
    auto run = [&](unsigned seed) {
        std::mt19937 rng(seed);
        for (int i = 0; i < 20000; ++i) {
            waiter w;
            auto v = a.enter(w, rng() % 2 ? request_class::interactive : request_class::background);
            if (v == verdict::queue_full) {
                ++refused;
                continue;
            }
            if (v == verdict::queued) {
                if (rng() % 4 == 0 && a.withdraw(w)) continue;  // gave up in time: holds nothing
                while (w.told.load() == 0) std::this_thread::yield();
            }
            const auto now = ++inside;
            auto seen = most.load();
            while (now > seen && !most.compare_exchange_weak(seen, now)) {
            }
            --inside;
            a.leave();
        }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 8; ++t) threads.emplace_back(run, t);
    for (auto& t : threads) t.join();
    CHECK(refused.load() == 0);
    CHECK(most.load() <= limit);
    CHECK(a.metrics().running == 0);
    CHECK(a.metrics().waiting == 0);
}

TEST_CASE("admission: a pause of the nodes does not make a deep queue refuse what it will serve in time") {
    // 2048 running, 2048 waiting, permits freed every 50 us (20,000 a second) for 2 s, then a 1 s
    // pause, then the answers resume. A newcomer behind 2048 waiters needs about 0.1 s at the old rate, or 0.3 s at
    // what a 1 s pause leaves of it: well inside its 12 s. (An average of the last 8 intervals took the
    // pause for the rate, about 125 ms per permit, and refused it: 2049 x 125 ms is 256 s.)
    auto o = limits(2048, 16384);
    admission a(o);
    const auto t0 = admission::clock::now();
    const auto far = t0 + 1h;
    std::vector<waiter> running(2048), queued(4096);
    for (auto& x : running) REQUIRE(a.enter(x, request_class::interactive, t0, far) == verdict::admitted);
    for (std::size_t i = 0; i < 2048; ++i) REQUIRE(a.enter(queued[i], request_class::interactive, t0, far) == verdict::queued);
    auto t = t0;
    std::size_t next = 2048;
    // Each freed permit goes to the head of the queue, and a newcomer takes the place at the back. The
    // queue holds the last 2048 to enter, so the waiter entered 4096 places ago is free again.
    bool all_queued = true;
    auto serve = [&](std::chrono::nanoseconds gap) {
        a.leave(t += gap);
        all_queued = a.enter(queued[next++ % queued.size()], request_class::interactive, t, far) == verdict::queued && all_queued;
    };
    for (int i = 0; i < 40000; ++i) serve(50us);
    t += 1s;  // the pause: nothing freed
    for (int i = 0; i < 8; ++i) serve(50us);  // the answers resume
    CHECK(all_queued);
    CHECK(a.metrics().waiting == 2048);
    waiter newcomer;
    admission::clock::duration expected{};
    CHECK(a.enter(newcomer, request_class::interactive, t, t + 12s, &expected) == verdict::queued);
    CHECK(expected > 50ms);
    CHECK(expected < 1s);
    CHECK(a.metrics().refused_deadline == 0);
    a.withdraw(newcomer);

    // A collapse is another matter: after 6 s of a permit every 100 ms the rate has forgotten the fast
    // spell (e^-6 of it is left), and 2049 ahead cannot be served in 12 s.
    for (int i = 0; i < 60; ++i) serve(100ms);
    waiter late;
    CHECK(a.enter(late, request_class::interactive, t, t + 12s, &expected) == verdict::would_miss_deadline);
    CHECK(expected > 12s);
    CHECK(a.metrics().refused_deadline == 1);
    for (auto& x : queued) a.withdraw(x);
}

TEST_CASE("admission: a request the queue would hold past its deadline is refused up front") {
    auto o = limits(1, 100);
    admission a(o);
    const auto t0 = admission::clock::now();
    const auto far = t0 + 1h;
    waiter holder;
    std::vector<waiter> w(20);
    REQUIRE(a.enter(holder, request_class::interactive, t0, far) == verdict::admitted);
    for (auto& x : w) REQUIRE(a.enter(x, request_class::interactive, t0, far) == verdict::queued);
    // Fewer than 8 handoffs seen: no estimate yet, so even a hopeless deadline queues.
    auto t = t0;
    for (int i = 0; i < 5; ++i) a.leave(t += 10ms);
    waiter early;
    CHECK(a.enter(early, request_class::interactive, t, t + 1ms) == verdict::queued);
    // A permit every 10 ms while requests wait: 11 ahead (10 + `early`), about 120 ms for a newcomer.
    for (int i = 0; i < 5; ++i) a.leave(t += 10ms);
    waiter hopeless, patient;
    admission::clock::duration expected{};
    CHECK(a.enter(hopeless, request_class::interactive, t, t + 100ms, &expected) == verdict::would_miss_deadline);
    CHECK(expected >= 110ms);
    CHECK(expected <= 130ms);
    CHECK(a.metrics().refused_deadline == 1);
    CHECK(a.enter(patient, request_class::interactive, t, t + 300ms, &expected) == verdict::queued);
    // An idle gap is no rate: once the queue empties, the next busy spell starts its average afresh
    // (the old one stays until new handoffs replace it).
    a.withdraw(patient);
    a.withdraw(early);
    for (auto& x : w) a.withdraw(x);
    CHECK(a.metrics().waiting == 0);
    // Off: it waits.
    o.refuse_unmeetable = false;
    admission off(o);
    waiter h2;
    std::vector<waiter> w2(20);
    REQUIRE(off.enter(h2, request_class::interactive, t0, far) == verdict::admitted);
    for (auto& x : w2) REQUIRE(off.enter(x, request_class::interactive, t0, far) == verdict::queued);
    t = t0;
    for (int i = 0; i < 12; ++i) off.leave(t += 10ms);
    waiter late;
    CHECK(off.enter(late, request_class::interactive, t, t + 1ms) == verdict::queued);
    off.withdraw(late);
    for (auto& x : w2) off.withdraw(x);
}
