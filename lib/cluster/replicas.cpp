#include "cluster/replicas.hpp"

// GCC 12 reports a std::vector inside std::optional<token> as maybe-uninitialized when it is moved
// out of the optional (a known false positive of its variant/optional analysis).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <numeric>
#include <set>

namespace cqlcoro::cluster {

std::optional<partitioner> partitioner_from_class(std::string_view name) noexcept {
    if (auto dot = name.rfind('.'); dot != std::string_view::npos) name.remove_prefix(dot + 1);
    if (name == "Murmur3Partitioner") return partitioner::murmur3;
    if (name == "RandomPartitioner") return partitioner::random;
    if (name == "ByteOrderedPartitioner") return partitioner::byte_ordered;
    return std::nullopt;
}

token token_of(partitioner p, key_bytes key) {
    switch (p) {
    case partitioner::murmur3: return murmur3_token(key);
    case partitioner::random: return random_token(key).value_or(uint128{0});  // the minimum sorts first
    case partitioner::byte_ordered: return std::vector<std::uint8_t>(key.begin(), key.end());
    }
    return std::int64_t{0};
}

std::optional<token> parse_token(partitioner p, std::string_view text) {
    switch (p) {
    case partitioner::murmur3:
        if (auto t = parse_murmur3_token(text)) return token(*t);
        return std::nullopt;
    case partitioner::random:
        if (auto t = parse_random_token(text)) return token(*t);
        return std::nullopt;
    case partitioner::byte_ordered:
        if (auto t = parse_byte_ordered_token(text)) return token(std::move(*t));
        return std::nullopt;
    }
    return std::nullopt;
}

namespace {

// Sorts (token, owner) pairs of one token type into the ring.
template <class T>
void place(token_ring& ring, std::vector<std::pair<T, std::uint32_t>> all) {
    std::sort(all.begin(), all.end());
    std::vector<T> sorted;
    sorted.reserve(all.size());
    ring.owners.reserve(all.size());
    for (auto& [t, owner] : all) {
        sorted.push_back(std::move(t));
        ring.owners.push_back(owner);
    }
    ring.tokens = std::move(sorted);
}

}  // namespace

token_ring token_ring::build(partitioner p, std::vector<ring_host> hosts, const std::vector<std::vector<std::string>>& tokens) {
    token_ring ring;
    ring.kind = p;
    ring.hosts = std::move(hosts);
    auto collect = [&]<class T>(std::vector<std::pair<T, std::uint32_t>>& out) {
        for (std::size_t h = 0; h < tokens.size() && h < ring.hosts.size(); ++h)
            for (const auto& text : tokens[h])
                if (auto t = parse_token(p, text)) out.emplace_back(std::get<T>(std::move(*t)), static_cast<std::uint32_t>(h));
    };
    switch (p) {
    case partitioner::murmur3: {
        std::vector<std::pair<std::int64_t, std::uint32_t>> all;
        collect(all);
        place(ring, std::move(all));
        break;
    }
    case partitioner::random: {
        std::vector<std::pair<uint128, std::uint32_t>> all;
        collect(all);
        place(ring, std::move(all));
        break;
    }
    case partitioner::byte_ordered: {
        std::vector<std::pair<std::vector<std::uint8_t>, std::uint32_t>> all;
        collect(all);
        place(ring, std::move(all));
        break;
    }
    }
    return ring;
}

token_ring token_ring::build(std::vector<ring_host> hosts, const std::vector<std::vector<std::int64_t>>& tokens) {
    token_ring ring;
    ring.hosts = std::move(hosts);
    std::vector<std::pair<std::int64_t, std::uint32_t>> all;
    for (std::size_t h = 0; h < tokens.size() && h < ring.hosts.size(); ++h)
        for (auto t : tokens[h]) all.emplace_back(t, static_cast<std::uint32_t>(h));
    place(ring, std::move(all));
    return ring;
}

std::size_t token_ring::first_at_or_after(const token& t) const noexcept {
    return std::visit(
        [&](const auto& sorted) -> std::size_t {
            using T = typename std::decay_t<decltype(sorted)>::value_type;
            const auto* want = std::get_if<T>(&t);
            if (!want) return 0;  // a token of another partitioner: no placement, start anywhere
            auto it = std::lower_bound(sorted.begin(), sorted.end(), *want);
            return it == sorted.end() ? 0 : static_cast<std::size_t>(it - sorted.begin());
        },
        tokens);
}

std::vector<std::uint32_t> simple_replicas_at(const token_ring& ring, std::size_t start, std::size_t rf) {
    std::vector<std::uint32_t> out;
    if (ring.empty()) return out;
    rf = std::min(rf, ring.hosts.size());
    for (std::size_t i = 0; i < ring.size() && out.size() < rf; ++i) {
        const auto owner = ring.owners[(start + i) % ring.size()];
        if (std::find(out.begin(), out.end(), owner) == out.end()) out.push_back(owner);
    }
    return out;
}

std::vector<std::uint32_t> everywhere_replicas_at(const token_ring& ring, std::size_t start) {
    return simple_replicas_at(ring, start, ring.hosts.size());
}

ring_topology::ring_topology(const token_ring& ring) {
    std::map<std::string, std::uint32_t> dc_index;
    std::map<std::pair<std::uint32_t, std::string>, std::uint32_t> rack_index;
    for (const auto& h : ring.hosts) {
        auto [d, new_dc] = dc_index.try_emplace(h.dc, static_cast<std::uint32_t>(dcs.size()));
        if (new_dc) {
            dcs.push_back(h.dc);
            hosts_in_dc.push_back(0);
            racks_in_dc.push_back(0);
        }
        auto [r, new_rack] = rack_index.try_emplace(std::pair(d->second, h.rack), static_cast<std::uint32_t>(racks));
        if (new_rack) {
            ++racks;
            ++racks_in_dc[d->second];
        }
        ++hosts_in_dc[d->second];
        dc_of.push_back(d->second);
        rack_of.push_back(r->second);
    }
}

void network_topology_replicas_at(const token_ring& ring, const ring_topology& topo, std::size_t start,
                                  const std::vector<std::size_t>& rf, std::vector<std::uint32_t>& out) {
    // Scratch reused across calls on this thread: a placement allocates nothing once warm.
    thread_local std::vector<std::size_t> wanted, chosen, seen_count;
    thread_local std::vector<std::uint8_t> rack_seen;
    thread_local std::vector<std::uint64_t> taken, listed;  // stamps: equal to `stamp` means set
    thread_local std::vector<std::vector<std::uint32_t>> skipped;
    thread_local std::uint64_t stamp = 0;
    const std::size_t n_dc = topo.dcs.size();
    wanted.assign(n_dc, 0);
    chosen.assign(n_dc, 0);
    seen_count.assign(n_dc, 0);
    rack_seen.assign(topo.racks, 0);
    if (taken.size() < ring.hosts.size()) {
        taken.resize(ring.hosts.size(), 0);
        listed.resize(ring.hosts.size(), 0);
    }
    if (skipped.size() < n_dc) skipped.resize(n_dc);
    ++stamp;
    std::size_t unfinished = 0;
    for (std::size_t d = 0; d < n_dc; ++d) {
        skipped[d].clear();
        wanted[d] = d < rf.size() ? std::min(rf[d], topo.hosts_in_dc[d]) : 0;
        unfinished += wanted[d] > 0;
    }
    if (ring.empty()) return;
    auto choose = [&](std::uint32_t d, std::uint32_t host) {
        taken[host] = stamp;
        out.push_back(host);
        if (++chosen[d] == wanted[d]) --unfinished;
    };
    for (std::size_t i = 0; i < ring.size() && unfinished > 0; ++i) {
        const auto host = ring.owners[(start + i) % ring.size()];
        if (taken[host] == stamp) continue;
        const auto d = topo.dc_of[host];
        if (chosen[d] >= wanted[d]) continue;
        const auto r = topo.rack_of[host];
        if (rack_seen[r] && seen_count[d] < topo.racks_in_dc[d]) {
            if (listed[host] != stamp) {
                listed[host] = stamp;
                skipped[d].push_back(host);
            }
            continue;
        }
        choose(d, host);
        if (!rack_seen[r]) {
            rack_seen[r] = 1;
            ++seen_count[d];
        }
        if (seen_count[d] == topo.racks_in_dc[d]) {  // every rack used: the skipped hosts fill up, in ring order
            for (auto s : skipped[d]) {
                if (chosen[d] >= wanted[d]) break;
                if (taken[s] != stamp) choose(d, s);
            }
            skipped[d].clear();
        }
    }
}

std::vector<std::uint32_t> network_topology_replicas_at(const token_ring& ring, std::size_t start,
                                                        const std::map<std::string, std::size_t>& rf_by_dc) {
    const ring_topology topo(ring);
    std::vector<std::size_t> rf(topo.dcs.size(), 0);
    for (std::size_t d = 0; d < topo.dcs.size(); ++d)
        if (auto it = rf_by_dc.find(topo.dcs[d]); it != rf_by_dc.end()) rf[d] = it->second;
    std::vector<std::uint32_t> out;
    network_topology_replicas_at(ring, topo, start, rf, out);
    return out;
}

}  // namespace cqlcoro::cluster
