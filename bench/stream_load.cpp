// Streaming a large result through session.stream() from the standalone simulated node (cqlsim, a
// separate process): 1,000,000 rows of (id int, name text), page size 5000, read as rows (next()),
// typed rows (next_as<struct>) and pages (next_page()), with prefetch 0, 1 and 2.
//
//   stream_load [--rows N] [--page-size N] [--version 3|4|5] [--cqlsim PATH]
//
// Reports rows/s, the client's CPU per row (user + sys of this process), heap allocations per row
// (malloc_count.hpp), the time the reader waited for pages, and the process's peak RSS while
// streaming above its RSS before, and in all (VmHWM, reset through /proc/self/clear_refs).
#include "load_common.hpp"
#include "malloc_count.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <fstream>

using namespace cqlcoro;
using namespace bench;
namespace asio = boost::asio;

namespace {

constexpr const char* query = "SELECT id, name FROM sim.t";

struct user_row {
    std::int32_t id;
    std::string_view name;
};

std::size_t status_kb(const std::string& field) {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field + ":", 0) == 0) return std::stoul(line.substr(field.size() + 1));
    return 0;
}

void reset_peak_rss() {
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
}

enum class form { rows, typed, pages };

}  // namespace

int main(int argc, char** argv) {
    long total = 1'000'000;
    std::int32_t page_size = 5000;
    load_options o;
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--rows" && i + 1 < argc) total = std::stol(argv[++i]);
        else if (a == "--page-size" && i + 1 < argc) page_size = std::stoi(argv[++i]);
        else rest.push_back(argv[i]);
    }
    if (!o.parse(static_cast<int>(rest.size()), rest.data(), "stream_load [--rows N] [--page-size N] [--version 3|4|5] [--cqlsim PATH]"))
        return 2;
    sim_process sim(o.sim_path, query, total);

    asio::io_context io(1);
    session_params params;
    params.port = port;
    params.protocol_version = o.version;
    params.heartbeat_interval = std::chrono::milliseconds(0);
    std::optional<session> s;
    auto run = [&](auto body) {  // the session keeps work pending: stop once the body is done
        asio::co_spawn(io, body(), [&](std::exception_ptr e) {
            io.stop();
            if (e) std::rethrow_exception(e);
        });
        io.run();
        io.restart();
    };
    run([&]() -> asio::awaitable<void> { s = co_await session::connect(io.get_executor(), params); });

    fmt::print("protocol v{}, {} rows of (int, text), page size {}, one connection (client: this process; server: cqlsim)\n",
               s->protocol_version(), total, page_size);
    fmt::print("{:<7} {:>8} {:>11} {:>11} {:>11} {:>11} {:>10} {:>12} {:>10}\n", "form", "prefetch", "rows/s", "CPU ns/row",
               "allocs/row", "allocs/page", "waited ms", "RSS +MiB", "peak MiB");
    for (auto f : {form::rows, form::typed, form::pages}) {
        for (std::size_t prefetch : {0, 1, 2}) {
            stream_options so;
            so.prefetch = prefetch;
            const auto rss0 = status_kb("VmRSS");
            reset_peak_rss();
            const auto a0 = heap_allocations.load();
            const double cpu0 = cpu_seconds();
            const auto t0 = std::chrono::steady_clock::now();
            long rows = 0, check = 0;
            stream_stats st;
            run([&]() -> asio::awaitable<void> {
                auto pager = s->stream(statement(query).page_size(page_size), so);
                if (f == form::rows) {
                    while (auto r = co_await pager.next()) {
                        ++rows;
                        check += r->get<std::int32_t>(0);
                    }
                } else if (f == form::typed) {
                    while (auto r = co_await pager.next_as<user_row>()) {
                        ++rows;
                        check += r->id + static_cast<long>(r->name.size());
                    }
                } else {
                    while (auto page = co_await pager.next_page())
                        for (auto r : page.rows()) {
                            ++rows;
                            check += r.get<std::int32_t>(0);
                        }
                }
                st = pager.stats();
            });
            const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double cpu = cpu_seconds() - cpu0;
            const auto allocs = static_cast<double>(heap_allocations.load() - a0);
            const auto peak = status_kb("VmHWM");
            if (rows != total) {
                fmt::print(stderr, "expected {} rows, got {}\n", total, rows);
                return 1;
            }
            fmt::print("{:<7} {:>8} {:>11.0f} {:>11.1f} {:>11.4f} {:>11.1f} {:>10.1f} {:>12.1f} {:>10.1f}\n",
                       f == form::rows ? "rows" : f == form::typed ? "typed" : "pages", prefetch, rows / wall, cpu * 1e9 / rows,
                       allocs / rows, allocs / static_cast<double>(st.pages), std::chrono::duration<double, std::milli>(st.waited).count(),
                       (peak > rss0 ? peak - rss0 : 0) / 1024.0, peak / 1024.0);
            (void)check;
        }
    }
    run([&]() -> asio::awaitable<void> { co_await s->close(); });
    return 0;
}
