// Admission through a session against a simulated node: requests beyond the limit wait and are never
// sent until they hold a permit; a full queue and a rate limit that would pass the deadline refuse at
// once; a waiting request times out or is cancelled with its permit never taken; background requests
// yield to interactive ones; closing the session ends the waiters.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;
using cqlcoro::test::seen;
using cqlcoro::test::yield_until;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t port = 19132;
// Turns of yield_until for a condition that waits on the clock (a delayed answer, a timeout): enough for
// seconds under the sanitizers.
constexpr int slow_turns = 50'000'000;

session_params params_for(const sim::cluster& c, std::size_t running, std::size_t queue) {
    auto p = cqlcoro::test::sim_session_params(c);
    p.request_timeout = 20s;
    p.admission.max_concurrent = running;
    p.admission.max_queue = queue;
    return p;
}

// A request started with a callback, and what it completed with.
struct call {
    std::optional<error_code> ec;
    result r;
    asio::cancellation_signal signal;
    void start(session& s, statement st) {
        s.execute(std::move(st), asio::bind_cancellation_slot(signal.slot(), [this](error_code e, result res) {
                      ec = e;
                      r = std::move(res);
                  }));
    }
    bool done() const { return ec.has_value(); }
};

std::string describe(const session& s) {
    const auto m = s.admission_metrics();
    return "running " + std::to_string(m.running) + ", waiting " + std::to_string(m.waiting);
}

}  // namespace

TEST_CASE("admission: beyond the limit a request waits unsent, a full queue refuses, and a permit given back starts the next") {
    sim::cluster c({.nodes = 1, .port = port});
    sim::prime_then slow{sim::one_int_row()};
    slow.delay = 300ms;
    c.prime({.query = "slow"}, slow);
    c.prime({.query = "next"}, sim::one_int_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c, 1, 1));
        call first, second, third;
        first.start(s, statement("slow"));
        co_await yield_until([&] { return s.admission_metrics().running == 1; }, [&] { return describe(s); });
        second.start(s, statement("next"));
        co_await yield_until([&] { return s.admission_metrics().waiting == 1; }, [&] { return describe(s); });
        CHECK(seen(c, "next") == 0);  // waiting: not sent
        third.start(s, statement("next"));
        co_await yield_until([&] { return third.done(); }, [&] { return describe(s); });
        CHECK(*third.ec == client_errc::admission_queue_full);
        CHECK(third.r.diagnostics().outcome == request_outcome::not_sent);
        CHECK(third.r.diagnostics().attempts.at(0).message.find("admission.max_queue 1") != std::string::npos);
        // The slow one answers; its permit goes to the waiting one, which is sent and answered.
        co_await yield_until([&] { return first.done() && second.done(); }, [&] { return describe(s); }, slow_turns);
        CHECK_FALSE(*first.ec);
        CHECK_FALSE(*second.ec);
        CHECK(seen(c, "next") == 1);
        const auto m = s.admission_metrics();
        CHECK(m.running == 0);
        CHECK(m.waiting == 0);
        CHECK(m.waited == 1);
        CHECK(m.refused_queue_full == 1);
        co_await s.close(100ms);
    });
}

TEST_CASE("admission: a waiting request that is cancelled or reaches its deadline ends unsent, without a permit") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "hang"}, {sim::hang{}});
    c.prime({.query = "next"}, sim::one_int_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c, 1, 10));
        call holder, cancelled, late;
        holder.start(s, statement("hang").timeout(500ms));
        co_await yield_until([&] { return s.admission_metrics().running == 1; }, [&] { return describe(s); });
        cancelled.start(s, statement("next"));
        late.start(s, statement("next").timeout(50ms));
        co_await yield_until([&] { return s.admission_metrics().waiting == 2; }, [&] { return describe(s); });
        cancelled.signal.emit(asio::cancellation_type::terminal);
        co_await yield_until([&] { return cancelled.done() && late.done(); }, [&] { return describe(s); }, slow_turns);
        CHECK(*cancelled.ec == asio::error::operation_aborted);
        CHECK(cancelled.r.diagnostics().outcome == request_outcome::not_sent);
        CHECK(*late.ec == client_errc::request_timeout);
        CHECK_THAT(late.r.diagnostics().attempts.at(0).message, ContainsSubstring("waited for admission"));
        CHECK(seen(c, "next") == 0);
        auto m = s.admission_metrics();
        CHECK(m.cancelled == 1);
        CHECK(m.timed_out == 1);
        CHECK(m.waiting == 0);
        CHECK(m.running == 1);  // the holder still runs; neither waiter took a permit
        // The holder times out; its permit comes back, and the next request runs at once.
        co_await yield_until([&] { return holder.done(); }, [&] { return describe(s); }, slow_turns);
        CHECK(*holder.ec == client_errc::request_timeout);
        auto r = co_await s.execute(statement("next"));
        CHECK(r.size() == 1);
        CHECK(s.admission_metrics().running == 0);
        co_await s.close(100ms);
    });
}

