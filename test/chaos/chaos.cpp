// cqlcoro-chaos: sustained load through one session while faults follow one another, with a ledger of
// every request. The target here is three simulated nodes (in this process), which can be made to do
// what a real server cannot on demand: answer slowly, half-close, answer on stream ids that carry
// nothing, send corrupt frames, flap.
//
//   chaos --seconds-per-fault 3 [--concurrency 48] [--rounds 1]
//
// The load (closed loop, --concurrency requests in flight): reads of known keys at LOCAL_ONE, each
// answer carrying its key's own value; idempotent writes; non-idempotent writes; LWT inserts; streams of
// 500 rows read page by page. Each request has an id in its text.
//
// The ledger, checked at the end (exit 1 naming each violation):
// - every request completed exactly once, and none is left in flight;
// - every answer is its own request's: a read got its key's value, a stream its rows in order;
// - idempotent requests (reads, idempotent writes) at LOCAL_ONE succeeded, whatever the fault;
// - a failed non-idempotent write or LWT says "not sent" only if no node received it, and "succeeded"
//   only if one did (the nodes record what they receive);
// - a stream either read all its rows in order or ended with an error, without a gap or a repeat.
// Printed: per fault, the requests started in it, failures by outcome, and the worst latency.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/metrics.hpp>
#include <cqlcoro/pager.hpp>
#include <cqlcoro/session.hpp>
#include <cqlcoro/speculative_execution.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace cqlcoro;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::uint16_t port = 19192;
constexpr int keys = 200;
constexpr int stream_rows = 500;
constexpr auto request_timeout = 2s;

std::int32_t value_of(int k) { return k * 7 + 1; }
std::string read_of(int k) { return fmt::format("SELECT v FROM chaos.kv WHERE k = {}", k); }

enum class op_kind : std::uint8_t { read, write_idempotent, write, lwt, stream };
constexpr std::array<const char*, 5> op_names{"read", "idempotent write", "write", "lwt", "stream"};

// One request of the ledger: kept small, as a run makes millions.
struct entry {
    std::int64_t id = 0;  // the key of a read, the request's id otherwise: text() is made from it
    clock_type::time_point started;
    op_kind kind{};
    std::uint8_t fault = 0;        // the fault in force when it started (0: none)
    std::uint8_t completions = 0;
    bool failed = false;
    request_outcome outcome = request_outcome::succeeded;

    std::string text() const {
        switch (kind) {
        case op_kind::read: return read_of(static_cast<int>(id));
        case op_kind::write_idempotent:
        case op_kind::write: return fmt::format("INSERT INTO chaos.log (id, v) VALUES ({}, {})", id, id * 3);
        case op_kind::lwt: return fmt::format("INSERT INTO chaos.lwt (id, v) VALUES ({}, 1) IF NOT EXISTS", id);
        case op_kind::stream: return "SELECT id, name FROM chaos.wide";
        }
        return {};
    }
};

struct options {
    std::chrono::milliseconds per_fault{3000};
    std::size_t concurrency = 48;
    int rounds = 1;
};

// ---- Raw answers (for the faults that need bytes no server would send).

protocol::byte_buffer envelope(std::uint8_t version, std::int16_t stream, const protocol::byte_buffer& body, std::uint8_t first = 0) {
    protocol::byte_buffer out;
    out.push_back(first ? first : static_cast<std::uint8_t>(0x80 | version));
    out.push_back(0);
    out.push_back(static_cast<std::uint8_t>(static_cast<std::uint16_t>(stream) >> 8));
    out.push_back(static_cast<std::uint8_t>(stream & 0xFF));
    out.push_back(0x08);  // RESULT
    const auto n = static_cast<std::uint32_t>(body.size());
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(n >> s));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

void put_int(protocol::byte_buffer& b, std::int32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(static_cast<std::uint32_t>(v) >> s));
}
void put_string(protocol::byte_buffer& b, std::string_view s) {
    b.push_back(static_cast<std::uint8_t>(s.size() >> 8));
    b.push_back(static_cast<std::uint8_t>(s.size() & 0xFF));
    b.insert(b.end(), s.begin(), s.end());
}

// A RESULT of one row, one int column v.
protocol::byte_buffer one_int_rows(std::int32_t v) {
    protocol::byte_buffer b;
    put_int(b, 2);  // rows
    put_int(b, 1);  // global tables spec
    put_int(b, 1);  // one column
    put_string(b, "chaos");
    put_string(b, "kv");
    put_string(b, "v");
    b.push_back(0);
    b.push_back(0x09);  // int
    put_int(b, 1);      // one row
    put_int(b, 4);
    put_int(b, v);
    return b;
}

