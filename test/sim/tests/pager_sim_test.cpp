// The streaming pager against simulated nodes: rows in order over pages, the page and typed forms,
// prefetch seen at the node, delays between pages, an error on page 3, resuming from a saved paging
// state, cancellation in the middle, pinned and unpinned coordinators, and many pagers sharing one
// memory budget.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

#include <set>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;
using cqlcoro::test::yield_until;

namespace {

constexpr std::uint16_t port = 19442;
const std::string query = "SELECT id, name FROM sim.t";

session_params params_for(const sim::cluster& c) { return cqlcoro::test::sim_session_params(c); }

const auto table = cqlcoro::test::id_name_table;

std::vector<sim::recorded_request> reads(const sim::cluster& c) {
    std::vector<sim::recorded_request> out;
    for (auto& r : c.requests())
        if (r.query == query) out.push_back(std::move(r));
    return out;
}

struct user_row {
    std::int32_t id;
    std::string name;
};

}  // namespace

TEST_CASE("pager: rows arrive once and in order over pages, as rows, typed rows and pages") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = query}, table(1000));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        {
            auto pager = s.stream(statement(query).page_size(100));
            int expected = 0;
            while (auto row = co_await pager.next()) {
                CHECK(row->get<std::int32_t>(0) == expected);
                CHECK(row->get<std::string_view>("name") == fmt::format("row{}", expected));
                ++expected;
            }
            CHECK(expected == 1000);
            CHECK(pager.done());
            CHECK(pager.paging_state().empty());
            const auto st = pager.stats();
            CHECK(st.pages == 10);
            CHECK(st.rows == 1000);
            CHECK(st.peak_pages <= 2);  // the page being read and one ahead
            const auto sent = reads(c);
            REQUIRE(sent.size() == 10);
            CHECK_FALSE(sent[0].has_paging_state);
            for (const auto& r : sent) CHECK(r.page_size == 100);
            for (std::size_t i = 1; i < sent.size(); ++i) CHECK(sent[i].has_paging_state);
            const auto end = co_await pager.next();  // the end stays the end
            CHECK_FALSE(end);
        }
        {
            auto pager = s.stream(statement(query).page_size(300));
            int expected = 0;
            while (auto u = co_await pager.next_as<user_row>()) {
                CHECK(u->id == expected);
                CHECK(u->name == fmt::format("row{}", expected));
                ++expected;
            }
            CHECK(expected == 1000);
        }
        {
            auto pager = s.stream(statement(query).page_size(300));
            std::vector<std::size_t> sizes;
            int expected = 0;
            while (auto page = co_await pager.next_page()) {
                sizes.push_back(page.size());
                CHECK(page.number() == sizes.size());
                CHECK(page.result().coordinator() == "127.0.0.1:19442");
                for (auto row : page.rows()) {
                    CHECK(row.as<std::tuple<int, std::string>>() == std::tuple(expected, fmt::format("row{}", expected)));
                    ++expected;
                }
            }
            CHECK(sizes == std::vector<std::size_t>{300, 300, 300, 100});
        }
        {  // a mismatched C++ type fails at the first row, naming the column
            auto pager = s.stream(statement(query).page_size(100));
            std::string what;
            try {
                co_await pager.next_as<std::tuple<std::string, int>>();
            } catch (const cqlcoro::error& e) {
                what = e.what();
            }
            CHECK_THAT(what, ContainsSubstring("id"));
        }
        co_await s.close();
    });
}

TEST_CASE("pager: the next page is requested while the current one is read; without prefetch, only when asked for") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = query}, {table(500), std::chrono::milliseconds(20)});  // each page takes 20 ms
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        {
            auto pager = s.stream(statement(query).page_size(100));
            std::size_t handed = 0;
            while (auto page = co_await pager.next_page()) {
                ++handed;
                // While this page is being read, the node receives the request for the next one and the
                // answer comes back, without the reader asking.
                if (handed < 5) co_await yield_until([&] { return pager.stats().pages == handed + 1; }, 50'000'000);
            }
            const auto st = pager.stats();
            CHECK(handed == 5);
            CHECK(st.ready_pages == 4);   // every page after the first was there when asked for
            CHECK(st.waited_pages == 1);  // the first
            CHECK(reads(c).size() == 5);
        }
        c.clear_requests();
        {
            stream_options o;
            o.prefetch = 0;
            auto pager = s.stream(statement(query).page_size(100), o);
            std::size_t handed = 0;
            while (true) {
                CHECK(reads(c).size() == handed);  // nothing was asked for ahead of the reader
                auto page = co_await pager.next_page();
                if (!page) break;
                ++handed;
            }
            CHECK(handed == 5);
            CHECK(pager.stats().ready_pages == 0);
            CHECK(pager.stats().peak_pages == 1);
        }
        {  // prefetch 3: up to three pages ahead of a reader that does not read
            stream_options o;
            o.prefetch = 3;
            auto pager = s.stream(statement(query).page_size(100), o);
            auto first = co_await pager.next_page();
            co_await yield_until([&] { return pager.stats().pages == 4; }, 50'000'000);
            CHECK(pager.stats().peak_pages == 4);  // the page held and three ahead, no more
            std::size_t rest = 0;
            while (auto page = co_await pager.next_page()) rest += page.size();
            CHECK(rest == 400);
        }
        co_await s.close();
    });
}

