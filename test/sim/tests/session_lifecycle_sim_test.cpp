// The session's life as a new user meets it: empty handles, a session dropped without close(), a
// session used after close(), a forced protocol version, and a connection replaced for its orphans.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <thread>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;

namespace {

constexpr std::uint16_t port = 19062;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

session_params params_for(const sim::cluster& c) { return cqlcoro::test::sim_session_params(c); }

const auto one_row = sim::one_int_row;

// The message of what `f` throws, with its code.
template <class F>
std::pair<error_code, std::string> thrown_by(F f) {
    try {
        f();
    } catch (const cqlcoro::error& e) {
        return {e.boost_code(), e.what()};
    }
    return {};
}

}  // namespace

TEST_CASE("session lifecycle: an empty session gives empty_handle through each operation, never a crash") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor) -> asio::awaitable<void> {
        session empty;
        CHECK_FALSE(empty.valid());
        auto [ec, r] = co_await empty.execute(statement("SELECT 1"), use_tuple);
        CHECK(ec == client_errc::empty_handle);
        REQUIRE(r.diagnostics().attempts.size() == 1);
        CHECK_THAT(r.diagnostics().attempts[0].message, ContainsSubstring("assign it from session::connect()"));
        try {
            co_await empty.execute(statement("SELECT 1"));  // the default token throws
            FAIL("execute on an empty session did not fail");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::empty_handle);
            CHECK_THAT(std::string(e.what()), ContainsSubstring("execute() on an empty session"));
        }
        try {
            co_await empty.prepare("SELECT 1");
            FAIL("prepare on an empty session did not fail");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::empty_handle);
        }
        try {
            co_await empty.check_schema_agreement();
            FAIL("check_schema_agreement on an empty session did not fail");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::empty_handle);
        }
        CHECK(thrown_by([&] { (void)empty.stream(statement("SELECT 1")); }).first == client_errc::empty_handle);
        CHECK(thrown_by([&] { (void)empty.metadata(); }).first == client_errc::empty_handle);
        CHECK(thrown_by([&] { (void)empty.params(); }).first == client_errc::empty_handle);
        CHECK(empty.metrics().nodes.empty());
        CHECK(empty.protocol_version() == 0);
        co_await empty.close();  // nothing to close: a no-op, as for a socket that is not open
    });
}

TEST_CASE("session lifecycle: a moved-from session, an empty prepared statement and an empty pager fail clearly") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "SELECT v FROM ks.t"}, one_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        session moved_to = std::move(s);
        auto [ec, r] = co_await s.execute(statement("SELECT v FROM ks.t"), use_tuple);  // NOLINT(bugprone-use-after-move)
        CHECK(ec == client_errc::empty_handle);
        auto [ok, rows] = co_await moved_to.execute(statement("SELECT v FROM ks.t"), use_tuple);
        CHECK_FALSE(ok);
        CHECK(rows.size() == 1);

        prepared_statement none;
        CHECK_FALSE(none);
        auto [bind_code, bind_what] = thrown_by([&] { (void)none.bind(1); });
        CHECK(bind_code == client_errc::empty_handle);
        CHECK_THAT(bind_what, ContainsSubstring("assign it from session.prepare()"));
        CHECK(none.markers().empty());

        pager p;
        try {
            co_await p.next();
            FAIL("next() on an empty pager did not fail");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::empty_handle);
            CHECK_THAT(std::string(e.what()), ContainsSubstring("get one from session.stream()"));
            CHECK_THAT(std::string(e.what()), !ContainsSubstring("Bad file descriptor"));
            CHECK_THAT(std::string(e.what()), !ContainsSubstring("page 0"));
        }
        co_await moved_to.close();
    });
}

TEST_CASE("session lifecycle: dropping the last handle without close() shuts the session down and io.run() returns") {
    sim::cluster c({.nodes = 2, .port = port});
    c.prime({.query = "SELECT hang"}, {sim::hang{}});
    c.prime({.query = "SELECT v FROM ks.t"}, one_row());
    asio::io_context io;
    std::optional<std::pair<error_code, result>> hung;  // the request in flight when the handle goes
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto p = params_for(c);
            p.contact_points = {c.address(1), c.address(2)};
            p.heartbeat_interval = std::chrono::milliseconds(200);  // timers that must stop too
            p.request_timeout = std::chrono::minutes(10);           // the request cannot end by its own timeout
            auto s = co_await session::connect(io.get_executor(), p);
            co_await s.execute(statement("SELECT v FROM ks.t"));
            c.clear_requests();
            s.execute(statement("SELECT hang"), [&](error_code ec, result r) { hung.emplace(ec, std::move(r)); });
            co_await cqlcoro::test::yield_until([&] { return !c.requests().empty(); });  // written, never answered
            // `s` goes out of scope here without close(), as on a coroutine's error path.
        },
        asio::detached);
    const auto start = std::chrono::steady_clock::now();
    io.run_for(std::chrono::seconds(30));  // a bound on the test, not a synchronization: it returns when out of work
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(io.stopped());
    CHECK(took < std::chrono::seconds(10));
    REQUIRE(hung);
    CHECK(hung->first == client_errc::connection_closed_sent);  // written: it may have been executed
    REQUIRE_FALSE(hung->second.diagnostics().attempts.empty());
    CHECK_THAT(hung->second.diagnostics().attempts.back().message, ContainsSubstring("last handle was destroyed without close()"));
    // Every connection closed, the control one too (the nodes see the closes on their own thread).
    const auto bound = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (c.connection_count(1) + c.connection_count(2) != 0 && std::chrono::steady_clock::now() < bound) std::this_thread::yield();
    CHECK(c.connection_count(1) + c.connection_count(2) == 0);
}

