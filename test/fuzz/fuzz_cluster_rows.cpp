// libFuzzer target: the rows a session reads of the cluster (system.local, system.peers, peers_v2 and
// every schema table), through what the session makes of them: nodes, schema metadata, the token map
// and the replicas of a key in every keyspace.
// Input: byte 0 = protocol version (3 + low bits % 3; bit 7: the Cassandra 2.x schema layout), then
// chunks of (slot byte, 16-bit big-endian length, RESULT body); capture_cluster_rows.py writes seeds
// from a real node. A body that is not a well-formed rows result is absent, as the session treats it.
#include "cluster/node_rows.hpp"
#include "cluster/schema.hpp"
#include "cluster/token_map.hpp"
#include "session/result_builder.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

using namespace cqlcoro;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    protocol::frame_header h;
    h.version = static_cast<std::uint8_t>(3 + (data[0] & 0x7F) % 3);
    h.response = true;
    h.op = protocol::opcode::result;
    cluster::schema_rows schema;
    std::optional<result> local, peers, peers_v2;
    std::optional<result>* slots[] = {&schema.keyspaces, &schema.tables, &schema.columns, &schema.indexes, &schema.views,
                                      &schema.types, &schema.functions, &schema.aggregates, &local, &peers, &peers_v2};
    std::size_t at = 1;
    while (at + 3 <= size) {
        const auto slot = data[at] % std::size(slots);
        const std::size_t length = std::min<std::size_t>(std::size_t{data[at + 1]} << 8 | data[at + 2], size - at - 3);
        at += 3;
        auto f = std::make_shared<result_builder::owned_response>(h, protocol::bytes_view(data + at, length));
        at += length;
        if (f->failure) continue;
        auto* body = std::get_if<protocol::result_response>(&f->message.body);
        if (!body || !std::holds_alternative<protocol::rows_result>(body->body)) continue;
        auto r = result_builder::from(std::move(f), nullptr, diagnostics{});
        if (r) *slots[slot] = std::move(*r);
    }

    auto layout = data[0] & 0x80 ? cluster::schema_layout::v2 : cluster::schema_layout::v3;
    std::vector<std::shared_ptr<const node>> nodes;
    std::optional<cluster::partitioner> partitioner;
    if (local && !local->empty()) {
        auto self = cluster::read_local_row(*local, boost::asio::ip::make_address("127.0.0.1"), 9042);
        layout = self.layout;
        partitioner = self.partitioner_kind;
        nodes.push_back(std::move(self.self));
    }
    for (auto* rows : {&peers, &peers_v2})
        if (*rows)
            for (auto& n : cluster::read_peer_rows(**rows, rows == &peers_v2, 9042, {})) {
                if (n->port == 0 || n->endpoint.empty()) __builtin_trap();
                nodes.push_back(std::move(n));
            }

    auto fragment = cluster::parse_schema(layout, schema);
    for (const auto& [name, ks] : fragment.keyspaces) (void)replication_key(ks.replication);

    if (partitioner) {
        auto map = token_map::build(*partitioner, nodes, fragment.keyspaces);
        const std::uint8_t key[] = {0, 0, 0, 42};
        for (const auto& [name, ks] : fragment.keyspaces)
            for (auto replica : map->replicas(name, key))
                if (replica >= nodes.size()) __builtin_trap();  // a replica that is no node
    }
    return 0;
}