TEST_CASE("pager: an error on page 3 surfaces at the next() that needs it, after the rows before it") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = query}, table(500));
    c.prime({.query = query, .page = 3}, {protocol::error_response{0x1001, "Server is overloaded: too many pending reads", {}}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        auto pager = s.stream(statement(query).page_size(100));
        int rows = 0;
        std::string what;
        error_code code;
        try {
            while (auto row = co_await pager.next()) {
                CHECK(row->get<int>(0) == rows);
                ++rows;
            }
        } catch (const cqlcoro::error& e) {
            what = e.what();
            code = e.boost_code();
            REQUIRE(e.diagnostics().server);
            CHECK(e.diagnostics().host == "127.0.0.1:19442");
        }
        CHECK(rows == 200);
        CHECK(code == server_errc::overloaded);
        CHECK_THAT(what, ContainsSubstring("page 3 of the stream failed"));
        CHECK_THAT(what, ContainsSubstring("127.0.0.1:19442"));
        CHECK_THAT(what, ContainsSubstring("too many pending reads"));
        // The stream stays failed; the state still resumes at page 3.
        auto [ec, again] = co_await pager.next_page(asio::as_tuple(asio::use_awaitable));
        CHECK(ec == server_errc::overloaded);
        CHECK(again.number() == 3);
        CHECK(pager.done());
        CHECK_FALSE(pager.paging_state().empty());
        co_await s.close();
    });
}

TEST_CASE("pager: a saved paging state resumes the statement in a new stream; a foreign one is refused") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = query}, table(1000));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        std::string saved;
        std::vector<std::uint8_t> raw;
        {
            auto pager = s.stream(statement(query).page_size(100));
            for (int i = 0; i < 2; ++i) {
                auto page = co_await pager.next_page();
                REQUIRE(page);
            }
            saved = pager.paging_state_string();
            raw = pager.paging_state();
        }  // dropped with a page fetched ahead
        CHECK_FALSE(saved.empty());
        CHECK(saved.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
        auto stmt = statement(query).page_size(100);
        {
            auto pager = s.stream(statement(stmt).paging_state(decode_paging_state(stmt, saved)));
            int expected = 200;
            while (auto row = co_await pager.next()) CHECK(row->get<int>(0) == expected++);
            CHECK(expected == 1000);
        }
        {  // the raw bytes work the same way
            auto pager = s.stream(statement(stmt).paging_state(raw));
            auto first = co_await pager.next();
            REQUIRE(first);
            CHECK(first->get<int>(0) == 200);
        }
        auto refused = [&](const statement& other, const std::string& text) {
            try {
                decode_paging_state(other, text);
            } catch (const cqlcoro::error& e) {
                CHECK(e.boost_code() == client_errc::invalid_paging_state);
                return std::string(e.what());
            }
            return std::string("accepted");
        };
        CHECK_THAT(refused(statement("SELECT id FROM sim.other"), saved), ContainsSubstring("another statement"));
        CHECK_THAT(refused(statement(query, 7), saved), ContainsSubstring("another statement"));
        CHECK_THAT(refused(stmt, "not base64!"), ContainsSubstring("base64url"));
        CHECK_THAT(refused(stmt, "QUJD"), ContainsSubstring("not a paging state"));
        co_await s.close();
    });
}

