// cqlcoro-stress: load against a Cassandra cluster through cqlcoro's public API, measured without
// coordinated omission. `cqlcoro-stress --help` lists the options; bench/stress/README.md explains them.
#include "report.hpp"
#include "workload.hpp"

#include <cqlcoro/config.hpp>
#include <cqlcoro/metrics.hpp>
#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr const char* usage_text = R"(usage: cqlcoro-stress run [options]
       cqlcoro-stress compare A.json B.json

workload
  --workload read|write|mixed|FILE   built-in workloads on KEYSPACE.stress, or a workload file (default read)
  --ratio R:W                        reads to writes for mixed (default 1:1)
  --keys N                           key space for {key} (default 100000)
  --distribution uniform|seq|zipf:S  how keys are drawn (default uniform)
  --value-size BYTES                 the built-in writes' blob (default 100)
  --keyspace NAME                    the built-in workloads' keyspace (default cqlcoro_stress)
  --rf N                             its replication factor when created (default 1)
  --create-schema                    run the workload's schema statements first
load
  --concurrency N                    requests in flight: closed loop (default 128)
  --rate R                           requests per second: open loop, latency from each intended start;
                                     --concurrency then caps those in flight (the rest wait, and it shows)
  --duration TIME | --count N        how long (default 10s), or how many requests after the warm-up
  --warmup TIME                      run, unmeasured, first (default 0)
  --threads N                        threads running the io_context (default 1)
driver
  --config FILE                      cqlcoro's config file (docs/cqlcoro.reference.jsonc); CQLCORO_* too
  --hosts A,B                        contact points (over the file)
  --profile NAME                     an execution profile of the config for every request
  --consistency LEVEL                e.g. local_one, quorum (over the profile)
output
  --json FILE  --csv FILE  --plot PREFIX (PREFIX-throughput.png, -latency.png, -distribution.png)
  --quiet                            no per-second lines
TIME: 500ms, 10s, 2m)";

[[noreturn]] void usage(const std::string& why) {
    fmt::print(stderr, "cqlcoro-stress: {}\n{}\n", why, usage_text);
    std::exit(2);
}

