// The session against simulated nodes: completion tokens, errors with diagnostics, prepared statements
// (cached, deduplicated), batches, the middleware chain, timeouts, cancellation and round robin.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

#include <future>
#include <thread>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;

namespace {

constexpr std::uint16_t port = 19052;

session_params params_for(const sim::cluster& c) {
    auto p = cqlcoro::test::sim_session_params(c);
    p.contact_points.clear();
    for (std::size_t i = 1; i <= c.size(); ++i) p.contact_points.push_back(c.address(i));
    return p;
}

sim::rows_answer users() {
    return sim::rows({sim::column("id", cql_type::of(type_kind::int_)), sim::column("name", cql_type::of(type_kind::varchar))})
        .row(1, "ada")
        .row(2, "brian");
}

// Requests of the application (the control connection's queries of system tables left out).
std::size_t count(const sim::cluster& c, protocol::opcode op) {
    std::size_t n = 0;
    for (const auto& r : c.requests()) n += r.op == op && r.query.find("FROM system") == std::string::npos;
    return n;
}

}  // namespace

TEST_CASE("session: execute with the default token returns rows; errors throw with diagnostics") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "SELECT id, name FROM ks.users"}, users());
    c.prime({.query = "SELECT broken"}, {protocol::error_response{0x2200, "Undefined column name broken", {}}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        CHECK(s.protocol_version() == 5);
        auto rs = co_await s.execute(statement("SELECT id, name FROM ks.users"));
        REQUIRE(rs.size() == 2);
        CHECK(rs.one().get<std::string>("name") == "ada");
        CHECK(rs.rows()[1].get<int>("id") == 2);
        CHECK(rs.coordinator() == "127.0.0.1:19052");
        CHECK_FALSE(rs.has_more_pages());
        try {
            co_await s.execute(statement("SELECT broken"));
            FAIL("a server error did not throw");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == server_errc::invalid);
            CHECK_THAT(std::string(e.what()), ContainsSubstring("127.0.0.1:19052: Undefined column name broken"));
            REQUIRE(e.diagnostics().server);
            CHECK(e.diagnostics().server->message == "Undefined column name broken");
            CHECK(e.diagnostics().attempts.size() == 1);
        }
        // No-throw style: the error code and the diagnostics in the result.
        auto [ec, r] = co_await s.execute(statement("SELECT broken"), asio::as_tuple(asio::use_awaitable));
        CHECK(ec == server_errc::invalid);
        CHECK(r.diagnostics().host == "127.0.0.1:19052");
        co_await s.close();
    });
}

TEST_CASE("session: callbacks and futures complete on the io_context threads", "[threads]") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "SELECT id, name FROM ks.users"}, users());
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    auto s = asio::co_spawn(io, session::connect(io.get_executor(), params_for(c)), asio::use_future).get();
    // use_future: the exception_ptr form becomes the future's exception.
    auto fut = s.execute(statement("SELECT id, name FROM ks.users"), with_diagnostics(asio::use_future));
    CHECK(fut.get().size() == 2);
    std::promise<std::pair<error_code, std::size_t>> done;
    s.execute(statement("SELECT id, name FROM ks.users"), [&](error_code ec, result r) { done.set_value({ec, r.size()}); });
    auto [ec, n] = done.get_future().get();
    CHECK_FALSE(ec);
    CHECK(n == 2);
    asio::co_spawn(io, s.close(), asio::use_future).get();
    work.reset();
    runner.join();
}

TEST_CASE("session: prepare caches by text, shares concurrent prepares, and binds against the markers") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "SELECT name FROM ks.users WHERE id = ?"},
            {sim::rows({sim::column("name", cql_type::of(type_kind::varchar))}).row("ada"), std::chrono::milliseconds(0),
             {sim::column("id", cql_type::of(type_kind::int_))}, {0}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        // Three prepares of the same text at once: one PREPARE reaches the node.
        std::vector<std::future<prepared_statement>> many;
        for (int i = 0; i < 3; ++i)
            many.push_back(asio::co_spawn(ex, s.prepare("SELECT name FROM ks.users WHERE id = ?"), asio::use_future));
        auto p = co_await s.prepare("SELECT name FROM ks.users WHERE id = ?");
        CHECK(count(c, protocol::opcode::prepare) == 1);
        CHECK(p.markers().size() == 1);
        CHECK(p.data().pk_indexes == std::vector<std::uint16_t>{0});
        auto rs = co_await s.execute(p.bind(1));
        CHECK(rs.one().get<std::string>(0) == "ada");
        CHECK(count(c, protocol::opcode::execute) == 1);
        co_await s.close();
        for (auto& f : many) CHECK(f.get().query() == p.query());
    });
}

