// Speculative execution and the one deadline, end to end against simulated nodes: the hedge goes to
// the next node after its delay and the first answer wins, losers are recorded and cancelled,
// non-idempotent statements are never hedged, the retry budget caps hedges, adaptive delays learn from
// first attempts, a middleware's two calls of `next` share one deadline, and every request completes
// exactly once when answers, hedges and cancellations race on two threads.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <atomic>
#include <future>
#include <thread>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;

namespace {

constexpr std::uint16_t port = 19082;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using namespace std::chrono_literals;

session_params params_for(const sim::cluster& c) {
    auto p = cqlcoro::test::sim_session_params(c);
    p.request_timeout = 20s;
    return p;
}

using sim::endpoint;
const auto one_row = sim::one_int_row;

std::size_t seen_on(const sim::cluster& c, std::string_view query, std::size_t node) {
    std::size_t n = 0;
    for (auto& r : c.requests())
        if (r.query == query && r.node == node) ++n;
    return n;
}


}  // namespace

TEST_CASE("speculative: a slow node is hedged on the next node after the delay; the first answer wins and the loser is recorded") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 1";
    sim::prime_then slow{one_row()};
    slow.delay = 5s;  // far beyond the hedge: the answer must come from node 2
    c.prime({.query = q, .node = 1}, slow);
    c.prime({.query = q, .node = 2}, one_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.speculative_execution = std::make_shared<constant_speculative_execution>(50ms);
        auto s = co_await session::connect(ex, p);
        std::size_t hedged = 0;
        for (int i = 0; i < 2; ++i) {  // round robin: one of the two starts at the slow node
            auto r = co_await s.execute(statement(q));
            CHECK(r.size() == 1);
            CHECK(r.coordinator() == endpoint(c, 2));
            const auto& d = r.diagnostics();
            if (d.speculative_executions == 0) {
                REQUIRE(d.attempts.size() == 1);
                CHECK(d.attempts[0].decision == retry_action::completed);
                continue;
            }
            ++hedged;
            CHECK(d.speculative_executions == 1);
            REQUIRE(d.attempts.size() == 2);
            const auto& won = d.attempts[0];
            const auto& lost = d.attempts[1];
            CHECK(won.execution == 1);
            CHECK(won.host == endpoint(c, 2));
            CHECK(won.outcome == request_outcome::succeeded);
            CHECK(lost.execution == 0);
            CHECK(lost.host == endpoint(c, 1));
            CHECK(lost.decision == retry_action::abandoned);
            CHECK(lost.outcome == request_outcome::failed);  // a written read: nothing applied
            CHECK(won.start - lost.start >= 50ms);  // the hedge waited its delay after the write
            CHECK(won.end < lost.start + 5s);       // and did not wait for the slow node
        }
        CHECK(hedged == 1);
        CHECK(seen_on(c, q, 1) == 1);
        CHECK(seen_on(c, q, 2) == 2);
        const auto m = s.retry_metrics();
        CHECK(m.speculative_executions == 1);
        CHECK(m.speculative_wins == 1);
        // The loser was written, so its stream id waits for the late answer as an orphan.
        std::size_t orphans = 0;
        for (const auto& h : s.metrics().nodes) orphans += h.orphaned_streams;
        CHECK(orphans == 1);
        co_await s.close(100ms);
    });
}

TEST_CASE("speculative: a non-idempotent statement is never hedged; it waits for its node") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "UPDATE ks.t SET l = l + [1] WHERE k = 2";  // a list append: not idempotent
    sim::prime_then slow;
    slow.delay = 300ms;
    c.prime({.query = q}, slow);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.speculative_execution = std::make_shared<constant_speculative_execution>(10ms, 2);
        auto s = co_await session::connect(ex, p);
        for (int i = 0; i < 2; ++i) {
            auto r = co_await s.execute(statement(q));
            CHECK(r.diagnostics().speculative_executions == 0);
        }
        // The same text said idempotent by the application is hedged.
        auto r = co_await s.execute(statement(q).idempotent(true));
        CHECK(r.diagnostics().speculative_executions == 1);  // the plan has one more node (the policy allows two)
        co_await s.close(100ms);
    });
}

TEST_CASE("speculative: hedges draw from the retry budget; a denied hedge leaves the request on its node") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 3";
    sim::prime_then slow{one_row()};
    slow.delay = 200ms;
    c.prime({.query = q}, slow);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.speculative_execution = std::make_shared<constant_speculative_execution>(5ms);
        p.retry_budget = {.ratio = 0, .min_per_second = 0};
        auto s = co_await session::connect(ex, p);
        auto r = co_await s.execute(statement(q));
        CHECK(r.size() == 1);
        CHECK(r.diagnostics().speculative_executions == 0);
        CHECK(s.retry_metrics().speculative_denials == 1);
        CHECK(s.retry_metrics().speculative_executions == 0);
        CHECK(seen_on(c, q, 1) + seen_on(c, q, 2) == 1);
        co_await s.close(100ms);
    });
}

