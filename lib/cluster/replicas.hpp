// Replica placement on a token ring, as Cassandra's replication strategies compute it: the basis of
// token-aware routing. Sans-I/O: a ring of tokens, each owned by a host with a datacenter and a rack.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cqlcoro::cluster {

struct ring_host {
    std::string dc;
    std::string rack;
};

/// The ring: every token of every host, sorted by token. `owner` indexes the hosts vector.
struct token_ring {
    struct entry {
        std::int64_t token;
        std::size_t owner;
    };
    std::vector<ring_host> hosts;
    std::vector<entry> entries;  // sorted by token

    /// Builds the ring from each host's tokens (Murmur3).
    static token_ring build(std::vector<ring_host> hosts, const std::vector<std::vector<std::int64_t>>& tokens);
    /// The position of the first entry whose token is >= `token` (wrapping to 0): the token's owner.
    std::size_t first_at_or_after(std::int64_t token) const noexcept;
};

/// SimpleStrategy: the owner of the token, then the next distinct hosts clockwise, `rf` in all (at most
/// every host).
std::vector<std::size_t> simple_replicas(const token_ring& ring, std::int64_t token, std::size_t rf);

/// NetworkTopologyStrategy, as Cassandra 2.x places replicas: per datacenter, walking clockwise from the token, hosts on racks not yet
/// used come first; once every rack of the datacenter holds a replica, the hosts skipped for their rack
/// fill the remaining places, in ring order. A datacenter's factor is capped by its host count.
/// Replicas come in ring order of selection.
std::vector<std::size_t> network_topology_replicas(const token_ring& ring, std::int64_t token,
                                                   const std::map<std::string, std::size_t>& rf_by_dc);

}  // namespace cqlcoro::cluster
