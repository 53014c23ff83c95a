// The session's way into the parts of node and cluster_metadata that applications only read: a node's
// live state, and a snapshot's fields while it is built (before it is published, never after).
#pragma once

#include <cqlcoro/metadata.hpp>

namespace cqlcoro::detail {

struct metadata_access {
    // A node's live values: written on the session's strand, read from anywhere.
    static std::atomic<node_state>& state(node& n) noexcept { return n.state_; }
    static std::atomic<node_distance>& distance(node& n) noexcept { return n.distance_; }
    static std::atomic<std::size_t>& open_connections(node& n) noexcept { return n.open_; }
    static std::atomic<std::uint64_t>& replaced(node& n) noexcept { return n.replaced_; }
    static std::uint64_t replaced(const node& n) noexcept { return n.replaced_.load(std::memory_order_relaxed); }
    /// A node's metrics (session/stats.hpp): given by its pool before the node is published.
    static std::shared_ptr<node_stats>& stats(node& n) noexcept { return n.stats_; }
    static node_stats* stats_of(const node& n) noexcept { return n.stats_.get(); }

    /// Everything a snapshot holds, given at once: the snapshot is immutable from here on.
    static std::shared_ptr<const cluster_metadata> make(std::string cluster_name, std::string partitioner,
                                                        std::vector<std::shared_ptr<const node>> nodes,
                                                        std::map<std::string, keyspace_metadata> keyspaces,
                                                        std::shared_ptr<const token_map> tokens,
                                                        std::chrono::system_clock::time_point refreshed) {
        auto m = std::make_shared<cluster_metadata>();
        m->cluster_name_ = std::move(cluster_name);
        m->partitioner_ = std::move(partitioner);
        m->nodes_ = std::move(nodes);
        m->keyspaces_ = std::move(keyspaces);
        m->tokens_ = std::move(tokens);
        m->refreshed_ = refreshed;
        return m;
    }
    static const std::shared_ptr<const token_map>& tokens(const cluster_metadata& m) noexcept { return m.tokens_; }
};

}  // namespace cqlcoro::detail
