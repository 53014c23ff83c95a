// Retries end to end against simulated nodes: the decision table, outcomes in errors, the retry
// budget, max_attempts, the attempt timeout, the fixed write timestamp and the downgrading policy.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

#include <set>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;

namespace {

constexpr std::uint16_t port = 19072;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using namespace std::chrono_literals;

session_params params_for(const sim::cluster& c) {
    auto p = cqlcoro::test::sim_session_params(c);
    // Backoff of a millisecond or two, so tests of overloaded nodes do not wait.
    p.retry = std::make_shared<default_retry_policy>(retry_backoff{.base = 1ms, .cap = 2ms});
    return p;
}

const auto one_row = sim::one_int_row;

sim::prime_then server_says(server_errc code, decltype(server_error_info::detail) detail = {}) {
    return {protocol::error_response{static_cast<std::int32_t>(code), fmt::format("primed {}", static_cast<int>(code)), std::move(detail)}};
}


}  // namespace

TEST_CASE("retry: UNAVAILABLE moves to the next node once; the request succeeds there and says so") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 1";
    c.prime({.query = q, .node = 1}, server_says(server_errc::unavailable, unavailable_error{consistency::quorum, 2, 1}));
    c.prime({.query = q, .node = 2}, one_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        std::size_t retried = 0;
        for (int i = 0; i < 4; ++i) {  // round robin: two of four start at node 1
            auto r = co_await s.execute(statement(q));
            CHECK(r.size() == 1);
            CHECK(r.coordinator() == c.address(2) + ":" + std::to_string(port));
            if (r.diagnostics().retries == 1) {
                ++retried;
                REQUIRE(r.diagnostics().attempts.size() == 2);  // the failure, then the answer
                const auto& a = r.diagnostics().attempts[0];
                CHECK(a.ec == server_errc::unavailable);
                CHECK(a.outcome == request_outcome::rejected);
                CHECK(a.decision == retry_action::retry_next_node);
                const auto& answer = r.diagnostics().attempts[1];
                CHECK_FALSE(answer.ec);
                CHECK(answer.outcome == request_outcome::succeeded);
                CHECK(answer.decision == retry_action::completed);
                CHECK(answer.host == r.coordinator());
                CHECK(answer.execution == 0);
                CHECK(a.end <= answer.start);  // the retry starts after the failure ended
                CHECK(answer.start <= answer.end);
            }
        }
        CHECK(retried == 2);
        CHECK(s.retry_metrics().retries_unavailable == 2);
        co_await s.close();
    });
}

TEST_CASE("retry: UNAVAILABLE everywhere fails with the server's error after one retry, outcome rejected") {
    sim::cluster c({.nodes = 3, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 2";
    c.prime({.query = q}, server_says(server_errc::unavailable, unavailable_error{consistency::quorum, 2, 1}));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        auto [ec, r] = co_await s.execute(statement(q), use_tuple);
        CHECK(ec == server_errc::unavailable);
        const auto& d = r.diagnostics();
        REQUIRE(d.attempts.size() == 2);
        CHECK(d.attempts[0].host != d.attempts[1].host);  // the next node, never the same one
        CHECK(d.attempts[0].decision == retry_action::retry_next_node);
        CHECK(d.attempts[1].decision == retry_action::rethrow);
        CHECK(d.outcome == request_outcome::rejected);
        CHECK(d.retries == 1);
        REQUIRE(d.server);
        CHECK(std::get<unavailable_error>(d.server->detail).alive == 1);
        CHECK(sim::requests_of(c, q).size() == 2);
        CHECK(s.retry_metrics().failed_by_outcome[static_cast<std::size_t>(request_outcome::rejected)] == 1);
        co_await s.close();
    });
}

TEST_CASE("retry: a read timeout with enough replicas but no data goes to the same node once") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 3";
    c.prime({.query = q}, server_says(server_errc::read_timeout, read_timeout_error{consistency::local_quorum, 2, 2, false}));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        auto [ec, r] = co_await s.execute(statement(q), use_tuple);
        CHECK(ec == server_errc::read_timeout);
        const auto& d = r.diagnostics();
        REQUIRE(d.attempts.size() == 2);
        CHECK(d.attempts[0].host == d.attempts[1].host);
        CHECK(d.attempts[0].decision == retry_action::retry_same_node);
        CHECK(d.outcome == request_outcome::failed);
        const auto got = sim::requests_of(c, q);
        REQUIRE(got.size() == 2);
        CHECK(got[0].node == got[1].node);
        co_await s.close();
    });
}

TEST_CASE("retry: a write timeout is not retried and says maybe applied, not timed out") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "INSERT INTO ks.t (k, v) VALUES (4, 4)";
    c.prime({.query = q}, server_says(server_errc::write_timeout, write_timeout_error{consistency::local_quorum, 1, 2, "SIMPLE", {}}));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        try {
            co_await s.execute(statement(q));
            FAIL("a write timeout succeeded");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == server_errc::write_timeout);
            CHECK(e.diagnostics().outcome == request_outcome::maybe_applied);
            CHECK(e.diagnostics().attempts.size() == 1);
            CHECK_THAT(std::string(e.what()), ContainsSubstring("[maybe applied: the write may or may not have been executed]"));
        }
        CHECK(sim::requests_of(c, q).size() == 1);
        co_await s.close();
    });
}

