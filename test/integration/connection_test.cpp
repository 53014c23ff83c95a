// The connection actor against a real Cassandra node (2.1 or 5.0; see target.hpp).
#include "raw_connection.hpp"

#include "connection/connection.hpp"

#include <cqlcoro/rows.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using actor = cqlcoro::connection::connection;
using cqlcoro::connection::response_frame;
using cqlcoro::test::target_connection;
using cqlcoro::test::test_protocol;
using cqlcoro::test::test_server;
namespace asio = boost::asio;

namespace {


std::string first_cell(response_frame f) {
    auto owned = std::make_shared<response_frame>(std::move(f));
    if (const auto* e = std::get_if<error_response>(&owned->message.body)) FAIL("server error " << e->code << ": " << e->message);
    const auto& rows = std::get<rows_result>(std::get<result_response>(owned->message.body).body);
    result_page page(rows.metadata.columns, static_cast<std::size_t>(rows.row_count), rows.content, owned);
    return page.rows()[0].get<std::string>(0);
}

}  // namespace

TEST_CASE("real node: the connection negotiates the run's protocol, with no compression, LZ4 or Snappy") {
    for (auto comp : {protocol::compression::none, protocol::compression::lz4, protocol::compression::snappy}) {
        auto p = target_connection();
        p.compression = comp;
        cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            // Unforced, it tries v5 first and steps down to what the server speaks: no error reaches the caller.
            auto conn = co_await actor::connect(ex, p);
            CHECK(conn->version() == test_protocol());
            query_request q{"SELECT release_version FROM system.local", {.cl = consistency::one}};
            CHECK(first_cell(co_await conn->execute(q, asio::use_awaitable)) == test_server().text);
            conn->abort();
        });
    }
}

TEST_CASE("real node: 20,000 requests in flight on one connection, each answer matched to its request") {
    auto p = target_connection();
    p.compression = protocol::compression::lz4;
    const std::array<std::string, 2> names{"system", "system_traces"};
    const std::string table = cqlcoro::test::keyspaces_table();
    std::vector<std::string> queries;
    for (const auto& n : names) queries.push_back("SELECT keyspace_name FROM " + table + " WHERE keyspace_name = '" + n + "'");
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto conn = co_await actor::connect(ex, p);
        constexpr int total = 20'000;
        int answered = 0, matched = 0;
        std::size_t peak = 0;
        asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
        asio::steady_timer watchdog(ex, std::chrono::seconds(120));
        watchdog.async_wait([&](error_code ec) { if (!ec) conn->abort(); });
        for (int i = 0; i < total; ++i) {
            const auto k = static_cast<std::size_t>(i % 2);
            conn->execute(query_request{queries[k], {.cl = consistency::one}}, [&, k](error_code ec, response_frame f) {
                if (!ec && first_cell(std::move(f)) == names[k]) ++matched;
                peak = std::max(peak, conn->in_flight());
                if (++answered == total) all_done.cancel();
            });
        }
        co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
        watchdog.cancel();
        CHECK(answered == total);
        CHECK(matched == total);
        CHECK(peak > 1000);  // they really were in flight together
        conn->abort();
    });
}
