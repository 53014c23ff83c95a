// The session's recycler of request objects: reuse, the "nobody else holds it" rule, its bound, and
// that what it holds goes with it.
#include "policy/recycler.hpp"

#include <catch2/catch_test_macros.hpp>

#include <atomic>
#include <thread>

using cqlcoro::detail::recycler;

namespace {

struct tracked {
    static inline std::atomic<int> alive{0};  // counted from the threads of the test below
    tracked() { ++alive; }
    ~tracked() { --alive; }
    tracked(const tracked&) = delete;
    tracked& operator=(const tracked&) = delete;
};

}  // namespace

TEST_CASE("recycler: an object given back is taken again, unless something still holds it") {
    recycler<tracked> r;
    auto a = r.take();
    auto* first = a.get();
    r.give(std::move(a));
    CHECK(r.size() == 1);
    auto b = r.take();
    CHECK(b.get() == first);  // reused, not allocated
    CHECK(r.size() == 0);

    auto held = b;  // a connection still holds the frame of a finished request, say
    r.give(std::move(b));
    auto c = r.take();
    CHECK(c.get() != first);  // not handed out while held
    CHECK(r.size() == 1);
    held.reset();
    auto d = r.take();
    CHECK(d.get() == first);  // free now
}

TEST_CASE("recycler: bounded per shard, and what it holds goes with it") {
    tracked::alive = 0;
    {
        recycler<tracked> r;
        std::vector<std::shared_ptr<tracked>> many;
        for (std::size_t i = 0; i < recycler<tracked>::per_shard + 10; ++i) many.push_back(r.take());
        for (auto& p : many) r.give(std::move(p));
        CHECK(r.size() == recycler<tracked>::per_shard);
        CHECK(tracked::alive.load() == static_cast<int>(recycler<tracked>::per_shard));
    }
    CHECK(tracked::alive.load() == 0);
}

TEST_CASE("recycler: threads take and give at once without losing or sharing an object", "[threads]") {
    recycler<tracked> r;
    std::vector<std::thread> threads;
    std::atomic<int> shared_seen{0};
    for (int t = 0; t < 16; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                auto p = r.take();
                if (p.use_count() != 1) ++shared_seen;
                r.give(std::move(p));
            }
        });
    for (auto& t : threads) t.join();
    CHECK(shared_seen == 0);
    CHECK(r.size() <= recycler<tracked>::shard_count * recycler<tracked>::per_shard);
}
