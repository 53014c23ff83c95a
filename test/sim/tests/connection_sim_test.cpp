// The connection actor against the simulated nodes.
#include "sim.hpp"

#include "connection/connection.hpp"

#include <cqlcoro/rows.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <fmt/format.h>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using actor = cqlcoro::connection::connection;
using cqlcoro::connection::connection_params;
using cqlcoro::connection::response_frame;
namespace asio = boost::asio;

namespace {

constexpr std::uint16_t port = 19042;

// A request started with a callback (a use_awaitable operation starts only when awaited) whose outcome
// is awaited later; cancel() emits on its cancellation slot.
struct call {
    explicit call(asio::any_io_executor ex) : done(ex, asio::steady_timer::time_point::max()) {}
    void start(const std::shared_ptr<actor>& conn, std::string q) {
        query = std::move(q);
        conn->execute(query_request{query, {.cl = consistency::one}},
                      asio::bind_cancellation_slot(signal.slot(), [this](error_code e, response_frame f) {
                          ec = e;
                          frame = std::move(f);
                          finished = true;
                          done.cancel();
                      }));
    }
    void cancel() { signal.emit(asio::cancellation_type::terminal); }
    asio::awaitable<void> wait() {
        if (!finished) co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    std::string query;
    asio::cancellation_signal signal;
    asio::steady_timer done;
    bool finished = false;
    error_code ec;
    response_frame frame;
};

result_page page(response_frame f) {
    auto owned = std::make_shared<response_frame>(std::move(f));
    const auto& rows = std::get<rows_result>(std::get<result_response>(owned->message.body).body);
    return result_page(rows.metadata.columns, static_cast<std::size_t>(rows.row_count), rows.content, owned);
}

int first_int(response_frame f) { return page(std::move(f)).rows()[0].get<int>(0); }

sim::rows_answer one_int(int v) { return sim::rows({sim::column("n", cql_type::of(type_kind::int_))}).row(v); }

// Waits, without blocking the test's io_context, until the sim has received `n` requests: the blocking
// condition wait runs on a helper thread, and the result is posted back to the coroutine.
asio::awaitable<std::vector<sim::recorded_request>> received(const sim::cluster& c, std::size_t n) {
    static asio::thread_pool waiter(1);
    using result = std::vector<sim::recorded_request>;
    return asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr, result)>(
        [&c, n](auto handler) {
            asio::post(waiter, [&c, n, handler = std::move(handler)]() mutable {
                std::exception_ptr failure;
                result got;
                try {
                    got = c.wait_for_requests(n);
                } catch (...) {
                    failure = std::current_exception();
                }
                auto ex = asio::get_associated_executor(handler);
                asio::post(ex, [handler = std::move(handler), failure, got = std::move(got)]() mutable {
                    std::move(handler)(failure, std::move(got));
                });
            });
        },
        asio::use_awaitable);
}

std::size_t count_queries(const sim::cluster& c, std::string_view text) {
    std::size_t n = 0;
    for (const auto& r : c.requests()) n += r.query == text;
    return n;
}

}  // namespace

TEST_CASE("connection: negotiation lands on the highest version the server speaks") {
    for (auto [max, refusals, expected] : {std::tuple{5, false, 5}, {4, false, 4}, {3, true, 3}}) {
        sim::cluster c({.nodes = 1, .port = port, .max_version = static_cast<std::uint8_t>(max), .cassandra21_refusals = refusals});
        cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            connection_params params_1{.port = port, .compression = compression::lz4};

            auto conn = co_await actor::connect(ex, params_1);
            CHECK(conn->version() == expected);
            query_request q{"SELECT cluster_name FROM system.local", {.cl = consistency::one}};
            auto f = co_await conn->execute(q, asio::use_awaitable);
            CHECK(page(std::move(f)).rows()[0].get<std::string>("cluster_name") == "cqlcoro-sim");
            conn->abort();
        });
    }
}