TEST_CASE("admission: background requests yield to interactive ones while both wait") {
    sim::cluster c({.nodes = 1, .port = port});
    sim::prime_then slow{sim::one_int_row()};
    slow.delay = 200ms;
    c.prime({.query = "slow"}, slow);
    for (const char* q : {"i1", "i2", "b1", "b2"}) c.prime({.query = q}, sim::one_int_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c, 1, 10);
        p.admission.interactive_weight = 4;
        auto s = co_await session::connect(ex, p);
        call holder;
        holder.start(s, statement("slow"));
        co_await yield_until([&] { return s.admission_metrics().running == 1; }, [&] { return describe(s); });
        std::vector<std::string> order;
        auto queue = [&](const char* q, request_class k) {
            s.execute(statement(q).admission_class(k), [&order, q](error_code, result) { order.emplace_back(q); });
        };
        queue("b1", request_class::background);
        queue("b2", request_class::background);
        queue("i1", request_class::interactive);
        queue("i2", request_class::interactive);
        co_await yield_until([&] { return order.size() == 4; }, [&] { return describe(s); }, slow_turns);
        CHECK(order == std::vector<std::string>{"i1", "i2", "b1", "b2"});  // both interactive first, though queued last
        co_await s.close(100ms);
    });
}

TEST_CASE("admission: the rate limit spaces starts, and refuses at once a request it could only start after its deadline") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "q"}, sim::one_int_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c, 100, 100);
        p.admission.max_per_second = 5;  // one per 200 ms
        p.admission.burst = 0ms;
        auto s = co_await session::connect(ex, p);
        const auto t0 = std::chrono::steady_clock::now();
        auto at_once = co_await s.execute(statement("q"));
        CHECK(at_once.size() == 1);
        auto [ec, r] = co_await s.execute(statement("q").timeout(50ms), asio::as_tuple(asio::use_awaitable));
        CHECK(ec == client_errc::admission_rate_limited);  // its slot is about 200 ms away
        CHECK(r.diagnostics().outcome == request_outcome::not_sent);
        auto spaced = co_await s.execute(statement("q"));  // waits for its slot
        CHECK(spaced.size() == 1);
        CHECK(std::chrono::steady_clock::now() - t0 >= 150ms);
        CHECK(seen(c, "q") == 2);
        CHECK(s.admission_metrics().refused_rate == 1);
        co_await s.close(100ms);
    });
}

TEST_CASE("admission: closing the session ends the requests waiting for admission") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "hang"}, {sim::hang{}});
    c.prime({.query = "next"}, sim::one_int_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c, 1, 10));
        call holder, waiter;
        holder.start(s, statement("hang"));
        co_await yield_until([&] { return s.admission_metrics().running == 1; }, [&] { return describe(s); });
        waiter.start(s, statement("next"));
        co_await yield_until([&] { return s.admission_metrics().waiting == 1; }, [&] { return describe(s); });
        co_await s.close(100ms);
        co_await yield_until([&] { return holder.done() && waiter.done(); }, [&] { return describe(s); });
        CHECK(*waiter.ec == client_errc::session_closed);
        CHECK(seen(c, "next") == 0);
    });
}

