// cqlcoro-chaos: sustained load through one session while faults follow one another, with a ledger of
// every request. Two targets:
// - `--target sim` (the default): three simulated nodes in this process, which can be made to do what
//   a real server cannot on demand: answer slowly, half-close, answer on stream ids that carry nothing,
//   send corrupt frames, flap.
// - `--target real`: a real three-node cluster (dc1: nodes 1 and 2, dc2: node 3) run by
//   test/cluster/ccluster: kill -9 and restart, SIGSTOP past the request timeout, every connection
//   dropped (ss -K), the control node restarted, a schema change storm. The data is read back at the end.
//
//   chaos [--target sim|real] [--seconds-per-fault S] [--concurrency N] [--rounds R]
//         [--hosts A,B,C] [--cluster-tool PATH] [--cluster-dir DIR]     (real; scripts/test's settings by default)
//
// The load (closed loop, --concurrency requests in flight): reads of known keys at LOCAL_ONE, each
// answer carrying its key's own value; idempotent writes at LOCAL_ONE; non-idempotent writes; LWT
// inserts; streams of 500 rows read page by page. Each request has an id in its text.
//
// The ledger, checked at the end (exit 1 naming each violation):
// - every request completed exactly once, and none is left in flight;
// - every answer is its own request's: a read got its key's value, a stream its rows in order, an LWT
//   insert of a new id was applied;
// - idempotent requests (reads, idempotent writes) at LOCAL_ONE succeeded, whatever the fault;
// - a write (idempotent or not) or LWT that succeeded is there afterwards, and one that failed as "not
//   sent" is not: on simulated nodes "there" means some node received it; on the real cluster, the
//   data read back at ALL once every node is up again;
// - a stream either read all its rows in order or ended with an error, without a gap or a repeat.
// Printed: per fault, the requests started in it or caught in flight by it, failures by outcome, and the
// worst latency.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/metrics.hpp>
#include <cqlcoro/pager.hpp>
#include <cqlcoro/session.hpp>
#include <cqlcoro/speculative_execution.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace cqlcoro;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::uint16_t sim_port = 19192;
constexpr int keys = 200;
constexpr int stream_rows = 500;
// The keyspaces the run owns: dropped and made again at the start of a real run.
constexpr std::string_view ks = "cqlcoro_ledger";
constexpr std::string_view storm_ks = "cqlcoro_storm";

std::int32_t value_of(int k) { return k * 7 + 1; }
std::string read_of(int k) { return fmt::format("SELECT v FROM {}.kv WHERE k = {}", ks, k); }
std::string stream_query() { return fmt::format("SELECT id, name FROM {}.wide WHERE p = 0", ks); }

enum class op_kind : std::uint8_t { read, write_idempotent, write, lwt, stream };
constexpr std::array<const char*, 5> op_names{"read", "idempotent write", "write", "lwt", "stream"};
bool is_write(op_kind k) { return k == op_kind::write_idempotent || k == op_kind::write || k == op_kind::lwt; }

// One request of the ledger: kept small, as a run makes millions.
struct entry {
    std::int64_t id = 0;  // the key of a read, the request's id otherwise: text() is made from it
    clock_type::time_point started;
    op_kind kind{};
    std::uint8_t fault = 0;        // the fault in force when it started, else when it ended (0: none)
    std::uint8_t completions = 0;
    bool failed = false;
    request_outcome outcome = request_outcome::succeeded;

    std::string text() const {
        switch (kind) {
        case op_kind::read: return read_of(static_cast<int>(id));
        case op_kind::write_idempotent:
        case op_kind::write: return fmt::format("INSERT INTO {}.log (id, v) VALUES ({}, {})", ks, id, id * 3);
        case op_kind::lwt: return fmt::format("INSERT INTO {}.lwt (id, v) VALUES ({}, 1) IF NOT EXISTS", ks, id);
        case op_kind::stream: return stream_query();
        }
        return {};
    }
};

struct options {
    std::chrono::milliseconds per_fault{3000};
    std::size_t concurrency = 48;
    int rounds = 1;
    bool real = false;
    std::vector<std::string> hosts;
    std::string cluster_tool, cluster_dir;
};

// ---- The faults