TEST_CASE("retry: OVERLOADED goes to the next node for idempotent statements only") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string read = "SELECT v FROM ks.t WHERE k = 5";
    const std::string lwt = "INSERT INTO ks.t (k, v) VALUES (5, 5) IF NOT EXISTS";
    c.prime({.query = read, .node = 1}, server_says(server_errc::overloaded));
    c.prime({.query = read, .node = 2}, one_row());
    c.prime({.query = lwt}, server_says(server_errc::overloaded));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        for (int i = 0; i < 4; ++i) {
            auto [ec, r] = co_await s.execute(statement(read), use_tuple);
            CHECK_FALSE(ec);
        }
        CHECK(s.retry_metrics().retries_overloaded == 2);
        auto [ec, r] = co_await s.execute(statement(lwt), use_tuple);  // a conditional write: never retried
        CHECK(ec == server_errc::overloaded);
        CHECK(r.diagnostics().attempts.size() == 1);
        CHECK(r.diagnostics().outcome == request_outcome::maybe_applied);
        CHECK(sim::requests_of(c, lwt).size() == 1);
        // The application's word wins over the text: the same read, said not idempotent, is not retried.
        std::size_t failed = 0;
        for (int i = 0; i < 2; ++i) {
            auto [ec2, r2] = co_await s.execute(statement(read).idempotent(false), use_tuple);
            failed += ec2 == server_errc::overloaded ? 1 : 0;
        }
        CHECK(failed == 1);
        CHECK(s.retry_metrics().retries_overloaded == 2);
        co_await s.close();
    });
}

TEST_CASE("retry: a connection lost after the write retries an idempotent read; a non-idempotent write fails maybe applied") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string read = "SELECT v FROM ks.t WHERE k = 6";
    const std::string counter = "UPDATE ks.c SET n = n + 1 WHERE k = 6";
    c.prime({.query = read, .node = 1}, {sim::close_connection{}});
    c.prime({.query = read, .node = 2}, one_row());
    c.prime({.query = counter}, {sim::close_connection{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.reconnection = reconnection_policy::constant(10ms);
        // The two reads below start at each node in turn (the rotation); the health order would let the
        // node whose connection was just replaced yield its turn while it warms up.
        p.health.enabled = false;
        auto s = co_await session::connect(ex, p);
        auto [ec, r] = co_await s.execute(statement(counter), use_tuple);
        CHECK(ec == client_errc::connection_closed_sent);
        CHECK(r.diagnostics().outcome == request_outcome::maybe_applied);
        CHECK(r.diagnostics().attempts.size() == 1);
        // The read: whichever node it starts at, it succeeds.
        for (int i = 0; i < 2; ++i) {
            co_await cqlcoro::test::yield_until([&] {
                for (const auto& h : s.metrics().nodes)
                    if (h.open_connections == 0) return false;
                return true;
            }, 10'000'000);
            auto [rec, rr] = co_await s.execute(statement(read), use_tuple);
            CHECK_FALSE(rec);
        }
        CHECK(s.retry_metrics().retries_connection_lost == 1);
        co_await s.close();
    });
}

TEST_CASE("retry: the retry budget stops a retry storm under 100% OVERLOADED") {
    sim::cluster c({.nodes = 3, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 7";
    c.prime({.query = q}, server_says(server_errc::overloaded));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.retry_budget = {.ratio = 0.2, .min_per_second = 1, .ttl = 10s};
        auto s = co_await session::connect(ex, p);
        c.clear_requests();
        for (int i = 0; i < 200; ++i) {
            auto [ec, r] = co_await s.execute(statement(q), use_tuple);
            CHECK(ec == server_errc::overloaded);
        }
        const auto sent = sim::requests_of(c, q).size();
        const auto m = s.retry_metrics();
        INFO("sent " << sent << ", retries " << m.retries << ", denied " << m.budget_denials);
        // Without the budget: 3 attempts each, 600. With it: 200 + 20% of 200 + the floor of 10 (1/s over 10 s).
        CHECK(sent <= 200 + 40 + 10);
        CHECK(m.retries == sent - 200);
        CHECK(m.budget_denials > 100);
        co_await s.close();
    });
}

TEST_CASE("retry: max_attempts caps the attempts that reach a node") {
    sim::cluster c({.nodes = 3, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 8";
    c.prime({.query = q}, server_says(server_errc::overloaded));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.max_attempts = 2;
        auto s = co_await session::connect(ex, p);
        auto [ec, r] = co_await s.execute(statement(q), use_tuple);
        CHECK(ec == server_errc::overloaded);
        REQUIRE(r.diagnostics().attempts.size() == 2);
        CHECK_THAT(r.diagnostics().attempts[1].message, ContainsSubstring("not retried: max_attempts 2 reached"));
        CHECK(sim::requests_of(c, q).size() == 2);
        CHECK(s.retry_metrics().attempts_exhausted == 1);
        co_await s.close();
    });
}