// ---- The faults

struct fault {
    std::string name;
    std::function<void(sim::cluster&)> begin, end;  // end undoes begin (and the base primes are restored)
    std::function<void(sim::cluster&, const std::atomic<bool>& stop)> during;  // runs until the window ends
};

// Every key's value and the stream's rows, on every node (or on one). A fault's primes are undone by
// priming these again, which take precedence as the later ones: clearing first would leave a moment in
// which a read finds nothing primed.
void base_primes(sim::cluster& c, std::optional<std::size_t> node = {}) {
    for (int k = 0; k < keys; ++k)
        c.prime({.query = read_of(k), .node = node}, sim::rows({sim::column("v", cql_type::of(type_kind::int_))}).row(value_of(k)));
    c.prime({.query = "SELECT id, name FROM chaos.wide", .node = node}, cqlcoro::test::id_name_table(stream_rows));
}
void restore_node_3(sim::cluster& c) { base_primes(c, 3); }

// Every read on node 3 answered by `make` instead.
void prime_reads_on_3(sim::cluster& c, const std::function<std::vector<protocol::byte_buffer>(int k, std::int16_t stream, std::uint8_t v)>& make) {
    for (int k = 0; k < keys; ++k)
        c.prime({.query = read_of(k), .node = 3}, {sim::raw_envelopes{[make, k](std::int16_t s, std::uint8_t v) { return make(k, s, v); }}});
}

std::vector<fault> sim_faults(std::chrono::milliseconds window) {
    std::vector<fault> f;
    f.push_back({"node 2 killed, then started", [](sim::cluster& c) { c.stop(2); }, [](sim::cluster& c) { c.start(2); }, {}});
    f.push_back({fmt::format("node 2 paused {} ms (past the {} s request timeout)", std::max<long>(window.count(), 2500),
                             request_timeout.count()),
                 [](sim::cluster& c) { c.pause(2); }, [](sim::cluster& c) { c.resume(2); }, {}});
    f.push_back({"node 2's connections dropped", [](sim::cluster& c) { c.drop_connections(2); }, {}, {}});
    f.push_back({"control node (1) killed, then started", [](sim::cluster& c) { c.stop(1); }, [](sim::cluster& c) { c.start(1); }, {}});
    f.push_back({"schema change storm (200 events)", {}, {}, [](sim::cluster& c, const std::atomic<bool>& stop) {
                     for (int i = 0; i < 200 && !stop; ++i) {
                         c.push_schema_change({"CREATED", "TABLE", "chaos", fmt::format("t{}", i), {}});
                         std::this_thread::sleep_for(5ms);
                     }
                 }});
    f.push_back({"node 3 answers reads 300 ms late",
                 [](sim::cluster& c) {
                     for (int k = 0; k < keys; ++k) {
                         sim::prime_then slow{sim::rows({sim::column("v", cql_type::of(type_kind::int_))}).row(value_of(k))};
                         slow.delay = 300ms;
                         c.prime({.query = read_of(k), .node = 3}, slow);
                     }
                 },
                 restore_node_3, {}});
    f.push_back({"node 3 half-closes its sockets on reads",
                 [](sim::cluster& c) {
                     for (int k = 0; k < keys; ++k) c.prime({.query = read_of(k), .node = 3}, {sim::half_close{}});
                 },
                 restore_node_3, {}});
    f.push_back({"node 3 answers reads on idle stream ids first",
                 [](sim::cluster& c) {
                     prime_reads_on_3(c, [](int k, std::int16_t s, std::uint8_t v) {
                         std::vector<protocol::byte_buffer> out;
                         for (std::int16_t id = 32700; id < 32710; ++id)
                             if (id != s) out.push_back(envelope(v, id, one_int_rows(-value_of(k))));
                         out.push_back(envelope(v, s, one_int_rows(value_of(k))));
                         return out;
                     });
                 },
                 restore_node_3, {}});
    f.push_back({"node 3 sends corrupt frames on reads",
                 [](sim::cluster& c) {
                     prime_reads_on_3(c, [](int k, std::int16_t s, std::uint8_t v) {
                         return std::vector<protocol::byte_buffer>{envelope(v, s, one_int_rows(value_of(k)), /*a version byte no server sends*/ 0x42)};
                     });
                 },
                 restore_node_3, {}});
    f.push_back({"node 2 flapping (down and up every 200 ms)", {}, [](sim::cluster& c) { c.start(2); },
                 [](sim::cluster& c, const std::atomic<bool>& stop) {
                     bool up = true;
                     while (!stop) {
                         if (up) c.stop(2);
                         else c.start(2);
                         up = !up;
                         std::this_thread::sleep_for(200ms);
                     }
                 }});
    return f;
}

