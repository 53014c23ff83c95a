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

std::vector<std::uint32_t> network_topology_replicas_at(const token_ring& ring, std::size_t start,
                                                     const std::map<std::string, std::size_t>& rf_by_dc) {
    struct dc_state {
        std::size_t wanted = 0;
        std::size_t racks = 0;  // distinct racks in the datacenter
        std::size_t chosen = 0;
        std::set<std::string> seen_racks;
        std::vector<std::uint32_t> skipped;  // hosts passed over because their rack already had a replica
    };
    std::map<std::string, dc_state> dcs;
    {
        std::map<std::string, std::set<std::string>> racks;
        std::map<std::string, std::size_t> hosts_in;
        for (const auto& h : ring.hosts) {
            racks[h.dc].insert(h.rack);
            ++hosts_in[h.dc];
        }
        for (const auto& [dc, rf] : rf_by_dc) {
            if (!hosts_in.count(dc) || rf == 0) continue;
            auto& s = dcs[dc];
            s.wanted = std::min(rf, hosts_in[dc]);
            s.racks = racks[dc].size();
        }
    }
    std::vector<std::uint32_t> out;
    if (ring.empty() || dcs.empty()) return out;
    std::size_t unfinished = dcs.size();
    std::vector<bool> taken(ring.hosts.size(), false);
    auto choose = [&](dc_state& s, std::uint32_t host) {
        taken[host] = true;
        out.push_back(host);
        if (++s.chosen == s.wanted) --unfinished;
    };
    for (std::size_t i = 0; i < ring.size() && unfinished > 0; ++i) {
        const auto host = ring.owners[(start + i) % ring.size()];
        if (taken[host]) continue;
        const auto& h = ring.hosts[host];
        auto it = dcs.find(h.dc);
        if (it == dcs.end()) continue;
        auto& s = it->second;
        if (s.chosen >= s.wanted) continue;
        if (s.seen_racks.count(h.rack) && s.seen_racks.size() < s.racks) {
            if (std::find(s.skipped.begin(), s.skipped.end(), host) == s.skipped.end()) s.skipped.push_back(host);
            continue;
        }
        choose(s, host);
        s.seen_racks.insert(h.rack);
        if (s.seen_racks.size() == s.racks) {  // every rack used: the skipped hosts fill up, in ring order
            for (auto skipped : s.skipped) {
                if (s.chosen >= s.wanted) break;
                if (!taken[skipped]) choose(s, skipped);
            }
            s.skipped.clear();
        }
    }
    return out;
}

}  // namespace cqlcoro::cluster
