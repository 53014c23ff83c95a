// Load on a simulated node: C connections each keep P QUERY requests in flight (pipelined, one
// coalesced write per batch), for a fixed number of requests. Reports requests/s and the sim thread's
// CPU per request, so the sim's own cost is known when it serves driver benchmarks.
//
//   sim_load [connections=4] [pipeline=128] [requests=400000]
#include "sim.hpp"

#include "protocol/requests.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <thread>

using namespace cqlcoro;
using boost::asio::ip::tcp;

int main(int argc, char** argv) {
    const int conns = argc > 1 ? std::atoi(argv[1]) : 4;
    const int pipeline = argc > 2 ? std::atoi(argv[2]) : 128;
    const long total = argc > 3 ? std::atol(argv[3]) : 400'000;
    sim::cluster c({.nodes = 1, .port = 19242, .record_requests = false});
    c.prime({.query = "SELECT v FROM sim.kv WHERE k = 1"},
            sim::rows({sim::column("v", cql_type::of(type_kind::varchar))}).row("a value of twenty-four"));

    const auto cpu0 = c.cpu_time();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> clients;
    for (int k = 0; k < conns; ++k) {
        clients.emplace_back([&, k] {
            boost::asio::io_context io;
            tcp::socket s(io);
            s.connect({boost::asio::ip::make_address("127.0.0.1"), 19242});
            s.set_option(tcp::no_delay(true));
            protocol::byte_buffer out, in(1 << 20);
            std::array<std::pair<std::string_view, std::string_view>, 1> opts{{{"CQL_VERSION", "3.0.0"}}};
            (void)protocol::encode_request(4, protocol::startup_request{opts}, {}, out);
            boost::asio::write(s, boost::asio::buffer(out));
            std::array<std::uint8_t, 9> ready{};
            boost::asio::read(s, boost::asio::buffer(ready));
            // One batch of pipelined requests, encoded once.
            out.clear();
            for (int i = 0; i < pipeline; ++i)
                (void)protocol::encode_request(4, protocol::query_request{"SELECT v FROM sim.kv WHERE k = 1", {.cl = consistency::one}},
                                               {.stream = static_cast<std::int16_t>(i)}, out);
            const long mine = total / conns / pipeline;
            std::size_t response_bytes = 0;
            for (long b = 0; b < mine; ++b) {
                boost::asio::write(s, boost::asio::buffer(out));
                for (int got = 0; got < pipeline;) {  // read whole frames until the batch is answered
                    std::array<std::uint8_t, 9> h{};
                    boost::asio::read(s, boost::asio::buffer(h));
                    const std::size_t len = (std::size_t{h[5]} << 24) | (std::size_t{h[6]} << 16) | (std::size_t{h[7]} << 8) | h[8];
                    boost::asio::read(s, boost::asio::buffer(in.data(), len));
                    response_bytes += len + 9;
                    ++got;
                }
            }
            (void)k;
            (void)response_bytes;
        });
    }
    for (auto& t : clients) t.join();
    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto cpu = std::chrono::duration<double, std::micro>(c.cpu_time() - cpu0).count();
    const double done = static_cast<double>(total / conns / pipeline * conns * pipeline);
    fmt::print("sim_load: {} connections x {} in flight, {:.0f} requests in {:.2f} s: {:.0f} requests/s, "
               "sim CPU {:.2f} us/request\n", conns, pipeline, done, secs, done / secs, cpu / done);
}
