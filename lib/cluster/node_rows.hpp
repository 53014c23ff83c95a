// The nodes system.local and system.peers (or system.peers_v2) list, read from their rows. Sans-I/O:
// the control connection runs the queries; the fuzz target feeds these any rows.
#pragma once

#include <cqlcoro/metadata.hpp>
#include <cqlcoro/result.hpp>

#include "cluster/replicas.hpp"
#include "cluster/schema.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cqlcoro::cluster {

/// What system.local's row says: the control node, and of the cluster.
struct local_node {
    std::shared_ptr<node> self;
    std::optional<partitioner> partitioner_kind;  ///< none when the column is absent or names no known partitioner
    std::string cluster_name;
    schema_layout layout = schema_layout::v3;  ///< from the node's release version
};

/// The control node from system.local's first row (which must exist), reached at `address`:`port`.
local_node read_local_row(const result& local, const boost::asio::ip::address& address, std::uint16_t port);

using address_translator = std::function<boost::asio::ip::tcp::endpoint(const boost::asio::ip::tcp::endpoint&)>;

/// The usable peers of system.peers (`v2` false) or system.peers_v2. A row without peer, host id, data
/// center or tokens is a node still joining or a stale row, and is skipped; an rpc address that is
/// absent or 0.0.0.0 falls back to the peer (gossip) address. Without a native_port (system.peers), a
/// peer listens on `default_port`. `translate`, when set, maps each peer's endpoint.
std::vector<std::shared_ptr<node>> read_peer_rows(const result& peers, bool v2, std::uint16_t default_port,
                                                  const address_translator& translate);

/// "address:port", with an IPv6 address in brackets.
std::string endpoint_text(const boost::asio::ip::address& a, std::uint16_t port);

}  // namespace cqlcoro::cluster