TEST_CASE("speculative: the adaptive delay falls back until it has samples, then hedges at the first attempts' percentile") {
    sim::cluster c({.nodes = 2, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = ?";
    // No partition key positions: not token-aware, so requests take turns at the two nodes.
    c.prime({.query = q}, sim::prime_then{one_row(), 0ms, {sim::column("k", cql_type::of(type_kind::int_))}, {}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.speculative_execution = std::make_shared<adaptive_speculative_execution>(
            adaptive_speculation_params{.percentile = 0.9, .floor = 1ms, .fallback = 10s, .min_samples = 20});
        auto s = co_await session::connect(ex, p);
        auto prepared = co_await s.prepare(q);
        for (int i = 0; i < 20; ++i) {
            auto r = co_await s.execute(prepared.bind(i));
            CHECK(r.diagnostics().speculative_executions == 0);
        }
        CHECK(prepared.data().first_attempts.count() == 20);
        // Now node 1 is slow: the p90 of fast first attempts is a few ms at most, far below 3 s.
        c.prime({.query = q, .node = 1}, sim::prime_then{one_row(), 3s, {sim::column("k", cql_type::of(type_kind::int_))}, {}});
        std::size_t hedged = 0;
        for (int i = 0; i < 2; ++i) {
            auto r = co_await s.execute(prepared.bind(100 + i));
            CHECK(r.coordinator() == endpoint(c, 2));
            hedged += r.diagnostics().speculative_executions;
        }
        CHECK(hedged == 1);
        CHECK(s.retry_metrics().speculative_wins == 1);
        co_await s.close(100ms);
    });
}

TEST_CASE("deadline: a middleware that calls next twice shares one deadline; the second call is not sent") {
    sim::cluster c({.nodes = 1, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 4";
    c.prime({.query = q}, {sim::hang{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c);
        p.request_timeout = 300ms;
        std::vector<error_code> calls;
        middleware twice = [&](request& r, next_layer next) -> asio::awaitable<outcome> {
            auto first = co_await next(r);
            calls.push_back(first.ec);
            auto second = co_await next(r);  // "try once more": within the same deadline, which has passed
            calls.push_back(second.ec);
            co_return second;
        };
        p.chain = {cqlcoro::built_in_layer::deadline, twice, cqlcoro::built_in_layer::speculative_execution, cqlcoro::built_in_layer::retry};
        auto s = co_await session::connect(ex, p);
        auto [ec, r] = co_await s.execute(statement(q), use_tuple);
        CHECK(ec == client_errc::request_timeout);
        REQUIRE(calls.size() == 2);
        CHECK(calls[0] == client_errc::request_timeout);
        CHECK(calls[1] == client_errc::request_timeout);
        CHECK(seen_on(c, q, 1) == 1);  // the second call found its deadline gone and never wrote
        CHECK(r.diagnostics().attempts.back().outcome == request_outcome::not_sent);
        co_await s.close(100ms);
    });
}

TEST_CASE("speculative: every request completes exactly once when answers, hedges and cancellations race on two threads", "[threads]") {
    sim::cluster c({.nodes = 3, .port = port});
    const std::string q = "SELECT v FROM ks.t WHERE k = 5";
    sim::prime_then soon{one_row()};
    soon.delay = 2ms;
    c.prime({.query = q, .node = 1}, soon);
    c.prime({.query = q, .node = 2}, one_row());
    sim::prime_then hung;
    hung.answer = sim::hang{};
    c.prime({.query = q, .node = 3}, hung);
    constexpr int total = 3000;
    std::vector<std::atomic<int>> completions(total);
    std::atomic<int> completed{0}, failed{0};
    asio::io_context io;
    std::promise<void> finished;
    auto p = params_for(c);
    p.request_timeout = 2s;
    p.speculative_execution = std::make_shared<constant_speculative_execution>(1ms, 2);
    p.retry_budget = {.ratio = 10, .min_per_second = 100000};
    std::optional<session> s;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        s = co_await session::connect(io.get_executor(), p);
        for (int i = 0; i < total; ++i) {
            auto done = [&, i](error_code ec, result) {
                if (completions[i].fetch_add(1) != 0) return;
                if (ec) failed.fetch_add(1);
                if (completed.fetch_add(1) + 1 == total) finished.set_value();
            };
            if (i % 3 == 0) s->execute(statement(q), cancel_after(std::chrono::microseconds(500 + i % 2000), std::move(done)));
            else s->execute(statement(q), std::move(done));
        }
    }, asio::detached);
    std::vector<std::thread> threads;
    auto guard = asio::make_work_guard(io);
    for (int t = 0; t < 2; ++t) threads.emplace_back([&] { io.run(); });
    const bool in_time = finished.get_future().wait_for(60s) == std::future_status::ready;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { co_await s->close(100ms); }, asio::detached);
    guard.reset();
    if (!in_time) io.stop();
    for (auto& t : threads) t.join();
    REQUIRE(in_time);
    for (int i = 0; i < total; ++i) CHECK(completions[i].load() == 1);
    CHECK(completed.load() == total);
    const auto m = s->retry_metrics();
    CHECK(m.speculative_executions > 0);
    UNSCOPED_INFO("failed (cancelled) " << failed.load() << ", hedges " << m.speculative_executions << ", won " << m.speculative_wins);
    CHECK(failed.load() < total);
}
