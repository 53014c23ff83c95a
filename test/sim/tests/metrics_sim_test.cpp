// Metrics, the request tracker and the request log against simulated nodes: requests and errors are
// counted per session and per node, latencies land in the histograms, a node's counters survive its
// connections going away, the Prometheus text holds together; the tracker sees each attempt and each
// completion once; slow and failed requests and the server's warnings reach the logger as asked.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;
using cqlcoro::test::yield_until;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t port = 19162;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

const host_metrics& node_named(const session_metrics& m, const std::string& host) {
    for (const auto& n : m.nodes)
        if (n.host == host) return n;
    FAIL("no node " << host);
    static const host_metrics none;
    return none;
}

std::uint64_t total(const std::array<std::uint64_t, error_kind_count>& a) {
    std::uint64_t n = 0;
    for (auto x : a) n += x;
    return n;
}

struct log_lines {
    std::mutex m;
    std::vector<std::pair<log_level, std::string>> lines;
    log_sink sink() {
        return [this](log_level l, std::string_view s) {
            std::lock_guard lk(m);
            lines.emplace_back(l, std::string(s));
        };
    }
    std::vector<std::string> containing(std::string_view what) {
        std::lock_guard lk(m);
        std::vector<std::string> out;
        for (const auto& [l, s] : lines)
            if (s.find(what) != std::string::npos) out.push_back(s);
        return out;
    }
};

struct recording_tracker : request_tracker {
    std::mutex m;
    std::vector<std::pair<std::string, error_code>> attempts;  // the request's text, the attempt's error
    std::vector<std::tuple<std::string, error_code, std::size_t, std::chrono::nanoseconds>> completions;
    void on_attempt(const request& r, const attempt_info& a) noexcept override {
        std::lock_guard lk(m);
        attempts.emplace_back(std::string(r.text()), a.ec);
    }
    void on_complete(const request& r, error_code ec, const diagnostics& d, std::chrono::nanoseconds took) noexcept override {
        std::lock_guard lk(m);
        completions.emplace_back(std::string(r.text()), ec, d.attempts.size(), took);
    }
};

}  // namespace

TEST_CASE("metrics: requests, errors by kind and latency, per session and per node") {
    sim::cluster c({.nodes = 2, .port = port});
    c.prime({.query = "q"}, sim::one_int_row());
    c.prime({.query = "bad"}, {protocol::error_response{0x2000, "line 1:0 no viable alternative", {}}});
    sim::prime_then slow{sim::one_int_row()};
    slow.delay = 300ms;
    c.prime({.query = "slow"}, slow);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = cqlcoro::test::sim_session_params(c);
        auto s = co_await session::connect(ex, p);
        const auto before = s.metrics();
        REQUIRE(before.nodes.size() == 2);
        for (int i = 0; i < 40; ++i) co_await s.execute(statement("q"));
        for (int i = 0; i < 3; ++i) {
            auto [ec, r] = co_await s.execute(statement("bad"), use_tuple);
            CHECK(ec == server_errc::syntax_error);
        }
        auto [tec, tr] = co_await s.execute(statement("slow").timeout(50ms), use_tuple);
        CHECK(tec == client_errc::request_timeout);

        const auto m = s.metrics();
        CHECK(m.requests.count - before.requests.count == 44);
        CHECK(m.in_flight == 0);
        CHECK(m.errors[static_cast<std::size_t>(error_kind::request_error)] - before.errors[static_cast<std::size_t>(error_kind::request_error)] == 3);
        CHECK(m.errors[static_cast<std::size_t>(error_kind::request_timeout)] - before.errors[static_cast<std::size_t>(error_kind::request_timeout)] == 1);
        CHECK(total(m.errors) - total(before.errors) == 4);
        CHECK(m.retries.failed_by_outcome[static_cast<std::size_t>(request_outcome::failed)] >= 3);
        // The timed-out request's 50 ms is the slowest: the top percentile is at least that, and the
        // percentiles are in order.
        CHECK(m.requests.max >= 50ms);
        CHECK(m.requests.p50 <= m.requests.p95);
        CHECK(m.requests.p95 <= m.requests.p99);
        CHECK(m.requests.p99 <= m.requests.p999);
        CHECK(m.requests.p999 <= m.requests.max);
        CHECK(m.requests.sum >= 50ms);
        // Per node: the 43 answers (the ERRORs included) are split over both nodes, the errors too.
        std::uint64_t answered = 0, syntax = 0, sent = 0;
        for (std::size_t i = 0; i < 2; ++i) {
            const auto& n = m.nodes[i];
            const auto& b = node_named(before, n.host);
            answered += n.latency.count - b.latency.count;
            syntax += n.errors[static_cast<std::size_t>(error_kind::request_error)] - b.errors[static_cast<std::size_t>(error_kind::request_error)];
            sent += n.requests_sent - b.requests_sent;
            CHECK(n.state == node_state::up);
            CHECK(n.open_connections == 1);
            CHECK(n.datacenter == "dc1");
        }
        CHECK(answered == 43);
        CHECK(syntax == 3);
        CHECK(sent >= 44);

        // A node's counters are its own: its connection closing (the node stops) does not reset them.
        const auto host2 = c.address(2) + ":" + std::to_string(c.port(2));
        const auto sent_before_stop = node_named(s.metrics(), host2).requests_sent;
        const auto answered_before_stop = node_named(s.metrics(), host2).latency.count;
        REQUIRE(sent_before_stop > 0);
        c.stop(2);
        co_await yield_until([&] { return node_named(s.metrics(), host2).open_connections == 0; }, 50'000'000);
        for (int i = 0; i < 10; ++i) co_await s.execute(statement("q"));
        const auto after_stop = node_named(s.metrics(), host2);
        CHECK(after_stop.requests_sent == sent_before_stop);
        CHECK(after_stop.latency.count == answered_before_stop);
        c.start(2);
        co_await yield_until([&] { return node_named(s.metrics(), host2).open_connections == 1; }, 200'000'000);
        CHECK(node_named(s.metrics(), host2).requests_sent > sent_before_stop);  // counted on from where it was
        co_await s.close();
    });
}

