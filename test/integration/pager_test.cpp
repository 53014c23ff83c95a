// The streaming pager against real Cassandra 2.1: 1,000,000 rows written through the driver, read
// back with page size 5000 as a typed struct. Every row arrives once, in clustering order within its
// partition; the process's peak RSS while streaming stays within a bound computed from the page size;
// and the pages after the first are requested before the reader asks for them.
#include "raw_connection.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>

#include <fmt/format.h>

#include <fstream>
#include <vector>

using namespace cqlcoro;
namespace asio = boost::asio;
using cqlcoro::test::yield_until;

// Freed memory is reused soon rather than held in a large quarantine, so that the peak RSS measured
// below reflects what the driver holds, under AddressSanitizer too.
extern "C" const char* __asan_default_options() {
    return "quarantine_size_mb=4";
}

namespace {

constexpr int partitions = 1000;
constexpr int per_partition = 1000;  // 1,000,000 rows

struct stream_row {
    std::int32_t p;
    std::int32_t c;
    std::string v;
};

std::string value_of(int p, int c) {
    return fmt::format("v{}-{}", p, c);
}

// kB from /proc/self/status ("VmRSS", "VmHWM").
std::size_t status_kb(const std::string& field) {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field + ":", 0) == 0) return std::stoul(line.substr(field.size() + 1));
    return 0;
}

// Resets the peak RSS (VmHWM) to the current RSS.
bool reset_peak_rss() {
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    out.flush();
    return static_cast<bool>(out);
}

// Writes the rows once: single-partition unlogged batches of 100 rows, 64 batches in flight.
asio::awaitable<void> load(session& s) {
    co_await s.execute(statement("CREATE KEYSPACE IF NOT EXISTS cqlcoro_stream WITH replication = "
                                 "{'class': 'SimpleStrategy', 'replication_factor': 1}"));
    co_await s.execute(statement("CREATE TABLE IF NOT EXISTS cqlcoro_stream.rows (p int, c int, v text, PRIMARY KEY (p, c))"));
    co_await s.execute(statement("CREATE TABLE IF NOT EXISTS cqlcoro_stream.loaded (id int PRIMARY KEY, n int)"));
    auto done = co_await s.execute(statement("SELECT n FROM cqlcoro_stream.loaded WHERE id = 1"));
    if (!done.empty() && done.one().get<std::int32_t>(0) == partitions * per_partition) co_return;

    auto insert = co_await s.prepare("INSERT INTO cqlcoro_stream.rows (p, c, v) VALUES (?, ?, ?)");
    constexpr int batch_rows = 100;
    constexpr int batches = partitions * per_partition / batch_rows;
    int next = 0, finished = 0;
    std::exception_ptr failure;
    auto worker = [&]() -> asio::awaitable<void> {
        while (next < batches && !failure) {
            const int b = next++;
            const int p = b / (per_partition / batch_rows);
            const int c0 = (b % (per_partition / batch_rows)) * batch_rows;
            batch one(batch_kind::unlogged);
            for (int c = c0; c < c0 + batch_rows; ++c) one.add(insert.bind(p, c, value_of(p, c)));
            try {
                co_await s.execute(std::move(one.timeout(std::chrono::seconds(60))));
            } catch (...) {
                failure = std::current_exception();
            }
        }
        ++finished;
    };
    const auto ex = co_await asio::this_coro::executor;
    constexpr int workers = 64;
    for (int i = 0; i < workers; ++i) asio::co_spawn(ex, worker(), asio::detached);
    co_await yield_until([&] { return finished == workers; }, 2'000'000'000);
    if (failure) std::rethrow_exception(failure);
    co_await s.execute(statement("INSERT INTO cqlcoro_stream.loaded (id, n) VALUES (1, ?)", partitions * per_partition));
}

}  // namespace

