// The cluster layer: the control connection, node discovery, events, pools and their reconnection,
// schema metadata and agreement. Everything here runs on the session's strand; what requests need is
// published as an immutable routing_view (publish()).
#include "session/session_impl.hpp"
#include "cluster/metadata_access.hpp"

#include "cluster/column_reader.hpp"
#include "policy/error_class.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include "../namespaces.hpp"

namespace cqlcoro::detail {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

asio::ip::address to_address(const inet_address& a) {
    if (a.size == 4) return asio::ip::address_v4({a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]});
    asio::ip::address_v6::bytes_type b;
    std::copy_n(a.bytes.begin(), 16, b.begin());
    return asio::ip::address_v6(b);
}


}  // namespace

connection::connection_params session_impl::connection_params_for(const std::string& host, std::uint16_t port, bool is_control) const {
    connection::connection_params c;
    c.host = host;
    c.port = port;
    c.max_version = version ? version : (params.protocol_version ? params.protocol_version : 5);
    c.compression = params.compression == compression::lz4      ? protocol::compression::lz4
                    : params.compression == compression::snappy ? protocol::compression::snappy
                                                                : protocol::compression::none;
    c.auth = params.auth;
    c.tls = params.tls;
    if (!is_control) c.keyspace = params.keyspace;
    c.exact_version = version == 0 && params.protocol_version != 0;
    c.connect_timeout = params.connect_timeout;
    c.heartbeat_interval = params.heartbeat_interval;
    // Three quarters of a smaller set of stream ids, unless the budget asked for is smaller still.
    c.max_requests = params.max_requests_per_connection;
    c.max_frame_size = params.max_frame_size;
    c.orphan_budget = std::min(params.orphan_budget, std::max<std::size_t>(1, params.max_requests_per_connection * 3 / 4));
    c.replace_on_orphans = !is_control;
    if (is_control) c.events = {"TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"};
    return c;
}

connection::connection_params session_impl::control_params(const std::string& host, std::uint16_t port) const {
    return connection_params_for(host, port, true);
}

void session_impl::control_opened(const connection::connection& c) {
    if (version == 0) {
        version = c.version();
        frame_compression = c.frame_compression();
    }
}

error_code connect_failure_code(const std::optional<error_code>& common) {
    if (!common || !*common) return client_errc::no_host_available;
    const auto& cat = common->category();
    const bool telling = &cat == &server_category() || &cat == &protocol_category() || *common == client_errc::authentication_failed ||
                         *common == client_errc::authentication_required || *common == client_errc::tls_failed;
    return telling ? *common : error_code(client_errc::no_host_available);
}

// ---------------------------------------------------------------- nodes

void session_impl::nodes_read(cluster_topology t) {
    if (t.partitioner) partitioner = t.partitioner;
    cluster_name = std::move(t.cluster_name);
    if (local_dc.empty() && !t.nodes.empty())
        local_dc = params.local_datacenter.empty() ? t.nodes.front()->datacenter : params.local_datacenter;
    apply_nodes(std::move(t.nodes));
}

void session_impl::apply_nodes(std::vector<std::shared_ptr<node>> found) {
    std::vector<std::shared_ptr<node_pool>> next;
    std::vector<std::shared_ptr<node_pool>> added;
    std::set<node_pool*> kept;
    for (auto& n : found) {
        // The same node: the same host id at the same address. A host id at a new address is a new node
        // to connect to (the old address is gone); a new address with an old host's tokens likewise.
        auto it = std::find_if(pools.begin(), pools.end(), [&](const std::shared_ptr<node_pool>& p) {
            return p->info()->host_id == n->host_id && p->info()->address == n->address && p->info()->port == n->port;
        });
        if (it != pools.end() && !kept.count(it->get())) {
            auto& p = *it;
            const auto& old = *p->info();
            if (old.datacenter != n->datacenter || old.rack != n->rack || old.tokens != n->tokens ||
                old.release_version != n->release_version || old.schema_version != n->schema_version ||
                old.broadcast_rpc_address != n->broadcast_rpc_address)
                p->set_info(n);  // a new identity snapshot; the pool and its connections stay
            kept.insert(p.get());
            next.push_back(p);
            continue;
        }
        auto p = std::make_shared<node_pool>(strand, n, std::weak_ptr<pool_listener>(shared_from_this()), params.request_timeout);
        next.push_back(p);
        added.push_back(p);
    }
    for (auto& p : pools)
        if (!kept.count(p.get())) {
            p->remove();
            notify(node_event_kind::removed, p->info());
        }
    pools = std::move(next);
    std::vector<std::shared_ptr<const node>> nodes;
    for (const auto& p : pools) nodes.push_back(p->info());
    rebuild_metadata(std::move(nodes), md ? md->keyspaces() : std::map<std::string, keyspace_metadata>{});
    for (auto& p : added) notify(node_event_kind::added, p->info());
    update_distances();
    publish();
}