TEST_CASE("metrics: the Prometheus text is well formed and follows the counters") {
    sim::cluster c({.nodes = 2, .port = port});
    c.prime({.query = "q"}, sim::one_int_row());
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, cqlcoro::test::sim_session_params(c));
        for (int i = 0; i < 25; ++i) co_await s.execute(statement("q"));
        const auto m = s.metrics();
        const auto text = to_prometheus(m, "cqlcoro", "service=\"test\"");
        // Every line: a comment, or `name{labels} value`; every sample's family declared before it.
        const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (-?[0-9.e+-]+|\+Inf)$)");
        const std::regex type_line(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
        std::map<std::string, std::string> types;
        std::map<std::string, double> values;  // by the whole `name{labels}`
        std::istringstream in(text);
        std::string line;
        std::size_t samples = 0;
        while (std::getline(in, line)) {
            std::smatch g;
            if (std::regex_match(line, g, type_line)) {
                CHECK(types.count(g[1]) == 0);  // each family once
                types[g[1]] = g[2];
                continue;
            }
            if (line.rfind("# HELP ", 0) == 0) continue;
            INFO(line);
            REQUIRE(std::regex_match(line, g, sample));
            std::string family = g[1];
            for (const char* suffix : {"_bucket", "_sum", "_count"})
                if (!types.count(family) && family.size() > std::strlen(suffix) && family.ends_with(suffix))
                    family.resize(family.size() - std::strlen(suffix));
            CHECK(types.count(family) == 1);
            CHECK_THAT(std::string(g[2]), ContainsSubstring("service=\"test\""));
            values[g[1].str() + "{" + g[2].str() + "}"] = std::stod(g[3]);
            ++samples;
        }
        CHECK(samples > 100);
        CHECK(types["cqlcoro_requests_total"] == "counter");
        CHECK(types["cqlcoro_request_latency_seconds"] == "histogram");
        CHECK(values["cqlcoro_requests_total{service=\"test\"}"] == static_cast<double>(m.requests.count));
        CHECK(values["cqlcoro_request_latency_seconds_count{service=\"test\"}"] == static_cast<double>(m.requests.count));
        CHECK(values["cqlcoro_request_latency_seconds_bucket{service=\"test\",le=\"+Inf\"}"] == static_cast<double>(m.requests.count));
        // The buckets only grow.
        double last = -1;
        for (const auto& [bound, count] : m.requests.buckets) {
            CHECK(static_cast<double>(count) >= last);
            last = static_cast<double>(count);
        }
        CHECK(last <= static_cast<double>(m.requests.count));
        for (const auto& n : m.nodes) {
            const auto key = fmt::format("cqlcoro_node_up{{service=\"test\",host=\"{}\",datacenter=\"dc1\",rack=\"{}\"}}", n.host, n.rack);
            CHECK(values[key] == 1);
        }
        // More load moves the counter.
        for (int i = 0; i < 5; ++i) co_await s.execute(statement("q"));
        CHECK(s.metrics().requests.count == m.requests.count + 5);
        co_await s.close();
    });
}