// ---- The load

struct chaos_run : std::enable_shared_from_this<chaos_run> {
    session s;
    options opt;
    std::deque<entry> ledger;  // on the io thread only
    std::vector<std::string> wrong;  // wrong answers, as they came (io thread)
    // Per fault: completed, succeeded, failures by outcome, worst latency (io thread).
    struct tally {
        std::size_t requests = 0, ok = 0;
        std::map<std::string, std::size_t> failed;
        clock_type::duration worst{};
    };
    std::map<std::size_t, tally> tallies;
    std::vector<std::string> fault_names;  // by index: 0 is "(no fault)"
    std::atomic<std::size_t> current_fault{0};
    std::atomic<bool> stopping{false};
    std::size_t in_flight = 0;
    std::promise<void> drained;
    bool drained_set = false;
    std::mt19937 rng{12345};
    std::uint64_t next_id = 0;
    std::size_t streams_complete = 0, streams_failed = 0;

    entry& open(op_kind k, std::int64_t id) {
        auto& e = ledger.emplace_back();
        e.kind = k;
        e.id = id;
        e.fault = static_cast<std::uint8_t>(current_fault.load());
        e.started = clock_type::now();
        ++in_flight;
        return e;
    }
    void close(entry& e, error_code ec, const result& r, bool right, std::string why = {}) {
        if (++e.completions > 1) return;  // the ledger reports it; the first completion was counted
        e.failed = static_cast<bool>(ec);
        e.outcome = ec ? r.diagnostics().outcome : request_outcome::succeeded;
        if (!right) wrong.push_back(fmt::format("{} \"{}\": a wrong answer: {}", op_names[static_cast<int>(e.kind)], e.text(), why));
        auto& t = tallies[e.fault];
        ++t.requests;
        if (ec) ++t.failed[std::string(to_string(e.outcome))];
        else ++t.ok;
        t.worst = std::max(t.worst, clock_type::now() - e.started);
        if (ec && (e.kind == op_kind::read || e.kind == op_kind::write_idempotent))
            wrong.push_back(fmt::format("{} \"{}\" at LOCAL_ONE failed during \"{}\": {} ({})", op_names[static_cast<int>(e.kind)], e.text(),
                                        fault_names.at(e.fault), ec.message(), to_string(e.outcome)));
        --in_flight;
    }

    void start_one() {
        if (stopping) {
            if (in_flight == 0 && !drained_set) {
                drained_set = true;
                drained.set_value();
            }
            return;
        }
        const auto id = next_id++;
        const auto pick = rng() % 100;
        auto self = shared_from_this();
        if (pick < 55) {
            const int k = static_cast<int>(rng() % keys);
            auto& e = open(op_kind::read, k);
            s.execute(statement(e.text()).idempotent(true).consistency(consistency::local_one), [self, &e, k](error_code ec, result r) {
                const bool right = !ec && r.size() == 1 && r.one().get<std::int32_t>(0) == value_of(k);
                self->close(e, ec, r, ec || right, right || ec ? "" : fmt::format("key {} answered {}", k, r.size() ? r.one().get<std::int32_t>(0) : -1));
                self->start_one();
            });
        } else if (pick < 90) {
            const bool idem = pick < 75;
            auto& e = open(idem ? op_kind::write_idempotent : op_kind::write, static_cast<std::int64_t>(id));
            s.execute(statement(e.text()).idempotent(idem).consistency(consistency::local_one), [self, &e](error_code ec, result r) {
                self->close(e, ec, r, true);
                self->start_one();
            });
        } else if (pick < 97) {
            auto& e = open(op_kind::lwt, static_cast<std::int64_t>(id));
            s.execute(statement(e.text()).idempotent(false).serial_consistency(consistency::local_serial), [self, &e](error_code ec, result r) {
                self->close(e, ec, r, true);
                self->start_one();
            });
        } else {
            auto& e = open(op_kind::stream, static_cast<std::int64_t>(id));
            auto p = std::make_shared<pager>(s.stream(statement(e.text()).page_size(50).idempotent(true)));
            next_page(p, e, 0);
        }
    }

