#include "report.hpp"

#include <boost/json.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace stress {

namespace json = boost::json;

bucket_counts read_buckets(const cqlcoro::latency_histogram& h) {
    bucket_counts b(cqlcoro::latency_histogram::bucket_count);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = h.bucket(i);
    return b;
}

std::uint64_t total(const bucket_counts& b) {
    std::uint64_t n = 0;
    for (auto c : b) n += c;
    return n;
}

double percentile_us(const bucket_counts& b, double q) {
    const std::uint64_t n = total(b);
    if (n == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(n) + 0.5);
    if (rank == 0) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        seen += b[i];
        if (seen >= rank) return static_cast<double>(cqlcoro::latency_histogram::upper_bound_of(i));
    }
    return static_cast<double>(cqlcoro::latency_histogram::upper_bound_of(b.size() - 1));
}

void summarize_latency(run_result& r, const bucket_counts& b, std::uint64_t sum_us) {
    const std::uint64_t n = total(b);
    r.mean_us = n ? static_cast<double>(sum_us) / static_cast<double>(n) : 0;
    r.percentiles.clear();
    for (auto [label, q] : std::initializer_list<std::pair<const char*, double>>{
             {"p50", 0.5}, {"p75", 0.75}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}, {"p99.9", 0.999}, {"p99.99", 0.9999}, {"max", 1.0}})
        r.percentiles.emplace_back(label, percentile_us(b, q));
    r.distribution.clear();
    for (std::size_t i = 0; i < b.size(); ++i)
        if (b[i]) r.distribution.emplace_back(static_cast<double>(cqlcoro::latency_histogram::upper_bound_of(i)), b[i]);
}

namespace {

std::string ms(double us) {
    if (us < 1000) return fmt::format("{:.0f} us", us);
    if (us < 1e6) return fmt::format("{:.2f} ms", us / 1000);
    return fmt::format("{:.2f} s", us / 1e6);
}

std::string counts(const std::map<std::string, std::uint64_t>& m) {
    std::string out;
    for (const auto& [k, v] : m) {
        if (!v) continue;
        if (!out.empty()) out += ", ";
        out += fmt::format("{} {}", k, v);
    }
    return out.empty() ? "none" : out;
}

}  // namespace

void print_summary(const run_result& r, std::FILE* out) {
    std::string settings;
    for (const auto& [k, v] : r.settings) settings += fmt::format("{}{}={}", settings.empty() ? "" : " ", k, v);
    fmt::print(out, "\nsettings     {}\n", settings);
    fmt::print(out, "requests     {} in {:.1f} s: {:.0f} per second\n", r.requests, r.seconds, r.throughput);
    fmt::print(out, "errors       {} ({})\n", r.errors, counts(r.errors_by_kind));
    if (r.errors) fmt::print(out, "outcomes     {}\n", counts(r.failures_by_outcome));
    fmt::print(out, "latency      mean {}\n", ms(r.mean_us));
    std::string line;
    for (const auto& [label, us] : r.percentiles) line += fmt::format("  {} {}", label, ms(us));
    fmt::print(out, "            {}\n", line);
    for (const auto& op : r.ops)
        fmt::print(out, "op {:<9} {} requests, {} errors, p50 {}, p99 {}\n", op.name, op.requests, op.errors, ms(op.p50_us), ms(op.p99_us));
    fmt::print(out, "client CPU   {:.2f} us per request (user {:.2f} s, system {:.2f} s)\n", r.cpu_us_per_request, r.cpu_user_s,
               r.cpu_system_s);
    std::fflush(out);
}

