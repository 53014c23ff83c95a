// The chain's order end to end against simulated nodes: where a middleware sits among the built-in
// layers decides what it sees (the request outside its deadline, the request within it, or each
// attempt at a node), what a middleware after `retry` returns is judged by the retry policy, and a
// chain that cannot work fails connect with a message that says how to fix it.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

#include <stdexcept>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;

namespace {

constexpr std::uint16_t port = 19092;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

session_params params_for(const sim::cluster& c) {
    auto p = cqlcoro::test::sim_session_params(c);
    // Backoff of a millisecond or two, so tests of overloaded nodes do not wait.
    p.retry = std::make_shared<default_retry_policy>(retry_backoff{.base = 1ms, .cap = 2ms});
    return p;
}

using sim::endpoint;
const auto one_row = sim::one_int_row;



// A chain with `before` ahead of the deadline, `within` between it and speculative execution, and
// `each` after retry (empty: none there).
std::vector<chain_member> chain_of(middleware before, middleware within, middleware each) {
    std::vector<chain_member> out;
    if (before) out.emplace_back(std::move(before));
    out.emplace_back(built_in_layer::deadline);
    if (within) out.emplace_back(std::move(within));
    out.emplace_back(built_in_layer::speculative_execution);
    out.emplace_back(built_in_layer::retry);
    if (each) out.emplace_back(std::move(each));
    return out;
}

// connect()'s error for a chain, or an empty string when it connects.
std::string connect_error(const sim::cluster& c, std::vector<chain_member> chain) {
    std::string what;
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.chain = std::move(chain);
        try {
            auto s = co_await session::connect(ex, p);
            co_await s.close();
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::invalid_configuration);
            what = e.what();
        }
    });
    return what;
}

middleware pass_through() {
    return [](request& r, next_layer next) -> asio::awaitable<outcome> { co_return co_await next(r); };
}

}  // namespace

TEST_CASE("chain: a chain whose built-in layers are missing, repeated or out of order fails connect, saying how to fix it") {
    sim::cluster c({.nodes = 1, .port = port});
    using L = built_in_layer;
    CHECK(connect_error(c, default_chain()).empty());
    CHECK(connect_error(c, chain_of(pass_through(), pass_through(), pass_through())).empty());
    c.clear_requests();
    CHECK_THAT(connect_error(c, {L::deadline, L::retry}), ContainsSubstring("no speculative_execution layer") &&
                                                             ContainsSubstring("no_speculative_execution"));
    CHECK_THAT(connect_error(c, {L::speculative_execution, L::retry}), ContainsSubstring("no deadline layer"));
    CHECK_THAT(connect_error(c, {L::deadline, L::speculative_execution, L::retry, L::retry}),
               ContainsSubstring("retry is there twice (chain[2] and chain[3])"));
    CHECK_THAT(connect_error(c, {L::deadline, L::retry, L::speculative_execution}),
               ContainsSubstring("speculative_execution (chain[2]) comes after retry") &&
                   ContainsSubstring("deadline, speculative_execution, retry"));
    CHECK_THAT(connect_error(c, {L::deadline, L::speculative_execution, pass_through(), L::retry}),
               ContainsSubstring("chain[2]: a middleware between speculative_execution and retry") &&
                   ContainsSubstring("after retry to see each attempt"));
    CHECK_THAT(connect_error(c, {L::deadline, middleware{}, L::speculative_execution, L::retry}),
               ContainsSubstring("chain[1] is an empty middleware"));
    CHECK(c.requests().empty());  // a bad chain is refused before any connection
}