TEST_CASE("session: batches and the per-request timeout") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "hang"}, {sim::hang{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        auto b = batch(batch_kind::unlogged)
                     .add(statement("INSERT INTO ks.t (k) VALUES (?)", 1))
                     .add(statement("INSERT INTO ks.t (k) VALUES (?)", 2));
        co_await s.execute(std::move(b));
        CHECK(count(c, protocol::opcode::batch) == 1);

        auto [ec, r] = co_await s.execute(statement("hang").timeout(std::chrono::milliseconds(100)), asio::as_tuple(asio::use_awaitable));
        CHECK(ec == client_errc::request_timeout);
        REQUIRE_FALSE(r.diagnostics().attempts.empty());
        CHECK(r.diagnostics().attempts.back().ec == client_errc::request_timeout);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("session: cancellation through the token's slot completes with operation_aborted") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "hang"}, {sim::hang{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        asio::cancellation_signal cancel;
        asio::steady_timer fire(ex, std::chrono::milliseconds(50));
        fire.async_wait([&](error_code) { cancel.emit(asio::cancellation_type::terminal); });
        auto [ec, r] = co_await s.execute(statement("hang"), asio::bind_cancellation_slot(cancel.slot(), asio::as_tuple(asio::use_awaitable)));
        CHECK(ec == asio::error::operation_aborted);
        // The session still works.
        auto again = co_await s.execute(statement("SELECT 1"));
        CHECK(again.empty());
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("session: middlewares see every request and its outcome, and may answer themselves") {
    sim::cluster c({.nodes = 1, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        std::vector<std::string> log;
        middleware logging = [&](request& r, next_layer next) -> asio::awaitable<outcome> {
            auto o = co_await next(r);
            log.push_back(fmt::format("{} -> {}", r.text(), o.ec ? o.ec.message() : "ok"));
            co_return o;
        };
        middleware blocking = [](request& r, next_layer next) -> asio::awaitable<outcome> {
            if (r.text() == "blocked") co_return outcome{client_errc::invalid_statement, {}};
            co_return co_await next(r);
        };
        auto p = params_for(c);
        p.chain = {cqlcoro::built_in_layer::deadline, logging, blocking, cqlcoro::built_in_layer::speculative_execution, cqlcoro::built_in_layer::retry};
        auto s = co_await session::connect(ex, p);
        co_await s.execute(statement("SELECT 1"));
        auto [ec, r] = co_await s.execute(statement("blocked"), asio::as_tuple(asio::use_awaitable));
        CHECK(ec == client_errc::invalid_statement);
        REQUIRE(log.size() == 2);
        CHECK(log[0] == "SELECT 1 -> ok");
        CHECK_THAT(log[1], ContainsSubstring("blocked -> "));
        CHECK(count(c, protocol::opcode::query) == 1);  // the blocked one never left
        co_await s.close();
    });
}

TEST_CASE("session: round robin over the contact points; a stopped node is skipped") {
    sim::cluster c({.nodes = 3, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        c.clear_requests();
        for (int i = 0; i < 9; ++i) co_await s.execute(statement("SELECT 1"));
        std::array<int, 4> per_node{};
        for (const auto& r : c.requests()) ++per_node[r.node];
        CHECK(per_node[1] == 3);
        CHECK(per_node[2] == 3);
        CHECK(per_node[3] == 3);
        c.stop(2);
        for (int i = 0; i < 6; ++i) {
            auto [ec, r] = co_await s.execute(statement("SELECT 1"), asio::as_tuple(asio::use_awaitable));
            // Written before the connection noticed the stop: may fail once; never lost or hung.
            if (ec) CHECK(ec == client_errc::connection_closed_sent);
        }
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("session: every server error kind arrives with its code and structured fields") {
    sim::cluster c({.nodes = 1, .port = port});
    using detail_t = decltype(server_error_info::detail);
    const std::vector<std::pair<server_errc, detail_t>> kinds{
        {server_errc::server_error, {}},
        {server_errc::bad_credentials, {}},
        {server_errc::unavailable, unavailable_error{consistency::quorum, 3, 1}},
        {server_errc::overloaded, {}},
        {server_errc::is_bootstrapping, {}},
        {server_errc::truncate_error, {}},
        {server_errc::write_timeout, write_timeout_error{consistency::two, 1, 2, "BATCH_LOG", std::nullopt}},
        {server_errc::read_timeout, read_timeout_error{consistency::one, 0, 1, true}},
        {server_errc::read_failure, read_failure_error{consistency::one, 0, 1, 1, {}, false}},
        {server_errc::function_failure, function_failure_error{"ks", "fn", {"int"}}},
        {server_errc::write_failure, write_failure_error{consistency::one, 0, 1, 1, {}, "SIMPLE"}},
        {server_errc::cdc_write_failure, {}},
        {server_errc::cas_write_unknown, cas_write_unknown_error{consistency::serial, 1, 2}},
        {server_errc::syntax_error, {}},
        {server_errc::unauthorized, {}},
        {server_errc::invalid, {}},
        {server_errc::config_error, {}},
        {server_errc::already_exists, already_exists_error{"ks", "t"}},
    };
    for (const auto& [code, detail] : kinds)
        c.prime({.query = fmt::format("fail {}", static_cast<int>(code))},
                {protocol::error_response{static_cast<std::int32_t>(code), fmt::format("failure {}", static_cast<int>(code)), detail}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        for (const auto& [code, detail] : kinds) {
            auto [ec, r] = co_await s.execute(statement(fmt::format("fail {}", static_cast<int>(code))), asio::as_tuple(asio::use_awaitable));
            INFO(error_code(code).message());
            CHECK(ec == code);
            REQUIRE(r.diagnostics().server);
            CHECK(r.diagnostics().server->message == fmt::format("failure {}", static_cast<int>(code)));
            CHECK(r.diagnostics().server->detail.index() == detail.index());
        }
        const auto wt = co_await s.execute(statement(fmt::format("fail {}", static_cast<int>(server_errc::write_timeout))),
                                           asio::as_tuple(asio::use_awaitable));
        CHECK(std::get<write_timeout_error>(std::get<1>(wt).diagnostics().server->detail).write_type == "BATCH_LOG");
        co_await s.close();
    });
}

TEST_CASE("session: v5 options (keyspace per request, now_in_seconds) and unset values reach the node") {
    sim::cluster c({.nodes = 1, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        REQUIRE(s.protocol_version() == 5);
        c.clear_requests();
        co_await s.execute(statement("UPDATE t SET a = ?, b = ? WHERE k = 1", std::int32_t{1}, unset).keyspace("other").now_in_seconds(1700000000));
        co_await s.execute(batch().add(statement("UPDATE t SET a = 2 WHERE k = 1")).keyspace("bks").now_in_seconds(42));
        const auto reqs = c.requests();
        REQUIRE(reqs.size() == 2);
        CHECK(reqs[0].keyspace == "other");
        CHECK(reqs[0].now_in_seconds == 1700000000);
        CHECK(reqs[0].unset == std::vector<bool>{false, true});
        CHECK(reqs[1].keyspace == "bks");
        CHECK(reqs[1].now_in_seconds == 42);
        co_await s.close();
    });
    // Below v5 the same options are refused before sending, with the reason.
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.protocol_version = 4;
        auto s = co_await session::connect(ex, p);
        auto [ec, r] = co_await s.execute(statement("SELECT 1").keyspace("ks"), asio::as_tuple(asio::use_awaitable));
        CHECK(ec == protocol_errc::keyspace_not_supported);
        co_await s.close();
    });
}

TEST_CASE("session: cancellations racing slow responses: every request completes exactly once") {
    sim::cluster c({.nodes = 1, .port = port, .record_requests = false});
    for (int d = 0; d < 8; ++d) c.prime({.query = fmt::format("slow {}", d)}, {users(), std::chrono::milliseconds(d * 5)});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        constexpr int n = 400;
        std::vector<int> completions(n, 0);
        int ok = 0, aborted = 0, other = 0, finished = 0;
        asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
        // The timers may fire after every request has completed and this body has returned: they share
        // ownership of the signals rather than point into this frame.
        auto signals = std::make_shared<std::vector<std::unique_ptr<asio::cancellation_signal>>>();
        std::vector<std::unique_ptr<asio::steady_timer>> cancellers;
        for (int i = 0; i < n; ++i) {
            signals->push_back(std::make_unique<asio::cancellation_signal>());
            s.execute(statement(fmt::format("slow {}", i % 8)), asio::bind_cancellation_slot(signals->back()->slot(), [&, i](error_code ec, result r) {
                ++completions[static_cast<std::size_t>(i)];
                if (!ec && r.size() == 2) ++ok;
                else if (ec == asio::error::operation_aborted) ++aborted;
                else ++other;
                if (++finished == n) all_done.cancel();
            }));
            // Cancel some at once, some around when their answer arrives, some never.
            if (i % 3 != 0) {
                cancellers.push_back(std::make_unique<asio::steady_timer>(ex, std::chrono::milliseconds((i * 7) % 40)));
                cancellers.back()->async_wait([signals, i](error_code ec) {
                    if (!ec) (*signals)[static_cast<std::size_t>(i)]->emit(asio::cancellation_type::terminal);
                });
            }
        }
        if (finished < n) co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
        for (int i = 0; i < n; ++i) CHECK(completions[static_cast<std::size_t>(i)] == 1);
        CHECK(other == 0);
        CHECK(ok + aborted == n);
        CHECK(ok >= n / 3);  // the uncancelled third always succeeds
        // The connection is healthy afterwards.
        auto rs = co_await s.execute(statement("slow 0"));
        CHECK(rs.size() == 2);
        co_await s.close();
    });
}

TEST_CASE("session: cancel_after bounds a request, with any token") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "hang"}, {sim::hang{}});
    c.prime({.query = "SELECT id, name FROM ks.users"}, users());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        auto [ec, r] = co_await s.execute(statement("hang"), cancel_after(std::chrono::milliseconds(50), asio::as_tuple(asio::use_awaitable)));
        CHECK(ec == asio::error::operation_aborted);
        try {
            co_await s.execute(statement("hang"), cancel_after(std::chrono::milliseconds(50)));  // the default token: throws
            FAIL("cancel_after did not cancel");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == asio::error::operation_aborted);
        }
        // A request that answers in time is not disturbed, and its timer does not fire later.
        auto rs = co_await s.execute(statement("SELECT id, name FROM ks.users"), cancel_after(std::chrono::seconds(5)));
        CHECK(rs.size() == 2);
        co_await s.close(std::chrono::milliseconds(100));
    });
}