TEST_CASE("pager: cancelling a waiting next() or dropping the pager stops fetching and gives its memory back") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = query}, table(1000));
    c.prime({.query = query, .page = 3}, {table(1000), std::chrono::milliseconds(300)});  // page 3 is slow
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.stream_memory_budget = 64 << 20;
        auto s = co_await session::connect(ex, p);
        auto budget = s.stream_budget();
        {
            auto pager = s.stream(statement(query).page_size(100));
            auto page1 = co_await pager.next_page();
            auto page2 = co_await pager.next_page();  // page 3 is now being fetched ahead
            REQUIRE(page2);
            page1 = {};
            page2 = {};
            const auto waited_before = pager.stats().waited_pages;
            asio::cancellation_signal cancel;
            bool finished = false;
            error_code got;
            asio::co_spawn(ex, pager.next_page(asio::as_tuple(asio::use_awaitable)),
                           asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr, std::tuple<error_code, stream_page> r) {
                               got = std::get<0>(r);
                               finished = true;
                           }));
            co_await yield_until([&] { return pager.stats().waited_pages > waited_before; });
            cancel.emit(asio::cancellation_type::terminal);
            co_await yield_until([&] { return finished; });
            CHECK(got == asio::error::operation_aborted);
            CHECK(pager.done());
            // Later calls fail the same way; other requests of the session are unaffected.
            auto [ec, none] = co_await pager.next_page(asio::as_tuple(asio::use_awaitable));
            CHECK(ec == asio::error::operation_aborted);
            CHECK_FALSE(none);
            auto other = co_await s.execute(statement(query).page_size(10));
            CHECK(other.size() == 10);
            // The late page 3 is dropped when it comes; nothing stays reserved.
            co_await yield_until([&] { return budget->in_use() == 0; }, 50'000'000);
            CHECK(reads(c).size() == 4);  // pages 1-3 and the other request: nothing after the cancel
        }
        c.clear_requests();
        {  // destroying the pager while a page is in flight
            auto owned = std::make_unique<cqlcoro::pager>(s.stream(statement(query).page_size(100)));
            auto page1 = co_await owned->next_page();
            auto page2 = co_await owned->next_page();
            owned.reset();
            CHECK(page2.size() == 100);  // pages handed out stay valid
            CHECK(page2.rows()[99].get<int>(0) == 199);
            page1 = {};
            page2 = {};
            co_await yield_until([&] { return budget->in_use() == 0; }, 50'000'000);
            CHECK(reads(c).size() == 3);
        }
        co_await s.close();
    });
}

TEST_CASE("pager: pages follow the query plan over coordinators, or stay on the first one when pinned") {
    sim::cluster c({.nodes = 3, .port = port});
    c.prime({.query = query}, table(1000));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        co_await yield_until([&] { return s.metrics().nodes.size() == 3; }, 50'000'000);
        auto coordinators = [&] {
            std::set<std::size_t> nodes;
            for (const auto& r : reads(c)) nodes.insert(r.node);
            return nodes;
        };
        {
            auto pager = s.stream(statement(query).page_size(100));
            int n = 0;
            while (co_await pager.next()) ++n;
            CHECK(n == 1000);
            CHECK(coordinators().size() == 3);
        }
        c.clear_requests();
        {
            stream_options o;
            o.pin_coordinator = true;
            auto pager = s.stream(statement(query).page_size(100), o);
            int n = 0;
            std::set<std::string> seen;
            while (auto page = co_await pager.next_page()) {
                n += static_cast<int>(page.size());
                seen.insert(page.result().coordinator());
            }
            CHECK(n == 1000);
            CHECK(seen.size() == 1);
            CHECK(coordinators().size() == 1);
            CHECK(reads(c).size() == 10);
        }
        co_await s.close();
    });
}

TEST_CASE("pager: a page fetch goes through the session's middlewares, so their retries apply to it") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = query}, table(300));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        // Page 2 is overloaded once: the application's retry middleware tries again.
        int retried = 0;
        auto p = params_for(c);
        middleware retry_overloaded = [&](request& r, next_layer next) -> asio::awaitable<outcome> {
            auto out = co_await next(r);
            if (out.ec == server_errc::overloaded) {
                ++retried;
                c.clear_primes();
                c.prime({.query = query}, table(300));
                out = co_await next(r);
            }
            co_return out;
        };
        p.chain = {cqlcoro::built_in_layer::deadline, retry_overloaded, cqlcoro::built_in_layer::speculative_execution, cqlcoro::built_in_layer::retry};
        auto s = co_await session::connect(ex, p);
        c.prime({.query = query, .page = 2}, {protocol::error_response{0x1001, "overloaded", {}}});
        auto pager = s.stream(statement(query).page_size(100));
        int n = 0;
        while (auto row = co_await pager.next()) CHECK(row->get<int>(0) == n++);
        CHECK(n == 300);
        CHECK(retried == 1);
        co_await s.close();
    });
}