TEST_CASE("request tracker: each attempt and each completion, once") {
    sim::cluster c({.nodes = 2, .port = port});
    c.prime({.query = "q"}, sim::one_int_row());
    c.prime({.query = "busy"}, {protocol::error_response{0x1001, "overloaded", {}}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = cqlcoro::test::sim_session_params(c);
        auto tracker = std::make_shared<recording_tracker>();
        p.tracker = tracker;
        auto s = co_await session::connect(ex, p);
        for (int i = 0; i < 5; ++i) co_await s.execute(statement("q"));
        // OVERLOADED on an idempotent read: the default policy tries the next node, then gives up.
        auto [ec, r] = co_await s.execute(statement("busy").idempotent(true), use_tuple);
        CHECK(ec == server_errc::overloaded);
        std::lock_guard lk(tracker->m);
        REQUIRE(tracker->completions.size() == 6);
        for (int i = 0; i < 5; ++i) {
            CHECK(std::get<0>(tracker->completions[i]) == "q");
            CHECK_FALSE(std::get<1>(tracker->completions[i]));
            CHECK(std::get<2>(tracker->completions[i]) == 1);
            CHECK(std::get<3>(tracker->completions[i]) > 0ns);
        }
        CHECK(std::get<1>(tracker->completions[5]) == server_errc::overloaded);
        CHECK(std::get<2>(tracker->completions[5]) == r.diagnostics().attempts.size());
        // One on_attempt per attempt the diagnostics hold.
        std::size_t busy_attempts = 0;
        for (const auto& [text, aec] : tracker->attempts)
            if (text == "busy") {
                ++busy_attempts;
                CHECK(aec == server_errc::overloaded);
            }
        CHECK(busy_attempts == r.diagnostics().attempts.size());
        CHECK(busy_attempts >= 2);
        CHECK(tracker->attempts.size() == 5 + busy_attempts);
        co_await s.close();
    });
}

TEST_CASE("request log: slow and failed requests, values only when asked, the server's warnings") {
    sim::cluster c({.nodes = 1, .port = port});
    const auto int_ = cql_type::of(type_kind::int_);
    const auto text_ = cql_type::of(type_kind::varchar);
    sim::prime_then slow{sim::one_int_row()};
    slow.delay = 120ms;
    slow.markers = {{"ks", "t", "k", int_}, {"ks", "t", "name", text_}};
    c.prime({.query = "SELECT v FROM ks.t WHERE k = ? AND name = ?"}, slow);
    c.prime({.query = "fast"}, sim::one_int_row());
    sim::prime_then warned{sim::one_int_row()};
    warned.warnings = {"Aggregation query used without partition key"};
    c.prime({.query = "SELECT count(*) FROM ks.t"}, warned);
    c.prime({.query = "bad"}, {protocol::error_response{0x2200, "Undefined column name nope", {}}});
    for (const bool show_values : {false, true}) {
        DYNAMIC_SECTION("show_values " << show_values) {
            log_lines log;
            cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
                auto p = cqlcoro::test::sim_session_params(c);
                p.logger = log.sink();
                p.slow_requests.threshold = 60ms;
                p.slow_requests.show_values = show_values;
                p.slow_requests.log_failures = true;
                p.slow_requests.max_query_length = 30;
                auto s = co_await session::connect(ex, p);
                auto ps = co_await s.prepare("SELECT v FROM ks.t WHERE k = ? AND name = ?");
                co_await s.execute(statement("fast"));
                co_await s.execute(ps.bind(std::int32_t{42}, std::string("it's secret")));
                co_await s.execute(statement("SELECT count(*) FROM ks.t"));
                auto [ec, r] = co_await s.execute(statement("bad"), use_tuple);
                CHECK(ec == server_errc::invalid);

                const auto slow_lines = log.containing("slow request");
                REQUIRE(slow_lines.size() == 1);  // "fast" is not slow
                const auto& line = slow_lines[0];
                CHECK_THAT(line, ContainsSubstring("(threshold 60 ms)"));
                CHECK_THAT(line, ContainsSubstring("coordinator " + c.address(1)));
                CHECK_THAT(line, ContainsSubstring("1 attempt"));
                CHECK_THAT(line, ContainsSubstring(": SELECT v FROM ks.t WHERE k = ?..."));  // cut at 30
                if (show_values) CHECK_THAT(line, ContainsSubstring("[k=42, name='it''s secret']"));
                else CHECK_THAT(line, !ContainsSubstring("secret") && !ContainsSubstring("42"));

                const auto failed = log.containing("request failed");
                REQUIRE(failed.size() == 1);
                CHECK_THAT(failed[0], ContainsSubstring("Undefined column name nope"));
                CHECK_THAT(failed[0], ContainsSubstring(": bad"));

                const auto warnings = log.containing("server warning");
                REQUIRE(warnings.size() == 1);
                CHECK_THAT(warnings[0], ContainsSubstring("Aggregation query used without partition key"));
                CHECK_THAT(warnings[0], ContainsSubstring("(request: SELECT count(*) FROM ks.t)"));
                co_await s.close();
            });
        }
    }
    SECTION("nothing is logged below the minimum level, or with no threshold") {
        log_lines log;
        cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            auto p = cqlcoro::test::sim_session_params(c);
            p.logger = log.sink();
            p.min_log_level = log_level::error;  // the slow log and the warnings are at warn
            p.slow_requests.threshold = 60ms;
            auto s = co_await session::connect(ex, p);
            auto ps = co_await s.prepare("SELECT v FROM ks.t WHERE k = ? AND name = ?");
            co_await s.execute(ps.bind(std::int32_t{1}, std::string("x")));
            co_await s.execute(statement("SELECT count(*) FROM ks.t"));
            co_await s.close();
            CHECK(log.containing("slow request").empty());
            CHECK(log.containing("server warning").empty());
        });
    }
}
