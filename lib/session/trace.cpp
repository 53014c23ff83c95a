// session::fetch_trace: a traced request read back from system_traces, through the session's own
// requests (so the query plan, retries and timeouts apply as to any read).
#include <cqlcoro/session.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace cqlcoro {

namespace {

bool has_column(const result& r, std::string_view name) {
    const auto& cols = r.columns();
    return std::any_of(cols.begin(), cols.end(), [&](const column_spec& c) { return c.name == name; });
}

template <class T>
T column_or(row_view row, const result& r, std::string_view name, T fallback = {}) {
    if (!has_column(r, name)) return fallback;
    auto v = row.get<std::optional<T>>(name);
    return v ? std::move(*v) : fallback;
}

}  // namespace

asio::awaitable<query_trace> session::fetch_trace(uuid tracing_id, trace_options o) {
    if (o.attempts < 1)
        throw error(client_errc::invalid_configuration, "fetch_trace(): trace_options::attempts must be at least 1");
    asio::steady_timer pause(co_await asio::this_coro::executor);
    for (int attempt = 1;; ++attempt) {
        auto rows = co_await execute(statement("SELECT * FROM system_traces.sessions WHERE session_id = ?", tracing_id)
                                         .consistency(o.consistency).idempotent(true));
        // The coordinator writes the session row's duration last, once the request is done.
        if (!rows.empty() && rows.one().get<std::optional<std::int32_t>>("duration")) {
            const auto row = rows.one();
            query_trace t;
            t.id = tracing_id;
            t.request = column_or<std::string>(row, rows, "request");
            t.coordinator = column_or<boost::asio::ip::address>(row, rows, "coordinator");
            t.client = column_or<boost::asio::ip::address>(row, rows, "client");
            t.duration = std::chrono::microseconds(column_or<std::int32_t>(row, rows, "duration"));
            t.started_at = column_or<timestamp>(row, rows, "started_at");
            t.parameters = column_or<std::map<std::string, std::string>>(row, rows, "parameters");
            std::vector<std::uint8_t> state;
            do {  // every page of events, in event_id (time) order
                auto events = co_await execute(statement("SELECT * FROM system_traces.events WHERE session_id = ?", tracing_id)
                                                   .consistency(o.consistency).idempotent(true).page_size(5000).paging_state(state));
                for (auto e : events.rows()) {
                    auto& ev = t.events.emplace_back();
                    ev.id = e.get<uuid>("event_id");
                    ev.activity = column_or<std::string>(e, events, "activity");
                    ev.source = column_or<boost::asio::ip::address>(e, events, "source");
                    ev.source_elapsed = std::chrono::microseconds(column_or<std::int32_t>(e, events, "source_elapsed"));
                    ev.thread = column_or<std::string>(e, events, "thread");
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
