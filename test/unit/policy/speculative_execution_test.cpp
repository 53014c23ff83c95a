// The latency histogram's accuracy and the speculative execution policies' delays.
#include <cqlcoro/speculative_execution.hpp>

#include <catch2/catch_test_macros.hpp>

#include <thread>
#include <vector>

using namespace cqlcoro;
using namespace std::chrono_literals;

TEST_CASE("latency histogram: buckets are exact below 16 us and within 1/16 above") {
    for (std::uint64_t us : {0ull, 1ull, 15ull, 16ull, 17ull, 100ull, 1000ull, 65'535ull, 1'000'000ull, 123'456'789ull}) {
        const auto i = latency_histogram::index_of(us);
        const auto upper = latency_histogram::upper_bound_of(i);
        INFO(us);
        CHECK(upper >= us);
        CHECK(static_cast<double>(upper - us) <= static_cast<double>(us) / 16.0);
        if (i > 0) CHECK(latency_histogram::upper_bound_of(i - 1) < us);  // the bucket below ends before it
    }
    CHECK(latency_histogram::index_of(~std::uint64_t{0}) == latency_histogram::bucket_count - 1);
}

TEST_CASE("latency histogram: percentiles of a known distribution") {
    latency_histogram h;
    CHECK(h.percentile(0.5) == 0us);
    for (int i = 1; i <= 1000; ++i) h.record(std::chrono::microseconds(i));
    CHECK(h.count() == 1000);
    auto near = [](std::chrono::microseconds got, double want) { return got.count() >= want && got.count() <= want * 1.07; };
    CHECK(near(h.percentile(0.5), 500));
    CHECK(near(h.percentile(0.95), 950));
    CHECK(near(h.percentile(0.99), 990));
    CHECK(near(h.percentile(1.0), 1000));
    h.reset();
    CHECK(h.count() == 0);
}

TEST_CASE("latency histogram: recording from several threads loses nothing", "[threads]") {
    latency_histogram h;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 100'000; ++i) h.record(std::chrono::microseconds(i % 5000));
        });
    for (auto& t : threads) t.join();
    CHECK(h.count() == 400'000);
    CHECK(h.percentile(1.0) >= 4999us);
}

TEST_CASE("speculative execution: none, constant, and adaptive with its fallback and floor") {
    CHECK_FALSE(no_speculative_execution().delay(1, nullptr));
    const constant_speculative_execution constant(20ms, 2);
    CHECK(constant.delay(1, nullptr) == 20ms);
    CHECK(constant.delay(2, nullptr) == 20ms);
    CHECK_FALSE(constant.delay(3, nullptr));

    const adaptive_speculative_execution adaptive({.percentile = 0.95, .floor = 2ms, .fallback = 50ms, .min_samples = 100});
    latency_histogram h;
    CHECK(adaptive.delay(1, nullptr) == 50ms);  // an untracked statement
    for (int i = 0; i < 99; ++i) h.record(10ms);
    CHECK(adaptive.delay(1, &h) == 50ms);       // not enough samples yet
    h.record(10ms);
    const auto d = adaptive.delay(1, &h);
    REQUIRE(d);
    CHECK(*d >= 10ms);
    CHECK(*d <= 11ms);
    CHECK_FALSE(adaptive.delay(2, &h));  // one speculative execution by default
    latency_histogram fast;
    for (int i = 0; i < 200; ++i) fast.record(100us);
    CHECK(adaptive.delay(1, &fast) == 2ms);  // the floor
}
