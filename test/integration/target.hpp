// Which real server the integration suite runs against, and how: scripts/test runs the same suite
// once per target (Cassandra 2.1 at v3; Cassandra 5.0 at v5, v5 with LZ4 segments, v4 and v3).
//
//   CQLCORO_TEST_TARGET     names the target's prefix: unset for the first (CQLCORO_TEST_HOSTS, ...),
//                           C50 for CQLCORO_TEST_C50_HOSTS, CQLCORO_TEST_C50_TLS_HOST, ...
//   CQLCORO_TEST_PROTOCOL   3, 4 or 5: the protocol every session and connection of the suite asks for
//                           (unset: each negotiates the highest the server speaks)
//   CQLCORO_TEST_COMPRESSION  lz4 or snappy: the compression they ask for (unset: none)
#pragma once

#include <cqlcoro/session.hpp>

#include "connection/connection.hpp"

#include <catch2/catch_test_macros.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cqlcoro::test {

/// CQLCORO_TEST_[<TARGET>_]<name>, or "" when unset.
inline std::string test_env(std::string_view name) {
    const char* target = std::getenv("CQLCORO_TEST_TARGET");
    std::string key = "CQLCORO_TEST_";
    if (target && *target) key += std::string(target) + "_";
    key += name;
    const char* v = std::getenv(key.c_str());
    return v ? v : "";
}

/// Like test_env, but a missing setting fails with what to do.
inline std::string required_test_env(std::string_view name) {
    auto v = test_env(name);
    if (v.empty()) {
        const char* target = std::getenv("CQLCORO_TEST_TARGET");
        const std::string prefix = target && *target ? std::string(target) + "_" : "";
        throw std::runtime_error("CQLCORO_TEST_" + prefix + std::string(name) +
                                 " is not set: run the suite through scripts/test, which starts the servers");
    }
    return v;
}

/// The first host of the target's plain cluster, or 127.0.0.1.
inline std::string test_host() {
    auto hosts = test_env("HOSTS");
    if (hosts.empty()) hosts = "127.0.0.1";
    return hosts.substr(0, hosts.find(','));
}

/// The server's release, as its system.local release_version says ("2.1.0", "5.0.8").
struct server_release {
    std::string text;
    int major = 0, minor = 0;
    bool at_least(int maj, int min = 0) const { return major > maj || (major == maj && minor >= min); }
    /// The highest native protocol version it speaks.
    std::uint8_t max_protocol() const { return at_least(4) ? 5 : at_least(2, 2) ? 4 : 3; }
};

/// The target's release: CQLCORO_TEST_[<TARGET>_]CASSANDRA_RELEASE (set by test/cluster/ccluster env).
inline const server_release& test_server() {
    static const server_release r = [] {
        server_release out;
        out.text = test_env("CASSANDRA_RELEASE");
        if (out.text.empty()) out.text = "2.1.0";  // the harness before 5.0 came
        if (std::sscanf(out.text.c_str(), "%d.%d", &out.major, &out.minor) != 2)
            throw std::runtime_error("CASSANDRA_RELEASE " + out.text + " is not a release number");
        return out;
    }();
    return r;
}

/// The keyspaces' schema table: system.schema_keyspaces before 3.0, system_schema.keyspaces since.
inline std::string keyspaces_table() { return test_server().at_least(3) ? "system_schema.keyspaces" : "system.schema_keyspaces"; }
/// The columns' schema table: system.schema_columns before 3.0, system_schema.columns since.
inline std::string columns_table() { return test_server().at_least(3) ? "system_schema.columns" : "system.schema_columns"; }

/// The protocol the suite forces (CQLCORO_TEST_PROTOCOL), or 0 to negotiate.
inline std::uint8_t forced_protocol() {
    const char* v = std::getenv("CQLCORO_TEST_PROTOCOL");
    return v && *v ? static_cast<std::uint8_t>(std::atoi(v)) : 0;
}

/// The protocol sessions and connections of this run end up speaking.
inline std::uint8_t test_protocol() {
    const auto forced = forced_protocol();
    return forced ? forced : test_server().max_protocol();
}

/// The compression the suite asks for (CQLCORO_TEST_COMPRESSION).
inline cqlcoro::compression test_compression() {
    const char* v = std::getenv("CQLCORO_TEST_COMPRESSION");
    const std::string_view c = v ? v : "";
    return c == "lz4" ? cqlcoro::compression::lz4 : c == "snappy" ? cqlcoro::compression::snappy : cqlcoro::compression::none;
}

/// Session settings for the target: its first host, the run's protocol and compression.
inline session_params target_params() {
    session_params p;
    p.contact_points = {test_host()};
    p.protocol_version = forced_protocol();
    p.compression = test_compression();
    return p;
}

/// Connection settings for the target's first host, with the run's protocol and compression.
inline connection::connection_params target_connection() {
    connection::connection_params p;
    p.host = test_host();
    if (forced_protocol()) {
        p.max_version = forced_protocol();
        p.exact_version = true;
    }
    const auto c = test_compression();
    p.compression = c == cqlcoro::compression::lz4 ? protocol::compression::lz4
                    : c == cqlcoro::compression::snappy ? protocol::compression::snappy
                                                        : protocol::compression::none;
    return p;
}

/// Runs `command` of the target's cluster harness (test/cluster/ccluster) on the cluster whose
/// directory is CQLCORO_TEST_[<TARGET>_][<cluster>_]DIR, e.g. harness("", "pause 1").
inline void harness(std::string_view cluster, std::string_view command) {
    const char* tool = std::getenv("CQLCORO_TEST_CLUSTER");
    if (!tool || !*tool) throw std::runtime_error("CQLCORO_TEST_CLUSTER is not set: run the suite through scripts/test");
    const auto dir = required_test_env(cluster.empty() ? std::string("DIR") : std::string(cluster) + "_DIR");
    const std::string cmd = "CQLCORO_CLUSTER_DIR=" + dir + " " + std::string(tool) + " " + std::string(command);
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error(cmd + " failed");
}

}  // namespace cqlcoro::test
