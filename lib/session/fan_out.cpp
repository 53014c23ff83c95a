// session::execute_many: statements grouped by replica set with the token map, run by a fixed number
// of workers on one strand, interleaved across groups, under one deadline; writes optionally batched
// per replica set. Each statement is an ordinary request (admission, plan, retries, hedges apply).
#include <cqlcoro/session.hpp>

#include "cluster/replicas.hpp"
#include "policy/routing_key.hpp"
#include "session/session_impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include "../namespaces.hpp"

namespace cqlcoro {

namespace {

using clock = std::chrono::steady_clock;

// One request of the fan-out: a statement, or a batch of statements sharing a replica set.
struct job {
    std::vector<std::size_t> items;  // indexes into the caller's statements
};

// The replica set of each statement (sorted host indexes; empty: not routed by token).
std::vector<std::vector<std::uint32_t>> replica_sets(detail::session_impl& impl, const std::vector<bound_statement>& statements) {
    std::vector<std::vector<std::uint32_t>> out(statements.size());
    const auto view = impl.current();
    if (!view || !view->tokens) return out;
    for (std::size_t i = 0; i < statements.size(); ++i) {
        const auto& s = statements[i];
        const auto& o = s.options();
        std::string_view keyspace;
        bytes_view key;
        policy::key_buffer composite;
        if (!policy::routing_key_of(o, &s, composite, key, keyspace)) continue;
        if (keyspace.empty()) keyspace = o.keyspace.empty() ? std::string_view(impl.params.keyspace) : std::string_view(o.keyspace);
        const auto* table = view->tokens->table(keyspace);
        if (!table) continue;
        const auto r = view->tokens->replicas(*table, cluster::token_of(view->tokens->kind(), key));
        out[i].assign(r.begin(), r.end());
        std::sort(out[i].begin(), out[i].end());
    }
    return out;
}

bool batchable(const bound_statement& s) { return !s.prepared().is_read && !s.prepared().conditional; }

// The jobs, interleaved across replica groups (the first of each group, then the second, ...), so that
// the first requests in flight spread over the nodes.
std::vector<job> plan_jobs(const std::vector<bound_statement>& statements, const std::vector<std::vector<std::uint32_t>>& sets,
                           const fan_out_options& o, std::size_t& groups) {
    struct group {
        std::vector<job> jobs;
        std::size_t open = SIZE_MAX;  // the index of its batch still taking statements
    };
    std::map<std::vector<std::uint32_t>, group> by_set;  // ordered: the same order every run
    std::vector<job> unrouted;
    for (std::size_t i = 0; i < statements.size(); ++i) {
        if (sets[i].empty()) {
            unrouted.push_back({{i}});
            continue;
        }
        auto& g = by_set[sets[i]];
        const bool batched = o.batch_writes && batchable(statements[i]);
        if (batched && g.open != SIZE_MAX && g.jobs[g.open].items.size() < o.max_batch) {
            g.jobs[g.open].items.push_back(i);
            continue;
        }
        if (batched) g.open = g.jobs.size();
        g.jobs.push_back({{i}});
    }
    groups = by_set.size();
    std::vector<std::vector<job>*> lanes;
    for (auto& [set, g] : by_set) lanes.push_back(&g.jobs);
    if (!unrouted.empty()) lanes.push_back(&unrouted);
    std::vector<job> out;
    for (std::size_t round = 0;; ++round) {
        bool any = false;
        for (auto* lane : lanes)
            if (round < lane->size()) {
                out.push_back(std::move((*lane)[round]));
                any = true;
            }
        if (!any) break;
    }
    return out;
}

result not_sent(const std::string& why) {
    diagnostics d;
    d.outcome = request_outcome::not_sent;
    d.attempts.push_back(attempt_info{{}, {}, why, request_outcome::not_sent, retry_action::rethrow});
    return detail::failed_result(std::move(d));
}

}  // namespace

asio::awaitable<fan_out_result> session::fan_out_op(session self, std::vector<bound_statement> statements, fan_out_options o) {
    if (o.concurrency < 1) throw error(client_errc::invalid_configuration, "execute_many(): fan_out_options::concurrency must be at least 1");
    if (o.max_batch < 1) throw error(client_errc::invalid_configuration, "execute_many(): fan_out_options::max_batch must be at least 1");
    if (o.timeout.count() < 0) throw error(client_errc::invalid_configuration, "execute_many(): fan_out_options::timeout must not be negative");
    auto& impl = self.impl();
    const auto start = clock::now();
    const auto deadline = o.timeout.count() > 0 ? start + o.timeout : clock::time_point::max();

    fan_out_result out;
    out.items.resize(statements.size());
    std::vector<bool> ended(statements.size(), false);
    const auto sets = replica_sets(impl, statements);
    auto jobs = plan_jobs(statements, sets, o, out.replica_groups);

    auto strand = asio::make_strand(co_await asio::this_coro::executor);
    std::size_t next = 0;
    auto worker = [&]() -> asio::awaitable<void> {
        for (;;) {
            const auto cs = co_await asio::this_coro::cancellation_state;
            if (cs.cancelled() != asio::cancellation_type::none || next >= jobs.size()) co_return;
            const auto& j = jobs[next++];
            const auto now = clock::now();
            if (now >= deadline) {
                const auto r = not_sent(fmt::format("execute_many(): its timeout of {} ms passed before this statement was sent", o.timeout.count()));
                for (auto i : j.items) {
                    out.items[i] = {make_error_code(client_errc::request_timeout), r};
                    ended[i] = true;
                }
                continue;
            }
            // What is left of the call's deadline, unless the statement's own timeout is shorter.
            auto remaining = std::chrono::milliseconds::max();
            if (deadline != clock::time_point::max())
                remaining = std::max(std::chrono::milliseconds(1), std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
            auto timed = [&](auto s) {
                if (remaining != std::chrono::milliseconds::max() && (!s.options().timeout || *s.options().timeout > remaining)) s.timeout(remaining);
                return s;
            };
            ++out.requests;
            if (j.items.size() == 1) {
                auto s = timed(statements[j.items.front()]);
                auto [ec, r] = co_await self.execute(std::move(s), asio::as_tuple(asio::use_awaitable));
                out.items[j.items.front()] = {ec, std::move(r)};
            } else {
                ++out.batches;
                const auto& first = statements[j.items.front()];
                batch b(batch_kind::unlogged);
                b.options() = first.options();  // consistency, profile, timestamp, ... of the first
                b.options().routing.reset();
                b.options().paging_state.clear();
                b.options().idempotent.reset();  // the batch is idempotent when every statement is
                for (auto i : j.items) b.add(statements[i]);
                auto [ec, r] = co_await self.execute(timed(std::move(b)), asio::as_tuple(asio::use_awaitable));
                for (auto i : j.items) out.items[i] = {ec, r};
            }
            for (auto i : j.items) ended[i] = true;
        }
    };
    const auto workers = std::min(o.concurrency, jobs.size());
    if (workers > 0) {
        using op_type = decltype(asio::co_spawn(strand, worker(), asio::deferred));
        std::vector<op_type> ops;
        ops.reserve(workers);
        for (std::size_t w = 0; w < workers; ++w) ops.push_back(asio::co_spawn(strand, worker(), asio::deferred));
        auto group = asio::experimental::make_parallel_group(std::move(ops));
        auto [order, errors] = co_await group.async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
        for (const auto& e : errors)
            if (e) std::rethrow_exception(e);
    }
    for (std::size_t i = 0; i < statements.size(); ++i)
        if (!ended[i]) out.items[i] = {make_error_code(asio::error::operation_aborted), not_sent("execute_many() was cancelled before this statement was sent")};
    for (const auto& item : out.items) out.failed += item.ec ? 1 : 0;
    co_return out;
}

}  // namespace cqlcoro
