// The connection actor against the simulated nodes.
#include "sim.hpp"

#include "connection/connection.hpp"

#include <cqlcoro/rows.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>

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

// Runs a coroutine to completion on a fresh io_context; rethrows what it throws.

result_page page(response_frame f) {
    auto owned = std::make_shared<response_frame>(std::move(f));
    const auto& rows = std::get<rows_result>(std::get<result_response>(owned->message.body).body);
    return result_page(rows.metadata.columns, static_cast<std::size_t>(rows.row_count), rows.content, owned);
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

TEST_CASE("connection: authentication, with clear errors for a wrong or missing password") {
    sim::cluster c({.nodes = 1, .port = port, .credentials = std::pair<std::string, std::string>{"cassandra", "secret"}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        connection_params params_3{.port = port, .credentials = std::pair<std::string, std::string>{"cassandra", "secret"}};

        auto ok = co_await actor::connect(ex, params_3);
        CHECK(ok->version() == 5);
        ok->abort();
        try {
            connection_params params_4{.port = port, .credentials = std::pair<std::string, std::string>{"cassandra", "nope"}};

            co_await actor::connect(ex, params_4);
            FAIL("connected with a wrong password");
        } catch (const cqlcoro::error& e) {
            CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring("authentication failed"));
            CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring("127.0.0.1:19042"));
        }
        try {
            connection_params params_5{.port = port};

            co_await actor::connect(ex, params_5);
            FAIL("connected without credentials");
        } catch (const cqlcoro::error& e) {
            CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring("requires authentication"));
        }
    });
}

TEST_CASE("connection: events arrive on stream -1; abort and a lost connection fail what is in flight") {
    sim::cluster c({.nodes = 2, .port = port});
    c.prime({.query = "hang"}, {sim::hang{}});
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

        // A hung request fails with operation_aborted when the connection is aborted. (A use_awaitable
        // operation starts only when awaited, so these start with callbacks and signal a timer.)
        auto start = [&](std::shared_ptr<actor> on, error_code& result, asio::steady_timer& done) {
            on->execute(query_request{"hang", {}}, [&](error_code ec, response_frame) {
                result = ec;
                done.cancel();
            });
        };
        error_code ec1;
        asio::steady_timer done1(ex, asio::steady_timer::time_point::max());
        start(conn, ec1, done1);
        conn->abort();
        co_await done1.async_wait(asio::as_tuple(asio::use_awaitable));
        CHECK(ec1 == asio::error::operation_aborted);
        // Nothing is accepted on an aborted connection.
        query_request select1{"SELECT 1", {}};
        auto [ec2, f2] = co_await conn->execute(select1, asio::as_tuple(asio::use_awaitable));
        CHECK(ec2);

        // A hung request on a connection the server drops fails with the transport error.
        connection_params params_6{.port = port};

        auto other = co_await actor::connect(ex, params_6);
        error_code ec3;
        asio::steady_timer done3(ex, asio::steady_timer::time_point::max());
        start(other, ec3, done3);
        // Once a later request on the same connection is answered, the node has read the hung one.
        query_request later{"SELECT later", {}};
        co_await other->execute(later, asio::use_awaitable);
        c.drop_connections(1);
        co_await done3.async_wait(asio::as_tuple(asio::use_awaitable));
        CHECK(ec3);
    });
}
