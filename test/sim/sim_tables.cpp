// System tables of a simulated node: system.local, system.peers, system.peers_v2 (release 4.0+), and the
// schema tables in the 2.x (system.schema_*) or 3.0+ (system_schema.*) layout, by release version.
#include "sim_internal.hpp"

#include <openssl/evp.h>

#include <boost/asio/ip/address.hpp>

namespace cqlcoro::sim {
namespace {

cql_type t(type_kind k) { return cql_type::of(k); }
column_spec col(std::string table, std::string name, cql_type type, std::string ks = "system") {
    return {std::move(ks), std::move(table), std::move(name), std::move(type)};
}

std::set<std::string> token_set(const node& n) { return {n.tokens.begin(), n.tokens.end()}; }

// The table a query reads: "system.local" from "SELECT ... FROM system.local WHERE ...".
std::string table_of(std::string_view query) {
    std::string q;
    for (char c : query) q += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto from = q.find(" from ");
    if (from == std::string::npos || !q.starts_with("select")) return {};
    auto start = q.find_first_not_of(' ', from + 6);
    auto end = q.find_first_of(" ;\n\t", start);
    auto name = q.substr(start, end == std::string::npos ? std::string::npos : end - start);
    name.erase(std::remove(name.begin(), name.end(), '"'), name.end());
    return name;
}

bool v4_or_later(const std::string& release) { return !release.empty() && release[0] >= '4'; }
bool v2_layout(const std::string& release) { return release.starts_with("2."); }

}  // namespace

byte_buffer md5(std::string_view text) {
    byte_buffer out(EVP_MAX_MD_SIZE);
    unsigned int n = 0;
    EVP_Digest(text.data(), text.size(), out.data(), &n, EVP_md5(), nullptr);
    out.resize(n);
    return out;
}

std::optional<rows_answer> system_table(const cluster::impl& sim, const node& n, std::string_view query) {
    const auto table = table_of(query);
    if (table.empty()) return std::nullopt;
    const auto& cfg = sim.config;
    const auto addr = n.endpoint.address();
    const auto text_set = cql_type::set_of(t(type_kind::varchar));

    if (table == "system.local") {
        auto r = rows({col("local", "key", t(type_kind::varchar)), col("bootstrapped", "bootstrapped", t(type_kind::varchar)),
                       col("local", "broadcast_address", t(type_kind::inet)), col("local", "cluster_name", t(type_kind::varchar)),
                       col("local", "cql_version", t(type_kind::varchar)), col("local", "data_center", t(type_kind::varchar)),
                       col("local", "host_id", t(type_kind::uuid)), col("local", "listen_address", t(type_kind::inet)),
                       col("local", "native_protocol_version", t(type_kind::varchar)),
                       col("local", "partitioner", t(type_kind::varchar)), col("local", "rack", t(type_kind::varchar)),
                       col("local", "release_version", t(type_kind::varchar)), col("local", "rpc_address", t(type_kind::inet)),
                       col("local", "rpc_port", t(type_kind::int_)), col("local", "schema_version", t(type_kind::uuid)),
                       col("local", "tokens", text_set)});
        for (auto& c : r.columns) c.table = "local";
        r.row("local", "COMPLETED", addr, cfg.cluster_name, "3.4.5", n.datacenter, n.host_id, addr,
              std::to_string(cfg.max_version), "org.apache.cassandra.dht.Murmur3Partitioner", n.rack, cfg.release_version, addr,
              static_cast<std::int32_t>(n.endpoint.port()), n.schema_version.value_or(sim.schema_version), token_set(n));
        return r;
    }
    if (table == "system.peers") {
        auto r = rows({col("peers", "peer", t(type_kind::inet)), col("peers", "data_center", t(type_kind::varchar)),
                       col("peers", "host_id", t(type_kind::uuid)), col("peers", "preferred_ip", t(type_kind::inet)),
                       col("peers", "rack", t(type_kind::varchar)), col("peers", "release_version", t(type_kind::varchar)),
                       col("peers", "rpc_address", t(type_kind::inet)), col("peers", "schema_version", t(type_kind::uuid)),
                       col("peers", "tokens", text_set)});
        for (const auto& p : sim.nodes) {
            if (p.get() == &n) continue;
            auto a = p->endpoint.address();
            r.row(a, p->datacenter, p->host_id, std::nullopt, p->rack, cfg.release_version, a, p->schema_version.value_or(sim.schema_version), token_set(*p));
        }
        return r;
    }
    if (table == "system.peers_v2" && v4_or_later(cfg.release_version)) {
        auto r = rows({col("peers_v2", "peer", t(type_kind::inet)), col("peers_v2", "peer_port", t(type_kind::int_)),
                       col("peers_v2", "data_center", t(type_kind::varchar)), col("peers_v2", "host_id", t(type_kind::uuid)),
                       col("peers_v2", "native_address", t(type_kind::inet)), col("peers_v2", "native_port", t(type_kind::int_)),
                       col("peers_v2", "preferred_ip", t(type_kind::inet)), col("peers_v2", "preferred_port", t(type_kind::int_)),
                       col("peers_v2", "rack", t(type_kind::varchar)), col("peers_v2", "release_version", t(type_kind::varchar)),
                       col("peers_v2", "schema_version", t(type_kind::uuid)), col("peers_v2", "tokens", text_set)});
        for (const auto& p : sim.nodes) {
            if (p.get() == &n) continue;
            auto a = p->endpoint.address();
            r.row(a, 7000, p->datacenter, p->host_id, a, static_cast<std::int32_t>(p->endpoint.port()), std::nullopt,
                  std::nullopt, p->rack, cfg.release_version, p->schema_version.value_or(sim.schema_version), token_set(*p));
        }
        return r;
    }
    static const std::vector<std::string> keyspaces{"system", "system_auth", "system_distributed", "system_schema", "system_traces"};
    if (!v2_layout(cfg.release_version) && table == "system_schema.keyspaces") {
        auto r = rows({col("keyspaces", "keyspace_name", t(type_kind::varchar), "system_schema"),
                       col("keyspaces", "durable_writes", t(type_kind::boolean), "system_schema"),
                       col("keyspaces", "replication", cql_type::map_of(t(type_kind::varchar), t(type_kind::varchar)), "system_schema")});
        for (const auto& ks : keyspaces)
            r.row(ks, true, std::map<std::string, std::string>{{"class", "org.apache.cassandra.locator.LocalStrategy"}});
        for (const auto& [ks, rep] : cfg.keyspaces) r.row(ks, true, rep);
        return r;
    }
    if (v2_layout(cfg.release_version) && table == "system.schema_keyspaces") {
        auto r = rows({col("schema_keyspaces", "keyspace_name", t(type_kind::varchar)),
                       col("schema_keyspaces", "durable_writes", t(type_kind::boolean)),
                       col("schema_keyspaces", "strategy_class", t(type_kind::varchar)),
                       col("schema_keyspaces", "strategy_options", t(type_kind::varchar))});
        for (const auto& ks : keyspaces)
            if (ks != "system_schema") r.row(ks, true, "org.apache.cassandra.locator.LocalStrategy", "{}");
        for (const auto& [ks, rep] : cfg.keyspaces) {
            std::string options = "{";
            for (const auto& [k, v] : rep)
                if (k != "class") options += (options.size() > 1 ? "," : "") + ("\"" + k + "\":\"" + v + "\"");
            r.row(ks, true, rep.count("class") ? rep.at("class") : std::string(), options + "}");
        }
        return r;
    }
    // The other schema tables exist, empty, in the layout of the release.
    static const std::set<std::string> v3_tables{"system_schema.tables", "system_schema.columns", "system_schema.types",
                                                 "system_schema.functions", "system_schema.aggregates", "system_schema.indexes",
                                                 "system_schema.views", "system_schema.triggers", "system_schema.dropped_columns"};
    static const std::set<std::string> v2_tables{"system.schema_columnfamilies", "system.schema_columns", "system.schema_usertypes",
                                                 "system.schema_functions", "system.schema_aggregates", "system.schema_triggers"};
    if ((!v2_layout(cfg.release_version) && v3_tables.count(table)) || (v2_layout(cfg.release_version) && v2_tables.count(table))) {
        auto r = rows({col(table.substr(table.find('.') + 1), "keyspace_name", t(type_kind::varchar), table.substr(0, table.find('.')))});
        return r;
    }
    return std::nullopt;
}

}  // namespace cqlcoro::sim
