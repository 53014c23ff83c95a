// The application's own policies and its own middleware, in the session's chain.
//
//   custom_retry [host=127.0.0.1]
//
// The retry policy retries read timeouts on the next node (a slow replica set may answer elsewhere), up
// to twice, and leaves every other decision to the built-in default policy. The load balancing policy
// tries the local nodes in a fixed order (the first listed is the primary, the others are standbys),
// after the partition's replicas. Speculative execution hedges idempotent requests after 200 ms. Two
// middlewares sit in the chain: one within the deadline prints each failed request's outcome and the
// attempts it took; one after `retry` sees every attempt on its node and counts them per node.
#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>

namespace asio = boost::asio;

class reads_elsewhere final : public cqlcoro::retry_policy {
public:
    std::unique_ptr<cqlcoro::retry_state> new_state() const override { return std::make_unique<state>(fallback_.new_state()); }

private:
    struct state final : cqlcoro::retry_state {
        explicit state(std::unique_ptr<cqlcoro::retry_state> f) : fallback(std::move(f)) {}
        cqlcoro::retry_decision decide(const cqlcoro::failed_attempt& f) override {
            if (f.ec == cqlcoro::server_errc::read_timeout)
                return f.retries < 2 ? cqlcoro::retry_decision::next_node() : cqlcoro::retry_decision::rethrow();
            return fallback->decide(f);  // everything else: the default's table
        }
        std::unique_ptr<cqlcoro::retry_state> fallback;
    };
    cqlcoro::default_retry_policy fallback_;
};

// Replicas first (in ring order), then the local nodes in the order of the view, never rotated; remote
// nodes last. The default policy's distances.
class primary_first final : public cqlcoro::load_balancing_policy {
public:
    cqlcoro::node_distance distance(const cqlcoro::node& n, std::string_view local_dc, std::size_t remote_before) const override {
        return fallback_.distance(n, local_dc, remote_before);
    }
    void start(const cqlcoro::plan_nodes&, cqlcoro::query_plan& plan) const override { plan.stage = plan.pos = 0; }
    std::uint32_t next(const cqlcoro::plan_nodes& v, cqlcoro::query_plan& plan) const override {
        // One list after the other: replicas, local, remote; a node already given is skipped.
        for (;;) {
            const std::vector<std::uint32_t>* list = plan.stage == 1 ? &v.local : plan.stage == 2 ? &v.remote : nullptr;
            const std::size_t size = plan.stage == 0 ? plan.replicas.size() : list ? list->size() : 0;
            if (plan.stage > 2) return cqlcoro::query_plan::end;
            if (plan.pos >= size) {
                ++plan.stage;
                plan.pos = 0;
                continue;
            }
            const auto i = plan.stage == 0 ? plan.replicas[plan.pos] : (*list)[plan.pos];
            ++plan.pos;
            if (plan.stage > 0 && std::find(plan.replicas.begin(), plan.replicas.end(), i) != plan.replicas.end()) continue;
            return i;
        }
    }

private:
    cqlcoro::default_load_balancing_policy fallback_;
};

cqlcoro::middleware report_failures() {
    return [](cqlcoro::request& r, cqlcoro::next_layer next) -> asio::awaitable<cqlcoro::outcome> {
        auto o = co_await next(r);
        if (o.ec) {
            const auto& d = o.result.diagnostics();
            fmt::print("[failed] {} -> {} [{}], {} attempt(s), {} retr{}\n", r.text(), o.ec.message(), cqlcoro::to_string(d.outcome),
                       d.attempts.size(), d.retries, d.retries == 1 ? "y" : "ies");
            for (const auto& a : d.attempts)
                fmt::print("    {}: {} ({}; then {})\n", a.host, a.message, cqlcoro::to_string(a.outcome), cqlcoro::to_string(a.decision));
        }
        co_return o;
    };
}

// After `retry` in the chain: once per attempt, on the node the query plan chose.
cqlcoro::middleware count_attempts(std::map<std::string, std::size_t>& per_node) {
    return [&per_node](cqlcoro::request& r, cqlcoro::next_layer next) -> asio::awaitable<cqlcoro::outcome> {
        const auto start = std::chrono::steady_clock::now();
        auto o = co_await next(r);
        ++per_node[r.diagnostics.host];
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        if (took > std::chrono::milliseconds(100)) fmt::print("[slow attempt] {} took {} ms on {}\n", r.text(), took.count(), r.diagnostics.host);
        co_return o;
    };
}

asio::awaitable<void> run(asio::any_io_executor ex, std::string host) {
    std::map<std::string, std::size_t> attempts_per_node;
    cqlcoro::session_params p;
    p.contact_points = {host};
    p.retry = std::make_shared<reads_elsewhere>();
    p.load_balancing = std::make_shared<primary_first>();
    p.speculative_execution = std::make_shared<cqlcoro::constant_speculative_execution>(std::chrono::milliseconds(200));
    p.max_attempts = 3;
    p.attempt_timeout = std::chrono::seconds(2);  // a hung coordinator costs 2 s, not the whole 12 s
    using layer = cqlcoro::built_in_layer;
    p.chain = {layer::deadline, report_failures(), layer::speculative_execution, layer::retry, count_attempts(attempts_per_node)};
    auto session = co_await cqlcoro::session::connect(ex, p);
    auto rs = co_await session.execute(cqlcoro::statement("SELECT release_version FROM system.local"));
    fmt::print("release_version {} (from {}, {} attempt(s))\n", rs.one().get<std::string>(0), rs.coordinator(),
               rs.diagnostics().attempts.size());
    // A statement the server refuses: not retried (the default's table), outcome "failed".
    auto [ec, r] = co_await session.execute(cqlcoro::statement("SELECT nothing FROM system.local"), asio::as_tuple(asio::use_awaitable));
    const auto m = session.retry_metrics();
    fmt::print("retries {}, budget denials {}, failed requests that were not executed/failed/maybe applied: {}/{}/{}\n", m.retries,
               m.budget_denials, m.failed_by_outcome[0] + m.failed_by_outcome[1], m.failed_by_outcome[2], m.failed_by_outcome[3]);
    co_await session.close();
    std::size_t attempts = 0;
    for (const auto& [node, n] : attempts_per_node) {
        fmt::print("attempts on {}: {}\n", node, n);
        attempts += n;
    }
    if (attempts != 2) throw std::runtime_error(fmt::format("two requests of one attempt each, but {} attempts were counted", attempts));
    if (!ec || r.diagnostics().outcome != cqlcoro::request_outcome::failed) throw std::runtime_error("the invalid SELECT should have failed");
}

int main(int argc, char** argv) {
    asio::io_context io;
    int status = 0;
    asio::co_spawn(io, run(io.get_executor(), argc > 1 ? argv[1] : "127.0.0.1"), [&](std::exception_ptr e) {
        if (!e) return;
        status = 1;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            fmt::print(stderr, "custom_retry: {}\n", x.what());
        }
    });
    io.run();
    return status;
}
