// Row decoding: 10,000 rows of (id uuid, name text, n bigint, ts timestamp, tags list<int>), read into
// a struct of views, into an owning struct, and cell by cell with get<T>. Reports ns and heap
// allocations per row (counted by replacing the global operator new in this program).
#include <cqlcoro/rows.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace cqlcoro;

namespace {

constexpr int rows = 10'000;

struct row_views {
    uuid id;
    std::string_view name;
    std::int64_t n;
    timestamp ts;
    list_view<std::int32_t> tags;
};

struct row_owned {
    uuid id;
    std::string name;
    std::int64_t n;
    timestamp ts;
    std::vector<std::int32_t> tags;
};

std::vector<column_spec> columns() {
    return {{"ks", "t", "id", cql_type::of(type_kind::uuid)},
            {"ks", "t", "name", cql_type::of(type_kind::varchar)},
            {"ks", "t", "n", cql_type::of(type_kind::bigint)},
            {"ks", "t", "ts", cql_type::of(type_kind::timestamp)},
            {"ks", "t", "tags", cql_type::list_of(cql_type::of(type_kind::int_))}};
}

std::shared_ptr<byte_buffer> content() {
    auto b = std::make_shared<byte_buffer>();
    detail::writer w(*b);
    for (int i = 0; i < rows; ++i) {
        std::array<std::uint8_t, 16> id{};
        std::memcpy(id.data(), &i, sizeof i);
        w.bytes(id);
        w.bytes(detail::as_bytes("a user name of some length"));
        w.i32(8);
        w.i64(i);
        w.i32(8);
        w.i64(1'700'000'000'000 + i);
        w.i32(4 + 3 * 8);
        w.i32(3);
        for (int k = 0; k < 3; ++k) {
            w.i32(4);
            w.i32(k);
        }
    }
    return b;
}

void report(benchmark::State& state, std::size_t allocs_before) {
    const auto per_row = static_cast<double>(allocations.load() - allocs_before) / static_cast<double>(state.iterations() * rows);
    state.counters["allocs_per_row"] = per_row;
    state.counters["ns_per_row"] = benchmark::Counter(static_cast<double>(state.iterations() * rows),
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_page_index(benchmark::State& state) {
    auto data = content();
    auto cols = columns();
    const auto before = allocations.load();
    for (auto _ : state) {
        result_page page(cols, rows, *data, data);
        benchmark::DoNotOptimize(page);
    }
    report(state, before);
}

void BM_rows_as_view_struct(benchmark::State& state) {
    auto data = content();
    result_page page(columns(), rows, *data, data);
    const auto before = allocations.load();
    std::int64_t sum = 0;
    for (auto _ : state) {
        for (auto row : page.rows()) {
            auto r = row.as<row_views>();
            sum += r.n + static_cast<std::int64_t>(r.name.size());
            for (auto t : r.tags) sum += t;
        }
    }
    benchmark::DoNotOptimize(sum);
    report(state, before);
}

void BM_rows_get(benchmark::State& state) {
    auto data = content();
    result_page page(columns(), rows, *data, data);
    const auto before = allocations.load();
    std::int64_t sum = 0;
    for (auto _ : state) {
        for (auto row : page.rows()) {
            auto id = row.get<uuid>(0);
            auto name = row.get<std::string_view>(1);
            auto n = row.get<std::int64_t>(2);
            auto ts = row.get<timestamp>(3);
            auto tags = row.get<list_view<std::int32_t>>(4);
            sum += n + static_cast<std::int64_t>(name.size()) + id.data[0] + ts.time_since_epoch().count();
            for (auto t : tags) sum += t;
        }
    }
    benchmark::DoNotOptimize(sum);
    report(state, before);
}

void BM_rows_get_by_name(benchmark::State& state) {
    auto data = content();
    result_page page(columns(), rows, *data, data);
    const auto before = allocations.load();
    std::int64_t sum = 0;
    for (auto _ : state) {
        for (auto row : page.rows()) sum += row.get<std::int64_t>("n") + static_cast<std::int64_t>(row.get<std::string_view>("name").size());
    }
    benchmark::DoNotOptimize(sum);
    report(state, before);
}

void BM_rows_as_owned_struct(benchmark::State& state) {
    auto data = content();
    result_page page(columns(), rows, *data, data);
    const auto before = allocations.load();
    std::int64_t sum = 0;
    for (auto _ : state) {
        for (auto row : page.rows()) {
            auto r = row.as<row_owned>();
            sum += r.n + static_cast<std::int64_t>(r.name.size() + r.tags.size());
        }
    }
    benchmark::DoNotOptimize(sum);
    report(state, before);
}

}  // namespace

BENCHMARK(BM_page_index)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_rows_as_view_struct)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_rows_get)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_rows_get_by_name)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_rows_as_owned_struct)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
