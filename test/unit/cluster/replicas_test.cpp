// Replica placement against hand-computed expectations on a small ring:
//
//   token:  0        10       20       30       40       50
//   host:   0        1        2        3        4        5
//   dc/rack dc1/r1   dc1/r1   dc1/r2   dc2/r1   dc1/r2   dc2/r2
//
// A token's first replica is the host of the first ring token at or after it (wrapping). The replica
// sets of every case below were also checked with the DataStax Python driver's SimpleStrategy and
// NetworkTopologyStrategy (make_token_replica_map) on the same ring.
#include "cluster/replicas.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro::cluster;
using v = std::vector<std::uint32_t>;

namespace {

token_ring six() {
    return token_ring::build({{"dc1", "r1"}, {"dc1", "r1"}, {"dc1", "r2"}, {"dc2", "r1"}, {"dc1", "r2"}, {"dc2", "r2"}},
                             {{0}, {10}, {20}, {30}, {40}, {50}});
}

}  // namespace

TEST_CASE("SimpleStrategy: the token's owner, then the next distinct hosts clockwise") {
    const auto ring = six();
    CHECK(simple_replicas(ring, 5, 3) == v{1, 2, 3});
    CHECK(simple_replicas(ring, 10, 3) == v{1, 2, 3});  // a ring token belongs to its own host
    CHECK(simple_replicas(ring, 55, 3) == v{0, 1, 2});  // past the last token: wraps
    CHECK(simple_replicas(ring, 45, 2) == v{5, 0});
    CHECK(simple_replicas(ring, 0, 99) == v{0, 1, 2, 3, 4, 5});  // capped at the host count
    // A host with several tokens (vnodes) counts once.
    auto vnodes = token_ring::build({{"dc1", "r1"}, {"dc1", "r1"}}, {{0, 100}, {50}});
    CHECK(simple_replicas(vnodes, 60, 2) == v{0, 1});
    CHECK(simple_replicas(token_ring{}, 1, 3).empty());
}

TEST_CASE("NetworkTopologyStrategy: per datacenter, new racks first, then the skipped hosts in ring order") {
    const auto ring = six();
    CHECK(network_topology_replicas(ring, 5, {{"dc1", 2}, {"dc2", 1}}) == v{1, 2, 3});
    // Host 1 (r1) is passed over for rack r1 already holding host 0; host 2 opens r2.
    CHECK(network_topology_replicas(ring, -5, {{"dc1", 2}}) == v{0, 2});
    // With every rack used, the skipped host 1 fills the third place before host 4 is reached.
    CHECK(network_topology_replicas(ring, -5, {{"dc1", 3}}) == v{0, 2, 1});
    // Both racks seen at once: the next dc1 host in ring order.
    CHECK(network_topology_replicas(ring, 5, {{"dc1", 3}}) == v{1, 2, 4});
    // A factor above the datacenter's host count is capped (dc1 has 4 hosts).
    CHECK(network_topology_replicas(ring, -5, {{"dc1", 10}}) == v{0, 2, 1, 4});
    CHECK(network_topology_replicas(ring, 25, {{"dc2", 2}, {"dc1", 1}}) == v{3, 4, 5});
    // Datacenters the ring does not have, or a factor of zero, place nothing.
    CHECK(network_topology_replicas(ring, 5, {{"dc3", 2}}).empty());
    CHECK(network_topology_replicas(ring, 5, {{"dc1", 0}, {"dc2", 1}}) == v{3});
}