std::chrono::milliseconds parse_time(const std::string& flag, const std::string& v) {
    std::size_t used = 0;
    double x = 0;
    try {
        x = std::stod(v, &used);
    } catch (const std::exception&) {
        usage(fmt::format("{} takes a time such as 500ms, 10s or 2m, not \"{}\"", flag, v));
    }
    const std::string unit = v.substr(used);
    double ms = 0;
    if (unit == "ms") ms = x;
    else if (unit == "s") ms = x * 1000;
    else if (unit == "m") ms = x * 60'000;
    else usage(fmt::format("{} takes a time such as 500ms, 10s or 2m, not \"{}\"", flag, v));
    if (ms < 0 || ms > 86'400'000.0) usage(fmt::format("{}: {} is out of range", flag, v));
    return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

template <class T>
T parse_number(const std::string& flag, const std::string& v, T min, T max) {
    T x{};
    try {
        std::size_t used = 0;
        if constexpr (std::is_floating_point_v<T>)
            x = static_cast<T>(std::stod(v, &used));
        else
            x = static_cast<T>(std::stoull(v, &used));
        if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
        usage(fmt::format("{} takes a number, not \"{}\"", flag, v));
    }
    if (x < min || x > max) usage(fmt::format("{} takes a number from {} to {}, not {}", flag, min, max, v));
    return x;
}

struct options {
    std::string workload = "read", ratio = "1:1", distribution = "uniform", keyspace = "cqlcoro_stress";
    std::uint64_t keys = 100'000;
    std::size_t value_size = 100;
    unsigned rf = 1;
    bool create_schema = false;
    std::size_t concurrency = 128;
    double rate = 0;
    std::chrono::milliseconds duration{10'000}, warmup{0};
    std::optional<std::uint64_t> count;
    unsigned threads = 1;
    std::string config, hosts, profile, consistency, json, csv, plot;
    bool quiet = false;
};

options parse_run(int argc, char** argv) {
    options o;
    bool duration_given = false;
    for (int i = 2; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "--create-schema") {
            o.create_schema = true;
            continue;
        }
        if (flag == "--quiet") {
            o.quiet = true;
            continue;
        }
        if (flag == "--help" || flag == "-h") {
            fmt::print("{}\n", usage_text);
            std::exit(0);
        }
        if (i + 1 >= argc) usage(fmt::format("{} needs a value", flag));
        const std::string v = argv[++i];
        if (flag == "--workload") o.workload = v;
        else if (flag == "--ratio") o.ratio = v;
        else if (flag == "--keys") o.keys = parse_number<std::uint64_t>(flag, v, 1, std::uint64_t{1} << 62);
        else if (flag == "--distribution") o.distribution = v;
        else if (flag == "--value-size") o.value_size = parse_number<std::size_t>(flag, v, 0, 16u << 20);
        else if (flag == "--keyspace") o.keyspace = v;
        else if (flag == "--rf") o.rf = parse_number<unsigned>(flag, v, 1, 100);
        else if (flag == "--concurrency") o.concurrency = parse_number<std::size_t>(flag, v, 1, 1'000'000);
        else if (flag == "--rate") o.rate = parse_number<double>(flag, v, 0.001, 1e8);
        else if (flag == "--duration") o.duration = parse_time(flag, v), duration_given = true;
        else if (flag == "--count") o.count = parse_number<std::uint64_t>(flag, v, 1, std::uint64_t{1} << 62);
        else if (flag == "--warmup") o.warmup = parse_time(flag, v);
        else if (flag == "--threads") o.threads = parse_number<unsigned>(flag, v, 1, 256);
        else if (flag == "--config") o.config = v;
        else if (flag == "--hosts") o.hosts = v;
        else if (flag == "--profile") o.profile = v;
        else if (flag == "--consistency") o.consistency = v;
        else if (flag == "--json") o.json = v;
        else if (flag == "--csv") o.csv = v;
        else if (flag == "--plot") o.plot = v;
        else usage(fmt::format("unknown option {}", flag));
    }
    if (duration_given && o.count) usage("give --duration or --count, not both");
    if (!o.count && o.duration.count() == 0) usage("--duration must be above 0");
    return o;
}

std::optional<cqlcoro::consistency> parse_consistency(const std::string& name) {
    using c = cqlcoro::consistency;
    static const std::map<std::string, c> levels{{"any", c::any},           {"one", c::one},       {"two", c::two},
                                                 {"three", c::three},       {"quorum", c::quorum}, {"all", c::all},
                                                 {"local_quorum", c::local_quorum}, {"each_quorum", c::each_quorum},
                                                 {"serial", c::serial},     {"local_serial", c::local_serial}, {"local_one", c::local_one}};
    const auto it = levels.find(name);
    if (it == levels.end()) return std::nullopt;
    return it->second;
}

double cpu_seconds(const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; }

// ---- The run

struct worker {
    stress::value_source values;
};

struct run_state : std::enable_shared_from_this<run_state> {
    options opt;
    cqlcoro::session session;
    stress::workload load;
    std::vector<unsigned> cumulative;  // op picking by weight
    std::optional<cqlcoro::consistency> cl;
    std::uint64_t seq = 0;

    clock_type::time_point t0, measure_from, end_at;
    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> measured_started{0}, in_flight{0};
    std::atomic<std::uint64_t> completed{0}, errors{0};
    std::array<std::atomic<std::uint64_t>, cqlcoro::error_kind_count> by_kind{};
    std::array<std::atomic<std::uint64_t>, 4> by_outcome{};
    cqlcoro::latency_histogram latency;
    std::vector<std::unique_ptr<cqlcoro::latency_histogram>> op_latency;
    std::vector<std::unique_ptr<std::atomic<std::uint64_t>>> op_requests, op_errors;
    std::vector<worker> workers;

    // Open loop: intended starts waiting for room under --concurrency (on the scheduler strand).
    asio::strand<asio::any_io_executor> sched;
    std::deque<clock_type::time_point> backlog;
    std::atomic<std::uint64_t> backlog_size{0};
    std::atomic<std::size_t> active_workers{0};

    // The run's end, on the main strand: `ended` is set and both timers cancelled there, and each waiter
    // looks at `ended` before it waits, so no cancellation is lost.
    asio::strand<asio::any_io_executor> main;
    asio::steady_timer finished, report_timer;
    bool ended = false;                   // on `main`
    std::atomic<bool> done_flag{false};
    std::mutex fatal_mutex;
    std::string fatal;  // why the run stopped early, if it did

    run_state(asio::any_io_executor ex, asio::strand<asio::any_io_executor> m)
        : sched(asio::make_strand(ex)), main(m), finished(m), report_timer(m) {}

    std::size_t pick(std::mt19937_64& rng) const {
        const auto x = std::uniform_int_distribution<unsigned>(0, cumulative.back() - 1)(rng);
        for (std::size_t i = 0; i < cumulative.size(); ++i)
            if (x < cumulative[i]) return i;
        return cumulative.size() - 1;
    }

    void finish() {
        if (done_flag.exchange(true)) return;
        asio::post(main, [self = shared_from_this()] {
            self->ended = true;
            self->finished.cancel();
            self->report_timer.cancel();
        });
    }

    void record(std::size_t op, clock_type::time_point intended, cqlcoro::error_code ec, const cqlcoro::result& r) {
        const auto now = clock_type::now();
        if (intended < measure_from) return;  // the warm-up's
        latency.record(now - intended);
        op_latency[op]->record(now - intended);
        completed.fetch_add(1, std::memory_order_relaxed);
        op_requests[op]->fetch_add(1, std::memory_order_relaxed);
        if (ec) {
            errors.fetch_add(1, std::memory_order_relaxed);
            op_errors[op]->fetch_add(1, std::memory_order_relaxed);
            by_kind[static_cast<std::size_t>(cqlcoro::kind_of(ec))].fetch_add(1, std::memory_order_relaxed);
            const auto o = static_cast<std::size_t>(r.diagnostics().outcome);
            if (o < by_outcome.size()) by_outcome[o].fetch_add(1, std::memory_order_relaxed);
        }
    }

    // Whether another request may start now; counts it when measured.
    bool may_start(clock_type::time_point now) {
        if (stopping.load(std::memory_order_relaxed)) return false;
        if (opt.count) {
            if (now < measure_from) return true;
            if (measured_started.fetch_add(1, std::memory_order_relaxed) >= *opt.count) {
                stopping = true;
                return false;
            }
            return true;
        }
        if (now >= end_at) {
            stopping = true;
            return false;
        }
        return true;
    }

    template <class Done>
    void send(worker& w, clock_type::time_point intended, Done&& done) {
        const std::size_t op = pick(w.values.rng);
        std::optional<cqlcoro::bound_statement> bound;
        try {
            bound.emplace(stress::bind(load.ops[op], w.values));
        } catch (const std::exception& e) {
            // A value that does not encode ends the run with the reason (check_markers catches most
            // before it starts).
            {
                std::lock_guard lock(fatal_mutex);
                if (fatal.empty()) fatal = e.what();
            }
            stopping = true;
            asio::post(sched, std::forward<Done>(done));
            return;
        }
        cqlcoro::bound_statement& stmt = *bound;
        if (!opt.profile.empty()) stmt.profile(opt.profile);
        if (cl) stmt.consistency(*cl);
        in_flight.fetch_add(1, std::memory_order_relaxed);
        session.execute(std::move(stmt), [self = shared_from_this(), op, intended, done = std::forward<Done>(done)](
                                             cqlcoro::error_code ec, cqlcoro::result r) mutable {
            self->in_flight.fetch_sub(1, std::memory_order_relaxed);
            self->record(op, intended, ec, r);
            done();
        });
    }

    // Closed loop: each worker keeps one request in flight, the next started by the last's completion.
    void closed_loop(std::size_t i) {
        const auto now = clock_type::now();
        if (!may_start(now)) {
            if (active_workers.fetch_sub(1) == 1) finish();
            return;
        }
        send(workers[i], now, [self = shared_from_this(), i] { self->closed_loop(i); });
    }

    // Open loop: requests start at t0 + k / rate whatever happened to the ones before; latency counts
    // from that intended start, so a stall shows as the latency it caused (no coordinated omission).
    asio::awaitable<void> open_loop() {
        asio::steady_timer timer(sched);
        const double per_ns = opt.rate / 1e9;
        std::uint64_t next = 0;
        for (;;) {
            const auto now = clock_type::now();
            const auto due = static_cast<std::uint64_t>(static_cast<double>((now - t0).count()) * per_ns);
            bool stop = false;
            for (; next < due; ++next) {
                const auto intended = t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(next) / per_ns));
                if (!may_start(intended)) {
                    stop = true;
                    break;
                }
                if (in_flight.load(std::memory_order_relaxed) < opt.concurrency) {
                    start_open(intended);
                } else {
                    backlog.push_back(intended);
                    backlog_size.store(backlog.size(), std::memory_order_relaxed);
                }
            }
            if (stop) break;
            const auto next_at = t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(next) / per_ns));
            timer.expires_at(std::max(next_at, clock_type::now() + 200us));
            co_await timer.async_wait(asio::use_awaitable);
        }
        // The scheduled requests still waiting for room are sent as room comes; the run ends when the
        // last completes.
        stopping = true;
        if (backlog.empty() && in_flight.load() == 0) finish();
    }

    // The open loop has one worker, whose random engine is used on the scheduler strand only.
    void start_open(clock_type::time_point intended) {
        send(workers.front(), intended, [self = shared_from_this()] {
            asio::post(self->sched, [self] {
                if (!self->backlog.empty()) {
                    const auto intended = self->backlog.front();
                    self->backlog.pop_front();
                    self->backlog_size.store(self->backlog.size(), std::memory_order_relaxed);
                    self->start_open(intended);
                } else if (self->stopping && self->in_flight.load() == 0) {
                    self->finish();
                }
            });
        });
    }
};