TEST_CASE("connection: 2000 concurrent requests each get their own response") {
    sim::cluster c({.nodes = 1, .port = port, .record_requests = false});
    for (int i = 0; i < 2000; ++i)
        c.prime({.query = fmt::format("SELECT n FROM t WHERE k = {}", i)}, sim::rows({sim::column("n", cql_type::of(type_kind::int_))}).row(i));
    for (int version : {4, 5}) {
        cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            connection_params params_2{.port = port, .max_version = static_cast<std::uint8_t>(version)};

            auto conn = co_await actor::connect(ex, params_2);
            std::vector<std::string> queries;
            for (int i = 0; i < 2000; ++i) queries.push_back(fmt::format("SELECT n FROM t WHERE k = {}", i));
            int matched = 0, answered = 0;
            // The last answer cancels all_done; a watchdog aborts the connection if answers stop coming.
            asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
            asio::steady_timer watchdog(ex, std::chrono::seconds(30));
            watchdog.async_wait([&](error_code ec) { if (!ec) conn->abort(); });
            for (int i = 0; i < 2000; ++i) {
                conn->execute(query_request{queries[static_cast<std::size_t>(i)], {.cl = consistency::one}},
                              [&, i](error_code ec, response_frame f) {
                                  if (!ec && page(std::move(f)).rows()[0].get<int>(0) == i) ++matched;
                                  if (++answered == 2000) all_done.cancel();
                              });
            }
            co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
            watchdog.cancel();
            CHECK(answered == 2000);
            CHECK(matched == 2000);
            CHECK(conn->in_flight() == 0);
            conn->abort();
        });
    }
}


TEST_CASE("connection: a read buffer grown for one large answer shrinks back once it is parsed") {
    sim::cluster c({.nodes = 1, .port = port, .record_requests = false});
    const std::vector<std::uint8_t> big(8 * 1024 * 1024, 0x5a);
    c.prime({.query = "SELECT b FROM t WHERE k = 1"}, sim::rows({sim::column("b", cql_type::of(type_kind::blob))}).row(big));
    c.prime({.query = "SELECT n FROM t WHERE k = 2"}, one_int(2));
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        connection_params params{.port = port, .max_version = 4};  // a named local: GCC 12 and temporaries in co_await
        auto conn = co_await actor::connect(ex, params);
        const auto usual = conn->stats().read_buffer;
        CHECK(usual <= 1024 * 1024);
        query_request large{"SELECT b FROM t WHERE k = 1", {.cl = consistency::one}};
        auto [ec, f] = co_await conn->execute(large, asio::as_tuple(asio::use_awaitable));
        REQUIRE_FALSE(ec);
        CHECK(page(std::move(f)).rows()[0].get<std::vector<std::uint8_t>>(0) == big);
        // The answer's handler may run inside the read loop, before the buffer is given back: the next
        // answer comes after it.
        query_request small{"SELECT n FROM t WHERE k = 2", {.cl = consistency::one}};
        auto [ec2, f2] = co_await conn->execute(small, asio::as_tuple(asio::use_awaitable));
        REQUIRE_FALSE(ec2);
        CHECK(first_int(std::move(f2)) == 2);
        CHECK(conn->stats().read_buffer <= 1024 * 1024);  // not the 8 MiB and more the large answer needed
        conn->abort();
    });
}

TEST_CASE("connection: authentication through PLAIN and a pluggable authenticator, with clear errors") {
    sim::cluster c({.nodes = 1, .port = port, .credentials = std::pair<std::string, std::string>{"cassandra", "secret"}});
    // A provider of the application's own: here it computes the PLAIN token itself and records its calls.
    struct recording_provider : auth_provider {
        struct exchange : authenticator {
            recording_provider& owner;
            explicit exchange(recording_provider& o) : owner(o) {}
            std::vector<std::uint8_t> initial_response() override {
                const std::string t = std::string(1, '\0') + "cassandra" + std::string(1, '\0') + owner.password;
                return {t.begin(), t.end()};
            }
            std::vector<std::uint8_t> evaluate_challenge(std::span<const std::uint8_t>) override { return {}; }
            void on_success(std::span<const std::uint8_t>) override { ++owner.successes; }
        };
        std::unique_ptr<authenticator> new_authenticator(std::string_view host, std::string_view server_class) override {
            hosts.emplace_back(host);
            classes.emplace_back(server_class);
            return std::make_unique<exchange>(*this);
        }
        std::string password = "secret";
        std::vector<std::string> hosts, classes;
        int successes = 0;
    };
    auto custom = std::make_shared<recording_provider>();
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        connection_params good{.port = port, .auth = plain_text("cassandra", "secret")};
        auto ok = co_await actor::connect(ex, good);
        CHECK(ok->version() == 5);
        ok->abort();

        connection_params pluggable{.port = port, .auth = custom};
        auto ok2 = co_await actor::connect(ex, pluggable);
        CHECK(custom->successes == 1);
        CHECK(custom->hosts == std::vector<std::string>{"127.0.0.1"});
        CHECK(custom->classes == std::vector<std::string>{"org.apache.cassandra.auth.PasswordAuthenticator"});
        ok2->abort();
        custom->password = "wrong";
        try {
            co_await actor::connect(ex, pluggable);
            FAIL("connected with a wrong password from the custom authenticator");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::authentication_failed);
        }

        try {
            connection_params wrong{.port = port, .auth = plain_text("cassandra", "nope")};
            co_await actor::connect(ex, wrong);
            FAIL("connected with a wrong password");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::authentication_failed);
            CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring("check the user name and password"));
            CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring("127.0.0.1:19042"));
        }
        try {
            connection_params none{.port = port};
            co_await actor::connect(ex, none);
            FAIL("connected without credentials");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::authentication_required);
            CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring("requires authentication"));
        }
    });
}