struct fault {
    std::string name;
    std::function<void()> begin, end;                         // end undoes begin
    std::function<void(const std::atomic<bool>& stop)> during;  // runs until the window ends
    std::chrono::milliseconds window{0};                      // 0: --seconds-per-fault
    std::function<void()> settle;  // after end: returns once the session is whole again (throws if it is not)
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
    put_string(b, ks);
    put_string(b, "kv");
    put_string(b, "v");
    b.push_back(0);
    b.push_back(0x09);  // int
    put_int(b, 1);      // one row
    put_int(b, 4);
    put_int(b, v);
    return b;
}

// ---- The simulated nodes' faults

// Every key's value and the stream's rows, on every node (or on one). A fault's primes are undone by
// priming these again, which take precedence as the later ones: clearing first would leave a moment in
// which a read finds nothing primed.
void base_primes(sim::cluster& c, std::optional<std::size_t> node = {}) {
    for (int k = 0; k < keys; ++k)
        c.prime({.query = read_of(k), .node = node}, sim::rows({sim::column("v", cql_type::of(type_kind::int_))}).row(value_of(k)));
    c.prime({.query = stream_query(), .node = node}, cqlcoro::test::id_name_table(stream_rows));
}

// Every read on node 3 answered by `make` instead.
void prime_reads_on_3(sim::cluster& c, const std::function<std::vector<protocol::byte_buffer>(int k, std::int16_t stream, std::uint8_t v)>& make) {
    for (int k = 0; k < keys; ++k)
        c.prime({.query = read_of(k), .node = 3}, {sim::raw_envelopes{[make, k](std::int16_t s, std::uint8_t v) { return make(k, s, v); }}});
}

