// cqlsim: a simulated Cassandra cluster as a standalone program, for independent clients and benchmarks.
//
//   cqlsim --nodes 3 --port 19142 [--datacenters 2,1] [--distinct-ports] [--max-version 5]
//          [--cassandra21-refusals] [--credentials user:password] [--tls cert.pem key.pem [client-ca.pem]]
//          [--release 3.11.16] [--rows "QUERY" N]... [--no-record] [--peers]
//
// --rows primes QUERY with N rows of (id int, name text) ("name-<id>"). It also primes
// "SELECT v FROM sim.t WHERE k = ?" (marker k int, pk index 0) with one row ('v'). When the cluster
// listens it prints "ready" and then obeys commands on standard input, one per line:
//   status N UP|DOWN | topology N NEW_NODE|REMOVED_NODE|MOVED_NODE | stop N | start N | pause N | resume N
//   drop N | forget N | requests | quit
// End of input quits too. --no-record stops keeping requests (for long load runs).
// --peers primes the statements of the driver comparison (bench/peers/README.md): keyspace cqlcoro_peers,
// table kv (k int PRIMARY KEY, v text), its prepared read (a 100-character v) and write, and
// "SELECT release_version FROM system.local" with that one column, as a real node answers them.
#include "sim.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>

using namespace cqlcoro;

namespace {

[[noreturn]] void usage(const std::string& why) {
    fmt::print(stderr, "cqlsim: {}\nsee the comment at the top of test/sim/cqlsim.cpp for the options\n", why);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    sim::cluster_config cfg;
    cfg.port = 19142;
    // The keyspace of the primed table, so clients route its statements by token.
    cfg.keyspaces = {{"sim", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "1"}}}};
    std::vector<std::pair<std::string, int>> primed_rows;
    bool peers = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        try {
            if (a == "--nodes") cfg.nodes = std::stoul(next());
            else if (a == "--port") cfg.port = static_cast<std::uint16_t>(std::stoul(next()));
            else if (a == "--distinct-ports") cfg.distinct_ports = true;
            else if (a == "--max-version") cfg.max_version = static_cast<std::uint8_t>(std::stoul(next()));
            else if (a == "--cassandra21-refusals") cfg.cassandra21_refusals = true;
            else if (a == "--no-record") cfg.record_requests = false;
            else if (a == "--peers") peers = true;
            else if (a == "--release") cfg.release_version = next();
            else if (a == "--datacenters") {
                std::stringstream ss(next());
                for (std::string n; std::getline(ss, n, ',');) cfg.datacenters.push_back(std::stoul(n));
            } else if (a == "--credentials") {
                auto v = next();
                auto colon = v.find(':');
                if (colon == std::string::npos) usage("--credentials takes user:password");
                cfg.credentials = std::pair{v.substr(0, colon), v.substr(colon + 1)};
            } else if (a == "--tls") {
                sim::tls_files t{next(), next(), ""};
                if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) t.client_ca = next();
                cfg.tls = t;
            } else if (a == "--rows") {
                auto q = next();
                primed_rows.emplace_back(q, std::stoi(next()));
            } else {
                usage("unknown option " + a);
            }
        } catch (const std::logic_error&) {
            usage("bad value for " + a);
        }
    }
    if (peers)
        cfg.keyspaces.push_back({"cqlcoro_peers", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "1"}}});
    try {
        sim::cluster c(cfg);
        for (const auto& [q, n] : primed_rows) {
            auto r = sim::rows({sim::column("id", cql_type::of(type_kind::int_)), sim::column("name", cql_type::of(type_kind::varchar))});
            for (int k = 0; k < n; ++k) r.row(k, fmt::format("name-{}", k));
            c.prime({.query = q}, std::move(r));
        }
        c.prime({.query = "SELECT v FROM sim.t WHERE k = ?"},
                {.answer = sim::rows({sim::column("v", cql_type::of(type_kind::varchar))}).row("v"),
                 .markers = {sim::column("k", cql_type::of(type_kind::int_))},
                 .pk_indexes = {0}});
        if (peers) {
            const auto int_t = cql_type::of(type_kind::int_);
            const auto text_t = cql_type::of(type_kind::varchar);
            auto col = [](std::string table, std::string name, cql_type t) { return column_spec{"cqlcoro_peers", std::move(table), std::move(name), std::move(t)}; };
            c.prime({.query = "SELECT v FROM cqlcoro_peers.kv WHERE k = ?"},
                    {.answer = sim::rows({col("kv", "v", text_t)}).row(std::string(100, 'v')),
                     .markers = {col("kv", "k", int_t)},
                     .pk_indexes = {0}});
            c.prime({.query = "INSERT INTO cqlcoro_peers.kv (k, v) VALUES (?, ?)"},
                    {.markers = {col("kv", "k", int_t), col("kv", "v", text_t)}, .pk_indexes = {0}});
            c.prime({.query = "SELECT release_version FROM system.local"},
                    {.answer = sim::rows({column_spec{"system", "local", "release_version", text_t}}).row(cfg.release_version)});
        }
        fmt::print("ready {} nodes on port {}\n", c.size(), c.port(1));
        std::fflush(stdout);
        for (std::string line; std::getline(std::cin, line);) {
            std::stringstream ss(line);
            std::string cmd, arg;
            std::size_t n = 0;
            ss >> cmd >> n >> arg;
            if (cmd == "quit") break;
            if (cmd == "status") c.push_status_change(n, arg);
            else if (cmd == "topology") c.push_topology_change(n, arg);
            else if (cmd == "stop") c.stop(n);
            else if (cmd == "start") c.start(n);
            else if (cmd == "pause") c.pause(n);
            else if (cmd == "resume") c.resume(n);
            else if (cmd == "drop") c.drop_connections(n);
            else if (cmd == "forget") c.forget_prepared(n);
            else if (cmd == "requests") fmt::print("requests {}\n", c.requests().size());
            else if (!cmd.empty()) fmt::print(stderr, "cqlsim: unknown command '{}'\n", cmd);
            fmt::print("ok\n");
            std::fflush(stdout);
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "cqlsim: {}\n", e.what());
        return 1;
    }
    return 0;
}