TEST_CASE("connection: USE keyspace during the handshake, quoted as stored") {
    sim::cluster c({.nodes = 1, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        connection_params p{.port = port, .keyspace = "MyKs"};
        auto conn = co_await actor::connect(ex, p);
        CHECK(count_queries(c, "USE \"MyKs\"") == 1);
        conn->abort();
    });
}

TEST_CASE("connection: events arrive on stream -1") {
    sim::cluster c({.nodes = 2, .port = port});
    // (Built outside the coroutine: GCC 12 miscompiles braced lists of string literals inside one.)
    connection_params with_events;
    with_events.port = port;
    with_events.events.emplace_back("STATUS_CHANGE");
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        std::vector<std::string> events;
        asio::steady_timer got_event(ex, asio::steady_timer::time_point::max());
        auto conn = co_await actor::connect(ex, with_events, [&](const response_frame& f) {
            events.push_back(std::get<status_change_event>(std::get<event_response>(f.message.body).event).change);
            got_event.cancel();
        });
        c.push_status_change(2, "DOWN");
        co_await got_event.async_wait(asio::as_tuple(asio::use_awaitable));
        CHECK(events == std::vector<std::string>{"DOWN"});
        conn->abort();
    });
}

TEST_CASE("connection: abort and a lost connection say whether each request was written") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "hang"}, {sim::hang{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        connection_params p{.port = port};
        auto conn = co_await actor::connect(ex, p);
        // The node stops reading, and a 32 MiB request fills the socket buffers: the write is in progress,
        // so the next request waits in the queue, unwritten, when abort runs.
        c.pause(1);
        call written(ex), unwritten(ex);
        const auto sent_before = conn->sent();
        written.start(conn, std::string(32 << 20, 'x'));
        co_await cqlcoro::test::yield_until([&] { return conn->sent() > sent_before; });  // its write has begun
        unwritten.start(conn, "hang");
        conn->abort();
        co_await written.wait();
        co_await unwritten.wait();
        c.resume(1);
        CHECK(written.ec == client_errc::connection_closed_sent);
        CHECK(unwritten.ec == client_errc::connection_closed_unsent);
        CHECK(conn->state() == cqlcoro::connection::connection_state::closed);
        CHECK(conn->failure().first == asio::error::operation_aborted);
        // Nothing is accepted on a closed connection.
        call after(ex);
        after.start(conn, "SELECT 1");
        co_await after.wait();
        CHECK(after.ec == client_errc::connection_closed_unsent);

        // A request in flight on a connection the server drops: written, so it may have been executed.
        auto other = co_await actor::connect(ex, p);
        call lost(ex);
        lost.start(other, "hang");
        call later(ex);
        later.start(other, "SELECT later");
        co_await later.wait();  // answered: the node has read the hung request before it
        c.drop_connections(1);
        co_await lost.wait();
        CHECK(lost.ec == client_errc::connection_closed_sent);
        CHECK(other->failure().second.find("closed the connection") != std::string::npos);
    });
}

TEST_CASE("connection: cancellation before the write drops the request; after it, the id is an orphan") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "hang"}, {sim::hang{}});
    c.prime({.query = "next"}, one_int(7));
    for (int version : {4, 5}) {
        c.clear_requests();
        cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            connection_params p{.port = port, .max_version = static_cast<std::uint8_t>(version)};
            auto conn = co_await actor::connect(ex, p);

            // Cancelled while it waits behind a write in progress (a 32 MiB request the paused node does
            // not read): dropped, never sent.
            c.pause(1);
            call big(ex), early(ex);
            big.start(conn, std::string(32 << 20, 'x'));
            early.start(conn, "never sent");
            early.cancel();
            co_await early.wait();
            CHECK(early.ec == asio::error::operation_aborted);
            c.resume(1);
            co_await big.wait();
            call next(ex);
            next.start(conn, "next");
            co_await next.wait();
            CHECK(first_int(std::move(next.frame)) == 7);
            CHECK(count_queries(c, "never sent") == 0);
            CHECK(conn->orphans() == 0);

            // Cancelled after the node received it: completes at once, its id stays taken.
            call late(ex);
            late.start(conn, "hang");
            co_await received(c, 4);
            late.cancel();
            co_await late.wait();
            CHECK(late.ec == asio::error::operation_aborted);
            CHECK(conn->orphans() == 1);
            CHECK(conn->state() == cqlcoro::connection::connection_state::ready);
            conn->abort();
        });
    }
}