std::vector<fault> sim_faults(sim::cluster& c, std::chrono::milliseconds per_fault, std::chrono::milliseconds request_timeout) {
    auto restore_3 = [&c] { base_primes(c, 3); };
    std::vector<fault> f;
    f.push_back({.name = "node 2 killed, then started", .begin = [&c] { c.stop(2); }, .end = [&c] { c.start(2); }});
    const auto pause = std::max(per_fault, request_timeout + 500ms);
    f.push_back({.name = fmt::format("node 2 paused {} ms (past the {} ms request timeout)", pause.count(), request_timeout.count()),
                 .begin = [&c] { c.pause(2); }, .end = [&c] { c.resume(2); }, .window = pause});
    f.push_back({.name = "node 2's connections dropped", .begin = [&c] { c.drop_connections(2); }});
    f.push_back({.name = "control node (1) killed, then started", .begin = [&c] { c.stop(1); }, .end = [&c] { c.start(1); }});
    f.push_back({.name = "schema change storm (200 events)", .during = [&c](const std::atomic<bool>& stop) {
                     for (int i = 0; i < 200 && !stop; ++i) {
                         c.push_schema_change({"CREATED", "TABLE", std::string(storm_ks), fmt::format("t{}", i), {}});
                         std::this_thread::sleep_for(5ms);
                     }
                 }});
    f.push_back({.name = "node 3 answers reads 300 ms late",
                 .begin =
                     [&c] {
                         for (int k = 0; k < keys; ++k) {
                             sim::prime_then slow{sim::rows({sim::column("v", cql_type::of(type_kind::int_))}).row(value_of(k))};
                             slow.delay = 300ms;
                             c.prime({.query = read_of(k), .node = 3}, slow);
                         }
                     },
                 .end = restore_3});
    f.push_back({.name = "node 3 half-closes its sockets on reads",
                 .begin =
                     [&c] {
                         for (int k = 0; k < keys; ++k) c.prime({.query = read_of(k), .node = 3}, {sim::half_close{}});
                     },
                 .end = restore_3});
    f.push_back({.name = "node 3 answers reads on idle stream ids first",
                 .begin =
                     [&c] {
                         prime_reads_on_3(c, [](int k, std::int16_t s, std::uint8_t v) {
                             std::vector<protocol::byte_buffer> out;
                             for (std::int16_t id = 32700; id < 32710; ++id)
                                 if (id != s) out.push_back(envelope(v, id, one_int_rows(-value_of(k))));
                             out.push_back(envelope(v, s, one_int_rows(value_of(k))));
                             return out;
                         });
                     },
                 .end = restore_3});
    f.push_back({.name = "node 3 sends corrupt frames on reads",
                 .begin =
                     [&c] {
                         prime_reads_on_3(c, [](int k, std::int16_t s, std::uint8_t v) {
                             return std::vector<protocol::byte_buffer>{envelope(v, s, one_int_rows(value_of(k)), /*a version byte no server sends*/ 0x42)};
                         });
                     },
                 .end = restore_3});
    f.push_back({.name = "node 2 flapping (down and up every 200 ms)",
                 .end = [&c] { c.start(2); },
                 .during = [&c](const std::atomic<bool>& stop) {
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
        // Counted under the fault in force when it started, or else the one in force when it ended (a
        // request caught in flight by a fault is that fault's).
        if (!e.fault) e.fault = static_cast<std::uint8_t>(current_fault.load());
        auto& t = tallies[e.fault];
        ++t.requests;
        if (ec) ++t.failed[std::string(to_string(e.outcome))];
        else ++t.ok;
        t.worst = std::max(t.worst, clock_type::now() - e.started);
        if (ec && (e.kind == op_kind::read || e.kind == op_kind::write_idempotent))
            wrong.push_back(fmt::format("{} \"{}\" at LOCAL_ONE failed during \"{}\": {} ({})", op_names[static_cast<int>(e.kind)], e.text(),
                                        fault_names.at(e.fault), ec.message(), to_string(e.outcome)));
        // Not a violation: a stream's failure (it must end cleanly, which next_page checks), or a
        // non-idempotent request's (its outcome is checked against the data at the end).
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
            // SERIAL: a majority of all three replicas, so one node down leaves Paxos its quorum.
            s.execute(statement(e.text()).idempotent(false).consistency(consistency::local_one).serial_consistency(consistency::serial),
                      [self, &e](error_code ec, result r) {
                          // Each id is inserted once: "not applied" would mean the insert ran twice. (Simulated
                          // nodes answer without the [applied] column.)
                          const bool lost = !ec && !r.columns().empty() && r.columns()[0].name == "[applied]" && r.size() == 1 &&
                                            !r.one().get<bool>(0);
                          self->close(e, ec, r, !lost, lost ? "not applied: the row was there before its own insert" : "");
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

// ---- The real cluster

// `f` run on the io thread, its result (or exception) here.
template <class F>
auto on_io(asio::io_context& io, F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(io, [&task] { task(); });
    return result.get();
}

template <class Awaitable>
auto run_on(asio::io_context& io, Awaitable a) {
    return asio::co_spawn(io, std::move(a), asio::use_future).get();
}

struct real_cluster {
    std::vector<std::string> hosts;  // nodes 1, 2 (dc1) and 3 (dc2)
    std::string tool, dir;

    // A command of test/cluster/ccluster on this cluster, e.g. "kill 2".
    void harness(const std::string& command) const {
        const auto cmd = fmt::format("CQLCORO_CLUSTER_DIR='{}' '{}' {}", dir, tool, command);
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error(cmd + " failed (its output is above)");
    }

    // Closes every TCP connection of this machine to the node's CQL port (as a firewall reset would),
    // through the kernel (ss -K, root only); returns how many it closed.
    static int drop_connections(const std::string& host) {
        const auto cmd = fmt::format("ss -K -t -n -H dst {} dport = :9042 2>&1", host);
        FILE* out = popen(cmd.c_str(), "r");
        if (!out) throw std::runtime_error("could not run ss (iproute2)");
        int closed = 0;
        std::string text;
        char line[512];
        while (std::fgets(line, sizeof line, out)) {
            text += line;
            closed += std::string_view(line).find(":9042") != std::string_view::npos;
        }
        if (pclose(out) != 0 || closed == 0)
            throw std::runtime_error(fmt::format("`{}` closed no connection ({}): it needs root and a kernel with CONFIG_INET_DIAG_DESTROY", cmd,
                                                 text.empty() ? "no output" : text));
        return closed;
    }
};

std::shared_ptr<const node> by_address(const cluster_metadata& md, const std::string& address) {
    for (const auto& n : md.nodes())
        if (n->address.to_string() == address) return n;
    return nullptr;
}

// Waits (polling the session on its thread) until the node is up with an open connection.
void wait_up(asio::io_context& io, const session& s, const std::string& host, std::chrono::seconds limit) {
    const auto until = clock_type::now() + limit;
    while (!on_io(io, [&] {
        auto n = by_address(*s.metadata(), host);
        return n && n->state() == node_state::up && n->open_connections() > 0;
    })) {
        if (clock_type::now() > until) throw std::runtime_error(fmt::format("the session did not see {} up within {} s", host, limit.count()));
        std::this_thread::sleep_for(50ms);
    }
}

asio::awaitable<void> ddl(session& s, std::string cql) {
    statement st(cql);  // named: GCC 12 and temporaries in co_await
    st.timeout(60s);
    co_await s.execute(std::move(st));
    const bool agreed = co_await s.check_schema_agreement(60s);
    if (!agreed) throw std::runtime_error(fmt::format("the nodes did not agree on the schema within 60 s after: {}", cql));
}

// The run's keyspace, made again, and the data the load reads: every key's value and the stream's
// rows, written at ALL.
asio::awaitable<void> real_schema(session& s) {
    co_await ddl(s, fmt::format("DROP KEYSPACE IF EXISTS {}", ks));
    co_await ddl(s, fmt::format("DROP KEYSPACE IF EXISTS {}", storm_ks));
    co_await ddl(s, fmt::format("CREATE KEYSPACE {} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 1}}", ks));
    co_await ddl(s, fmt::format("CREATE KEYSPACE {} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': 1}}", storm_ks));
    co_await ddl(s, fmt::format("CREATE TABLE {}.kv (k int PRIMARY KEY, v int)", ks));
    co_await ddl(s, fmt::format("CREATE TABLE {}.log (id bigint PRIMARY KEY, v bigint)", ks));
    co_await ddl(s, fmt::format("CREATE TABLE {}.lwt (id bigint PRIMARY KEY, v int)", ks));
    co_await ddl(s, fmt::format("CREATE TABLE {}.wide (p int, id int, name text, PRIMARY KEY (p, id))", ks));
    auto kv = co_await s.prepare(fmt::format("INSERT INTO {}.kv (k, v) VALUES (?, ?)", ks));
    for (int k = 0; k < keys; ++k) {
        auto b = kv.bind(k, value_of(k));
        b.consistency(consistency::all);
        co_await s.execute(std::move(b));
    }
    auto wide = co_await s.prepare(fmt::format("INSERT INTO {}.wide (p, id, name) VALUES (0, ?, ?)", ks));
    for (int i = 0; i < stream_rows; ++i) {
        auto b = wide.bind(i, fmt::format("row{}", i));
        b.consistency(consistency::all);
        co_await s.execute(std::move(b));
    }
}

// The ids a table holds, read at ALL.
asio::awaitable<std::vector<bool>> ids_in(session& s, std::string table) {
    statement scan(fmt::format("SELECT id FROM {}.{}", ks, table));
    scan.consistency(consistency::all).page_size(5000).idempotent(true).timeout(30s);
    auto p = s.stream(std::move(scan));
    std::vector<bool> ids;
    for (;;) {
        auto page = co_await p.next_page(asio::use_awaitable);
        if (!page) break;
        for (auto row : page.rows()) {
            const auto id = static_cast<std::size_t>(row.get<std::int64_t>(0));
            if (id >= ids.size()) ids.resize(id * 2 + 1024);
            ids[id] = true;
        }
    }
    co_return ids;
}

// One of the storm's writers: makes, alters and drops tables of its own and alters the table the load
// reads, one statement after another, until told to stop.
asio::awaitable<void> storm_writer(session& s, std::string coordinator, int writer, const std::atomic<bool>& stop, std::atomic<int>& made,
                                   std::vector<std::string>& errors, clock_type::duration& slowest) {
    for (int i = 0; !stop; ++i) {
        const auto table = fmt::format("{}.t{}_{}", storm_ks, writer, i);
        const std::array<std::string, 4> changes{fmt::format("CREATE TABLE {} (k int PRIMARY KEY, v int)", table),
                                                 fmt::format("ALTER TABLE {} ADD w int", table),
                                                 fmt::format("ALTER TABLE {}.kv WITH comment = 'storm {} {}'", ks, writer, i),
                                                 fmt::format("DROP TABLE {}", table)};
        for (const auto& cql : changes) {
            if (stop) break;
            statement st(cql);  // named: GCC 12 and temporaries in co_await
            st.timeout(30s);
            st.node_endpoint(coordinator);  // one coordinator: a table is there for the statements after its CREATE
            const auto began = clock_type::now();
            auto [ec, r] = co_await s.execute(std::move(st), asio::as_tuple(asio::use_awaitable));
            slowest = std::max(slowest, clock_type::now() - began);  // the io thread only
            if (!ec) ++made;
            else errors.push_back(fmt::format("{}: {}", cql, ec.message()));  // the io thread only
        }
    }
}

std::vector<fault> real_faults(const real_cluster& c, asio::io_context& io, const session& s, session& storm, std::chrono::milliseconds per_fault,
                               std::chrono::milliseconds request_timeout, std::vector<std::string>& notes) {
    const auto& h = c.hosts;
    auto back_up = [&io, &s](std::string host) {
        return [&io, &s, host] { wait_up(io, s, host, 60s); };
    };
    std::vector<fault> f;
    f.push_back({.name = "node 2 killed (kill -9), then restarted",
                 .begin = [&c] { c.harness("kill 2"); },
                 .end = [&c] { c.harness("restart 2"); },
                 .settle = back_up(h[1])});
    const auto pause = std::max(per_fault, request_timeout + 1s);
    f.push_back({.name = fmt::format("node 2 paused (SIGSTOP) {} ms, past the {} ms request timeout", pause.count(), request_timeout.count()),
                 .begin = [&c] { c.harness("pause 2"); },
                 .end = [&c] { c.harness("resume 2"); },
                 .window = pause,
                 .settle = back_up(h[1])});
    f.push_back({.name = "node 2's connections dropped (ss -K)",
                 .begin = [&notes, host = h[1]] { notes.push_back(fmt::format("ss -K closed {} connections to {}", real_cluster::drop_connections(host), host)); },
                 .settle = back_up(h[1])});
    f.push_back({.name = "control node (1) restarted (SIGTERM, start)",
                 .begin = [&c] { c.harness("restart 1"); },
                 .settle = back_up(h[0])});
    f.push_back({.name = "schema change storm (DDL from another session)",
                 .during =
                     [&io, &storm, &notes, coordinator = h[0] + ":9042"](const std::atomic<bool>& stop) {
                         constexpr int writers = 4;
                         std::atomic<int> made{0};
                         std::vector<std::string> errors;
                         clock_type::duration slowest{};
                         const auto began = clock_type::now();
                         std::vector<std::future<void>> done;
                         for (int w = 0; w < writers; ++w)
                             done.push_back(asio::co_spawn(io, storm_writer(storm, coordinator, w, stop, made, errors, slowest), asio::use_future));
                         for (auto& d : done) d.get();
                         // A statement may fail under the load (a timeout): the storm is the cluster's
                         // weather, not part of the ledger.
                         notes.push_back(fmt::format("schema change storm: {} changes in {:.1f} s by {} writers, the slowest {:.1f} s{}",
                                                     made.load(), std::chrono::duration<double>(clock_type::now() - began).count(), writers,
                                                     std::chrono::duration<double>(slowest).count(),
                                                     errors.empty() ? "" : fmt::format(", {} failed (the first: {})", errors.size(), errors.front())));
                     },
                 // A 5.0 node under this load takes seconds per change (each flushes the schema tables).
                 .window = std::max(per_fault, std::chrono::milliseconds(15000))});
    return f;
}

// The ids of the writes and LWT inserts some simulated node received, from the nodes' records (taken
// as they come, so the records do not grow with the run).
struct received_writes {
    std::mutex mutex;
    std::vector<bool> ids;
    void harvest(sim::cluster& c) {
        auto got = c.take_requests();
        std::lock_guard lock(mutex);
        const auto prefix = fmt::format("INSERT INTO {}.", ks);
        for (const auto& r : got) {
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

std::vector<std::string> split(const std::string& list) {
    std::vector<std::string> out;
    std::stringstream in(list);
    for (std::string s; std::getline(in, s, ',');)
        if (!s.empty()) out.push_back(s);
    return out;
}

std::string env_or(const char* name, std::string fallback = {}) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

}  // namespace

namespace {

options parse(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto text = [&]() -> std::string {
            if (i + 1 >= argc) {
                fmt::print(stderr, "chaos: {} needs a value\n", a);
                std::exit(2);
            }
            return argv[++i];
        };
        auto number = [&]() -> long {
            const auto t = text();
            char* end = nullptr;
            const long v = std::strtol(t.c_str(), &end, 10);
            if (*end || v <= 0) {
                fmt::print(stderr, "chaos: {} takes a positive whole number, not \"{}\"\n", a, t);
                std::exit(2);
            }
            return v;
        };
        if (a == "--seconds-per-fault") opt.per_fault = std::chrono::milliseconds(number() * 1000);
        else if (a == "--concurrency") opt.concurrency = static_cast<std::size_t>(number());
        else if (a == "--rounds") opt.rounds = static_cast<int>(number());
        else if (a == "--target") {
            const auto t = text();
            if (t != "sim" && t != "real") {
                fmt::print(stderr, "chaos: --target is sim (simulated nodes) or real (a three-node cluster), not \"{}\"\n", t);
                std::exit(2);
            }
            opt.real = t == "real";
        } else if (a == "--hosts") opt.hosts = split(text());
        else if (a == "--cluster-tool") opt.cluster_tool = text();
        else if (a == "--cluster-dir") opt.cluster_dir = text();
        else {
            fmt::print(stderr,
                       "chaos: unknown option {} (--target sim|real, --seconds-per-fault S, --concurrency N, --rounds R; for real: --hosts "
                       "A,B,C, --cluster-tool PATH, --cluster-dir DIR)\n",
                       a);
            std::exit(2);
        }
    }
    if (opt.real) {
        // scripts/test's settings for the 5.0 three-node cluster, unless given.
        if (opt.hosts.empty()) opt.hosts = split(env_or("CQLCORO_TEST_C50_MULTI_HOSTS"));
        if (opt.cluster_tool.empty()) opt.cluster_tool = env_or("CQLCORO_TEST_CLUSTER");
        if (opt.cluster_dir.empty()) opt.cluster_dir = env_or("CQLCORO_TEST_C50_MULTI_DIR");
        if (opt.hosts.size() != 3 || opt.cluster_tool.empty() || opt.cluster_dir.empty()) {
            fmt::print(stderr,
                       "chaos: --target real needs a three-node cluster run by test/cluster/ccluster (dc1: nodes 1 and 2, dc2: node 3): "
                       "--hosts A,B,C --cluster-tool test/cluster/ccluster --cluster-dir DIR (scripts/test sets CQLCORO_TEST_C50_MULTI_HOSTS, "
                       "CQLCORO_TEST_CLUSTER and CQLCORO_TEST_C50_MULTI_DIR; scripts/chaos starts a cluster of its own)\n");
            std::exit(2);
        }
    }
    return opt;
}

void print_table(const chaos_run& run) {
    std::size_t width = 5;
    for (const auto& name : run.fault_names) width = std::max(width, name.size());
    fmt::print("\n{:<{}} {:>8} {:>8}  {:<32} {:>9}\n", "fault", width, "requests", "ok", "failed, by outcome", "worst ms");
    for (std::size_t i = 0; i < run.fault_names.size(); ++i) {
        const auto found = run.tallies.find(i);
        const chaos_run::tally none;
        const auto& t = found == run.tallies.end() ? none : found->second;
        std::string failed;
        for (const auto& [o, n] : t.failed) failed += fmt::format("{}{} {}", failed.empty() ? "" : ", ", n, o);
        fmt::print("{:<{}} {:>8} {:>8}  {:<32} {:>9.1f}\n", run.fault_names[i], width, t.requests, t.ok, failed.empty() ? "-" : failed,
                   std::chrono::duration<double, std::milli>(t.worst).count());
    }
}

}  // namespace

int main(int argc, char** argv) {
    const auto opt = parse(argc, argv);
    const auto request_timeout = opt.real ? std::chrono::milliseconds(5000) : std::chrono::milliseconds(2000);

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread io_thread([&] { io.run(); });
    auto run = std::make_shared<chaos_run>();
    run->opt = opt;
    session storm;
    std::vector<std::string> violations, notes;
    std::unique_ptr<sim::cluster> simulated;
    received_writes received;
    std::atomic<bool> stop_harvest{false};
    std::thread harvester;
    real_cluster cluster{opt.hosts, opt.cluster_tool, opt.cluster_dir};
    std::vector<fault> faults;
    try {
        session_params params;
        if (opt.real) {
            params.contact_points = {cluster.hosts[0]};
            params.local_datacenter = "dc1";
            params.heartbeat_interval = 1s;
            params.reconnection = reconnection_policy::constant(250ms);
            params.schema_agreement_timeout = 60s;
            params.request_timeout = request_timeout;
            // The storm's session fires its changes without waiting for the nodes to agree, as many
            // clients at once would.
            auto storm_params = params;
            storm_params.schema_agreement_timeout = 0ms;
            storm = run_on(io, session::connect(io.get_executor(), storm_params));
            params.speculative_execution = std::make_shared<constant_speculative_execution>(200ms, 2);
        } else {
            simulated = std::make_unique<sim::cluster>(sim::cluster_config{.nodes = 3, .port = sim_port});
            base_primes(*simulated);
            params = cqlcoro::test::sim_session_params(*simulated);
            params.heartbeat_interval = 500ms;
            params.reconnection = reconnection_policy::constant(100ms);
            params.speculative_execution = std::make_shared<constant_speculative_execution>(100ms, 2);
        }
        params.request_timeout = request_timeout;
        params.retry_budget = {.ratio = 10, .min_per_second = 100000};
        run->s = run_on(io, session::connect(io.get_executor(), params));
        if (opt.real) {
            for (std::size_t n = 0; n < 2; ++n) wait_up(io, run->s, cluster.hosts[n], 120s);
            fmt::print("chaos: making {} and its data on {}\n", ks, fmt::join(cluster.hosts, ", "));
            std::fflush(stdout);
            run_on(io, real_schema(run->s));
            faults = real_faults(cluster, io, run->s, storm, opt.per_fault, request_timeout, notes);
        } else {
            faults = sim_faults(*simulated, opt.per_fault, request_timeout);
            harvester = std::thread([&] {
                while (!stop_harvest) {
                    received.harvest(*simulated);
                    std::this_thread::sleep_for(100ms);
                }
            });
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "chaos: could not start: {}\n", e.what());
        std::fflush(stderr);
        std::_Exit(1);  // the io thread and the sessions are left to the exit
    }

    run->fault_names.push_back("(no fault)");
    for (int round = 0; round < opt.rounds; ++round)
        for (const auto& f : faults) run->fault_names.push_back(f.name);
    if (run->fault_names.size() > 255) {
        fmt::print(stderr, "chaos: too many rounds (at most 255 faults in all)\n");
        return 2;
    }
    for (std::size_t i = 0; i < opt.concurrency; ++i) asio::post(io, [run] { run->start_one(); });

    // Faults one after another, each for its window, a calm second between them. A fault that could
    // not be made (a harness command failed) or the session did not recover from is a violation.
    std::this_thread::sleep_for(1s);
    std::size_t index = 0;
    auto attempt = [&](const std::function<void()>& step, const std::string& fault_name, const char* what) {
        if (!step) return;
        try {
            step();
        } catch (const std::exception& e) {
            violations.push_back(fmt::format("\"{}\": {}: {}", fault_name, what, e.what()));
        }
    };
    for (int round = 0; round < opt.rounds; ++round)
        for (auto& f : faults) {
            run->current_fault = ++index;
            const auto began = clock_type::now();
            fmt::print("chaos: {}\n", f.name);
            std::fflush(stdout);
            attempt(f.begin, f.name, "making it");
            std::atomic<bool> stop{false};
            std::thread during;
            if (f.during) during = std::thread([&] { f.during(stop); });
            std::this_thread::sleep_for(std::max(opt.per_fault, f.window));
            stop = true;
            if (during.joinable()) during.join();
            attempt(f.end, f.name, "undoing it");
            attempt(f.settle, f.name, "recovering from it");
            if (opt.real)
                notes.push_back(fmt::format("\"{}\": {:.1f} s from the fault until the session was whole again", f.name,
                                            std::chrono::duration<double>(clock_type::now() - began).count()));
            run->current_fault = 0;
            std::this_thread::sleep_for(1s);
        }
    run->stopping = true;
    auto drained = run->drained.get_future();
    asio::post(io, [run] { run->start_one(); });
    const bool ended = drained.wait_for(request_timeout * 3) == std::future_status::ready;

    // Every stream id comes back once the answers of abandoned requests have arrived.
    std::size_t orphaned = 0;
    for (const auto until = clock_type::now() + 10s;;) {
        orphaned = on_io(io, [&] {
            std::size_t n = 0;
            for (const auto& m : run->s.metrics().nodes) n += m.orphaned_streams;
            return n;
        });
        if (orphaned == 0 || clock_type::now() > until) break;
        std::this_thread::sleep_for(50ms);
    }
    if (orphaned) violations.push_back(fmt::format("{} stream ids still orphaned 10 s after the load stopped", orphaned));

    // What is there: what a simulated node received, or the real cluster's data read at ALL.
    std::function<bool(const entry&)> present;
    std::vector<bool> in_log, in_lwt;
    const char* absent_means = opt.real ? "it is not in the table (read at ALL)" : "no node received it";
    if (opt.real) {
        try {
            for (std::size_t n = 0; n < 2; ++n) wait_up(io, run->s, cluster.hosts[n], 60s);
            in_log = run_on(io, ids_in(run->s, "log"));
            in_lwt = run_on(io, ids_in(run->s, "lwt"));
        } catch (const std::exception& e) {
            violations.push_back(fmt::format("could not read the writes back: {}", e.what()));
        }
        present = [&](const entry& e) {
            const auto& ids = e.kind == op_kind::lwt ? in_lwt : in_log;
            return static_cast<std::size_t>(e.id) < ids.size() && ids[static_cast<std::size_t>(e.id)];
        };
    } else {
        stop_harvest = true;
        harvester.join();
        received.harvest(*simulated);
        present = [&](const entry& e) { return received.has(e.id); };
    }

    // The ledger (read on the io thread, where it was written).
    std::size_t total = 0, by_kind[5] = {}, checked_writes = 0;
    on_io(io, [&] {
        if (!ended) violations.push_back(fmt::format("{} requests still in flight {} s after the load stopped", run->in_flight, 3 * request_timeout.count() / 1000));
        violations.insert(violations.end(), run->wrong.begin(), run->wrong.end());
        for (const auto& e : run->ledger) {
            ++total;
            ++by_kind[static_cast<int>(e.kind)];
            const auto kind = op_names[static_cast<int>(e.kind)];
            if (e.completions != 1) {
                violations.push_back(fmt::format("{} \"{}\" completed {} times", kind, e.text(), e.completions));
                continue;
            }
            if (!is_write(e.kind)) continue;
            ++checked_writes;
            // What a write says happened, against what is there.
            if (!e.failed && !present(e)) violations.push_back(fmt::format("{} \"{}\" succeeded, yet {}", kind, e.text(), absent_means));
            if (e.failed && e.outcome == request_outcome::not_sent && present(e))
                violations.push_back(fmt::format("{} \"{}\" said not sent, yet {}", kind, e.text(),
                                                 opt.real ? "it is in the table" : "a node received it"));
        }
        return 0;
    });

    print_table(*run);
    fmt::print("\n{} requests: {} reads, {} idempotent writes, {} writes, {} LWT, {} streams ({} read whole, {} ended by an error)\n", total,
               by_kind[0], by_kind[1], by_kind[2], by_kind[3], by_kind[4], run->streams_complete, run->streams_failed);
    fmt::print("{} writes checked against {}\n", checked_writes, opt.real ? "the data read back at ALL" : "what the nodes received");
    const auto m = on_io(io, [&] { return run->s.metrics(); });
    std::uint64_t unexpected = 0;
    for (const auto& n : m.nodes) unexpected += n.unexpected_answers;
    fmt::print("answers on stream ids that carried nothing, dropped: {}\n", unexpected);
    for (const auto& n : notes) fmt::print("{}\n", n);

    run_on(io, run->s.close(1s));
    if (opt.real) run_on(io, storm.close(1s));
    work.reset();
    io_thread.join();

    for (std::size_t i = 0; i < violations.size() && i < 30; ++i) fmt::print("VIOLATION: {}\n", violations[i]);
    if (violations.size() > 30) fmt::print("... and {} more\n", violations.size() - 30);
    if (total < 1000) violations.push_back("fewer than 1,000 requests: the load did not run");
    fmt::print("chaos: {} ({} violations)\n", violations.empty() ? "passed" : "FAILED", violations.size());
    return violations.empty() ? 0 : 1;
}
