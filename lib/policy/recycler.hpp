// A session's free list of request objects, so that a request reuses the buffers an earlier one grew
// (its frame, its plan, its execution slots) instead of allocating them again.
//
// It belongs to the session: what it holds goes when the session goes, and no object crosses from one
// session to another. Requests start on any thread, so the list is split into shards, each thread using
// one; a shard is taken with one atomic flag and never waited for: a thread that finds its shard busy
// (another thread mapped to it) allocates a new object, or lets the one it returns go.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

namespace cqlcoro::detail {

template <class T>
class recycler {
public:
    static constexpr std::size_t shard_count = 8;
    static constexpr std::size_t per_shard = 512;

    /// A free object that nothing else references any more (a connection may still hold a finished
    /// request's frame for a moment), or a new one.
    std::shared_ptr<T> take() {
        auto& s = mine();
        if (!s.busy.test_and_set(std::memory_order_acquire)) {
            auto& free = s.free;
            const std::size_t n = free.size(), look = n < 4 ? n : 4;
            // The newest (still warm in the cache), then the oldest (most likely let go by now).
            for (std::size_t i = 0; i < 2 * look; ++i) {
                auto& candidate = free[i < look ? n - 1 - i : i - look];
                if (candidate.use_count() != 1) continue;
                std::swap(candidate, free.back());
                auto p = std::move(free.back());
                free.pop_back();
                s.busy.clear(std::memory_order_release);
                return p;
            }
            s.busy.clear(std::memory_order_release);
        }
        return std::make_shared<T>();
    }

    /// Keeps `p` for a later take(), unless this thread's shard is full or busy.
    void give(std::shared_ptr<T> p) {
        auto& s = mine();
        if (s.busy.test_and_set(std::memory_order_acquire)) return;
        if (s.free.size() < per_shard) s.free.push_back(std::move(p));
        s.busy.clear(std::memory_order_release);
    }

    /// Objects held, over every shard (for tests; not exact while other threads take and give).
    std::size_t size() {
        std::size_t n = 0;
        for (auto& s : shards_) {
            while (s.busy.test_and_set(std::memory_order_acquire)) {
            }
            n += s.free.size();
            s.busy.clear(std::memory_order_release);
        }
        return n;
    }

private:
    struct alignas(64) shard {
        std::atomic_flag busy;
        std::vector<std::shared_ptr<T>> free;
    };

    shard& mine() noexcept {
        // Threads are numbered once, in the order they first use any recycler.
        static std::atomic<std::size_t> threads{0};
        thread_local const std::size_t index = threads.fetch_add(1, std::memory_order_relaxed);
        return shards_[index % shard_count];
    }

    std::array<shard, shard_count> shards_{};
};

}  // namespace cqlcoro::detail
