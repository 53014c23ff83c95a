#include "pool/node_pool.hpp"

#include "cluster/metadata_access.hpp"
#include "session/stats.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include "../namespaces.hpp"

namespace cqlcoro::detail {

node_pool::node_pool(asio::strand<asio::any_io_executor> strand, std::shared_ptr<node> info, std::weak_ptr<pool_listener> listener,
                     std::chrono::milliseconds drain_timeout)
    : strand_(strand), info_(std::move(info)), listener_(std::move(listener)), drain_timeout_(drain_timeout), retry_(strand) {
    auto& stats = metadata_access::stats(*info_);
    if (!stats) stats = std::make_shared<node_stats>();  // the node's metrics, from now on its own
}

void node_pool::set_info(std::shared_ptr<node> n) {
    metadata_access::state(*n).store(info_->state());
    metadata_access::distance(*n).store(info_->distance());
    metadata_access::open_connections(*n).store(info_->open_connections());
    metadata_access::replaced(*n).store(metadata_access::replaced(*info_));
    metadata_access::stats(*n) = metadata_access::stats(*info_);
    info_ = std::move(n);
}

node_pool::conn_ptr node_pool::find(std::uint64_t id) const {
    for (const auto& [i, c] : conns_)
        if (i == id) return c;
    return nullptr;
}

std::vector<node_pool::conn_ptr> node_pool::connections() const {
    std::vector<conn_ptr> out;
    out.reserve(fsm_.open().size());
    for (auto id : fsm_.open())
        if (auto c = find(id)) out.push_back(std::move(c));
    return out;
}

std::vector<node_pool::conn_ptr> node_pool::stop() {
    resume(pool_event::stop());
    std::vector<conn_ptr> out;
    for (const auto& [id, c] : conns_) out.push_back(c);
    return out;
}

void node_pool::resume(const pool_event& e) { apply(fsm_.resume(e)); }

void node_pool::apply(pool_actions a) {
    auto listener = listener_.lock();
    using change = pool_actions::node_change;
    const bool first = info_->state() == node_state::unknown;
    switch (a.node) {
    case change::up:
    case change::up_quietly:
        // Back from down (not the first time up): load balancing warms it up (node_load::up_for).
        if (info_->state() == node_state::down)
            if (auto* st = metadata_access::stats_of(*info_))
                st->up_since.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        metadata_access::state(*info_).store(node_state::up);
        break;
    case change::down:
    case change::down_quietly: metadata_access::state(*info_).store(node_state::down); break;
    case change::none: break;
    }
    metadata_access::open_connections(*info_).store(fsm_.open().size());
    if (listener) {
        if (a.node == change::up) listener->pool_node_up(*this, first);
        if (a.node == change::down) listener->pool_node_down(*this);
    }
    for (auto id : a.abort)
        if (auto c = find(id)) c->abort();  // its close comes back as a `closed` event, which the machine ignores
    for (auto id : a.drain)
        if (auto c = find(id)) asio::co_spawn(strand_, c->close(drain_timeout_), asio::detached);
    if (a.replacing) {
        metadata_access::replaced(*info_).fetch_add(1, std::memory_order_relaxed);
        if (auto c = find(*a.replacing); c && listener) listener->pool_replacing(*this, *c);
    }
    if (a.publish && listener) listener->pool_changed(*this);
    for (std::size_t i = 0; i < a.connect; ++i) start_connect();
    if (a.cancel_retry) {
        ++retry_generation_;
        retry_.cancel();
    }
    if (a.retry_attempt && listener) {
        const auto generation = ++retry_generation_;
        retry_.expires_after(listener->pool_retry_delay(*a.retry_attempt));
        retry_.async_wait([weak = weak_from_this(), generation](error_code ec) {
            auto self = weak.lock();
            if (ec || !self || generation != self->retry_generation_) return;  // cancelled, or superseded
            self->resume(pool_event::retry_due());
        });
    }
}

void node_pool::start_connect() {
    auto listener = listener_.lock();
    if (!listener) return;
    const auto id = next_id_++;
    std::weak_ptr<node_pool> weak = weak_from_this();
    // The connection reports its state from its own strand; the pool hears it on the session's.
    connection::connection::state_handler on_state = [weak, strand = strand_, id](connection::connection_state st, error_code ec) {
        asio::post(strand, [weak, id, st, ec] {
            auto self = weak.lock();
            if (!self) return;
            self->on_state(id, st, ec);
        });
    };
    auto params = listener->pool_connection_params(*info_);
    auto op = [](std::shared_ptr<node_pool> self, std::uint64_t id, asio::any_io_executor ex, connection::connection_params params,
                 connection::connection::state_handler on_state) -> asio::awaitable<void> {
        auto made = co_await connection::connection::try_connect(ex, std::move(params), {}, std::move(on_state));
        if (!made) {
            self->resume(pool_event::connect_failed(made.error().code, made.error().message()));
            if (auto l = self->listener_.lock()) l->pool_progress(*self);
            co_return;
        }
        auto c = std::move(*made);
        self->conns_.emplace_back(id, c);
        self->resume(pool_event::connected(id));
        if (auto l = self->listener_.lock()) l->pool_progress(*self);
        // A connection that closed before this point had its `closed` event ignored (it was not open
        // yet): report it now. A later `closed` event for it is ignored in turn.
        if (c->state() == connection::connection_state::closed) self->on_state(id, connection::connection_state::closed, c->failure().first);
    };
    asio::co_spawn(strand_, op(shared_from_this(), id, strand_.get_inner_executor(), std::move(params), std::move(on_state)), asio::detached);
}

void node_pool::on_state(std::uint64_t id, connection::connection_state st, error_code ec) {
    using cs = connection::connection_state;
    auto c = find(id);
    if (!c) return;  // a connect that has not completed: handled when it does
    if (st == cs::ready) {
        if (ec == client_errc::orphan_budget_exceeded) resume(pool_event::over_budget(id));
        return;
    }
    if (st == cs::draining) {
        resume(pool_event::draining(id));
        return;
    }
    auto why = c->failure().second;
    if (ec != client_errc::connection_draining && ec != asio::error::operation_aborted)
        if (auto l = listener_.lock()) l->pool_connection_lost(*this, why);
    if (auto* st = metadata_access::stats_of(*info_)) {  // its counts stay the node's
        st->retired_sent.fetch_add(c->sent(), std::memory_order_relaxed);
        st->retired_unexpected.fetch_add(c->unexpected_answers(), std::memory_order_relaxed);
    }
    std::erase_if(conns_, [id](const auto& x) { return x.first == id; });
    resume(pool_event::closed(id, ec, std::move(why)));
}

}  // namespace cqlcoro::detail
