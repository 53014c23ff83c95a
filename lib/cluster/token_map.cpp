#include "cluster/token_map.hpp"

#include <atomic>
#include <charconv>
#include <optional>

namespace cqlcoro {

namespace {

std::string_view short_class(std::string_view name) {
    if (auto dot = name.rfind('.'); dot != std::string_view::npos) name.remove_prefix(dot + 1);
    return name;
}

std::size_t factor(const std::string& text) {
    // "3", or Cassandra 4's transient form "3/1" (full replicas first).
    std::size_t v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v);
    return v;
}

token_map::replica_table compute(const cluster::token_ring& ring, const replication_metadata& r) {
    token_map::replica_table t;
    t.offsets.reserve(ring.size() + 1);
    t.offsets.push_back(0);
    const auto kind = short_class(r.strategy_class);
    std::size_t rf = 0;
    std::optional<cluster::ring_topology> topo;
    std::vector<std::size_t> rf_by_dc;
    if (kind == "SimpleStrategy") {
        if (auto it = r.options.find("replication_factor"); it != r.options.end()) rf = factor(it->second);
        t.flat.reserve(ring.size() * std::min(rf, ring.hosts.size()));
    } else if (kind == "NetworkTopologyStrategy") {
        topo.emplace(ring);
        rf_by_dc.assign(topo->dcs.size(), 0);
        for (std::size_t d = 0; d < topo->dcs.size(); ++d)
            if (auto it = r.options.find(topo->dcs[d]); it != r.options.end()) rf_by_dc[d] = factor(it->second);
    }
    for (std::size_t pos = 0; pos < ring.size(); ++pos) {
        if (kind == "SimpleStrategy") {
            auto one = cluster::simple_replicas_at(ring, pos, rf);
            t.flat.insert(t.flat.end(), one.begin(), one.end());
        } else if (kind == "NetworkTopologyStrategy") {
            cluster::network_topology_replicas_at(ring, *topo, pos, rf_by_dc, t.flat);
        } else if (kind == "EverywhereStrategy") {
            auto one = cluster::everywhere_replicas_at(ring, pos);
            t.flat.insert(t.flat.end(), one.begin(), one.end());
        } else {
            t.flat.push_back(ring.owners[pos]);  // LocalStrategy: every node holds its own; the token's owner is as good as any
        }
        t.offsets.push_back(static_cast<std::uint32_t>(t.flat.size()));
    }
    t.flat.shrink_to_fit();
    return t;
}

bool same_ring(const cluster::token_ring& a, const cluster::token_ring& b) {
    if (a.kind != b.kind || a.owners != b.owners || a.tokens != b.tokens || a.hosts.size() != b.hosts.size()) return false;
    for (std::size_t i = 0; i < a.hosts.size(); ++i)
        if (a.hosts[i].dc != b.hosts[i].dc || a.hosts[i].rack != b.hosts[i].rack) return false;
    return true;
}

}  // namespace

std::string replication_key(const replication_metadata& r) {
    const auto kind = short_class(r.strategy_class);
    if (kind != "SimpleStrategy" && kind != "NetworkTopologyStrategy" && kind != "LocalStrategy" && kind != "EverywhereStrategy")
        return {};
    std::string key(kind);
    if (kind == "SimpleStrategy" || kind == "NetworkTopologyStrategy")
        for (const auto& [k, v] : r.options)
            if (k != "class") key += "|" + k + "=" + v;
    return key;
}

std::shared_ptr<const token_map> token_map::build(cluster::partitioner p, const std::vector<std::shared_ptr<const node>>& nodes,
                                                  const std::map<std::string, keyspace_metadata>& keyspaces, const token_map* previous) {
    static std::atomic<std::uint64_t> built{0};
    auto m = std::make_shared<token_map>();
    m->generation_ = ++built;
    std::vector<cluster::ring_host> hosts;
    std::vector<std::vector<std::string>> tokens;
    hosts.reserve(nodes.size());
    tokens.reserve(nodes.size());
    for (const auto& n : nodes) {
        hosts.push_back({n->datacenter, n->rack});
        tokens.push_back(n->tokens);
    }
    m->ring_ = cluster::token_ring::build(p, std::move(hosts), tokens);
    const bool reuse = previous && same_ring(previous->ring_, m->ring_);
    for (const auto& [name, ks] : keyspaces) {
        auto key = replication_key(ks.replication);
        if (key.empty()) continue;
        auto it = m->by_replication_.find(key);
        if (it == m->by_replication_.end()) {
            std::shared_ptr<const replica_table> t;
            if (reuse)
                if (auto old = previous->by_replication_.find(key); old != previous->by_replication_.end()) t = old->second;
            if (!t) t = std::make_shared<const replica_table>(compute(m->ring_, ks.replication));
            it = m->by_replication_.emplace(key, std::move(t)).first;
        }
        m->by_keyspace_.emplace(name, it->second.get());
    }
    return m;
}

std::size_t token_map::memory_bytes() const noexcept {
    std::size_t n = ring_.owners.capacity() * sizeof(std::uint32_t);
    std::visit([&](const auto& v) { n += v.capacity() * sizeof(v[0]); }, ring_.tokens);
    for (const auto& [_, t] : by_replication_) n += (t->flat.capacity() + t->offsets.capacity()) * sizeof(std::uint32_t);
    return n;
}

const token_map::replica_table* token_map::table(std::string_view keyspace) const noexcept {
    auto it = by_keyspace_.find(keyspace);
    return it == by_keyspace_.end() ? nullptr : it->second;
}

std::span<const std::uint32_t> token_map::replicas(std::string_view keyspace, std::span<const std::uint8_t> routing_key) const {
    const auto* t = table(keyspace);
    if (!t || ring_.empty()) return {};
    return replicas(*t, cluster::token_of(ring_.kind, routing_key));
}

}  // namespace cqlcoro
