#include "connection/stream_ids.hpp"

#include <catch2/catch_test_macros.hpp>

#include <random>
#include <set>
#include <vector>

using cqlcoro::connection::stream_ids;
using arrival = stream_ids::arrival;

TEST_CASE("stream ids: all 32768 ids are handed out once each, lowest first, then none") {
    stream_ids ids;
    for (int i = 0; i < 32768; ++i) {
        auto id = ids.acquire();
        REQUIRE(id.has_value());
        REQUIRE(*id == i);
    }
    CHECK_FALSE(ids.acquire().has_value());
    CHECK(ids.in_flight() == 32768);
    CHECK(ids.available() == 0);
    CHECK(ids.on_response(12345) == arrival::active);
    CHECK(ids.acquire() == 12345);  // the freed id is the lowest free one
}

TEST_CASE("stream ids: an orphaned id is freed only when its late response arrives") {
    stream_ids ids(4);
    auto a = *ids.acquire();
    auto b = *ids.acquire();
    ids.orphan(a);  // written, then timed out
    CHECK(ids.orphans() == 1);
    CHECK(ids.in_flight() == 1);
    CHECK(ids.is_orphan(a));
    // The orphan is not reused while its response is outstanding.
    auto c = *ids.acquire();
    auto d = *ids.acquire();
    CHECK(c != a);
    CHECK(d != a);
    CHECK_FALSE(ids.acquire().has_value());
    // Its late response is recognised as such, never as another request's.
    CHECK(ids.on_response(a) == arrival::orphan);
    CHECK(ids.orphans() == 0);
    CHECK(ids.acquire() == a);
    CHECK(ids.on_response(b) == arrival::active);
}

TEST_CASE("stream ids: a request never written gives its id back at once; stray responses are unexpected") {
    stream_ids ids(8);
    auto a = *ids.acquire();
    ids.release(a);
    CHECK(ids.in_flight() == 0);
    CHECK(ids.acquire() == a);
    CHECK(ids.on_response(5) == arrival::unexpected);   // nothing in flight on 5
    CHECK(ids.on_response(-1) == arrival::unexpected);  // events are not requests
    CHECK(ids.on_response(100) == arrival::unexpected); // beyond capacity
    ids.release(a);
    ids.release(a);  // twice: harmless
    CHECK(ids.available() == 8);
}

TEST_CASE("stream ids: a million random operations agree with a simple model") {
    stream_ids ids;
    std::set<int> free_ids, active, orphans;
    for (int i = 0; i < 32768; ++i) free_ids.insert(i);
    std::mt19937 rng(42);
    for (int step = 0; step < 1'000'000; ++step) {
        switch (rng() % 4) {
        case 0:
        case 1: {
            auto id = ids.acquire();
            if (free_ids.empty()) {
                REQUIRE_FALSE(id.has_value());
            } else {
                REQUIRE(id == *free_ids.begin());
                free_ids.erase(free_ids.begin());
                active.insert(*id);
            }
            break;
        }
        case 2:
            if (!active.empty()) {
                auto it = active.lower_bound(static_cast<int>(rng() % 32768));  // a random element, in log time
                if (it == active.end()) it = active.begin();
                const auto id = static_cast<std::int16_t>(*it);
                if (rng() % 2) {
                    ids.orphan(id);
                    orphans.insert(*it);
                } else {
                    REQUIRE(ids.on_response(id) == arrival::active);
                    free_ids.insert(*it);
                }
                active.erase(it);
            }
            break;
        case 3:
            if (!orphans.empty()) {
                auto it = orphans.lower_bound(static_cast<int>(rng() % 32768));
                if (it == orphans.end()) it = orphans.begin();
                REQUIRE(ids.on_response(static_cast<std::int16_t>(*it)) == arrival::orphan);
                free_ids.insert(*it);
                orphans.erase(it);
            }
            break;
        }
        REQUIRE(ids.in_flight() == active.size());
        REQUIRE(ids.orphans() == orphans.size());
    }
}
