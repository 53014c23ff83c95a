// The connection actor against a real Cassandra 2.1 node.
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
using cqlcoro::connection::connection_params;
using cqlcoro::connection::response_frame;
using cqlcoro::test::test_host;
namespace asio = boost::asio;

namespace {


std::string first_cell(response_frame f) {
    auto owned = std::make_shared<response_frame>(std::move(f));
    const auto& rows = std::get<rows_result>(std::get<result_response>(owned->message.body).body);
    result_page page(rows.metadata.columns, static_cast<std::size_t>(rows.row_count), rows.content, owned);
    return page.rows()[0].get<std::string>(0);
}

}  // namespace

TEST_CASE("real node: with default settings the connection negotiates down to v3, with LZ4 or Snappy") {
    for (auto comp : {compression::none, compression::lz4, compression::snappy}) {
        connection_params p;
        p.host = test_host();
        p.compression = comp;
        cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            auto conn = co_await actor::connect(ex, p);  // tries v5 and v4 first: no error reaches the caller
            CHECK(conn->version() == 3);
            query_request q{"SELECT release_version FROM system.local", {.cl = consistency::one}};
            CHECK(first_cell(co_await conn->execute(q, asio::use_awaitable)) == "2.1.0");
            conn->abort();
        });
    }
}

TEST_CASE("real node: 20,000 requests in flight on one connection, each answer matched to its request") {
    connection_params p;
    p.host = test_host();
    p.compression = compression::lz4;
    const std::array<std::string, 2> names{"system", "system_traces"};
    std::vector<std::string> queries;
    for (const auto& n : names) queries.push_back("SELECT keyspace_name FROM system.schema_keyspaces WHERE keyspace_name = '" + n + "'");
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
