#include "cluster/node_rows.hpp"

#include "cluster/column_reader.hpp"

#include <fmt/format.h>

#include <set>

namespace cqlcoro::cluster {

std::string endpoint_text(const boost::asio::ip::address& a, std::uint16_t port) {
    return a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), port) : fmt::format("{}:{}", a.to_string(), port);
}

local_node read_local_row(const result& local, const boost::asio::ip::address& address, std::uint16_t port) {
    local_node out;
    auto row = local.one();
    auto n = std::make_shared<node>();
    n->address = address;
    n->port = port;
    const column_reader cols(local);
    n->broadcast_rpc_address = cols.get<boost::asio::ip::address>(row, "rpc_address").value_or(n->address);
    n->host_id = cols.get<uuid>(row, "host_id").value_or(uuid{});
    n->datacenter = cols.get<std::string>(row, "data_center").value_or("");
    n->rack = cols.get<std::string>(row, "rack").value_or("");
    n->release_version = cols.get<std::string>(row, "release_version").value_or("");
    n->schema_version = cols.get<uuid>(row, "schema_version");
    auto tokens = cols.get<std::set<std::string>>(row, "tokens").value_or(std::set<std::string>{});
    n->tokens.assign(tokens.begin(), tokens.end());
    n->endpoint = endpoint_text(n->address, n->port);
    if (auto p = cols.get<std::string>(row, "partitioner")) out.partitioner_kind = partitioner_from_class(*p);
    out.cluster_name = cols.get<std::string>(row, "cluster_name").value_or("");
    out.layout = n->release_version.starts_with("1.") || n->release_version.starts_with("2.") ? schema_layout::v2 : schema_layout::v3;
    out.self = std::move(n);
    return out;
}

std::vector<std::shared_ptr<node>> read_peer_rows(const result& peers, bool v2, std::uint16_t default_port,
                                                  const address_translator& translate) {
    std::vector<std::shared_ptr<node>> found;
    const column_reader cols(peers);
    for (auto row : peers.rows()) {
        auto peer = cols.get<boost::asio::ip::address>(row, "peer");
        auto rpc = cols.get<boost::asio::ip::address>(row, v2 ? "native_address" : "rpc_address");
        auto host_id = cols.get<uuid>(row, "host_id");
        auto dc = cols.get<std::string>(row, "data_center");
        auto tokens = cols.get<std::set<std::string>>(row, "tokens");
        if (!peer || !host_id || !dc || !tokens) continue;
        if (!rpc || rpc->is_unspecified()) rpc = peer;
        auto n = std::make_shared<node>();
        n->broadcast_rpc_address = *rpc;
        std::uint16_t port = default_port;
        if (v2)
            if (auto p = cols.get<std::int32_t>(row, "native_port"); p && *p > 0 && *p < 65536) port = static_cast<std::uint16_t>(*p);
        boost::asio::ip::tcp::endpoint ep(*rpc, port);
        if (translate) ep = translate(ep);
        n->address = ep.address();
        n->port = ep.port();
        n->endpoint = endpoint_text(n->address, n->port);
        n->host_id = *host_id;
        n->datacenter = *dc;
        n->rack = cols.get<std::string>(row, "rack").value_or("");
        n->release_version = cols.get<std::string>(row, "release_version").value_or("");
        n->schema_version = cols.get<uuid>(row, "schema_version");
        n->tokens.assign(tokens->begin(), tokens->end());
        found.push_back(std::move(n));
    }
    return found;
}

}  // namespace cqlcoro::cluster
