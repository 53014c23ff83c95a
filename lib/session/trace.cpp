// session::fetch_trace: a traced request read back from system_traces, through the session's own
// requests (so the query plan, retries and timeouts apply as to any read).
#include <cqlcoro/session.hpp>

#include "cluster/column_reader.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <fmt/format.h>
#include "../namespaces.hpp"

namespace cqlcoro {

asio::awaitable<query_trace> session::fetch_trace_op(session self, uuid tracing_id, trace_options o) {
    if (o.attempts < 1)
        throw error(client_errc::invalid_configuration, "fetch_trace(): trace_options::attempts must be at least 1");
    asio::steady_timer pause(co_await asio::this_coro::executor);
    for (int attempt = 1;; ++attempt) {
        auto rows = co_await self.execute(statement("SELECT * FROM system_traces.sessions WHERE session_id = ?", tracing_id)
                                         .consistency(o.consistency).idempotent(true));
        // The coordinator writes the session row's duration last, once the request is done.
        const cluster::column_reader cols(rows);  // columns differ by version (client: 3.0+)
        if (!rows.empty() && cols.get<std::int32_t>(rows.one(), "duration")) {
            const auto row = rows.one();
            query_trace t;
            t.id = tracing_id;
            t.request = cols.get_or<std::string>(row, "request", {});
            t.coordinator = cols.get_or<boost::asio::ip::address>(row, "coordinator", {});
            t.client = cols.get_or<boost::asio::ip::address>(row, "client", {});
            t.duration = std::chrono::microseconds(cols.get_or<std::int32_t>(row, "duration", 0));
            t.started_at = cols.get_or<timestamp>(row, "started_at", {});
            t.parameters = cols.get_or<std::map<std::string, std::string>>(row, "parameters", {});
            std::vector<std::uint8_t> state;
            do {  // every page of events, in event_id (time) order
                auto events = co_await self.execute(statement("SELECT * FROM system_traces.events WHERE session_id = ?", tracing_id)
                                                   .consistency(o.consistency).idempotent(true).page_size(5000).paging_state(state));
                const cluster::column_reader ecols(events);
                for (auto e : events.rows()) {
                    auto& ev = t.events.emplace_back();
                    ev.id = e.get<uuid>("event_id");
                    ev.activity = ecols.get_or<std::string>(e, "activity", {});
                    ev.source = ecols.get_or<boost::asio::ip::address>(e, "source", {});
                    ev.source_elapsed = std::chrono::microseconds(ecols.get_or<std::int32_t>(e, "source_elapsed", 0));
                    ev.thread = ecols.get_or<std::string>(e, "thread", {});
                }
                state.assign(events.paging_state().begin(), events.paging_state().end());
            } while (!state.empty());
            co_return t;
        }
        if (attempt == o.attempts)
            throw error(client_errc::request_timeout,
                        fmt::format("the trace {} is {} after {} reads {} ms apart: the server writes traces after answering; "
                                    "try again later, or raise trace_options::attempts or interval",
                                    boost::uuids::to_string(tracing_id), rows.empty() ? "not in system_traces.sessions" : "still incomplete",
                                    o.attempts, o.interval.count()));
        pause.expires_after(o.interval);
        co_await pause.async_wait(asio::use_awaitable);
    }
}

}  // namespace cqlcoro
