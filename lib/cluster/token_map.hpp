// The token map: the ring of the cluster's nodes and, per keyspace, the replicas of every ring
// position, computed once when the nodes or the keyspaces change (on the session's strand, not on the
// request path) and shared as an immutable snapshot. Keyspaces with the same replication share one
// table. A lookup is a hash, a binary search and a slice.
#pragma once

#include "cluster/replicas.hpp"

#include <cqlcoro/metadata.hpp>

#include <map>
#include <unordered_map>
#include <memory>
#include <span>
#include <string>

namespace cqlcoro {

class token_map {
public:
    /// Replicas per ring position, flattened: position i's are flat[offsets[i] .. offsets[i+1]).
    struct replica_table {
        std::vector<std::uint32_t> flat;
        std::vector<std::uint32_t> offsets;
        std::span<const std::uint32_t> at(std::size_t pos) const noexcept {
            if (pos + 1 >= offsets.size()) return {};
            return std::span<const std::uint32_t>(flat).subspan(offsets[pos], offsets[pos + 1] - offsets[pos]);
        }
    };

    /// Builds the map over `nodes` (host i of the ring is nodes[i]); `previous` lends its tables when
    /// the ring is the same, so a schema change recomputes only new replication settings.
    static std::shared_ptr<const token_map> build(cluster::partitioner p, const std::vector<std::shared_ptr<const node>>& nodes,
                                                  const std::map<std::string, keyspace_metadata>& keyspaces,
                                                  const token_map* previous = nullptr);

    cluster::partitioner kind() const noexcept { return ring_.kind; }
    const cluster::token_ring& ring() const noexcept { return ring_; }
    /// The table of a keyspace; nullptr when the keyspace or its strategy is unknown.
    const replica_table* table(std::string_view keyspace) const noexcept;
    /// Replicas (indexes into the nodes it was built over) of a routing key in a keyspace.
    std::span<const std::uint32_t> replicas(std::string_view keyspace, std::span<const std::uint8_t> routing_key) const;
    std::span<const std::uint32_t> replicas(const replica_table& t, const cluster::token& tok) const noexcept {
        return t.at(ring_.first_at_or_after(tok));
    }
    std::size_t table_count() const noexcept { return by_replication_.size(); }
    /// Bytes held by the ring and the replica tables.
    std::size_t memory_bytes() const noexcept;
    /// Unique per map built in the process (an address may be reused; this is not).
    std::uint64_t generation() const noexcept { return generation_; }

private:
    cluster::token_ring ring_;
    std::uint64_t generation_ = 0;
    std::map<std::string, std::shared_ptr<const replica_table>> by_replication_;  // key: canonical replication text
    struct text_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, const replica_table*, text_hash, std::equal_to<>> by_keyspace_;  // the request path's lookup
};

/// The canonical text of a replication setting ("" when the strategy is one the driver cannot place).
std::string replication_key(const replication_metadata& r);

}  // namespace cqlcoro
