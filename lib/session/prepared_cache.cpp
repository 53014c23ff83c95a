// The prepared-statement cache: one PREPARE per (keyspace, text) however many callers ask at once,
// on every up node when prepare_on_all_hosts is set, and again on a node that comes back up. All on
// the session's strand.
#include <cqlcoro/session.hpp>

#include "policy/error_class.hpp"
#include "policy/idempotence.hpp"
#include "session/result_builder.hpp"
#include "session/session_impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include "../namespaces.hpp"

namespace cqlcoro::detail {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

asio::awaitable<fallible<prepared_statement>> session_impl::prepare_on_strand(std::string query) {
    auto self = shared_from_this();
    auto key = std::make_pair(params.keyspace, query);
    if (auto it = prepared.find(key); it != prepared.end()) {
        auto entry = it->second;
        if (!entry->finished) co_await entry->done.async_wait(use_tuple);
        if (entry->failed) co_return *entry->failed;
        co_return entry->value;
    }
    auto entry = std::make_shared<prepare_entry>(strand);
    prepared.emplace(key, entry);
    auto sent = co_await send_prepare(query);
    if (sent) {
        entry->value = std::move(*sent);
    } else {
        entry->failed = std::move(sent.error());
        prepared.erase(key);  // a later prepare tries again
    }
    entry->finished = true;
    entry->done.cancel();
    if (entry->failed) co_return *entry->failed;
    co_return entry->value;
}

namespace {

// PREPARE on one connection: the prepared result, or the error that says why not.
asio::awaitable<fallible<prepared_statement>> prepare_on(session_impl& s, conn_t& conn, const std::string& name, const std::string& query) {
    auto frame = std::make_shared<protocol::byte_buffer>();
    auto ctx = s.encoding();
    ctx.version = conn.version();
    ctx.compression = conn.frame_compression();
    if (auto ec = session_detail::encode_prepare(ctx, query, "", *frame)) co_return failure{ec, "PREPARE: " + ec.message()};
    auto [ec, f] = co_await conn.execute(conn_t::shared_frame(std::move(frame)), use_tuple);
    if (ec) co_return failure{ec, fmt::format("{}: PREPARE failed: {}", name, ec.message())};
    if (auto* e = std::get_if<protocol::error_response>(&f.message.body)) {
        const auto x = make_server_error(*e, name);
        co_return failure{x.boost_code(), fmt::format("{} (preparing \"{}\")", x.what(), query), x.diagnostics()};
    }
    const auto* res = std::get_if<protocol::result_response>(&f.message.body);
    const auto* p = res ? std::get_if<protocol::prepared_result>(&res->body) : nullptr;
    if (!p) co_return failure{protocol_errc::unexpected_opcode, fmt::format("{}: the answer to PREPARE is not a prepared result", name)};
    auto data = std::make_shared<prepared_data>();
    data->query = query;
    data->keyspace = s.params.keyspace;
    data->id = p->id;
    data->markers = p->variables.columns;
    data->pk_indexes = p->variables.pk_indexes;
    data->is_read = policy::is_read_statement(query);
    data->idempotent = policy::infer_idempotence(query);
    data->conditional = policy::is_conditional(query);
    if (data->pk_indexes.empty() && !data->markers.empty() && s.md) {
        // Protocol v3 does not send the partition key's marker positions: find them from the schema,
        // by the table's partition key column names among the markers.
        const auto& first = data->markers.front();
        if (const auto* ks = s.md->keyspace(first.keyspace)) {
            auto t = ks->tables.find(first.table);
            if (t != ks->tables.end() && !t->second.partition_key.empty()) {
                std::vector<std::uint16_t> found;
                for (const auto& column : t->second.partition_key) {
                    auto m = std::find_if(data->markers.begin(), data->markers.end(), [&](const column_spec& c) {
                        return c.name == column && c.keyspace == first.keyspace && c.table == first.table;
                    });
                    if (m == data->markers.end()) break;
                    found.push_back(static_cast<std::uint16_t>(m - data->markers.begin()));
                }
                if (found.size() == t->second.partition_key.size()) data->pk_indexes = std::move(found);
            }
        }
    }
    data->update_result(p->result_metadata_id, p->result.columns);
    co_return prepared_statement(std::move(data));
}

}  // namespace

asio::awaitable<fallible<prepared_statement>> session_impl::send_prepare(const std::string& query) {
    auto v = current();
    // The same plan a request without a routing key gets: the policy's order over the usable nodes.
    query_plan plan;
    plan.rotation = plan_start();
    lb->start(*v, plan);
    for (auto i = lb->next(*v, plan); i != query_plan::end; i = lb->next(*v, plan)) {
        if (i >= v->hosts.size() || !v->hosts[i]) continue;
        const auto& h = *v->hosts[i];
        auto* conn = h.pick();
        if (!conn) continue;
        auto p = co_await prepare_on(*this, *conn, h.name(), query);
        if (p) {
            if (params.prepare_on_all_hosts) co_await prepare_on_others(query, h.name());
            co_return p;
        }
        // A PREPARE changes no data: one lost with its connection goes to the next node too.
        const auto code = p.error().code;
        if (never_sent(code) || code == client_errc::connection_closed_sent) continue;
        co_return p;
    }
    co_return failure{client_errc::no_host_available, fmt::format("PREPARE \"{}\": no host has an open connection", query)};
}

namespace {

// The other nodes' PREPAREs run side by side; the last to finish wakes the waiter.
struct prepare_fanout {
    explicit prepare_fanout(asio::any_io_executor ex) : done(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;
    std::size_t pending = 0;
};

asio::awaitable<void> prepare_one(std::shared_ptr<session_impl> s, std::shared_ptr<const routing_view> v, std::uint32_t host,
                                  std::string query, std::shared_ptr<prepare_fanout> f) {
    const auto& h = *v->hosts[host];
    if (auto* conn = h.pick()) {
        // A failure: that node prepares it on first use instead (UNPREPARED is handled).
        co_await prepare_on(*s, *conn, h.name(), query);
    }
    if (--f->pending == 0) f->done.cancel();
}

}  // namespace

asio::awaitable<void> session_impl::prepare_on_others(const std::string& query, const std::string& answered_by) {
    auto v = current();
    auto fan = std::make_shared<prepare_fanout>(strand);
    for (const auto* list : {&v->local, &v->remote})
        for (auto i : *list) {
            if (v->hosts[i]->name() == answered_by) continue;
            ++fan->pending;
            asio::co_spawn(strand, prepare_one(shared_from_this(), v, i, query, fan), asio::detached);
        }
    if (fan->pending == 0) co_return;
    fan->done.expires_after(params.request_timeout);  // bounded: a node that does not answer does not hold prepare() up
    co_await fan->done.async_wait(use_tuple);
}

asio::awaitable<void> session_impl::reprepare_all(std::shared_ptr<node_pool> p) {
    auto queue = std::make_shared<std::deque<std::string>>();
    for (const auto& [key, entry] : prepared)
        if (entry->finished && !entry->failed && key.first == params.keyspace) queue->push_back(key.second);
    if (queue->empty()) co_return;
    auto self = shared_from_this();
    // Bounded parallelism: a few workers take statements from one queue.
    auto worker = [](std::shared_ptr<session_impl> s, std::shared_ptr<node_pool> pl, std::shared_ptr<std::deque<std::string>> q) -> asio::awaitable<void> {
        while (!q->empty() && !s->closing && !pl->removed()) {
            auto query = std::move(q->front());
            q->pop_front();
            std::shared_ptr<conn_t> conn;
            for (const auto& c : pl->connections())
                if (c->state() == connection::connection_state::ready) conn = c;
            if (!conn) co_return;
            co_await prepare_on(*s, *conn, pl->info()->endpoint, query);  // a failure: prepared on first use
        }
    };
    const auto n = std::min(queue->size(), std::max<std::size_t>(1, params.reprepare_parallelism));
    for (std::size_t i = 0; i < n; ++i) asio::co_spawn(strand, worker(self, p, queue), asio::detached);
}

}  // namespace cqlcoro::detail