TEST_CASE("real Cassandra: a million rows streamed as typed rows: each once and in order, in bounded memory", "[slow]") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto params = cqlcoro::test::target_params();
        params.request_timeout = std::chrono::seconds(60);
        auto s = co_await session::connect(ex, params);
        co_await load(s);

        const auto rss_before_kb = status_kb("VmRSS");
        const bool peak_reset = reset_peak_rss();
        auto pager = s.stream(statement("SELECT p, c, v FROM cqlcoro_stream.rows").page_size(5000));
        std::vector<int> next_c(partitions, 0);  // per partition: the clustering value expected next
        std::vector<bool> finished(partitions, false);
        int current = -1;
        std::size_t rows = 0, wrong = 0, out_of_order = 0, split = 0;
        while (auto r = co_await pager.next_as<stream_row>()) {
            ++rows;
            if (r->p < 0 || r->p >= partitions) {
                ++wrong;
                continue;
            }
            if (r->p != current) {  // partitions come whole, one after the other (token order)
                if (current >= 0) finished[current] = true;
                if (finished[r->p]) ++split;
                current = r->p;
            }
            if (r->c != next_c[r->p]) ++out_of_order;
            next_c[r->p] = r->c + 1;
            if (r->v != value_of(r->p, r->c)) ++wrong;
        }
        const auto peak_kb = status_kb("VmHWM");
        const auto st = pager.stats();

        CHECK(rows == 1'000'000);
        CHECK(wrong == 0);
        CHECK(out_of_order == 0);
        CHECK(split == 0);
        for (int p = 0; p < partitions; ++p) CHECK(next_c[p] == per_partition);  // every row of every partition, once
        CHECK(st.pages >= 200);  // 2.1 may end with an empty page after a full one
        CHECK(st.pages <= 201);
        CHECK(st.rows == 1'000'000);
        // Prefetch: every page after the first was requested before the reader asked for it.
        CHECK(st.fetched_ahead == st.pages - 1);
        CHECK(st.peak_pages <= 2);

        // The bound: the pages the pager may hold (the one being read and one ahead), four times over
        // for the connection's read buffer, the result's copy and allocator slack, plus 24 MiB for the
        // sanitizer's quarantine and everything else. The whole result would be far larger.
        const std::size_t page_bytes = st.peak_bytes / std::max<std::size_t>(st.peak_pages, 1);
        const std::size_t bound_kb = rss_before_kb + (4 * 2 * page_bytes) / 1024 + 24 * 1024;
        const std::size_t whole_kb = page_bytes * st.pages / 1024;
        fmt::print("streamed {} rows in {} pages; largest page {} KiB; peak held by the pager {} KiB in {} pages\n"
                   "RSS before {} KiB, peak while streaming {} KiB (bound {} KiB; all pages at once would be {} KiB)\n"
                   "reader waited {:.0f} ms for pages in total (a cold server); {} of {} pages fetched ahead\n",
                   rows, st.pages, page_bytes / 1024, st.peak_bytes / 1024, st.peak_pages, rss_before_kb, peak_kb,
                   bound_kb, whole_kb, std::chrono::duration<double, std::milli>(st.waited).count(), st.fetched_ahead, st.pages);
        REQUIRE(peak_reset);
        CHECK(peak_kb <= bound_kb);
        CHECK(bound_kb - rss_before_kb < whole_kb);  // the bound means something: below holding every page

        // The reader's wait for pages, without prefetch and with it, both on a warm server. The reader is
        // faster than the server here, so prefetch saves the reader's own time per page; reported only.
        auto wait_ms = [&](std::size_t prefetch) -> asio::awaitable<double> {
            stream_options o;
            o.prefetch = prefetch;
            auto again = s.stream(statement("SELECT p, c, v FROM cqlcoro_stream.rows").page_size(5000), o);
            std::size_t n = 0;
            while (auto r = co_await again.next_as<stream_row>()) n += r->c >= 0;
            CHECK(n == 1'000'000);
            CHECK(again.stats().fetched_ahead == (prefetch ? again.stats().pages - 1 : 0));
            co_return std::chrono::duration<double, std::milli>(again.stats().waited).count();
        };
        const double without = co_await wait_ms(0);
        const double with = co_await wait_ms(1);
        fmt::print("the reader waited {:.0f} ms for pages without prefetch, {:.0f} ms with it\n", without, with);
        co_await s.close();
    });
}