TEST_CASE("retry: the attempt timeout abandons a hung node, and the next node answers within the request timeout") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 9";
    c.prime({.query = q, .node = 1}, {sim::hang{}});
    c.prime({.query = q, .node = 2}, one_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.attempt_timeout = 200ms;
        p.request_timeout = 10s;
        auto s = co_await session::connect(ex, p);
        std::size_t abandoned = 0;
        for (int i = 0; i < 2; ++i) {
            auto [ec, r] = co_await s.execute(statement(q), use_tuple);
            CHECK_FALSE(ec);
            REQUIRE_FALSE(r.diagnostics().attempts.empty());
            CHECK(r.diagnostics().attempts.back().outcome == request_outcome::succeeded);
            if (r.diagnostics().attempts.size() == 2) {
                ++abandoned;
                const auto& a = r.diagnostics().attempts[0];
                CHECK(a.ec == client_errc::request_timeout);
                CHECK(a.decision == retry_action::retry_next_node);
                CHECK_THAT(a.message, ContainsSubstring("attempt timeout of 200 ms"));
            }
        }
        CHECK(abandoned == 1);
        CHECK(s.retry_metrics().retries_connection_lost == 1);
        co_await s.close();
    });
}

TEST_CASE("retry: every attempt of a request carries the same client timestamp; a statement's own wins") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "INSERT INTO ks.t (k, v) VALUES (10, 10)";
    c.prime({.query = q}, server_says(server_errc::unavailable, unavailable_error{consistency::quorum, 2, 1}));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        co_await s.execute(statement(q), use_tuple);
        auto got = sim::requests_of(c, q);
        REQUIRE(got.size() == 2);
        REQUIRE(got[0].timestamp);
        CHECK(got[0].timestamp == got[1].timestamp);
        const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
        CHECK(*got[0].timestamp <= now_us);
        CHECK(*got[0].timestamp > now_us - 60'000'000);
        c.clear_requests();
        co_await s.execute(statement(q).timestamp(42), use_tuple);
        got = sim::requests_of(c, q);
        REQUIRE(got.size() == 2);
        CHECK(got[0].timestamp == 42);
        CHECK(got[1].timestamp == 42);
        // Two requests never share a timestamp, however fast.
        std::set<std::int64_t> stamps;
        c.clear_requests();
        for (int i = 0; i < 20; ++i) co_await s.execute(statement("SELECT v FROM ks.t WHERE k = 11"), use_tuple);
        for (const auto& r : c.requests())
            if (r.timestamp && r.query == "SELECT v FROM ks.t WHERE k = 11") stamps.insert(*r.timestamp);
        CHECK(stamps.size() == 20);
        co_await s.close();
    });
}

TEST_CASE("retry: the downgrading policy retries at the consistency the replicas can meet, and the result says so") {
    sim::cluster c({.nodes = 1, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 12";
    c.prime({.query = q, .cl = consistency::quorum}, server_says(server_errc::read_timeout, read_timeout_error{consistency::quorum, 1, 2, false}));
    c.prime({.query = q, .cl = consistency::one}, one_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.retry = std::make_shared<downgrading_consistency_retry_policy>();
        auto s = co_await session::connect(ex, p);
        auto r = co_await s.execute(statement(q).consistency(consistency::quorum));
        CHECK(r.size() == 1);
        REQUIRE(r.diagnostics().downgraded_to);
        CHECK(*r.diagnostics().downgraded_to == consistency::one);
        REQUIRE(r.diagnostics().attempts.size() == 2);
        CHECK(r.diagnostics().attempts[0].decision == retry_action::retry_same_node);
        CHECK(r.diagnostics().attempts[1].decision == retry_action::completed);
        const auto got = sim::requests_of(c, q);
        REQUIRE(got.size() == 2);
        CHECK(got[0].cl == consistency::quorum);
        CHECK(got[1].cl == consistency::one);
        CHECK(got[0].timestamp == got[1].timestamp);  // encoded again, with the same timestamp
        co_await s.close();
    });
}

TEST_CASE("retry: the fallthrough policy never retries") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 13";
    c.prime({.query = q}, server_says(server_errc::unavailable, unavailable_error{consistency::quorum, 2, 1}));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.retry = std::make_shared<fallthrough_retry_policy>();
        auto s = co_await session::connect(ex, p);
        auto [ec, r] = co_await s.execute(statement(q), use_tuple);
        CHECK(ec == server_errc::unavailable);
        CHECK(r.diagnostics().attempts.size() == 1);
        CHECK(sim::requests_of(c, q).size() == 1);
        co_await s.close();
    });
}
