// Streaming a large result with bounded memory: write 20,000 rows, stream them back as typed rows
// (the next page is fetched while this one is read), then serve them "page by page" as a REST API
// would: each call takes the URL-safe paging state of the previous one and returns one page.
//
//   stream_rows [host=127.0.0.1]
#include <cqlcoro/session.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

namespace asio = boost::asio;

struct event {
    std::int32_t day;
    std::int32_t seq;
    std::string what;
};

// One page of the listing, and the token for the next one (empty at the end).
asio::awaitable<std::pair<std::size_t, std::string>> serve_page(cqlcoro::session& s, const std::string& token) {
    auto stmt = cqlcoro::statement("SELECT day, seq, what FROM stream_rows.events").page_size(1000);
    if (!token.empty()) stmt.paging_state(cqlcoro::decode_paging_state(stmt, token));
    cqlcoro::stream_options o;
    o.prefetch = 0;  // one page per call: nothing to fetch ahead
    auto pager = s.stream(std::move(stmt), o);
    auto page = co_await pager.next_page();
    co_return std::pair{page.size(), pager.paging_state_string()};
}

asio::awaitable<void> run(asio::any_io_executor ex, std::string host) {
    cqlcoro::session_params p;
    p.contact_points = {host};
    p.stream_memory_budget = 16 << 20;  // every stream of this session together: at most 16 MiB of pages
    auto session = co_await cqlcoro::session::connect(ex, p);
    co_await session.execute(cqlcoro::statement(
        "CREATE KEYSPACE IF NOT EXISTS stream_rows WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"));
    co_await session.execute(cqlcoro::statement(
        "CREATE TABLE IF NOT EXISTS stream_rows.events (day int, seq int, what text, PRIMARY KEY (day, seq))"));
    auto insert = co_await session.prepare("INSERT INTO stream_rows.events (day, seq, what) VALUES (?, ?, ?)");
    for (int day = 0; day < 20; ++day)
        for (int first = 0; first < 1000; first += 100) {
            cqlcoro::batch b(cqlcoro::batch_kind::unlogged);  // 100 rows of one partition per batch
            for (int seq = first; seq < first + 100; ++seq) b.add(insert.bind(day, seq, fmt::format("event {} of day {}", seq, day)));
            co_await session.execute(std::move(b));
        }

    auto pager = session.stream(cqlcoro::statement("SELECT day, seq, what FROM stream_rows.events").page_size(5000));
    std::size_t rows = 0;
    while (auto e = co_await pager.next_as<event>()) rows += e->what.empty() ? 0 : 1;
    const auto st = pager.stats();
    fmt::print("streamed {} rows in {} pages; {} fetched ahead; at most {} pages ({} KiB) held at once\n", rows, st.pages,
               st.fetched_ahead, st.peak_pages, st.peak_bytes / 1024);

    std::string token;
    std::size_t served = 0, calls = 0;
    do {
        auto [n, next] = co_await serve_page(session, token);
        served += n;
        ++calls;
        token = std::move(next);
    } while (!token.empty());
    fmt::print("served {} rows in {} calls of one page each\n", served, calls);
    co_await session.close();
    if (rows != 20000 || served != 20000) throw std::runtime_error("rows are missing");
}

int main(int argc, char** argv) {
    asio::io_context io;
    int status = 0;
    asio::co_spawn(io, run(io.get_executor(), argc > 1 ? argv[1] : "127.0.0.1"), [&](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            fmt::print(stderr, "stream_rows: {}\n", x.what());
            status = 1;
        }
    });
    io.run();
    return status;
}