// ---- Live output

std::string progress_bar(double fraction) {
    constexpr int width = 24;
    const int full = static_cast<int>(fraction * width + 0.5);
    return "[" + std::string(static_cast<std::size_t>(std::clamp(full, 0, width)), '#') +
           std::string(static_cast<std::size_t>(width - std::clamp(full, 0, width)), '-') + "]";
}

// The process's resident memory and open descriptors, and the session's connections and orphaned
// stream ids, now.
void sample_resources(const run_state& s, stress::interval& iv) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with("VmRSS:")) iv.rss_kib = std::strtoull(line.c_str() + 6, nullptr, 10);
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++iv.fds;
    if (iv.fds > 0) --iv.fds;  // the directory's own descriptor, open while it is read
    const auto m = s.session.metrics();
    for (const auto& n : m.nodes) {
        iv.connections += n.open_connections;
        iv.orphaned += n.orphaned_streams;
        iv.nodes_up += n.state == cqlcoro::node_state::up;
    }
}

// Runs on the main strand until the run ends.
asio::awaitable<void> reporter(std::shared_ptr<run_state> s, stress::run_result& out, rusage& cpu_at_start) {
    auto& timer = s->report_timer;
    const bool tty = ::isatty(STDOUT_FILENO) != 0;
    stress::bucket_counts prev(cqlcoro::latency_histogram::bucket_count, 0);
    std::uint64_t prev_done = 0, prev_err = 0;
    bool measuring = false;
    auto tick = s->t0;
    while (!s->ended) {
        tick += 1s;
        timer.expires_at(tick);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec || s->ended) break;
        const auto now = clock_type::now();
        if (!measuring && now >= s->measure_from) {
            measuring = true;
            ::getrusage(RUSAGE_SELF, &cpu_at_start);
        }
        const auto cur = stress::read_buckets(s->latency);
        stress::bucket_counts diff(cur.size());
        for (std::size_t i = 0; i < cur.size(); ++i) diff[i] = cur[i] - prev[i];
        prev = cur;
        const auto done = s->completed.load(), err = s->errors.load();
        stress::interval iv;
        iv.t = std::chrono::duration<double>(now - s->measure_from).count();
        iv.requests = done - prev_done;
        iv.errors = err - prev_err;
        iv.p50_us = stress::percentile_us(diff, 0.5);
        iv.p99_us = stress::percentile_us(diff, 0.99);
        iv.max_us = stress::percentile_us(diff, 1.0);
        iv.in_flight = s->in_flight.load() + s->backlog_size.load();
        sample_resources(*s, iv);
        prev_done = done;
        prev_err = err;
        if (measuring) out.series.push_back(iv);
        if (s->opt.quiet) continue;
        const double elapsed = std::chrono::duration<double>(now - s->t0).count();
        std::string line = fmt::format("{:6.0f}s {}  {:>9} req/s  p50 {:>8.2f} ms  p99 {:>8.2f} ms  errors {:>5}  in flight {:>6}",
                                       elapsed, measuring ? "   " : "(w)", iv.requests, iv.p50_us / 1000, iv.p99_us / 1000, iv.errors, iv.in_flight);
        if (tty) {
            double fraction = 0;
            if (s->opt.count)
                fraction = static_cast<double>(s->measured_started.load()) / static_cast<double>(*s->opt.count);
            else
                fraction = std::chrono::duration<double>(now - s->t0) / std::chrono::duration<double>(s->end_at - s->t0);
            line += "  " + progress_bar(std::min(1.0, fraction));
        }
        fmt::print("{}\n", line);
        std::fflush(stdout);
    }
}