TEST_CASE("session lifecycle: a closed session says session_closed for every operation") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "SELECT v FROM ks.t"}, one_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        co_await s.close();
        auto [ec, r] = co_await s.execute(statement("SELECT v FROM ks.t"), use_tuple);
        CHECK(ec == client_errc::session_closed);
        REQUIRE(r.diagnostics().attempts.size() == 1);
        CHECK_THAT(r.diagnostics().attempts[0].message, ContainsSubstring("close() was called"));
        try {
            co_await s.prepare("SELECT v FROM ks.t");
            FAIL("prepare after close did not fail");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::session_closed);
            CHECK_THAT(std::string(e.what()), !ContainsSubstring("connection"));
        }
        try {
            co_await s.check_schema_agreement();
            FAIL("check_schema_agreement after close did not fail");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::session_closed);
        }
        co_await s.close();  // twice is fine
    });
}

TEST_CASE("session lifecycle: a forced protocol version is exact; connect names the version the server speaks") {
    sim::cluster c({.nodes = 1, .port = port, .max_version = 3, .cassandra21_refusals = true});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        for (std::uint8_t v : {5, 4}) {
            auto p = params_for(c);
            p.protocol_version = v;
            try {
                co_await session::connect(ex, p);
                FAIL("protocol_version " << int(v) << " was lowered silently");
            } catch (const cqlcoro::error& e) {
                CHECK(e.boost_code() == protocol_errc::unsupported_version);
                CHECK_THAT(std::string(e.what()), ContainsSubstring(fmt::format("protocol v{} was asked for", v)));
                CHECK_THAT(std::string(e.what()), ContainsSubstring("speaks v3 at most"));
                CHECK_THAT(std::string(e.what()), ContainsSubstring("set protocol_version to 3, or to 0 to negotiate"));
            }
        }
        auto exact = params_for(c);
        exact.protocol_version = 3;
        auto s3 = co_await session::connect(ex, exact);
        CHECK(s3.protocol_version() == 3);
        co_await s3.close();
        auto s0 = co_await session::connect(ex, params_for(c));  // 0: negotiated
        CHECK(s0.protocol_version() == 3);
        co_await s0.close();
    });
}

TEST_CASE("session lifecycle: a connection over its orphan budget is replaced first, so no request fails for it") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "SELECT slow"}, {.answer = one_row(), .delay = std::chrono::milliseconds(300)});
    c.prime({.query = "SELECT v FROM ks.t"}, one_row());
    std::mutex m;
    std::vector<std::string> warnings;
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.orphan_budget = 8;
        p.logger = [&](log_level l, std::string_view text) {
            std::lock_guard lk(m);
            if (l == log_level::warn) warnings.emplace_back(text);
        };
        auto s = co_await session::connect(ex, p);
        CHECK(c.connection_count(1) == 2);  // the control connection and the pool's
        // Ten slow requests, written, then cancelled: ten orphaned stream ids, more than the budget.
        std::vector<std::unique_ptr<asio::cancellation_signal>> signals;
        std::size_t cancelled = 0;
        c.clear_requests();
        for (int i = 0; i < 10; ++i) {
            auto& sig = *signals.emplace_back(std::make_unique<asio::cancellation_signal>());
            s.execute(statement("SELECT slow"), asio::bind_cancellation_slot(sig.slot(), [&](error_code ec, result) {
                          CHECK(ec == asio::error::operation_aborted);
                          ++cancelled;
                      }));
        }
        co_await cqlcoro::test::yield_until([&] { return c.requests().size() >= 10; });  // all written
        for (auto& sig : signals) sig->emit(asio::cancellation_type::terminal);
        co_await cqlcoro::test::yield_until([&] { return cancelled == 10; });
        // Requests keep flowing while the replacement opens and the old connection drains.
        std::size_t ok = 0, failed = 0;
        for (int i = 0; i < 200; ++i) {
            auto [ec, r] = co_await s.execute(statement("SELECT v FROM ks.t"), use_tuple);
            if (ec) {
                ++failed;
                UNSCOPED_INFO(r.diagnostics().attempts.back().message);
            } else {
                ++ok;
            }
            if (i % 20 == 0) co_await asio::post(ex, asio::use_awaitable);
        }
        CHECK(failed == 0);
        CHECK(ok == 200);
        REQUIRE(s.metrics().nodes.size() == 1);
        CHECK(s.metrics().nodes[0].connections_replaced == 1);
        // The late answers come; the old connection, drained, closes: one pool connection again.
        co_await cqlcoro::test::yield_until([&] { return s.metrics().nodes[0].open_connections == 1 && c.connection_count(1) == 2; }, 10'000'000);
        CHECK(s.metrics().nodes[0].orphaned_streams == 0);
        {
            std::lock_guard lk(m);
            REQUIRE(warnings.size() == 1);
            CHECK_THAT(warnings[0], ContainsSubstring("127.0.0.1:19062: replacing a connection"));
            CHECK_THAT(warnings[0], ContainsSubstring("more than the orphan budget of 8"));
        }
        co_await s.close();
    });
}
