// The retry budget: a share of recent requests plus a floor, deposits that expire, no storm.
#include <cqlcoro/retry_budget.hpp>

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using namespace std::chrono_literals;

namespace {
const retry_budget::clock::time_point t0 = retry_budget::clock::time_point{} + 1000s;
}

TEST_CASE("retry budget: without requests, the floor of min_per_second over the window") {
    retry_budget b({.ratio = 0.2, .min_per_second = 10, .ttl = 10s});
    CHECK(b.available(t0) == 100);
    int allowed = 0;
    while (b.try_withdraw(t0)) ++allowed;
    CHECK(allowed == 100);
    CHECK(b.denials() == 1);
    CHECK(b.withdrawals() == 100);
    // Withdrawals expire with the window: ten seconds later the floor is back.
    CHECK(b.available(t0 + 10s) == 100);
}

TEST_CASE("retry budget: 20% of the requests of the window on top of the floor") {
    retry_budget b({.ratio = 0.2, .min_per_second = 0, .ttl = 10s});
    CHECK_FALSE(b.try_withdraw(t0));
    for (int i = 0; i < 1000; ++i) b.deposit(t0);
    CHECK(b.available(t0) == 200);
    int allowed = 0;
    while (b.try_withdraw(t0 + 1s)) ++allowed;
    CHECK(allowed == 200);
    // The deposits of t0 expire 10 s on; so do the withdrawals made at t0 + 1 s, a second later.
    CHECK(b.available(t0 + 10s) == 0);
    CHECK(b.available(t0 + 11s) == 0);
}

TEST_CASE("retry budget: under 100% failures the retries stay within ratio plus floor (no storm)") {
    retry_budget b({.ratio = 0.2, .min_per_second = 10, .ttl = 10s});
    std::int64_t requests = 0, retries = 0;
    for (int second = 0; second < 60; ++second) {
        const auto now = t0 + std::chrono::seconds(second);
        for (int i = 0; i < 1000; ++i) {  // 1000 requests a second, each failing, each wanting 3 retries
            b.deposit(now);
            ++requests;
            for (int r = 0; r < 3; ++r) retries += b.try_withdraw(now) ? 1 : 0;
        }
    }
    // 20% of 60,000 requests and 10 a second: at most 12,000 + 600, far below the 180,000 asked for.
    CHECK(retries <= requests / 5 + 600 + 100);
    CHECK(retries >= requests / 5);
}

TEST_CASE("retry budget: ratio 0 allows only the floor; a one-second window works") {
    retry_budget b({.ratio = 0.0, .min_per_second = 2, .ttl = 1s});
    for (int i = 0; i < 100; ++i) b.deposit(t0);
    CHECK(b.available(t0) == 2);
    CHECK(b.try_withdraw(t0));
    CHECK(b.try_withdraw(t0));
    CHECK_FALSE(b.try_withdraw(t0));
    CHECK(b.try_withdraw(t0 + 1s));
}