TEST_CASE("connection: a late response after a cancellation never completes another request") {
    sim::cluster c({.nodes = 1, .port = port});
    // The abandoned request's answer arrives while the next one is in flight.
    c.prime({.query = "first"}, {one_int(1), std::chrono::milliseconds(200)});
    c.prime({.query = "second"}, {one_int(2), std::chrono::milliseconds(400)});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        connection_params p{.port = port};
        auto conn = co_await actor::connect(ex, p);
        call first(ex), second(ex);
        first.start(conn, "first");
        co_await received(c, 2);
        first.cancel();
        co_await first.wait();
        CHECK(first.ec == asio::error::operation_aborted);
        CHECK(conn->orphans() == 1);
        second.start(conn, "second");
        co_await second.wait();
        REQUIRE_FALSE(second.ec);
        CHECK(first_int(std::move(second.frame)) == 2);
        // The sim answers in timer order, so the late answer (200 ms) came before the second (400 ms).
        CHECK(conn->orphans() == 0);
        const auto reqs = c.requests();
        CHECK(reqs[1].stream != reqs[2].stream);  // the orphaned id was not reused while it was an orphan
        conn->abort();
    });
}

TEST_CASE("connection: past the orphan budget the connection drains, finishes what is in flight, and closes") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "hang"}, {sim::hang{}});
    c.prime({.query = "slow"}, {one_int(5), std::chrono::seconds(2)});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        connection_params p{.port = port, .orphan_budget = 2};
        std::vector<std::pair<cqlcoro::connection::connection_state, error_code>> states;
        asio::steady_timer closed(ex, asio::steady_timer::time_point::max());
        std::shared_ptr<actor> conn;
        call refused(ex), slow(ex);
        bool slow_done_at_drain = true;
        conn = co_await actor::connect(ex, p, {}, [&](cqlcoro::connection::connection_state s, error_code ec) {
            states.emplace_back(s, ec);
            if (s == cqlcoro::connection::connection_state::draining) {
                slow_done_at_drain = slow.finished;
                refused.start(conn, "slow");  // new work is refused
            }
            if (s == cqlcoro::connection::connection_state::closed) closed.cancel();
        });
        slow.start(conn, "slow");
        std::vector<std::unique_ptr<call>> hung;
        for (int i = 0; i < 3; ++i) {
            hung.push_back(std::make_unique<call>(ex));
            hung.back()->start(conn, "hang");
            co_await received(c, static_cast<std::size_t>(3 + i));
            hung.back()->cancel();
            co_await hung.back()->wait();
        }
        CHECK(conn->orphans() == 3);
        co_await refused.wait();
        CHECK(refused.ec == client_errc::connection_draining);
        co_await slow.wait();
        CHECK_FALSE(slow_done_at_drain);
        CHECK_FALSE(slow.ec);  // in flight when the drain began: it completes normally
        if (states.size() < 2) co_await closed.async_wait(asio::as_tuple(asio::use_awaitable));
        REQUIRE(states.size() == 2);
        CHECK(states[0] == std::pair{cqlcoro::connection::connection_state::draining, error_code(client_errc::orphan_budget_exceeded)});
        CHECK(states[1].first == cqlcoro::connection::connection_state::closed);
        CHECK(conn->failure().first == client_errc::orphan_budget_exceeded);
    });
}

TEST_CASE("connection: heartbeats on an idle connection; an unanswered one makes it defunct") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "hang"}, {sim::hang{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        connection_params p{.port = port, .heartbeat_interval = std::chrono::milliseconds(50), .heartbeat_timeout = std::chrono::milliseconds(200)};
        auto conn = co_await actor::connect(ex, p);
        // Two heartbeats, each answered: the connection stays up while idle.
        auto reqs = co_await received(c, 3);
        CHECK(reqs[1].op == opcode::options);
        CHECK(reqs[2].op == opcode::options);
        CHECK(conn->state() == cqlcoro::connection::connection_state::ready);

        // The node stops reading: the next heartbeat goes unanswered and the request in flight fails.
        call stuck(ex);
        stuck.start(conn, "hang");
        co_await received(c, reqs.size() + 1);
        c.pause(1);
        co_await stuck.wait();
        CHECK(stuck.ec == client_errc::connection_closed_sent);
        CHECK(conn->failure().first == client_errc::heartbeat_timeout);
        CHECK_THAT(conn->failure().second, Catch::Matchers::ContainsSubstring("did not answer a heartbeat within 200 ms"));
        c.resume(1);
    });
}

