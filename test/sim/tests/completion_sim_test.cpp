// Every asynchronous operation takes a completion token: callbacks, as_tuple, use_future and
// cancellation reach connect, prepare, check_schema_agreement, fetch_trace, close and the pager's rows, and
// the default token throws the operation's own error, text and all.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/cqlcoro.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <thread>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t port = 19102;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
const std::string query = "SELECT id, name FROM ks.t";

session_params params_for(const sim::cluster& c) { return cqlcoro::test::sim_session_params(c); }

const auto table = cqlcoro::test::id_name_table;

}  // namespace

TEST_CASE("completion tokens: connect, prepare, check_schema_agreement and close complete into plain callbacks") {
    sim::cluster c({.nodes = 1, .port = port});
    asio::io_context io;
    std::vector<std::string> steps;
    session kept;
    session::connect(io.get_executor(), params_for(c), [&](error_code ec, session s) {
        steps.push_back(fmt::format("connect: {}", ec ? ec.message() : "ok"));
        kept = s;
        s.prepare("SELECT v FROM ks.t WHERE k = ?", [&, s](error_code ec, prepared_statement p) mutable {
            steps.push_back(fmt::format("prepare: {} {}", ec ? ec.message() : "ok", p ? "statement" : "empty"));
            s.check_schema_agreement(1s, [&, s](error_code ec, bool agreed) mutable {
                steps.push_back(fmt::format("agreement: {} {}", ec ? ec.message() : "ok", agreed));
                s.close(1s, [&](error_code ec) { steps.push_back(fmt::format("close: {}", ec ? ec.message() : "ok")); });
            });
        });
    });
    io.run();  // returns once the session is closed: nothing of it is left running
    REQUIRE(steps.size() == 4);
    CHECK(steps[0] == "connect: ok");
    CHECK(steps[1] == "prepare: ok statement");
    CHECK(steps[2] == "agreement: ok true");
    CHECK(steps[3] == "close: ok");
    CHECK(kept.valid());
}

TEST_CASE("completion tokens: with as_tuple a failure is a code; the default token throws the operation's own text") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        session_params nowhere;
        nowhere.contact_points = {"127.0.0.1"};
        nowhere.port = 19999;  // nothing listens there
        nowhere.connect_timeout = 2s;
        auto [ec, s] = co_await session::connect(ex, nowhere, use_tuple);
        CHECK(ec == client_errc::no_host_available);
        CHECK_FALSE(s.valid());
        try {
            co_await session::connect(ex, nowhere);
            FAIL("connect to a port where nothing listens succeeded");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::no_host_available);
            CHECK_THAT(std::string(e.what()), ContainsSubstring("127.0.0.1:19999"));
        }

        session_params bad = nowhere;
        bad.max_attempts = 0;
        auto [bad_ec, none] = co_await session::connect(ex, bad, use_tuple);
        CHECK(bad_ec == client_errc::invalid_configuration);

        session empty;
        auto [prep_ec, p] = co_await empty.prepare("SELECT 1", use_tuple);
        CHECK(prep_ec == client_errc::empty_handle);
        CHECK_FALSE(p);
        try {
            co_await empty.prepare("SELECT 1");
            FAIL("prepare on an empty session succeeded");
        } catch (const cqlcoro::error& e) {
            CHECK_THAT(std::string(e.what()), ContainsSubstring("prepare() on an empty session"));
        }
        auto [trace_ec, trace] = co_await empty.fetch_trace(uuid{}, {}, use_tuple);
        CHECK(trace_ec == client_errc::empty_handle);
        auto [close_ec] = co_await empty.close(1s, use_tuple);
        CHECK_FALSE(close_ec);
    });
}

TEST_CASE("completion tokens: use_future works from a thread that does not run the io_context", "[threads]") {
    sim::cluster c({.nodes = 1, .port = port});
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    auto s = session::connect(io.get_executor(), params_for(c), asio::use_future).get();
    CHECK(s.valid());
    auto agreed = s.check_schema_agreement(1s, asio::use_future).get();
    CHECK(agreed);
    s.close(1s, asio::use_future).get();
    auto after = s.prepare("SELECT 1", asio::use_future);
    try {
        after.get();
        FAIL("prepare after close succeeded");
    } catch (const boost::system::system_error& e) {  // use_future gives the code alone
        CHECK(e.code() == client_errc::session_closed);
    }
    work.reset();
    runner.join();
}

TEST_CASE("completion tokens: the pager's rows come through any token, and cancellation reaches a waiting next") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = query}, table(250));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        {
            auto pager = s.stream(statement(query).page_size(100));
            int n = 0;
            for (;;) {
                auto [ec, row] = co_await pager.next(use_tuple);
                REQUIRE_FALSE(ec);
                if (!row) break;
                CHECK(row->get<std::int32_t>(0) == n);
                ++n;
            }
            CHECK(n == 250);
        }
        {
            auto pager = s.stream(statement(query).page_size(100));
            auto [ec, first] = co_await pager.next_as<std::tuple<std::int32_t, std::string>>(use_tuple);
            REQUIRE_FALSE(ec);
            REQUIRE(first);
            CHECK(std::get<1>(*first) == "row0");
            auto [bad, wrong] = co_await pager.next_as<std::tuple<std::string, std::string>>(use_tuple);
            CHECK(bad == type_errc::type_mismatch);
        }

        c.clear_primes();
        c.prime({.query = query}, {sim::hang{}});
        auto pager = s.stream(statement(query));
        asio::cancellation_signal stop;
        std::optional<error_code> got;
        pager.next(asio::bind_cancellation_slot(stop.slot(), [&](error_code ec, std::optional<row_view>) { got = ec; }));
        co_await cqlcoro::test::yield_until([&] { return !sim::requests_of(c, query).empty(); });
        CHECK_FALSE(got);
        stop.emit(asio::cancellation_type::terminal);
        co_await cqlcoro::test::yield_until([&] { return got.has_value(); });
        CHECK(*got == asio::error::operation_aborted);
        co_await s.close(100ms);
    });
}