    // Reads the stream page by page; each row's id must be the next.
    void next_page(std::shared_ptr<pager> p, entry& e, int expected) {
        auto self = shared_from_this();
        p->next_page([self, p, &e, expected](error_code ec, stream_page page) mutable {
            if (ec || !page) {
                const bool whole = !ec && expected == stream_rows;
                ec ? ++self->streams_failed : ++self->streams_complete;
                self->close(e, ec, page.result(), ec || whole, ec || whole ? "" : fmt::format("the stream ended after {} rows", expected));
                return self->start_one();
            }
            for (auto row : page.rows()) {
                if (row.get<std::int32_t>(0) != expected) {
                    self->close(e, {}, page.result(), false, fmt::format("row {} came where {} was due", row.get<std::int32_t>(0), expected));
                    return self->start_one();
                }
                ++expected;
            }
            self->next_page(p, e, expected);
        });
    }
};

struct fault_row {
    std::string name;
    std::size_t requests = 0, ok = 0;
    std::map<std::string, std::size_t> failed;  // by outcome
    clock_type::duration worst{};
};

// The ids of the writes and LWT inserts some node received, from the nodes' records (taken as they
// come, so the records do not grow with the run).
struct received_writes {
    std::mutex mutex;
    std::vector<bool> ids;
    void harvest(sim::cluster& c) {
        auto got = c.take_requests();
        std::lock_guard lock(mutex);
        for (const auto& r : got) {
            constexpr std::string_view prefix = "INSERT INTO chaos.";
            if (!r.query.starts_with(prefix)) continue;
            const auto at = r.query.find("VALUES (");
            if (at == std::string::npos) continue;
            const auto id = std::strtoull(r.query.c_str() + at + 8, nullptr, 10);
            if (id >= ids.size()) ids.resize(id * 2 + 1024);
            ids[id] = true;
        }
    }
    bool has(std::int64_t id) {
        std::lock_guard lock(mutex);
        return static_cast<std::size_t>(id) < ids.size() && ids[static_cast<std::size_t>(id)];
    }
};

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> long {
            if (i + 1 >= argc) {
                fmt::print(stderr, "chaos: {} needs a value\n", a);
                std::exit(2);
            }
            char* end = nullptr;
            const long v = std::strtol(argv[++i], &end, 10);
            if (*end || v <= 0) {
                fmt::print(stderr, "chaos: {} takes a positive whole number, not \"{}\"\n", a, argv[i]);
                std::exit(2);
            }
            return v;
        };
        if (a == "--seconds-per-fault") opt.per_fault = std::chrono::milliseconds(value() * 1000);
        else if (a == "--concurrency") opt.concurrency = static_cast<std::size_t>(value());
        else if (a == "--rounds") opt.rounds = static_cast<int>(value());
        else {
            fmt::print(stderr, "chaos: unknown option {} (--seconds-per-fault S, --concurrency N, --rounds R)\n", a);
            return 2;
        }
    }

    sim::cluster c({.nodes = 3, .port = port});
    base_primes(c);
    auto faults = sim_faults(opt.per_fault);

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread io_thread([&] { io.run(); });

    auto params = cqlcoro::test::sim_session_params(c);
    params.contact_points = {c.address(1)};
    params.request_timeout = request_timeout;
    params.heartbeat_interval = 500ms;
    params.reconnection = reconnection_policy::constant(100ms);
    params.speculative_execution = std::make_shared<constant_speculative_execution>(100ms, 2);
    params.retry_budget = {.ratio = 10, .min_per_second = 100000};
    auto run = std::make_shared<chaos_run>();
    run->opt = opt;
    run->fault_names.push_back("(no fault)");
    for (int round = 0; round < opt.rounds; ++round)
        for (const auto& f : faults) run->fault_names.push_back(f.name);
    if (run->fault_names.size() > 255) {
        fmt::print(stderr, "chaos: at most 25 rounds\n");
        return 2;
    }
    run->s = asio::co_spawn(io, session::connect(io.get_executor(), params), asio::use_future).get();

    received_writes received;
    std::atomic<bool> stop_harvest{false};
    std::thread harvester([&] {
        while (!stop_harvest) {
            received.harvest(c);
            std::this_thread::sleep_for(100ms);
        }
    });
    for (std::size_t i = 0; i < opt.concurrency; ++i) asio::post(io, [run] { run->start_one(); });

    // Faults one after another, each for its window, a calm second between them.
    std::vector<std::pair<std::string, std::size_t>> windows;  // (name, fault index in the ledger)
    std::this_thread::sleep_for(1s);
    std::size_t index = 0;
    for (int round = 0; round < opt.rounds; ++round)
        for (auto& f : faults) {
            windows.emplace_back(f.name, ++index);
            run->current_fault = index;
            fmt::print("chaos: {}\n", f.name);
            std::fflush(stdout);
            if (f.begin) f.begin(c);
            std::atomic<bool> stop{false};
            std::thread during;
            if (f.during) during = std::thread([&] { f.during(c, stop); });
            const auto window = f.name.starts_with("node 2 paused") ? std::max(opt.per_fault, std::chrono::milliseconds(2500)) : opt.per_fault;
            std::this_thread::sleep_for(window);
            stop = true;
            if (during.joinable()) during.join();
            if (f.end) f.end(c);
            run->current_fault = 0;
            std::this_thread::sleep_for(1s);
        }
    run->stopping = true;
    auto drained = run->drained.get_future();
    asio::post(io, [run] { run->start_one(); });
    const bool ended = drained.wait_for(request_timeout * 3) == std::future_status::ready;

    stop_harvest = true;
    harvester.join();
    received.harvest(c);

    // The ledger (read on the io thread, where it was written).
    std::vector<std::string> violations;
    std::size_t total = 0, by_kind[5] = {};
    std::promise<void> checked;
    asio::post(io, [&] {
        if (!ended) violations.push_back(fmt::format("{} requests still in flight {} s after the load stopped", run->in_flight, 3 * request_timeout.count()));
        violations.insert(violations.end(), run->wrong.begin(), run->wrong.end());
        for (const auto& e : run->ledger) {
            ++total;
            ++by_kind[static_cast<int>(e.kind)];
            const auto kind = op_names[static_cast<int>(e.kind)];
            if (e.completions != 1) {
                violations.push_back(fmt::format("{} \"{}\" completed {} times", kind, e.text(), e.completions));
                continue;
            }
            if (e.kind != op_kind::write && e.kind != op_kind::lwt) continue;
            // What a non-idempotent write says happened, against what the nodes received.
            if (!e.failed && !received.has(e.id))
                violations.push_back(fmt::format("{} \"{}\" succeeded, yet no node received it", kind, e.text()));
            if (e.failed && e.outcome == request_outcome::not_sent && received.has(e.id))
                violations.push_back(fmt::format("{} \"{}\" said not sent, yet a node received it", kind, e.text()));
        }
        checked.set_value();
    });
    checked.get_future().get();

    std::vector<fault_row> table(index + 1);
    table[0].name = "(no fault)";
    for (const auto& [name, i] : windows) table[i].name = name;
    for (const auto& [i, t] : run->tallies) {
        table[i].requests = t.requests;
        table[i].ok = t.ok;
        table[i].failed = t.failed;
        table[i].worst = t.worst;
    }

    std::size_t width = 5;
    for (const auto& row : table) width = std::max(width, row.name.size());
    fmt::print("\n{:<{}} {:>8} {:>8}  {:<32} {:>9}\n", "fault", width, "requests", "ok", "failed, by outcome", "worst ms");
    for (const auto& row : table) {
        std::string failed;
        for (const auto& [o, n] : row.failed) failed += fmt::format("{}{} {}", failed.empty() ? "" : ", ", n, o);
        fmt::print("{:<{}} {:>8} {:>8}  {:<32} {:>9.1f}\n", row.name, width, row.requests, row.ok, failed.empty() ? "-" : failed,
                   std::chrono::duration<double, std::milli>(row.worst).count());
    }
    fmt::print("\n{} requests: {} reads, {} idempotent writes, {} writes, {} LWT, {} streams ({} read whole, {} ended by an error)\n", total,
               by_kind[0], by_kind[1], by_kind[2], by_kind[3], by_kind[4], run->streams_complete, run->streams_failed);
    const auto m = run->s.metrics();
    std::uint64_t unexpected = 0;
    for (const auto& n : m.nodes) unexpected += n.unexpected_answers;
    fmt::print("answers on stream ids that carried nothing, dropped: {}\n", unexpected);

    asio::co_spawn(io, run->s.close(1s), asio::use_future).get();
    work.reset();
    io_thread.join();

    for (std::size_t i = 0; i < violations.size() && i < 30; ++i) fmt::print("VIOLATION: {}\n", violations[i]);
    if (violations.size() > 30) fmt::print("... and {} more\n", violations.size() - 30);
    if (total < 1000) violations.push_back("fewer than 1,000 requests: the load did not run");
    fmt::print("chaos: {} ({} violations)\n", violations.empty() ? "passed" : "FAILED", violations.size());
    return violations.empty() ? 0 : 1;
}