TEST_CASE("connection: graceful close waits for requests in flight; its timeout bounds the wait") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "slow"}, {one_int(3), std::chrono::milliseconds(150)});
    c.prime({.query = "hang"}, {sim::hang{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        connection_params p{.port = port};
        std::shared_ptr<actor> conn;
        call refused(ex);
        conn = co_await actor::connect(ex, p, {}, [&](cqlcoro::connection::connection_state s, error_code) {
            if (s == cqlcoro::connection::connection_state::draining) refused.start(conn, "slow");
        });
        std::vector<std::unique_ptr<call>> slow;
        for (int i = 0; i < 10; ++i) {
            slow.push_back(std::make_unique<call>(ex));
            slow.back()->start(conn, "slow");
        }
        co_await received(c, 11);
        co_await conn->close(std::chrono::seconds(30));
        for (auto& s : slow) {
            CHECK(s->finished);  // close completed after every request in flight
            CHECK_FALSE(s->ec);
        }
        co_await refused.wait();
        CHECK(refused.ec == client_errc::connection_draining);
        CHECK(conn->state() == cqlcoro::connection::connection_state::closed);

        // A request that never gets an answer: close gives up after its timeout.
        auto other = co_await actor::connect(ex, p);
        call stuck(ex);
        stuck.start(other, "hang");
        co_await received(c, 13);
        co_await other->close(std::chrono::milliseconds(100));
        co_await stuck.wait();
        CHECK(stuck.ec == client_errc::connection_closed_sent);
        CHECK(other->state() == cqlcoro::connection::connection_state::closed);
    });
}

TEST_CASE("connection: connect timeout names the step that did not answer") {
    sim::cluster c({.nodes = 1, .port = port});
    c.pause(1);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        connection_params p{.port = port, .connect_timeout = std::chrono::milliseconds(200)};
        try {
            co_await actor::connect(ex, p);
            FAIL("connected to a node that does not answer");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::connect_timeout);
            CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring("answer to STARTUP"));
        }
    });
    c.resume(1);
}

TEST_CASE("connection: requests from many threads of a multi-threaded io_context", "[threads]") {
    sim::cluster c({.nodes = 1, .port = port, .record_requests = false});
    for (int i = 0; i < 100; ++i) c.prime({.query = fmt::format("SELECT n FROM t WHERE k = {}", i)}, one_int(i));
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back([&] { io.run(); });
    connection_params p{.port = port};
    auto conn = asio::co_spawn(io, actor::connect(io.get_executor(), p), asio::use_future).get();
    std::atomic<int> matched{0}, answered{0};
    std::promise<void> all;
    constexpr int per_thread = 2500;
    std::vector<std::string> queries;
    for (int i = 0; i < 100; ++i) queries.push_back(fmt::format("SELECT n FROM t WHERE k = {}", i));
    std::vector<std::thread> senders;
    for (int t = 0; t < 4; ++t) {
        senders.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                const int k = (t * per_thread + i) % 100;
                conn->execute(query_request{queries[static_cast<std::size_t>(k)], {.cl = consistency::one}}, [&, k](error_code ec, response_frame f) {
                    if (!ec && first_int(std::move(f)) == k) ++matched;
                    if (++answered == 4 * per_thread) all.set_value();
                });
            }
        });
    }
    for (auto& s : senders) s.join();
    all.get_future().get();
    CHECK(matched == 4 * per_thread);
    CHECK(conn->in_flight() == 0);
    conn->abort();
    work.reset();
    for (auto& t : threads) t.join();
}

namespace {
// The threads of this process now.
std::size_t thread_count() {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) n += e.is_directory();
    return n;
}
}  // namespace

TEST_CASE("connection: an IP address is connected to without the resolver and its thread; a name is resolved") {
    sim::cluster c({.nodes = 1, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto before = thread_count();
        connection_params by_ip{.host = "127.0.0.1", .port = port};
        auto conn = co_await actor::connect(ex, by_ip);
        CHECK(thread_count() == before);  // Asio's resolver would have started a thread of its own
        conn->abort();
        connection_params by_name{.host = "localhost", .port = port};
        auto named = co_await actor::connect(ex, by_name);
        CHECK(thread_count() == before + 1);  // the check can see that thread
        named->abort();
    });
}
