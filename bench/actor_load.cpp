// The connection actor alone against the standalone simulated node (cqlsim, a separate process): one
// connection, a pre-encoded single-row QUERY sent through the actor again and again, K requests kept in
// flight (each completion issues the next). No session, no policies: this is the floor the layers above
// build on.
//
//   actor_load [--inflight 1,64,1024] [--requests N] [--version 3|4|5] [--lz4] [--cqlsim PATH]
//
// Per in-flight count it prints requests/s, the client's CPU per request (user + sys of this process,
// getrusage), this process's system calls per request (all of them, and sendmsg, recvfrom and epoll_wait
// alone; counted by the kernel's tracepoints), and how many responses each socket read brought.
#include "connection/connection.hpp"
#include "load_common.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <fmt/format.h>

#include <linux/perf_event.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

using namespace cqlcoro;
namespace asio = boost::asio;
using actor = cqlcoro::connection::connection;

namespace {

using namespace bench;
constexpr const char* query = "SELECT id, name FROM sim.one WHERE id = 1";

// Keeps `inflight` requests going until `total` have completed.
struct load {
    std::shared_ptr<actor> conn;
    actor::shared_frame frame;
    asio::io_context* io = nullptr;
    long total = 0, issued = 0, done = 0, errors = 0;

    void issue() {
        ++issued;
        conn->execute(frame, [this](error_code ec, cqlcoro::connection::response_frame) {
            ++done;
            if (ec) ++errors;
            if (issued < total) issue();
            else if (done == total) io->stop();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    load_options o;
    o.inflights = {1, 64, 1024};
    if (!o.parse(argc, argv, "actor_load [--inflight 1,64,1024] [--requests N] [--version 3|4|5] [--lz4] [--cqlsim PATH]")) return 2;
    sim_process sim(o.sim_path, query);

    asio::io_context io(1);
    cqlcoro::connection::connection_params p;
    p.port = port;
    p.max_version = o.version;
    p.compression = o.lz4 ? protocol::compression::lz4 : protocol::compression::none;
    p.heartbeat_interval = std::chrono::milliseconds(0);
    std::shared_ptr<actor> conn;
    asio::co_spawn(io, actor::connect(io.get_executor(), p), [&](std::exception_ptr e, std::shared_ptr<actor> c) {
        if (e) std::rethrow_exception(e);
        conn = std::move(c);
        io.stop();
    });
    io.run();
    io.restart();
    auto frame = conn->encode(protocol::query_request{query, {.cl = consistency::one}});
    if (!frame) throw std::runtime_error("encode failed");

    fmt::print("protocol v{}{}, one connection, single-row QUERY through the actor (client: this process; server: cqlsim)\n",
               conn->version(), o.lz4 ? " + LZ4" : "");
    syscall_counter all("raw_syscalls/sys_enter"), sends("syscalls/sys_enter_sendmsg"), recvs("syscalls/sys_enter_recvfrom"),
        waits("syscalls/sys_enter_epoll_wait");
    fmt::print("{:>9} {:>11} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "in flight", "requests/s", "CPU us/req", "syscalls", "sendmsg",
               "recvfrom", "epoll", "responses");
    fmt::print("{:>9} {:>11} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "", "", "", "/req", "/req", "/req", "/req", "per read");
    for (int k : o.inflights) {
        load l{conn, *frame, &io};
        l.total = o.requests > 0 ? o.requests : (k == 1 ? 20'000 : 400'000);
        const auto c0 = std::array{all.read_count(), sends.read_count(), recvs.read_count(), waits.read_count()};
        const auto stats0 = conn->stats();
        const double cpu0 = cpu_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < k && l.issued < l.total; ++i) l.issue();
        io.run();  // until the last response stops it
        io.restart();
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double cpu = cpu_seconds() - cpu0;
        const auto c1 = std::array{all.read_count(), sends.read_count(), recvs.read_count(), waits.read_count()};
        const auto stats1 = conn->stats();
        const double n = static_cast<double>(l.done);
        if (l.errors) fmt::print(stderr, "{} requests failed\n", l.errors);
        fmt::print("{:>9} {:>11.0f} {:>10.2f} {:>9} {:>9} {:>9} {:>9} {:>9.1f}\n", k, n / wall, cpu * 1e6 / n, per_request(c0[0], c1[0], n),
                   per_request(c0[1], c1[1], n), per_request(c0[2], c1[2], n), per_request(c0[3], c1[3], n),
                   n / static_cast<double>(stats1.reads - stats0.reads));
    }
    conn->abort();
    io.poll();
}
