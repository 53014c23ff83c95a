// cqlcoro-stress results: what a run measured, printed, written as JSON and CSV, plotted with gnuplot,
// and compared with another run's JSON.
#pragma once

#include <cqlcoro/latency_histogram.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace stress {

/// Bucket counts of a latency_histogram read at one moment; differences of two give an interval.
using bucket_counts = std::vector<std::uint64_t>;
bucket_counts read_buckets(const cqlcoro::latency_histogram& h);
/// The latency (microseconds) at or below which a fraction q of the counted ones lie.
double percentile_us(const bucket_counts& b, double q);
std::uint64_t total(const bucket_counts& b);

/// One second of the run (after the warm-up).
struct interval {
    double t = 0;                 ///< seconds since the measured part began, at the interval's end
    std::uint64_t requests = 0;   ///< completed in the interval
    std::uint64_t errors = 0;
    double p50_us = 0, p99_us = 0, max_us = 0;
    std::uint64_t in_flight = 0;  ///< at the interval's end
    // The process and the driver at the interval's end (the soak reads them: they must end where they began).
    std::uint64_t rss_kib = 0;         ///< resident memory (VmRSS)
    std::uint64_t fds = 0;             ///< open file descriptors
    std::uint64_t connections = 0;     ///< the session's open connections, all nodes
    std::uint64_t orphaned = 0;        ///< stream ids held by abandoned requests, all nodes
    std::uint64_t nodes_up = 0;        ///< nodes the session holds up
};

struct op_summary {
    std::string name;
    std::uint64_t requests = 0, errors = 0;
    double p50_us = 0, p99_us = 0;
};

struct run_result {
    std::map<std::string, std::string> settings;  ///< what was run (workload, loop, concurrency, ...)
    double seconds = 0;                           ///< the measured part's length
    std::uint64_t requests = 0, errors = 0;
    double throughput = 0;                        ///< completed requests per second
    double mean_us = 0;
    std::vector<std::pair<std::string, double>> percentiles;  ///< p50 ... p99.99, max
    std::map<std::string, std::uint64_t> errors_by_kind, failures_by_outcome;
    double cpu_user_s = 0, cpu_system_s = 0, cpu_us_per_request = 0;
    std::vector<op_summary> ops;
    std::vector<interval> series;
    std::vector<std::pair<double, std::uint64_t>> distribution;  ///< (upper bound in us, count) of the buckets in use
};

/// Fills percentiles, mean and distribution from the measured histogram's buckets.
void summarize_latency(run_result& r, const bucket_counts& b, std::uint64_t sum_us);

void print_summary(const run_result& r, std::FILE* out);
std::string to_json(const run_result& r);
/// Throws std::runtime_error naming the file and what is wrong.
run_result read_json(const std::string& path);
void write_csv(const run_result& r, const std::string& path);
/// Writes PREFIX-throughput.png, PREFIX-latency.png and PREFIX-distribution.png with gnuplot; throws
/// std::runtime_error when gnuplot is missing or fails.
void plot(const run_result& r, const std::string& prefix);
/// Two runs side by side, with the ratio of the second to the first.
void print_comparison(const run_result& a, const std::string& a_name, const run_result& b, const std::string& b_name, std::FILE* out);

}  // namespace stress