TEST_CASE("chain: a middleware after retry sees each attempt on its node; the retry policy judges what comes back") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 1";
    c.prime({.query = q, .node = 1},
            sim::prime_then{protocol::error_response{static_cast<std::int32_t>(server_errc::unavailable), "primed unavailable",
                                                     unavailable_error{consistency::quorum, 2, 1}}});
    c.prime({.query = q, .node = 2}, one_row());
    struct seen_attempt {
        std::string host;
        std::size_t earlier = 0;  // attempts recorded before this one
        bool has_deadline = false;
        error_code ec;
    };
    std::vector<seen_attempt> log;
    std::size_t requests = 0;
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.chain = chain_of({},
                           [&](request& r, next_layer next) -> asio::awaitable<outcome> {
                               ++requests;
                               co_return co_await next(r);
                           },
                           [&](request& r, next_layer next) -> asio::awaitable<outcome> {
                               auto o = co_await next(r);
                               log.push_back({r.diagnostics.host, r.diagnostics.attempts.size(), r.deadline.has_value(), o.ec});
                               co_return o;
                           });
        auto s = co_await session::connect(ex, p);
        std::size_t retried = 0;
        for (int i = 0; i < 4; ++i) {  // round robin: two of four start at node 1
            log.clear();
            auto r = co_await s.execute(statement(q));
            CHECK(r.size() == 1);
            CHECK(r.coordinator() == endpoint(c, 2));
            const auto& d = r.diagnostics();
            if (d.retries == 0) {
                REQUIRE(log.size() == 1);
                CHECK(log[0].host == endpoint(c, 2));
                CHECK(d.attempts.size() == 1);
                continue;
            }
            ++retried;
            REQUIRE(log.size() == 2);  // the middleware saw both attempts, each on its own node
            CHECK(log[0].host == endpoint(c, 1));
            CHECK(log[0].earlier == 0);
            CHECK(log[0].ec == server_errc::unavailable);
            CHECK(log[1].host == endpoint(c, 2));
            CHECK(log[1].earlier == 1);  // the failed attempt is in the request's diagnostics by now
            CHECK_FALSE(log[1].ec);
            CHECK(log[0].has_deadline);
            REQUIRE(d.attempts.size() == 2);  // recorded as without the middleware
            CHECK(d.attempts[0].ec == server_errc::unavailable);
            CHECK(d.attempts[0].outcome == request_outcome::rejected);
            CHECK(d.attempts[0].decision == retry_action::retry_next_node);
            CHECK(d.attempts[1].outcome == request_outcome::succeeded);
        }
        CHECK(retried == 2);
        CHECK(requests == 4);  // the middleware within the deadline saw each request once
        CHECK(s.retry_metrics().retries_unavailable == 2);
        co_await s.close();
    });
}

TEST_CASE("chain: a middleware after retry may fail an attempt itself or change what is sent; the retry policy takes it from there") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 2";
    c.prime({.query = q}, one_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.chain = chain_of({}, {}, [&](request& r, next_layer next) -> asio::awaitable<outcome> {
            // Fault injection: each request's first attempt is overloaded without being sent.
            if (r.diagnostics.attempts.empty()) co_return outcome{server_errc::overloaded, {}};
            r.options().cl = consistency::two;  // what is sent is what the middleware passes on
            co_return co_await next(r);
        });
        auto s = co_await session::connect(ex, p);
        c.clear_requests();
        auto r = co_await s.execute(statement(q));
        CHECK(r.size() == 1);
        const auto& d = r.diagnostics();
        REQUIRE(d.attempts.size() == 2);
        CHECK(d.attempts[0].ec == server_errc::overloaded);
        CHECK(d.attempts[0].decision == retry_action::retry_next_node);  // the default policy's rule for OVERLOADED
        CHECK(d.attempts[1].outcome == request_outcome::succeeded);
        CHECK(d.attempts[0].host != d.attempts[1].host);
        CHECK(d.retries == 1);
        CHECK(s.retry_metrics().retries_overloaded == 1);
        auto sent = sim::requests_of(c, q);
        REQUIRE(sent.size() == 1);  // the injected failure never reached a node
        CHECK(sent[0].cl == consistency::two);
        CHECK(r.coordinator() == endpoint(c, sent[0].node));

        // A non-idempotent write is not retried after OVERLOADED: it fails with it, and says what happened.
        auto [ec, failed] = co_await s.execute(statement("UPDATE ks.t SET l = l + [1] WHERE k = 2"), use_tuple);
        CHECK(ec == server_errc::overloaded);
        REQUIRE(failed.diagnostics().attempts.size() == 1);
        CHECK(failed.diagnostics().attempts[0].decision == retry_action::rethrow);
        co_await s.close();
    });
}