void session_impl::rebuild_metadata(std::vector<std::shared_ptr<const node>> nodes, std::map<std::string, keyspace_metadata> keyspaces,
                                    std::optional<std::chrono::system_clock::time_point> refreshed) {
    std::string partitioner_name;
    std::shared_ptr<const token_map> tokens;
    if (partitioner) {
        static constexpr const char* names[] = {"org.apache.cassandra.dht.Murmur3Partitioner", "org.apache.cassandra.dht.RandomPartitioner",
                                                "org.apache.cassandra.dht.ByteOrderedPartitioner"};
        partitioner_name = names[static_cast<int>(*partitioner)];
        tokens = token_map::build(*partitioner, nodes, keyspaces, md ? metadata_access::tokens(*md).get() : nullptr);
    }
    const auto when = refreshed ? *refreshed : md ? md->schema_refreshed_at() : std::chrono::system_clock::time_point{};
    md = metadata_access::make(cluster_name, std::move(partitioner_name), std::move(nodes), std::move(keyspaces), std::move(tokens), when);
}

void session_impl::update_distances() {
    std::map<std::string, std::size_t> remote_seen;
    for (const auto& p : pools) {
        auto& seen = remote_seen[p->info()->datacenter];
        const auto d = lb->distance(*p->info(), local_dc, seen);
        if (d == node_distance::remote) ++seen;
        metadata_access::distance(*p->info()).store(d);
        p->set_target(d == node_distance::local    ? params.connections_per_host
                      : d == node_distance::remote ? params.connections_per_remote_host
                                                   : 0);
    }
    readiness.cancel();
}

// ---------------------------------------------------------------- what the pools tell

connection::connection_params session_impl::pool_connection_params(const node& n) const {
    return connection_params_for(n.address.to_string(), n.port, false);
}

std::chrono::milliseconds session_impl::pool_retry_delay(std::size_t attempt) {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    return params.reconnection.delay(attempt, unit(rng));
}

void session_impl::pool_changed(node_pool&) { publish(); }

void session_impl::pool_progress(node_pool&) { readiness.cancel(); }

void session_impl::pool_node_up(node_pool& p, bool first) {
    notify(node_event_kind::up, p.info());
    if (params.reprepare_on_up && (!first || !prepared.empty())) asio::co_spawn(strand, reprepare_all(p.shared_from_this()), asio::detached);
}

void session_impl::pool_node_down(node_pool& p) { notify(node_event_kind::down, p.info()); }

void session_impl::pool_connection_lost(node_pool& p, const std::string& why) {
    if (!closing.load(std::memory_order_relaxed))
        log(log_level::info, fmt::format("{}: a connection closed ({}); its pool reconnects", p.info()->endpoint, why.empty() ? "no reason given" : why));
}

void session_impl::pool_replacing(node_pool& p, const conn_t& c) {
    log(log_level::warn, fmt::format("{}: replacing a connection: {} abandoned requests (cancelled or timed out after they were "
                                     "written) hold stream ids awaiting late answers, more than the orphan budget of {}",
                                     p.info()->endpoint, c.orphans(), params.orphan_budget));
}

void session_impl::notify(node_event_kind k, const std::shared_ptr<node>& n) {
    // Each at its own level (a logger at warn still hears of a node down); formatted only when logged.
    const auto level = k == node_event_kind::down ? log_level::warn : log_level::info;
    if (logs(level)) {
        const char* what = k == node_event_kind::up      ? "node up"
                           : k == node_event_kind::added ? "node added to the cluster"
                           : k == node_event_kind::removed
                               ? "node removed from the cluster"
                               : "node down: no connection to it could be kept or opened; requests go to other nodes while it reconnects";
        log(level, fmt::format("{}: {}", n->endpoint, what));
    }
    if (!params.on_node_event) return;
    try {
        params.on_node_event(node_event{k, n});
    } catch (...) {  // a listener's failure is its own
    }
}

