// End to end through the session against the standalone simulated node (cqlsim, a separate process):
// a prepared single-row read (bound anew for every request), one connection, K requests in flight
// (each completion issues the next).
//
//   session_load [--inflight 1,64,256,1024,4096] [--requests N] [--version 3|4|5] [--hedge MS]
//                [--chain request|attempt] [--cqlsim PATH]
//
// --chain puts one pass-through middleware in the chain, once per request (within the deadline) or
// once per attempt (after retry): the cost of a coroutine layer there.
//
// Reports requests/s, the client's CPU per request (user + sys of this process), heap allocations per
// request (every malloc-family call, counted by malloc_count.hpp), and system calls per request.
#include "load_common.hpp"
#include "malloc_count.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <sstream>

using namespace cqlcoro;
using namespace bench;
namespace asio = boost::asio;

namespace {

constexpr const char* prepared_query = "SELECT v FROM sim.t WHERE k = ?";  // primed by cqlsim: one row

struct load {
    session* s = nullptr;
    prepared_statement p;
    asio::io_context* io = nullptr;
    long total = 0, issued = 0, done = 0, errors = 0;

    void issue() {
        ++issued;
        s->execute(p.bind(1), [this](error_code ec, result r) {
            ++done;
            if (ec || r.size() != 1) ++errors;
            if (issued < total) issue();
            else if (done == total) io->stop();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    load_options o;
    o.inflights = {1, 64, 256, 1024, 4096};
    if (!o.parse(argc, argv, "session_load [--inflight 1,64,256,1024,4096] [--requests N] [--version 3|4|5] [--hedge MS] [--chain request|attempt] [--cqlsim PATH]")) return 2;
    sim_process sim(o.sim_path, "SELECT 1");

    asio::io_context io(1);
    session_params params;
    params.port = port;
    params.protocol_version = o.version;
    params.heartbeat_interval = std::chrono::milliseconds(0);
    // --hedge 10000: speculative execution on, armed for every request, never firing (its cost alone).
    if (o.hedge_ms > 0) params.speculative_execution = std::make_shared<constant_speculative_execution>(std::chrono::milliseconds(o.hedge_ms));
    if (!o.chain.empty()) {
        middleware pass = [](request& r, next_layer next) -> asio::awaitable<outcome> { co_return co_await next(r); };
        using layer = built_in_layer;
        params.chain = o.chain == "request" ? std::vector<chain_member>{layer::deadline, pass, layer::speculative_execution, layer::retry}
                                            : std::vector<chain_member>{layer::deadline, layer::speculative_execution, layer::retry, pass};
    }
    std::optional<session> s;
    prepared_statement p;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            s = co_await session::connect(io.get_executor(), params);
            p = co_await s->prepare(prepared_query);
            io.stop();
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    io.restart();

    syscall_counter all("raw_syscalls/sys_enter"), sends("syscalls/sys_enter_sendmsg");
    fmt::print("protocol v{}, one connection, prepared single-row read through the session (client: this process; server: cqlsim)\n",
               s->protocol_version());
    fmt::print("{:>9} {:>11} {:>10} {:>10} {:>9} {:>9}\n", "in flight", "requests/s", "CPU us/req", "allocs/req", "syscalls", "sendmsg");
    for (int k : o.inflights) {
        load l{&*s, p, &io};
        l.total = o.requests > 0 ? o.requests : (k == 1 ? 20'000 : 400'000);
        const auto c0 = std::array{all.read_count(), sends.read_count()};
        const auto a0 = heap_allocations.load();
        const double cpu0 = cpu_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < k && l.issued < l.total; ++i) l.issue();
        io.run();
        io.restart();
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double cpu = cpu_seconds() - cpu0;
        const auto a1 = heap_allocations.load();
        const auto c1 = std::array{all.read_count(), sends.read_count()};
        const double n = static_cast<double>(l.done);
        if (l.errors) fmt::print(stderr, "{} requests failed\n", l.errors);
        fmt::print("{:>9} {:>11.0f} {:>10.2f} {:>10.1f} {:>9} {:>9}\n", k, n / wall, cpu * 1e6 / n, static_cast<double>(a1 - a0) / n,
                   per_request(c0[0], c1[0], n), per_request(c0[1], c1[1], n));
    }
    asio::co_spawn(io, s->close(std::chrono::milliseconds(100)), asio::detached);
    io.run();
}