asio::awaitable<void> wait_finished(std::shared_ptr<run_state> s) {
    while (!s->ended) {
        s->finished.expires_at(clock_type::time_point::max());
        co_await s->finished.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

// Runs on `main_strand`.
asio::awaitable<int> run(asio::io_context& io, asio::strand<asio::any_io_executor> main_strand, options opt) {
    // The driver's settings: the file, CQLCORO_* variables, then the flags.
    cqlcoro::config_source source;
    source.file = opt.config;
    const std::string hosts = opt.hosts;
    source.code = [hosts](cqlcoro::session_params& p) {
        if (hosts.empty()) return;
        p.contact_points.clear();
        std::stringstream ss(hosts);
        for (std::string h; std::getline(ss, h, ',');) p.contact_points.push_back(h);
    };
    cqlcoro::session_params params = cqlcoro::load_config(source);
    const auto keys = stress::key_distribution::parse(opt.distribution, opt.keys);
    stress::workload load;
    if (opt.workload == "read" || opt.workload == "write" || opt.workload == "mixed") {
        load = stress::builtin_workload(opt.workload, opt.keyspace, opt.ratio, opt.value_size, keys, opt.rf);
    } else {
        std::ifstream in(opt.workload);
        if (!in) throw std::invalid_argument(fmt::format("--workload {}: no such file (or read, write, mixed)", opt.workload));
        std::stringstream text;
        text << in.rdbuf();
        load = stress::parse_workload(text.str(), opt.workload, keys);
    }
    std::optional<cqlcoro::consistency> cl;
    if (!opt.consistency.empty()) {
        cl = parse_consistency(opt.consistency);
        if (!cl) throw std::invalid_argument(fmt::format("--consistency: unknown level \"{}\" (one, quorum, local_quorum, local_one, all, ...)", opt.consistency));
    }

    auto session = co_await cqlcoro::session::connect(io.get_executor(), params);
    std::exception_ptr failed;
    stress::run_result out;
    try {
        if (opt.create_schema)
            for (const auto& cql : load.schema) co_await session.execute(cqlcoro::statement(cql));
        for (auto& op : load.ops) {
            op.prepared = co_await session.prepare(op.cql);
            stress::check_markers(op);
        }
        auto s = std::make_shared<run_state>(io.get_executor(), main_strand);
        s->opt = opt;
        s->session = session;
        s->load = std::move(load);
        s->cl = cl;
        unsigned acc = 0;
        for (const auto& op : s->load.ops) s->cumulative.push_back(acc += op.weight);
        for (std::size_t i = 0; i < s->load.ops.size(); ++i) {
            s->op_latency.push_back(std::make_unique<cqlcoro::latency_histogram>());
            s->op_requests.push_back(std::make_unique<std::atomic<std::uint64_t>>(0));
            s->op_errors.push_back(std::make_unique<std::atomic<std::uint64_t>>(0));
        }
        const std::size_t nworkers = opt.rate > 0 ? 1 : opt.concurrency;
        std::random_device rd;
        for (std::size_t i = 0; i < nworkers; ++i) s->workers.push_back({stress::value_source{std::mt19937_64(rd()), &s->seq}});

        out.settings = {{"workload", opt.workload == "mixed" ? "mixed " + opt.ratio : opt.workload},
                        {"loop", opt.rate > 0 ? fmt::format("open, {} per second", opt.rate) : "closed"},
                        {"concurrency", std::to_string(opt.concurrency)},
                        {"threads", std::to_string(opt.threads)},
                        {"keys", keys.describe()},
                        {"length", opt.count ? fmt::format("{} requests", *opt.count) : fmt::format("{} ms", opt.duration.count())},
                        {"warmup", fmt::format("{} ms", opt.warmup.count())},
                        {"protocol", fmt::format("v{}", session.protocol_version())}};
        if (!opt.profile.empty()) out.settings["profile"] = opt.profile;
        if (cl) out.settings["consistency"] = opt.consistency;

        if (!opt.quiet)
            fmt::print("cqlcoro-stress: {} against {} ({}), {}\n", out.settings["workload"], fmt::join(params.contact_points, ","),
                       out.settings["protocol"], opt.rate > 0 ? out.settings["loop"] : fmt::format("{} in flight", opt.concurrency));

        rusage cpu0{}, cpu1{};
        s->t0 = clock_type::now();
        s->measure_from = s->t0 + opt.warmup;
        s->end_at = s->measure_from + opt.duration;
        if (opt.warmup.count() == 0) ::getrusage(RUSAGE_SELF, &cpu0);
        if (opt.rate > 0) {
            asio::co_spawn(s->sched, s->open_loop(), asio::detached);
        } else {
            s->active_workers = nworkers;
            for (std::size_t i = 0; i < nworkers; ++i) asio::post(io, [s, i] { s->closed_loop(i); });
        }
        // SIGINT ends the run early, with its results so far.
        asio::signal_set signals(main_strand, SIGINT);
        signals.async_wait([s](boost::system::error_code ec, int) {
            if (!ec) s->stopping = true;
        });
        {
            using namespace asio::experimental::awaitable_operators;
            co_await (reporter(s, out, cpu0) && wait_finished(s));
        }
        signals.cancel();
        const auto ended = clock_type::now();
        ::getrusage(RUSAGE_SELF, &cpu1);

        if (!s->fatal.empty()) throw std::runtime_error(s->fatal);
        out.seconds = std::chrono::duration<double>(ended - s->measure_from).count();
        out.requests = s->completed.load();
        out.errors = s->errors.load();
        out.throughput = out.seconds > 0 ? static_cast<double>(out.requests) / out.seconds : 0;
        stress::summarize_latency(out, stress::read_buckets(s->latency), s->latency.sum_microseconds());
        for (std::size_t k = 0; k < cqlcoro::error_kind_count; ++k)
            out.errors_by_kind[std::string(cqlcoro::to_string(static_cast<cqlcoro::error_kind>(k)))] = s->by_kind[k].load();
        for (std::size_t o = 0; o < s->by_outcome.size(); ++o)
            out.failures_by_outcome[std::string(cqlcoro::to_string(static_cast<cqlcoro::request_outcome>(o)))] = s->by_outcome[o].load();
        out.cpu_user_s = cpu_seconds(cpu1.ru_utime) - cpu_seconds(cpu0.ru_utime);
        out.cpu_system_s = cpu_seconds(cpu1.ru_stime) - cpu_seconds(cpu0.ru_stime);
        out.cpu_us_per_request = out.requests ? (out.cpu_user_s + out.cpu_system_s) * 1e6 / static_cast<double>(out.requests) : 0;
        for (std::size_t i = 0; i < s->load.ops.size(); ++i) {
            const auto b = stress::read_buckets(*s->op_latency[i]);
            out.ops.push_back({s->load.ops[i].name, s->op_requests[i]->load(), s->op_errors[i]->load(), stress::percentile_us(b, 0.5),
                               stress::percentile_us(b, 0.99)});
        }
    } catch (...) {
        failed = std::current_exception();
    }
    co_await session.close();
    if (failed) std::rethrow_exception(failed);

    stress::print_summary(out, stdout);
    if (!opt.json.empty()) {
        std::ofstream f(opt.json);
        if (!(f << stress::to_json(out))) throw std::runtime_error(fmt::format("cannot write {}", opt.json));
    }
    if (!opt.csv.empty()) stress::write_csv(out, opt.csv);
    if (!opt.plot.empty()) stress::plot(out, opt.plot);
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) usage("say run or compare");
    const std::string command = argv[1];
    if (command == "--help" || command == "-h") {
        fmt::print("{}\n", usage_text);
        return 0;
    }
    if (command == "compare") {
        if (argc != 4) usage("compare takes two result files (written with --json)");
        try {
            stress::print_comparison(stress::read_json(argv[2]), argv[2], stress::read_json(argv[3]), argv[3], stdout);
            return 0;
        } catch (const std::exception& e) {
            fmt::print(stderr, "cqlcoro-stress: {}\n", e.what());
            return 1;
        }
    }
    if (command != "run") usage(fmt::format("unknown command \"{}\"", command));
    options opt = parse_run(argc, argv);
    asio::io_context io(static_cast<int>(opt.threads));
    auto main_strand = asio::make_strand(io.get_executor());
    int status = 1;
    asio::co_spawn(main_strand, run(io, main_strand, opt), [&](std::exception_ptr e, int rc) {
        if (!e) {
            status = rc;
            return;
        }
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            fmt::print(stderr, "cqlcoro-stress: {}\n", x.what());
        }
        status = 1;
    });
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < opt.threads; ++i) threads.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : threads) t.join();
    return status;
}