namespace {

// A node's load for the load balancing policy's health order (plan_nodes::load).
node_load routing_load(const plan_nodes& p, std::uint32_t i) {
    const auto& v = static_cast<const routing_view&>(p);
    node_load l;
    if (i >= v.hosts.size()) return l;
    const auto& h = *v.hosts[i];
    const auto now = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last{};
    for (const auto& c : h.connections) {
        l.in_flight += c->in_flight() + c->orphans();
        last = std::max(last, c->last_read());
    }
    if (l.in_flight > 0 && last.time_since_epoch().count() > 0 && now > last) l.silent_for = now - last;
    if (const auto* st = metadata_access::stats_of(*h.info)) {
        const auto since = st->up_since.load(std::memory_order_relaxed);
        if (since != 0) l.up_for = now - std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(since));
    }
    return l;
}

}  // namespace

void session_impl::publish() {
    auto v = std::make_shared<routing_view>();
    v->load = &routing_load;
    v->md = md;
    v->tokens = md ? metadata_access::tokens(*md).get() : nullptr;
    v->hosts.reserve(pools.size());
    for (std::uint32_t i = 0; i < pools.size(); ++i) {
        const auto& p = pools[i];
        auto h = std::make_shared<host_conns>();
        h->info = p->info();
        h->connections = p->connections();
        for (const auto& c : h->connections) h->targets.push_back(c.get());
        v->nodes.push_back(p->info());
        const bool usable = !h->connections.empty() && p->info()->state() == node_state::up && !p->removed();
        if (usable) {
            if (p->info()->distance() == node_distance::local) v->local.push_back(i);
            else if (p->info()->distance() == node_distance::remote) v->remote.push_back(i);
        }
        v->hosts.push_back(std::move(h));
    }
    std::lock_guard lock(view_mutex);
    v->profiles = profiles;
    view.store(std::move(v), std::memory_order_release);
}

void session_impl::set_profiles(std::shared_ptr<const profile_set> set) {
    std::lock_guard lock(view_mutex);
    profiles = std::move(set);
    const auto old = view.load(std::memory_order_acquire);
    auto v = old ? std::make_shared<routing_view>(*old) : std::make_shared<routing_view>();
    v->profiles = profiles;
    view.store(std::move(v), std::memory_order_release);
}

std::shared_ptr<node_pool> session_impl::pool_for(const asio::ip::address& a, std::optional<std::uint16_t> port) const {
    std::shared_ptr<node_pool> by_address;
    for (const auto& p : pools) {
        if (p->info()->broadcast_rpc_address != a && p->info()->address != a) continue;
        if (!port || p->info()->port == *port) return p;
        if (!by_address) by_address = p;  // the event names the untranslated port
    }
    return by_address;
}

bool session_impl::pools_ready(session_params::readiness r) const {
    bool any_up = false, all_done = true;
    for (const auto& p : pools) {
        const auto& st = p->state();
        if (st.target() == 0) continue;
        any_up = any_up || !st.open().empty();
        all_done = all_done && (st.first_attempt_done() && (st.opening() == 0 || st.node() == pool_node_state::down));
    }
    return r == session_params::readiness::first_host ? any_up || all_done : all_done;
}

// ---------------------------------------------------------------- schema

std::map<std::string, keyspace_metadata> session_impl::known_keyspaces() const {
    return md ? md->keyspaces() : std::map<std::string, keyspace_metadata>{};
}

void session_impl::schema_read(std::map<std::string, keyspace_metadata> keyspaces) {
    std::vector<std::shared_ptr<const node>> nodes;
    for (const auto& p : pools) nodes.push_back(p->info());
    rebuild_metadata(std::move(nodes), std::move(keyspaces), std::chrono::system_clock::now());
    publish();
}

// ---------------------------------------------------------------- what the control connection tells

// The cluster's word on a node's state, one batch of STATUS_CHANGE events at a time.
bool session_impl::status_changed(const std::vector<std::pair<inet_address, std::string>>& changes) {
    bool unknown_up = false;
    for (const auto& [addr, change] : changes) {
        auto p = pool_for(to_address(addr), static_cast<std::uint16_t>(addr.port));
        if (!p) {
            unknown_up = unknown_up || change == "UP";
            continue;
        }
        if (change == "UP") p->cluster_up();
        else if (change == "DOWN") p->cluster_down();
    }
    return unknown_up;
}