TEST_CASE("pager: many pagers share one memory budget and wait for room instead of buffering") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = query}, table(2000));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto probe_session = co_await session::connect(ex, params_for(c));
        const auto page_bytes = (co_await probe_session.execute(statement(query).page_size(100))).memory_bytes();
        co_await probe_session.close();
        REQUIRE(page_bytes > 0);

        auto p = params_for(c);
        p.stream_memory_budget = 4 * page_bytes;  // room for four pages, for eight streams
        auto s = co_await session::connect(ex, p);
        auto budget = s.stream_budget();
        {  // one stream first: the budget learns the page size
            auto warm = s.stream(statement(query).page_size(100));
            co_await warm.next();
        }
        constexpr int streams = 8;
        int finished = 0;
        std::vector<int> rows(streams, 0);
        std::vector<stream_stats> stats(streams);
        std::size_t most_waiting = 0;
        for (int i = 0; i < streams; ++i) {
            stream_options o;
            o.prefetch = 2;
            asio::co_spawn(ex, [&, i, o]() -> asio::awaitable<void> {
                auto pager = s.stream(statement(query).page_size(100), o);
                while (auto page = co_await pager.next_page()) {
                    for (auto row : page.rows()) CHECK(row.get<int>(0) == rows[i]++);
                    most_waiting = std::max(most_waiting, budget->waiting());
                    // yield so that the streams interleave
                    co_await asio::post(ex, asio::use_awaitable);
                }
                stats[i] = pager.stats();
                ++finished;
            }, asio::detached);
        }
        co_await yield_until([&] { return finished == streams; }, 50'000'000);
        for (int i = 0; i < streams; ++i) CHECK(rows[i] == 2000);
        std::size_t budget_waits = 0;
        for (const auto& st : stats) budget_waits += st.budget_waits;
        CHECK(budget_waits > 0);
        CHECK(most_waiting > 0);
        // Never more than the budget, but for one page's error in the estimate of its size.
        CHECK(budget->peak() <= budget->limit() + page_bytes);
        CHECK(budget->in_use() == 0);
        co_await s.close();
    });
}

TEST_CASE("pager: a page timeout bounds each page; a stream timeout bounds the whole stream") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = query}, table(1000));
    c.prime({.query = query, .page = 2}, sim::prime_then{table(1000), std::chrono::milliseconds(2000)});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        {
            // Page 2 takes 2 s; each page may take 200 ms: page 1 arrives, page 2 times out.
            stream_options o;
            o.page_timeout = std::chrono::milliseconds(200);
            auto pager = s.stream(statement(query).page_size(100), o);
            auto first = co_await pager.next_page();
            CHECK(first.size() == 100);
            auto [ec, second] = co_await pager.next_page(asio::as_tuple(asio::use_awaitable));
            CHECK(ec == client_errc::request_timeout);
            CHECK(second.number() == 2);
        }
        c.clear_primes();
        c.prime({.query = query}, sim::prime_then{table(1000), std::chrono::milliseconds(100)});  // every page 100 ms
        {
            // Ten pages of 100 ms each, in a stream given 350 ms: it ends with request_timeout long
            // before the tenth page, however the pages fall around the deadline.
            stream_options o;
            o.stream_timeout = std::chrono::milliseconds(350);
            o.prefetch = 0;
            auto pager = s.stream(statement(query).page_size(100), o);
            const auto start = std::chrono::steady_clock::now();
            std::size_t pages = 0;
            error_code ec;
            std::string what;
            for (;;) {
                auto [e, page] = co_await pager.next_page(asio::as_tuple(asio::use_awaitable));
                if (e) {
                    ec = e;
                    what = page.result().diagnostics().attempts.empty() ? "" : page.result().diagnostics().attempts.back().message;
                    break;
                }
                if (!page) break;
                ++pages;
            }
            const auto took = std::chrono::steady_clock::now() - start;
            CHECK(ec == client_errc::request_timeout);
            CHECK(pages >= 1);
            CHECK(pages < 10);
            CHECK(took < std::chrono::milliseconds(1000));  // the stream's 350 ms, not ten pages' 1000 ms
            INFO(what);
        }
        co_await s.close();
    });
}