TEST_CASE("stream ids: with every connection of every node saturated, a request waits for the first free id, within its deadline") {
    sim::cluster c({.nodes = 2, .port = port});
    sim::prime_then slow{sim::one_int_row()};
    slow.delay = 300ms;
    c.prime({.query = "slow"}, slow);
    c.prime({.query = "next"}, sim::one_int_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = params_for(c, 1000, 1000);
        p.max_requests_per_connection = 2;  // two stream ids per connection, one connection per node
        auto s = co_await session::connect(ex, p);
        std::vector<call> held(4);
        for (auto& h : held) h.start(s, statement("slow"));
        co_await yield_until([&] { return seen(c, "slow") == 4; }, [&] { return std::to_string(seen(c, "slow")) + " slow seen"; }, slow_turns);
        // Four ids in use on two nodes: the next request finds none free anywhere, and waits.
        call waiter, short_one;
        waiter.start(s, statement("next"));
        short_one.start(s, statement("next").timeout(50ms));
        co_await yield_until([&] { return short_one.done(); }, [] { return std::string("the short request"); }, slow_turns);
        CHECK(*short_one.ec == client_errc::request_timeout);
        CHECK(short_one.r.diagnostics().outcome == request_outcome::not_sent);
        CHECK_THAT(short_one.r.diagnostics().attempts.back().message, ContainsSubstring("stream ids in use"));
        CHECK_FALSE(waiter.done());
        CHECK(seen(c, "next") == 0);
        co_await yield_until([&] { return waiter.done(); }, [] { return std::string("the waiting request"); }, slow_turns);
        CHECK_FALSE(*waiter.ec);  // not too_many_requests, nor no_host_available
        CHECK(waiter.r.size() == 1);
        CHECK(seen(c, "next") == 1);
        const auto& d = waiter.r.diagnostics();
        REQUIRE(d.attempts.size() == 3);  // both nodes saturated, then the wait at the first
        CHECK(d.attempts[0].outcome == request_outcome::not_sent);
        CHECK(d.attempts[1].outcome == request_outcome::not_sent);
        CHECK(d.attempts[2].host == d.attempts[0].host);
        for (auto& h : held) {
            co_await yield_until([&] { return h.done(); }, [] { return std::string("a slow request"); }, slow_turns);
            CHECK_FALSE(*h.ec);
        }
        co_await s.close(100ms);
    });
}

TEST_CASE("admission: a request the queue would hold past its deadline is refused at once, unsent") {
    sim::cluster c({.nodes = 1, .port = port});
    sim::prime_then slow{sim::one_int_row()};
    slow.delay = 20ms;
    c.prime({.query = "slow"}, slow);
    c.prime({.query = "next"}, sim::one_int_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c, 1, 100));
        // One at a time, 20 ms each: a queue of 30 drains at about one permit per 20 ms.
        std::vector<call> queue(30);
        for (auto& q : queue) q.start(s, statement("slow"));
        auto finished = [&] {
            std::size_t n = 0;
            for (const auto& q : queue) n += q.done() ? 1 : 0;
            return n;
        };
        co_await yield_until([&] { return finished() >= 10; }, [&] { return describe(s); }, slow_turns);
        // About 20 wait: some 400 ms of queue for a request with 100 ms.
        call hopeless;
        hopeless.start(s, statement("next").timeout(100ms));
        co_await yield_until([&] { return hopeless.done(); }, [&] { return describe(s); });
        CHECK(*hopeless.ec == client_errc::admission_deadline);
        CHECK(hopeless.r.diagnostics().outcome == request_outcome::not_sent);
        CHECK_THAT(hopeless.r.diagnostics().attempts.at(0).message, ContainsSubstring("ms left: it was not sent"));
        CHECK(finished() < 30);  // refused while the queue still held the others, not after
        CHECK(s.admission_metrics().refused_deadline == 1);
        CHECK(seen(c, "next") == 0);
        // One with time enough waits its turn and runs.
        call patient;
        patient.start(s, statement("next").timeout(10s));
        co_await yield_until([&] { return patient.done() && finished() == 30; }, [&] { return describe(s); }, slow_turns);
        CHECK_FALSE(*patient.ec);
        for (const auto& q : queue) CHECK_FALSE(*q.ec);
        co_await s.close(100ms);
    });
}
