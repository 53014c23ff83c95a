#include "cluster/replicas.hpp"

#include <algorithm>
#include <set>

namespace cqlcoro::cluster {

token_ring token_ring::build(std::vector<ring_host> hosts, const std::vector<std::vector<std::int64_t>>& tokens) {
    token_ring ring;
    ring.hosts = std::move(hosts);
    for (std::size_t h = 0; h < tokens.size() && h < ring.hosts.size(); ++h)
        for (auto t : tokens[h]) ring.entries.push_back({t, h});
    std::sort(ring.entries.begin(), ring.entries.end(), [](const entry& a, const entry& b) { return a.token < b.token; });
    return ring;
}

std::size_t token_ring::first_at_or_after(std::int64_t token) const noexcept {
    auto it = std::lower_bound(entries.begin(), entries.end(), token, [](const entry& e, std::int64_t t) { return e.token < t; });
    return it == entries.end() ? 0 : static_cast<std::size_t>(it - entries.begin());
}

std::vector<std::size_t> simple_replicas(const token_ring& ring, std::int64_t token, std::size_t rf) {
    std::vector<std::size_t> out;
    if (ring.entries.empty()) return out;
    rf = std::min(rf, ring.hosts.size());
    const auto start = ring.first_at_or_after(token);
    for (std::size_t i = 0; i < ring.entries.size() && out.size() < rf; ++i) {
        const auto owner = ring.entries[(start + i) % ring.entries.size()].owner;
        if (std::find(out.begin(), out.end(), owner) == out.end()) out.push_back(owner);
    }
    return out;
}

std::vector<std::size_t> network_topology_replicas(const token_ring& ring, std::int64_t token,
                                                   const std::map<std::string, std::size_t>& rf_by_dc) {
    struct dc_state {
        std::size_t wanted = 0;
        std::size_t racks = 0;  // distinct racks in the datacenter
        std::size_t chosen = 0;
        std::set<std::string> seen_racks;
        std::vector<std::size_t> skipped;  // hosts passed over because their rack already had a replica
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
    std::vector<std::size_t> out;
    if (ring.entries.empty() || dcs.empty()) return out;
    std::vector<bool> taken(ring.hosts.size(), false);
    auto all_done = [&] {
        return std::all_of(dcs.begin(), dcs.end(), [](const auto& d) { return d.second.chosen >= d.second.wanted; });
    };
    auto choose = [&](dc_state& s, std::size_t host) {
        taken[host] = true;
        ++s.chosen;
        out.push_back(host);
    };
    const auto start = ring.first_at_or_after(token);
    for (std::size_t i = 0; i < ring.entries.size() && !all_done(); ++i) {
        const auto host = ring.entries[(start + i) % ring.entries.size()].owner;
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
