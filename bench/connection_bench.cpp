// The connection layer's sans-I/O parts.
#include "connection/stream_ids.hpp"

#include <benchmark/benchmark.h>

#include <vector>

using cqlcoro::connection::stream_ids;

namespace {

// Acquire and free one id with `in_flight` others held: the per-request cost of the multiplexer.
void BM_stream_id_acquire_release(benchmark::State& state) {
    stream_ids ids;
    for (std::int64_t i = 0; i < state.range(0); ++i) (void)ids.acquire();
    for (auto _ : state) {
        auto id = ids.acquire();
        benchmark::DoNotOptimize(id);
        ids.on_response(*id);
    }
}

// Worst case for a scanning allocator: only the last id is free.
void BM_stream_id_last_free(benchmark::State& state) {
    stream_ids ids;
    for (int i = 0; i < 32767; ++i) (void)ids.acquire();
    for (auto _ : state) {
        auto id = ids.acquire();
        benchmark::DoNotOptimize(id);
        ids.on_response(*id);
    }
}

}  // namespace

BENCHMARK(BM_stream_id_acquire_release)->Arg(0)->Arg(1024)->Arg(32000);
BENCHMARK(BM_stream_id_last_free);
BENCHMARK_MAIN();