std::string to_json(const run_result& r) {
    json::object o;
    json::object settings;
    for (const auto& [k, v] : r.settings) settings[k] = v;
    o["settings"] = std::move(settings);
    o["seconds"] = r.seconds;
    o["requests"] = r.requests;
    o["errors"] = r.errors;
    o["throughput"] = r.throughput;
    o["mean_us"] = r.mean_us;
    json::object pct;
    for (const auto& [label, us] : r.percentiles) pct[label] = us;
    o["latency_us"] = std::move(pct);
    json::object kinds, outcomes;
    for (const auto& [k, v] : r.errors_by_kind) kinds[k] = v;
    for (const auto& [k, v] : r.failures_by_outcome) outcomes[k] = v;
    o["errors_by_kind"] = std::move(kinds);
    o["failures_by_outcome"] = std::move(outcomes);
    o["cpu"] = json::object{{"user_s", r.cpu_user_s}, {"system_s", r.cpu_system_s}, {"us_per_request", r.cpu_us_per_request}};
    json::array ops;
    for (const auto& op : r.ops)
        ops.push_back(json::object{{"name", op.name}, {"requests", op.requests}, {"errors", op.errors}, {"p50_us", op.p50_us}, {"p99_us", op.p99_us}});
    o["ops"] = std::move(ops);
    json::array series;
    for (const auto& s : r.series)
        series.push_back(json::object{{"t", s.t}, {"requests", s.requests}, {"errors", s.errors}, {"p50_us", s.p50_us},
                                      {"p99_us", s.p99_us}, {"max_us", s.max_us}, {"in_flight", s.in_flight},
                                      {"rss_kib", s.rss_kib}, {"fds", s.fds}, {"connections", s.connections},
                                      {"orphaned", s.orphaned}, {"nodes_up", s.nodes_up}});
    o["series"] = std::move(series);
    json::array dist;
    for (const auto& [us, n] : r.distribution) dist.push_back(json::array{us, n});
    o["distribution"] = std::move(dist);
    return json::serialize(o);
}

run_result read_json(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(fmt::format("cannot read {}", path));
    std::stringstream ss;
    ss << in.rdbuf();
    boost::system::error_code ec;
    json::value v = json::parse(ss.str(), ec);
    if (ec || !v.is_object() || !v.as_object().contains("latency_us"))
        throw std::runtime_error(fmt::format("{} is not a cqlcoro-stress result (write one with --json)", path));
    try {
        const auto& o = v.as_object();
        run_result r;
        for (const auto& [k, s] : o.at("settings").as_object()) r.settings[std::string(k)] = std::string(s.as_string());
        r.seconds = o.at("seconds").to_number<double>();
        r.requests = o.at("requests").to_number<std::uint64_t>();
        r.errors = o.at("errors").to_number<std::uint64_t>();
        r.throughput = o.at("throughput").to_number<double>();
        r.mean_us = o.at("mean_us").to_number<double>();
        for (const auto& [k, x] : o.at("latency_us").as_object()) r.percentiles.emplace_back(std::string(k), x.to_number<double>());
        for (const auto& [k, x] : o.at("errors_by_kind").as_object()) r.errors_by_kind[std::string(k)] = x.to_number<std::uint64_t>();
        for (const auto& [k, x] : o.at("failures_by_outcome").as_object())
            r.failures_by_outcome[std::string(k)] = x.to_number<std::uint64_t>();
        const auto& cpu = o.at("cpu").as_object();
        r.cpu_user_s = cpu.at("user_s").to_number<double>();
        r.cpu_system_s = cpu.at("system_s").to_number<double>();
        r.cpu_us_per_request = cpu.at("us_per_request").to_number<double>();
        for (const auto& x : o.at("ops").as_array()) {
            const auto& op = x.as_object();
            r.ops.push_back({std::string(op.at("name").as_string()), op.at("requests").to_number<std::uint64_t>(),
                             op.at("errors").to_number<std::uint64_t>(), op.at("p50_us").to_number<double>(), op.at("p99_us").to_number<double>()});
        }
        return r;
    } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("{}: a field is missing or of the wrong type ({})", path, e.what()));
    }
}

void write_csv(const run_result& r, const std::string& path) {
    std::ofstream out(path);
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", path));
    out << "t_s,requests,errors,throughput_per_s,p50_us,p99_us,max_us,in_flight\n";
    double prev = 0;
    for (const auto& s : r.series) {
        const double width = s.t - prev > 0 ? s.t - prev : 1;
        out << fmt::format("{:.3f},{},{},{:.1f},{:.0f},{:.0f},{:.0f},{}\n", s.t, s.requests, s.errors, static_cast<double>(s.requests) / width,
                           s.p50_us, s.p99_us, s.max_us, s.in_flight);
        prev = s.t;
    }
}