TEST_CASE("session: an answer that does not decode fails its request only; the connection serves on") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "garbled"}, {sim::undecodable{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        auto [ec, r] = co_await s.execute(statement("garbled"), asio::as_tuple(asio::use_awaitable));
        CHECK(ec.category() == protocol_category());
        REQUIRE(r.diagnostics().attempts.size() == 1);
        CHECK_THAT(r.diagnostics().attempts[0].message, ContainsSubstring("malformed answer"));
        auto ok = co_await s.execute(statement("SELECT 1"));  // the framing held: same connection, still open
        CHECK(ok.empty());
        CHECK(s.metrics().nodes.at(0).open_connections == 1);
        co_await s.close();
    });
}

TEST_CASE("session: server warnings reach the result (v4+; Cassandra 2.1 sends none)") {
    sim::cluster c({.nodes = 1, .port = port});
    sim::prime_then warned{sim::void_answer{}};
    warned.warnings = {"Aggregation query used without partition key", "Batch of prepared statements is of size 6000"};
    c.prime({.query = "SELECT count(*) FROM t"}, warned);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        auto r = co_await s.execute(statement("SELECT count(*) FROM t"));
        REQUIRE(r.warnings().size() == 2);
        CHECK(r.warnings()[0] == "Aggregation query used without partition key");
        CHECK(r.warnings()[1] == "Batch of prepared statements is of size 6000");
        auto plain = co_await s.execute(statement("SELECT 1"));
        CHECK(plain.warnings().empty());
        co_await s.close();
    });
}