TEST_CASE("chain: before the deadline each call of next gets a fresh deadline; within it every call shares one") {
    sim::cluster c({.nodes = 1, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 3";
    c.prime({.query = q}, one_row());
    std::vector<std::optional<steady::time_point>> outside, inside;
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.request_timeout = 5s;
        p.chain = chain_of(
            [&](request& r, next_layer next) -> asio::awaitable<outcome> {
                outside.push_back(r.deadline);
                auto first = co_await next(r);
                outside.push_back(r.deadline);  // its own again: none
                auto second = co_await next(r);
                co_return second.ec ? second : first;
            },
            [&](request& r, next_layer next) -> asio::awaitable<outcome> {
                inside.push_back(r.deadline);
                co_return co_await next(r);
            },
            {});
        auto s = co_await session::connect(ex, p);
        const auto before = steady::now();
        auto r = co_await s.execute(statement(q));
        CHECK(r.size() == 1);
        REQUIRE(outside.size() == 2);
        CHECK_FALSE(outside[0]);
        CHECK_FALSE(outside[1]);
        REQUIRE(inside.size() == 2);
        REQUIRE(inside[0]);
        REQUIRE(inside[1]);
        CHECK(*inside[0] >= before + 5s);
        CHECK(*inside[1] > *inside[0]);  // armed again, after the first pass's round trip
        CHECK(sim::requests_of(c, q).size() == 2);
        co_await s.close();
    });
}

TEST_CASE("chain: a middleware before the deadline may try a timed-out request again with a fresh deadline") {
    sim::cluster c({.nodes = 1, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 4";
    sim::prime_then slow{one_row()};
    slow.delay = 400ms;
    c.prime({.query = q}, slow);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.chain = chain_of(
            [&](request& r, next_layer next) -> asio::awaitable<outcome> {
                auto o = co_await next(r);
                if (o.ec != client_errc::request_timeout) co_return o;
                r.options().timeout = 10s;  // the second pass gets a deadline of its own
                co_return co_await next(r);
            },
            {}, {});
        auto s = co_await session::connect(ex, p);
        statement st(q);
        st.timeout(100ms);
        auto r = co_await s.execute(st);
        CHECK(r.size() == 1);
        CHECK(sim::requests_of(c, q).size() == 2);
        co_await s.close(100ms);
    });
}

TEST_CASE("chain: a middleware after retry that throws fails the request with its text, exactly once") {
    sim::cluster c({.nodes = 2, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.chain = chain_of({}, {}, [](request& r, next_layer next) -> asio::awaitable<outcome> {
            if (r.text() == "SELECT boom") throw std::runtime_error("boom");
            co_return co_await next(r);
        });
        auto s = co_await session::connect(ex, p);
        c.clear_requests();
        int completions = 0;
        error_code got;
        std::string message;
        try {
            co_await s.execute(statement("SELECT boom"));
        } catch (const cqlcoro::error& e) {
            got = e.boost_code();
            message = e.what();
        }
        ++completions;
        CHECK(got == asio::error::fault);
        CHECK_THAT(message, ContainsSubstring("a middleware after retry threw: boom"));
        CHECK_THAT(message, ContainsSubstring("[not sent"));
        CHECK(sim::requests_of(c, "SELECT boom").empty());
        CHECK(completions == 1);
        auto fine = co_await s.execute(statement("SELECT 1"));  // the session goes on
        CHECK(fine.empty());
        co_await s.close();
    });
}

TEST_CASE("chain: a request cancelled while a middleware after retry waits completes at once; nothing is sent") {
    sim::cluster c({.nodes = 1, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 5";
    c.prime({.query = q}, one_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        asio::steady_timer gate(ex, steady::time_point::max());
        outcome late;
        bool middleware_done = false;
        asio::steady_timer finished(ex, steady::time_point::max());
        auto p = params_for(c);
        p.chain = chain_of({}, {}, [&](request& r, next_layer next) -> asio::awaitable<outcome> {
            co_await gate.async_wait(use_tuple);  // held until the test lets go
            late = co_await next(r);             // the request is over by now: next refuses
            middleware_done = true;
            finished.cancel();
            co_return late;
        });
        auto s = co_await session::connect(ex, p);
        c.clear_requests();
        asio::cancellation_signal cancel;
        asio::steady_timer done(ex, steady::time_point::max());
        error_code ec;
        s.execute(statement(q), asio::bind_cancellation_slot(cancel.slot(), [&](error_code e, result) {
                      ec = e;
                      done.cancel();
                  }));
        asio::post(ex, [&] { cancel.emit(asio::cancellation_type::terminal); });
        co_await done.async_wait(use_tuple);
        CHECK(ec == asio::error::operation_aborted);
        CHECK_FALSE(middleware_done);
        gate.cancel();
        co_await finished.async_wait(use_tuple);
        CHECK(middleware_done);
        CHECK(late.ec == asio::error::operation_aborted);
        CHECK(sim::requests_of(c, q).empty());
        co_await s.close();
    });
}
