// The cluster layer at scale: a session joins a simulated cluster of N nodes with T tokens each (two
// datacenters, racks), and we report the connect time (control connection, discovery, schema, every
// pool), the token map's build time and size, and the process's memory growth. Sim and client share
// the process and the machine's cores.
//
//   build-release/bench/cluster_scale [--nodes 200] [--tokens 256] [--racks 3] [--keyspaces 10]
#include "sim.hpp"

#include "cluster/token_map.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace cqlcoro;
namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

double rss_mib() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

double ms(clock_type::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
    std::size_t nodes = 200, tokens = 256, racks = 3, keyspaces = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        const auto v = std::stoul(argv[i + 1]);
        if (a == "--nodes") nodes = v;
        else if (a == "--tokens") tokens = v;
        else if (a == "--racks") racks = v;
        else if (a == "--keyspaces") keyspaces = v;
    }
    sim::cluster_config cfg;
    cfg.nodes = nodes;
    cfg.datacenters = {nodes / 2, nodes - nodes / 2};
    cfg.racks = racks;
    cfg.tokens_per_node = tokens;
    cfg.port = 19242;
    cfg.record_requests = false;
    // Keyspaces with NTS (several with the same replication, which share one table) and one SimpleStrategy.
    for (std::size_t k = 0; k < keyspaces; ++k)
        cfg.keyspaces.push_back({fmt::format("nts{}", k),
                                 {{"class", "org.apache.cassandra.locator.NetworkTopologyStrategy"}, {"dc1", k % 2 ? "3" : "2"}, {"dc2", "3"}}});
    cfg.keyspaces.push_back({"simple", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "3"}}});
    const double rss_start = rss_mib();
    sim::cluster c(cfg);
    const double rss_sim = rss_mib();

    asio::io_context io;
    session_params p;
    p.contact_points = {c.address(1)};
    p.port = cfg.port;
    p.heartbeat_interval = std::chrono::milliseconds(0);
    p.remote_hosts_per_dc = nodes;  // a pool to every node
    p.ready_when = session_params::readiness::all_pools;
    p.connect_timeout = std::chrono::seconds(30);
    double connect_ms = 0, rss_session = 0;
    std::size_t up = 0;
    std::shared_ptr<const cluster_metadata> md;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        const auto t0 = clock_type::now();
        auto s = co_await session::connect(io.get_executor(), p);
        connect_ms = ms(clock_type::now() - t0);
        rss_session = rss_mib();
        md = s.metadata();
        for (const auto& n : md->nodes()) up += n->state() == node_state::up;
        co_await s.close();
    }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    io.run();

    // The token map alone, as the session builds it on a topology or schema change.
    std::vector<double> builds;
    std::shared_ptr<const token_map> map;
    for (int i = 0; i < 5; ++i) {
        const auto t0 = clock_type::now();
        map = token_map::build(cluster::partitioner::murmur3, md->nodes(), md->keyspaces());
        builds.push_back(ms(clock_type::now() - t0));
    }
    std::sort(builds.begin(), builds.end());
    // A lookup as the request path does it: hash a key, find its replicas.
    std::size_t sink = 0;
    const auto t0 = clock_type::now();
    constexpr int lookups = 1'000'000;
    for (std::int32_t k = 0; k < lookups; ++k) {
        const std::uint8_t key[4] = {static_cast<std::uint8_t>(k >> 24), static_cast<std::uint8_t>(k >> 16), static_cast<std::uint8_t>(k >> 8),
                                     static_cast<std::uint8_t>(k)};
        sink += map->replicas("nts1", key).size();
    }
    const double lookup_ns = ms(clock_type::now() - t0) * 1e6 / lookups;

    fmt::print("{} nodes x {} tokens ({} ring positions), {} racks per datacenter, {} keyspaces ({} distinct replications)\n", nodes, tokens,
               map->ring().size(), racks, md->keyspaces().size(), map->table_count());
    fmt::print("connect (control, discovery, schema, {} pools):  {:.0f} ms, {} nodes up\n", nodes, connect_ms, up);
    fmt::print("token map build: {:.1f} ms median ({:.1f} min), {:.1f} MiB\n", builds[builds.size() / 2], builds.front(),
               static_cast<double>(map->memory_bytes()) / (1024.0 * 1024.0));
    fmt::print("replica lookup (Murmur3 + binary search + slice): {:.0f} ns\n", lookup_ns);
    fmt::print("RSS: {:.0f} MiB at start, {:.0f} MiB with the sim, {:.0f} MiB with the session connected (+{:.0f})\n", rss_start, rss_sim,
               rss_session, rss_session - rss_sim);
    return sink == 0 ? 1 : 0;
}
