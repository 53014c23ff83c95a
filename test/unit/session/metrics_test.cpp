// The metrics' pieces without a session: error kinds, a histogram read into percentiles and
// Prometheus buckets, the request log's lines (text cut, values hidden unless asked).
#include <cqlcoro/metrics.hpp>
#include <cqlcoro/statement.hpp>

#include "session/request_log.hpp"

#include <boost/asio/error.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace cqlcoro;
using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;

TEST_CASE("metrics: each error has a kind") {
    CHECK(kind_of(server_errc::read_timeout) == error_kind::read_timeout);
    CHECK(kind_of(server_errc::write_timeout) == error_kind::write_timeout);
    CHECK(kind_of(server_errc::cas_write_unknown) == error_kind::write_timeout);
    CHECK(kind_of(server_errc::unavailable) == error_kind::unavailable);
    CHECK(kind_of(server_errc::overloaded) == error_kind::overloaded);
    CHECK(kind_of(server_errc::is_bootstrapping) == error_kind::overloaded);
    CHECK(kind_of(server_errc::syntax_error) == error_kind::request_error);
    CHECK(kind_of(server_errc::unprepared) == error_kind::request_error);
    CHECK(kind_of(client_errc::request_timeout) == error_kind::request_timeout);
    CHECK(kind_of(client_errc::no_host_available) == error_kind::no_host_available);
    CHECK(kind_of(boost::asio::error::operation_aborted) == error_kind::aborted);
    CHECK(kind_of(client_errc::admission_queue_full) == error_kind::refused);
    CHECK(kind_of(client_errc::admission_deadline) == error_kind::refused);
    CHECK(kind_of(client_errc::session_closed) == error_kind::refused);
    CHECK(kind_of(client_errc::connection_closed_sent) == error_kind::connection);
    CHECK(kind_of(client_errc::too_many_requests) == error_kind::connection);
    CHECK(kind_of(client_errc::tls_failed) == error_kind::connection);
    CHECK(kind_of(boost::asio::error::connection_reset) == error_kind::connection);
    CHECK(kind_of(client_errc::memory_budget_exhausted) == error_kind::other);
    CHECK(kind_of(type_errc::type_mismatch) == error_kind::other);
    for (std::size_t k = 0; k < error_kind_count; ++k) CHECK(to_string(static_cast<error_kind>(k)) != "");
    CHECK(to_string(error_kind::no_host_available) == "no_host_available");
}

TEST_CASE("metrics: a histogram summarized: percentiles, sum and cumulative buckets") {
    latency_histogram h;
    const auto empty = summarize(h);
    CHECK(empty.count == 0);
    CHECK(empty.p99 == 0us);
    REQUIRE(empty.buckets.size() == 19);
    CHECK(empty.buckets.front().first == 128us);
    CHECK(empty.buckets.back().first == std::chrono::microseconds(1 << 25));
    // 1000 latencies of 1..1000 ms.
    for (int i = 1; i <= 1000; ++i) h.record(std::chrono::milliseconds(i));
    const auto s = summarize(h);
    CHECK(s.count == 1000);
    CHECK(s.sum == std::chrono::milliseconds(500500));
    auto near = [](std::chrono::microseconds got, std::chrono::microseconds want) {
        // within the histogram's 1/16, above (a bucket's upper bound)
        return got >= want && got.count() <= want.count() + want.count() / 16 + 1;
    };
    CHECK(near(s.p50, 500ms));
    CHECK(near(s.p95, 950ms));
    CHECK(near(s.p99, 990ms));
    CHECK(near(s.p999, 999ms));
    CHECK(near(s.max, 1000ms));
    CHECK(s.mean_microseconds() == 500500.0);
    // Below 2^k us exactly: 2^17 us = 131.072 ms holds 1..131 ms.
    for (const auto& [bound, n] : s.buckets) {
        const auto below = std::min<std::int64_t>(1000, (bound.count() - 1) / 1000);
        INFO(bound.count());
        CHECK(n == static_cast<std::uint64_t>(below));
    }
}

TEST_CASE("metrics: Prometheus label values are escaped, and an empty session renders") {
    session_metrics m;
    auto& n = m.nodes.emplace_back();
    n.host = "10.0.0.1:9042";
    n.datacenter = "dc\"1\\\n";
    n.state = node_state::up;
    const auto text = to_prometheus(m, "app_cql");
    CHECK_THAT(text, ContainsSubstring("app_cql_node_up{host=\"10.0.0.1:9042\",datacenter=\"dc\\\"1\\\\\\n\",rack=\"\"} 1\n"));
    CHECK_THAT(text, ContainsSubstring("# TYPE app_cql_requests_total counter\napp_cql_requests_total 0\n"));
    CHECK_THAT(text, ContainsSubstring("app_cql_request_latency_seconds_bucket{le=\"0.000128\"} 0\n"));
    CHECK_THAT(text, ContainsSubstring("app_cql_request_latency_seconds_bucket{le=\"+Inf\"} 0\n"));
    CHECK_THAT(text, ContainsSubstring("app_cql_retries_total{cause=\"other\"} 0\n"));
}

TEST_CASE("request log: the text is cut, values appear only when asked") {
    request r{statement("SELECT * FROM ks.users WHERE id = ? AND name = ?", std::int32_t{7}, std::string("ann")), {}, {}};
    diagnostics d;
    d.host = "10.0.0.1:9042";
    d.attempts.emplace_back();
    slow_request_options o;
    o.threshold = 100ms;
    o.max_query_length = 20;
    auto line = detail::describe_request(r, {}, {}, d, 250ms, o);
    CHECK(line == "slow request: 250.0 ms (threshold 100 ms), coordinator 10.0.0.1:9042, 1 attempt: SELECT * FROM ks.use...");
    o.show_values = true;
    o.max_value_length = 4;
    line = detail::describe_request(r, {}, {}, d, 250ms, o);
    // A simple statement's values have no types the log could read: their bytes, cut.
    CHECK_THAT(line, ContainsSubstring("[0x00..., 0x61...]"));
    d.retries = 2;
    d.outcome = request_outcome::not_sent;
    line = detail::describe_request(r, client_errc::no_host_available, "no node could take it", d, 3ms, o);
    CHECK_THAT(line, ContainsSubstring("request failed after 3.0 ms: "));
    CHECK_THAT(line, ContainsSubstring("(not sent): no node could take it, last node 10.0.0.1:9042, 1 attempt, 2 retries: "));
    CHECK(detail::cut_text("abc", 3) == "abc");
    CHECK(detail::cut_text("abcd", 3) == "abc...");
    CHECK(detail::describe_warning(r, "10.0.0.1:9042", "Batch too large", 6) == "server warning from 10.0.0.1:9042: Batch too large (request: SELECT...)");
}