void plot(const run_result& r, const std::string& prefix) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / fmt::format("cqlcoro-stress-plot-{}", ::getpid());
    fs::create_directories(dir);
    const std::string series = (dir / "series.csv").string(), dist = (dir / "distribution.dat").string();
    write_csv(r, series);
    {
        std::ofstream d(dist);
        const std::uint64_t n = r.requests ? r.requests : 1;
        std::uint64_t seen = 0;
        for (const auto& [us, c] : r.distribution) {
            seen += c;
            const double below = static_cast<double>(seen) / static_cast<double>(n);
            // x: 1 / (1 - quantile), the usual log scale of HDR percentile plots.
            if (below < 1.0) d << fmt::format("{:.6f} {:.1f}\n", 1.0 / (1.0 - below), us / 1000.0);
        }
    }
    std::string title;
    for (const auto& [k, v] : r.settings) title += fmt::format("{}{}={}", title.empty() ? "" : " ", k, v);
    const std::string script = fmt::format(
        "set terminal png size 1000,500\n"
        "set datafile separator ','\n"
        "set grid\n"
        "set title '{0}' noenhanced font ',8'\n"
        "set output '{1}-throughput.png'\n"
        "set xlabel 'seconds'\nset ylabel 'requests per second'\n"
        "plot '{2}' skip 1 using 1:4 with lines title 'throughput'\n"
        "set output '{1}-latency.png'\n"
        "set ylabel 'latency (ms)'\nset logscale y\n"
        "plot '{2}' skip 1 using 1:($5/1000) with lines title 'p50', '' skip 1 using 1:($6/1000) with lines title 'p99', "
        "'' skip 1 using 1:($7/1000) with lines title 'max'\n"
        "set output '{1}-distribution.png'\n"
        "set datafile separator whitespace\n"
        "set logscale x\nset xlabel 'percentile'\n"
        "set xtics ('50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)\n"
        "plot '{3}' using 1:2 with steps title 'latency by percentile'\n",
        title, prefix, series, dist);
    std::FILE* g = ::popen("gnuplot 2>&1", "w");
    if (!g) throw std::runtime_error("cannot run gnuplot (install it: apt-get install gnuplot-nox)");
    std::fputs(script.c_str(), g);
    const int rc = ::pclose(g);
    fs::remove_all(dir);
    if (rc != 0) throw std::runtime_error("gnuplot failed (is it installed? apt-get install gnuplot-nox); its output is above");
}

void print_comparison(const run_result& a, const std::string& a_name, const run_result& b, const std::string& b_name, std::FILE* out) {
    auto row = [&](const std::string& what, double x, double y, const char* unit) {
        const std::string ratio = x > 0 ? fmt::format("{:.2f}x", y / x) : std::string("-");
        fmt::print(out, "{:<22} {:>14} {:>14} {:>8}\n", what, fmt::format("{:.1f}{}", x, unit), fmt::format("{:.1f}{}", y, unit), ratio);
    };
    fmt::print(out, "{:<22} {:>14} {:>14} {:>8}\n", "", a_name.substr(a_name.size() > 14 ? a_name.size() - 14 : 0),
               b_name.substr(b_name.size() > 14 ? b_name.size() - 14 : 0), "B/A");
    row("throughput (/s)", a.throughput, b.throughput, "");
    row("requests", static_cast<double>(a.requests), static_cast<double>(b.requests), "");
    row("errors", static_cast<double>(a.errors), static_cast<double>(b.errors), "");
    row("mean (us)", a.mean_us, b.mean_us, "");
    for (const auto& [label, x] : a.percentiles) {
        double y = 0;
        for (const auto& [l2, v] : b.percentiles)
            if (l2 == label) y = v;
        row(label + " (us)", x, y, "");
    }
    row("client CPU (us/req)", a.cpu_us_per_request, b.cpu_us_per_request, "");
    for (const auto& [k, v] : a.settings) {
        const auto it = b.settings.find(k);
        const std::string other = it == b.settings.end() ? "-" : it->second;
        if (other != v) fmt::print(out, "setting {:<14} {:>14} {:>14}\n", k, v, other);
    }
    std::fflush(out);
}

}  // namespace stress
