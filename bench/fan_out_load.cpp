// Many partition keys at once, four ways: a plain loop (one awaited request per key), execute_many()
// (one request per key, grouped by replica, 128 in flight), execute_many() with writes batched per
// replica set, and one SELECT ... WHERE k IN ? for every key. Against a simulated cluster in this
// process (three nodes, each answer delayed by --delay ms to stand for a server's work) or a real one
// (--hosts). Reports the median wall time of --runs runs and the requests each way sends.
//
//   build-release/bench/fan_out_load [--keys 1000] [--runs 5] [--delay 1] [--rf 1]
//   build-release/bench/fan_out_load --hosts 127.0.0.91 [--rf 1] [--keys 1000]
#include "sim.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace cqlcoro;
namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

struct figures {
    std::string way;
    std::vector<double> ms;
    std::size_t requests = 0;
    std::size_t failed = 0;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t keys = 1000, runs = 5, rf = 1;
    long delay_ms = 1;
    std::string hosts;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--keys") keys = std::stoul(v);
        else if (a == "--runs") runs = std::stoul(v);
        else if (a == "--delay") delay_ms = std::stol(v);
        else if (a == "--rf") rf = std::stoul(v);
        else if (a == "--hosts") hosts = v;
        else {
            fmt::print(stderr, "fan_out_load: unknown option {}; see the comment at the top of bench/fan_out_load.cpp\n", a);
            return 2;
        }
    }
    const bool real = !hosts.empty();
    const std::string ks = real ? "cqlcoro_fanout" : "ks";
    const auto read_q = fmt::format("SELECT v FROM {}.t WHERE k = ?", ks);
    const auto write_q = fmt::format("INSERT INTO {}.t (k, v) VALUES (?, ?)", ks);
    const auto in_q = fmt::format("SELECT k, v FROM {}.t WHERE k IN ?", ks);

    std::unique_ptr<sim::cluster> c;
    session_params p;
    p.heartbeat_interval = std::chrono::milliseconds(0);
    if (!real) {
        sim::cluster_config cfg;
        cfg.nodes = 3;
        cfg.port = 19252;
        cfg.tokens_per_node = 16;
        cfg.record_requests = false;
        cfg.keyspaces = {{ks, {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", std::to_string(rf)}}}};
        c = std::make_unique<sim::cluster>(cfg);
        const auto int_ = cql_type::of(type_kind::int_);
        const auto delay = std::chrono::milliseconds(delay_ms);
        c->prime({.query = read_q}, sim::prime_then{.answer = sim::one_int_row(), .delay = delay, .markers = {{ks, "t", "k", int_}}, .pk_indexes = {0}});
        c->prime({.query = write_q}, sim::prime_then{.answer = sim::void_answer{}, .delay = delay,
                                                     .markers = {{ks, "t", "k", int_}, {ks, "t", "v", int_}}, .pk_indexes = {0}});
        auto in_rows = sim::rows({sim::column("k", int_), sim::column("v", int_)});
        for (std::size_t k = 0; k < keys; ++k) in_rows.row(static_cast<std::int32_t>(k), static_cast<std::int32_t>(k));
        c->prime({.query = in_q}, sim::prime_then{.answer = std::move(in_rows), .delay = delay,
                                                  .markers = {{ks, "t", "k", cql_type::list_of(int_)}}});
        // The batches: BATCH has no query text of its own; the sim answers it void after the delay.
        p.contact_points = {c->address(1)};
        p.port = cfg.port;
    } else {
        p.contact_points = {hosts};
        p.request_timeout = std::chrono::seconds(30);
    }

    asio::io_context io;
    std::vector<figures> out;
    std::size_t groups = 0;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        auto s = co_await session::connect(io.get_executor(), p);
        if (real) {
            co_await s.execute(fmt::format("CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {}}}", ks, rf));
            co_await s.execute(fmt::format("CREATE TABLE IF NOT EXISTS {}.t (k int PRIMARY KEY, v int)", ks));
            co_await s.check_schema_agreement();
        }
        auto read = co_await s.prepare(read_q);
        auto write = co_await s.prepare(write_q);
        auto in = co_await s.prepare(in_q);
        auto reads = [&] {
            std::vector<bound_statement> v;
            for (std::size_t k = 0; k < keys; ++k) v.push_back(read.bind(static_cast<std::int32_t>(k)));
            return v;
        };
        auto writes = [&] {
            std::vector<bound_statement> v;
            for (std::size_t k = 0; k < keys; ++k) v.push_back(write.bind(static_cast<std::int32_t>(k), static_cast<std::int32_t>(k)));
            return v;
        };
        // Warm-up: every key written once (the real cluster then has rows to read), every connection used.
        co_await s.execute_many(writes());
        figures loop_r{"reads: a loop, one awaited request per key"}, many_r{"reads: execute_many (128 in flight)"},
            in_r{"reads: one SELECT ... WHERE k IN ?"}, loop_w{"writes: a loop, one awaited request per key"},
            many_w{"writes: execute_many (128 in flight)"}, batch_w{"writes: execute_many, batched per replica set (20)"};
        for (std::size_t r = 0; r < runs; ++r) {
            auto t0 = clock_type::now();
            for (auto& b : reads()) {
                auto [ec, res] = co_await s.execute(std::move(b), asio::as_tuple(asio::use_awaitable));
                loop_r.failed += ec ? 1 : 0;
            }
            loop_r.ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
            loop_r.requests = keys;

            t0 = clock_type::now();
            auto m = co_await s.execute_many(reads());
            many_r.ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
            many_r.requests = m.requests;
            many_r.failed += m.failed;
            groups = m.replica_groups;

            std::vector<std::int32_t> all;
            for (std::size_t k = 0; k < keys; ++k) all.push_back(static_cast<std::int32_t>(k));
            t0 = clock_type::now();
            auto [iec, ires] = co_await s.execute(in.bind(all), asio::as_tuple(asio::use_awaitable));
            in_r.ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
            in_r.requests = 1;
            in_r.failed += iec || ires.size() != keys ? 1 : 0;

            t0 = clock_type::now();
            for (auto& b : writes()) {
                auto [ec, res] = co_await s.execute(std::move(b), asio::as_tuple(asio::use_awaitable));
                loop_w.failed += ec ? 1 : 0;
            }
            loop_w.ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
            loop_w.requests = keys;

            t0 = clock_type::now();
            m = co_await s.execute_many(writes());
            many_w.ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
            many_w.requests = m.requests;
            many_w.failed += m.failed;

            t0 = clock_type::now();
            m = co_await s.execute_many(writes(), {.batch_writes = true});
            batch_w.ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
            batch_w.requests = m.requests;
            batch_w.failed += m.failed;
        }
        out = {loop_r, many_r, in_r, loop_w, many_w, batch_w};
        co_await s.close();
    }, [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    io.run();
    fmt::print("{} keys, {}, replication factor {} ({} replica groups), median of {} runs\n", keys,
               real ? "real cluster at " + hosts : fmt::format("3 simulated nodes answering after {} ms", delay_ms), rf, groups, runs);
    for (const auto& f : out)
        fmt::print("  {:<55} {:>9.1f} ms  {:>5} requests  {} failed\n", f.way, median(f.ms), f.requests, f.failed);
}
