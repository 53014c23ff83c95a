// Replica placement on a token ring, as Cassandra's replication strategies compute it: the basis of
// token-aware routing. Sans-I/O: a ring of tokens, each owned by a host with a datacenter and a rack.
#pragma once

#include "cluster/token.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace cqlcoro::cluster {

enum class partitioner { murmur3, random, byte_ordered };

/// The partitioner named by system.local's `partitioner` column (the class name, with or without its
/// package); none when the driver cannot place tokens for it (e.g. OrderPreservingPartitioner).
std::optional<partitioner> partitioner_from_class(std::string_view name) noexcept;

/// A token of any partitioner: Murmur3's signed 64 bits, Random's 0..2^127, ByteOrdered's bytes.
using token = std::variant<std::int64_t, uint128, std::vector<std::uint8_t>>;

/// The token of a routing key (a partition key's serialized bytes).
token token_of(partitioner p, key_bytes key);
/// A token as system.local and system.peers list it; none when the text is not one.
std::optional<token> parse_token(partitioner p, std::string_view text);

struct ring_host {
    std::string dc;
    std::string rack;
};

/// The ring: every token of every host, sorted. `owners[i]` is the host (an index into `hosts`) of
/// the i-th token.
struct token_ring {
    partitioner kind = partitioner::murmur3;
    std::vector<ring_host> hosts;
    std::vector<std::uint32_t> owners;
    std::variant<std::vector<std::int64_t>, std::vector<uint128>, std::vector<std::vector<std::uint8_t>>> tokens;

    /// Builds the ring from each host's tokens as text (system.local / system.peers); tokens that do
    /// not parse are skipped, so one bad row cannot stop routing to the others.
    static token_ring build(partitioner p, std::vector<ring_host> hosts, const std::vector<std::vector<std::string>>& tokens);
    /// Murmur3 tokens as numbers (tests).
    static token_ring build(std::vector<ring_host> hosts, const std::vector<std::vector<std::int64_t>>& tokens);

    std::size_t size() const noexcept { return owners.size(); }
    bool empty() const noexcept { return owners.empty(); }
    /// The position of the first token >= `t` (wrapping to 0): where the token's replicas start.
    std::size_t first_at_or_after(const token& t) const noexcept;
};

/// SimpleStrategy: the owner of the position, then the next distinct hosts clockwise, `rf` in all (at
/// most every host).
std::vector<std::uint32_t> simple_replicas_at(const token_ring& ring, std::size_t start, std::size_t rf);

/// NetworkTopologyStrategy, as Cassandra 2.x places replicas: per datacenter, walking clockwise from the
/// position, hosts on racks not yet used come first; once every rack of the datacenter holds a replica,
/// the hosts skipped for their rack fill the remaining places, in ring order. A datacenter's factor is
/// capped by its host count. Replicas come in order of selection.
std::vector<std::uint32_t> network_topology_replicas_at(const token_ring& ring, std::size_t start,
                                                     const std::map<std::string, std::size_t>& rf_by_dc);

/// The ring's datacenters and racks as small integers, computed once for many placements.
struct ring_topology {
    std::vector<std::string> dcs;          // by dc index
    std::vector<std::uint32_t> dc_of;      // by host
    std::vector<std::uint32_t> rack_of;    // by host: a rack index unique across datacenters
    std::vector<std::size_t> hosts_in_dc;  // by dc index
    std::vector<std::size_t> racks_in_dc;  // by dc index
    std::size_t racks = 0;
    explicit ring_topology(const token_ring& ring);
};

/// NetworkTopologyStrategy for many positions: `rf` by dc index (ring_topology::dcs); appends to `out`.
void network_topology_replicas_at(const token_ring& ring, const ring_topology& topo, std::size_t start,
                                  const std::vector<std::size_t>& rf, std::vector<std::uint32_t>& out);

/// EverywhereStrategy: every host, from the position's owner clockwise.
std::vector<std::uint32_t> everywhere_replicas_at(const token_ring& ring, std::size_t start);

// By token (tests and one-off lookups).
inline std::vector<std::uint32_t> simple_replicas(const token_ring& ring, std::int64_t t, std::size_t rf) {
    return simple_replicas_at(ring, ring.first_at_or_after(token(t)), rf);
}
inline std::vector<std::uint32_t> network_topology_replicas(const token_ring& ring, std::int64_t t,
                                                            const std::map<std::string, std::size_t>& rf_by_dc) {
    return network_topology_replicas_at(ring, ring.first_at_or_after(token(t)), rf_by_dc);
}

}  // namespace cqlcoro::cluster
