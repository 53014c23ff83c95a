// Many partition keys at once: session.execute_many() runs a set of bound statements grouped by their
// replicas, concurrently, under one deadline, and gives each statement's result or error back in the
// caller's order.
//
//   std::vector<cqlcoro::bound_statement> reads;
//   for (auto id : ids) reads.push_back(select_by_id.bind(id));
//   auto out = co_await session.execute_many(std::move(reads), {.timeout = 2s});
//   for (std::size_t i = 0; i < out.items.size(); ++i)
//       if (out.items[i].ec) ... out.items[i].value.diagnostics().outcome ...
//       else use(out.items[i].value.rows());
#pragma once

#include <cqlcoro/error.hpp>
#include <cqlcoro/result.hpp>

#include <chrono>
#include <cstddef>
#include <vector>

namespace cqlcoro {

struct fan_out_options {
    /// Requests in flight at once for this call (each also holds an admission permit, so the session's
    /// limits apply as to any request).
    std::size_t concurrency = 128;
    /// One deadline for the whole call, from its start: each request gets what is left of it (or its
    /// own timeout if shorter), and a statement not yet sent when it passes fails with
    /// request_timeout, not sent. Zero: each request has its own timeout only.
    std::chrono::milliseconds timeout{0};
    /// Writes (statements that are not reads, lightweight transactions excepted) whose partitions have
    /// the same replicas go as UNLOGGED batches of up to `max_batch` statements, each sent to one of
    /// those replicas: every coordinator writes only what it owns. Counter updates cannot be batched
    /// this way (the server refuses them in an unlogged batch). Off: one request per statement.
    bool batch_writes = false;
    std::size_t max_batch = 20;
};

/// One statement's end: `ec` empty and `value` its result, or `ec` the error and `value` carrying the
/// diagnostics (attempts, the server's error, the outcome: not sent, rejected, failed, maybe applied).
/// Statements sent in one batch share the batch's end.
struct fan_out_item {
    error_code ec;
    result value;
};

struct fan_out_result {
    std::vector<fan_out_item> items;  ///< one per statement, in the caller's order
    std::size_t requests = 0;         ///< requests sent (a batch counts once)
    std::size_t batches = 0;          ///< of which batches
    /// Distinct replica sets the statements fell into (0: none routed by token: no partition key, or the
    /// token map does not know the keyspace).
    std::size_t replica_groups = 0;
    std::size_t failed = 0;           ///< items with an error
    bool ok() const noexcept { return failed == 0; }
};

}  // namespace cqlcoro