// Up nodes of the local datacenter first, then the others, then the contact points.
endpoint_list session_impl::reconnect_candidates() const {
    endpoint_list candidates;
    for (int pass = 0; pass < 2; ++pass)
        for (const auto& p : pools) {
            const bool local = p->info()->distance() == node_distance::local;
            if ((pass == 0) == local && p->info()->state() != node_state::down)
                candidates.emplace_back(p->info()->address.to_string(), p->info()->port);
        }
    for (const auto& p : pools)
        if (p->info()->state() == node_state::down) candidates.emplace_back(p->info()->address.to_string(), p->info()->port);
    for (const auto& cp : params.contact_points) candidates.emplace_back(cp, params.port);
    return candidates;
}

bool session_impl::is_down(const uuid& host_id) const {
    auto p = std::find_if(pools.begin(), pools.end(), [&](const auto& x) { return x->info()->host_id == host_id; });
    return p != pools.end() && (*p)->info()->state() == node_state::down;
}

asio::awaitable<fallible<void>> session_impl::start() {
    std::vector<std::pair<std::string, std::uint16_t>> candidates;
    for (const auto& cp : params.contact_points) candidates.emplace_back(cp, params.port);
    std::string failures;
    std::optional<error_code> common;
    control = std::make_shared<control_connection>(strand, params, *this);
    if (!co_await control->connect(candidates, failures, &common))
        co_return failure{connect_failure_code(common), "no contact point could be reached: " + failures};
    auto read = co_await control->refresh_nodes();
    if (!read) {
        control->stop();
        co_return read;
    }
    if (!params.local_datacenter.empty() &&
        std::none_of(pools.begin(), pools.end(), [&](const auto& p) { return p->info()->datacenter == params.local_datacenter; })) {
        std::set<std::string> dcs;
        for (const auto& p : pools) dcs.insert(p->info()->datacenter);
        std::string known;
        for (const auto& d : dcs) known += (known.empty() ? "" : ", ") + d;
        stop_pools();
        co_return failure{client_errc::invalid_configuration,
                          fmt::format("local_datacenter \"{}\" has no node; the cluster's datacenters are: {}", params.local_datacenter, known)};
    }
    read = co_await control->refresh_schema();
    if (!read) {
        stop_pools();
        co_return read;
    }
    const auto deadline = std::chrono::steady_clock::now() + params.connect_timeout + std::chrono::seconds(1);
    while (!pools_ready(params.ready_when) && std::chrono::steady_clock::now() < deadline) {
        readiness.expires_at(deadline);
        co_await readiness.async_wait(use_tuple);
    }
    if (current()->local.empty() && current()->remote.empty()) {
        // Every pool failed: report why, as a failed connect would.
        std::string why;
        std::optional<error_code> common;  // the one code every pool failed with, if there is one
        for (const auto& p : pools) {
            const auto& st = p->state();
            if (st.target() == 0) continue;
            const auto& text = st.last_failure().empty() ? std::string("not connected") : st.last_failure();
            why += (why.empty() ? "" : "; ") + (text.starts_with(p->info()->endpoint) ? text : p->info()->endpoint + ": " + text);
            common = !common || *common == st.last_error() ? st.last_error() : error_code();
        }
        stop_pools();
        // Every node refused the same way (the server's own error, a keyspace that does not exist say):
        // that error, so that code-based handling sees it; otherwise no host was available.
        co_return failure{connect_failure_code(common), "no node of the local datacenter could be connected: " + why};
    }
    // The session lives while the control connection follows the cluster; stop() ends it.
    auto follow = [](std::shared_ptr<session_impl> self) -> asio::awaitable<void> { co_await self->control->run(); };
    asio::co_spawn(strand, follow(shared_from_this()), asio::detached);
    co_return fallible<void>();
}

// A connect that failed: nothing of it stays open.
void session_impl::stop_pools() {
    closing = true;
    control->stop();
    for (const auto& p : pools)
        for (auto& c : p->stop()) c->abort();
    publish();
}

}  // namespace cqlcoro::detail
