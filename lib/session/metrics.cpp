// session.metrics(): the counters of session/stats.hpp read into cqlcoro::session_metrics, and their
// Prometheus text rendering.
#include <cqlcoro/metrics.hpp>

#include "cluster/metadata_access.hpp"
#include "session/session_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include "../namespaces.hpp"

namespace cqlcoro {

namespace {
// The Prometheus bucket bounds: 2^k us, k = 7..25 (128 us to about 34 s).
std::vector<std::pair<std::chrono::microseconds, std::uint64_t>> empty_buckets() {
    std::vector<std::pair<std::chrono::microseconds, std::uint64_t>> b;
    for (unsigned k = 7; k <= 25; ++k) b.emplace_back(std::chrono::microseconds(std::int64_t{1} << k), 0);
    return b;
}
}  // namespace

latency_summary summarize(const latency_histogram& h) {
    using us = std::chrono::microseconds;
    // One pass over a copy, so every figure comes from the same counts.
    std::array<std::uint64_t, latency_histogram::bucket_count> b{};
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < b.size(); ++i) total += (b[i] = h.bucket(i));
    latency_summary s;
    s.count = total;
    s.sum = us(static_cast<us::rep>(h.sum_microseconds()));
    // Cumulative counts at 2^k us, k = 7..25: bucket i ends at or below 2^k - 1 for every i below the
    // first bucket of exponent k.
    s.buckets = empty_buckets();
    if (total == 0) return s;
    const double qs[] = {0.50, 0.95, 0.99, 0.999};
    us* out[] = {&s.p50, &s.p95, &s.p99, &s.p999};
    std::uint64_t ranks[4];
    for (int i = 0; i < 4; ++i) ranks[i] = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(qs[i] * static_cast<double>(total) + 0.5));
    std::uint64_t seen = 0;
    std::size_t next_bound = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        const auto upper = latency_histogram::upper_bound_of(i);
        // Buckets wholly below a bound count for it (the bound is upper + 1 when a power of two starts next).
        while (next_bound < s.buckets.size() && static_cast<std::uint64_t>(s.buckets[next_bound].first.count()) <= upper) {
            s.buckets[next_bound].second = seen;
            ++next_bound;
        }
        if (b[i] == 0) continue;
        seen += b[i];
        for (int q = 0; q < 4; ++q)
            if (out[q]->count() == 0 && seen >= ranks[q]) *out[q] = us(static_cast<us::rep>(upper));
        s.max = us(static_cast<us::rep>(upper));
    }
    for (; next_bound < s.buckets.size(); ++next_bound) s.buckets[next_bound].second = seen;
    return s;
}

session_metrics session::metrics() const {
    session_metrics m;
    if (!handle_) return m;
    const auto& impl = *handle_->impl;
    m.requests = summarize(impl.stats.requests);
    m.errors = impl.stats.errors.read();
    const auto started = impl.stats.started.load(std::memory_order_relaxed);
    m.in_flight = started > m.requests.count ? started - m.requests.count : 0;
    m.retries = retry_metrics();
    m.admission = admission_metrics();
    auto v = impl.current();
    for (const auto& h : v->hosts) {
        auto& n = m.nodes.emplace_back();
        n.host = h->name();
        n.datacenter = h->info->datacenter;
        n.rack = h->info->rack;
        n.state = h->info->state();
        n.distance = h->info->distance();
        for (const auto& c : h->connections) {
            // A closed connection's frames are the node's retired_sent already (or about to be).
            if (c->state() == connection::connection_state::closed) continue;
            n.open_connections += c->state() == connection::connection_state::ready ? 1 : 0;
            n.in_flight += c->in_flight();
            n.orphaned_streams += c->orphans();
            n.requests_sent += c->sent();
            n.unexpected_answers += c->unexpected_answers();
        }
        n.connections_replaced = detail::metadata_access::replaced(*h->info);
        if (const auto* st = detail::metadata_access::stats_of(*h->info)) {
            n.requests_sent += st->retired_sent.load(std::memory_order_relaxed);
            n.unexpected_answers += st->retired_unexpected.load(std::memory_order_relaxed);
            n.errors = st->errors.read();
            n.retries = st->retries.load(std::memory_order_relaxed);
            n.speculative_executions = st->speculative.load(std::memory_order_relaxed);
            n.latency = summarize(st->latency);
        }
    }
    return m;
}

request_metrics session::retry_metrics() const {
    request_metrics m;
    if (!handle_) return m;
    const auto& c = handle_->impl->counts;
    auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    m.retries = get(c.retries);
    m.retries_read_timeout = get(c.read_timeout);
    m.retries_write_timeout = get(c.write_timeout);
    m.retries_unavailable = get(c.unavailable);
    m.retries_overloaded = get(c.overloaded);
    m.retries_connection_lost = get(c.connection_lost);
    m.not_sent_moves = get(c.not_sent_moves);
    m.budget_denials = get(c.budget_denials);
    m.attempts_exhausted = get(c.attempts_exhausted);
    m.ignored = get(c.ignored);
    m.speculative_executions = get(c.speculative);
    m.speculative_wins = get(c.speculative_wins);
    m.speculative_denials = get(c.speculative_denials);
    for (std::size_t i = 0; i < m.failed_by_outcome.size(); ++i) m.failed_by_outcome[i] = get(c.failed_by_outcome[i]);
    return m;
}

namespace {

// Label values as the exposition format wants them: backslash, quote and newline escaped.
std::string escape(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

struct writer {
    fmt::memory_buffer out;
    std::string_view prefix;
    std::string_view common;  // the application's labels

    void family(std::string_view name, std::string_view type, std::string_view help) {
        fmt::format_to(std::back_inserter(out), "# HELP {}_{} {}\n# TYPE {}_{} {}\n", prefix, name, help, prefix, name, type);
    }
    // One sample; `labels` is "" or `a="b",c="d"`.
    template <class V>
    void sample(std::string_view name, std::string_view labels, V value) {
        std::string all(common);
        if (!labels.empty()) {
            if (!all.empty()) all += ',';
            all += labels;
        }
        if (all.empty()) fmt::format_to(std::back_inserter(out), "{}_{} {}\n", prefix, name, value);
        else fmt::format_to(std::back_inserter(out), "{}_{}{{{}}} {}\n", prefix, name, all, value);
    }
    // A family of one sample with no labels of its own.
    template <class V>
    void one(std::string_view name, std::string_view type, std::string_view help, V value) {
        family(name, type, help);
        sample(name, "", value);
    }
    void histogram(std::string_view name, std::string_view labels, const latency_summary& s) {
        auto with = [&](std::string le) { return labels.empty() ? fmt::format("le=\"{}\"", le) : fmt::format("{},le=\"{}\"", labels, le); };
        const auto name_bucket = fmt::format("{}_bucket", name);
        const auto buckets = s.buckets.empty() ? empty_buckets() : s.buckets;  // a summary never filled: all zero
        for (const auto& [bound, count] : buckets) sample(name_bucket, with(fmt::format("{}", static_cast<double>(bound.count()) / 1e6)), count);
        sample(name_bucket, with("+Inf"), s.count);
        sample(fmt::format("{}_sum", name), labels, static_cast<double>(s.sum.count()) / 1e6);
        sample(fmt::format("{}_count", name), labels, s.count);
    }
};

}  // namespace

std::string to_prometheus(const session_metrics& m, std::string_view prefix, std::string_view labels) {
    writer w;
    w.prefix = prefix;
    w.common = labels;
    w.one("requests_total", "counter", "Requests completed, failed ones included.", m.requests.count);
    w.one("requests_in_flight", "gauge", "Requests started and not completed.", m.in_flight);
    w.family("request_errors_total", "counter", "Failed requests by kind of error.");
    for (std::size_t k = 0; k < error_kind_count; ++k)
        w.sample("request_errors_total", fmt::format("kind=\"{}\"", to_string(static_cast<error_kind>(k))), m.errors[k]);
    w.family("request_failures_total", "counter", "Failed requests by what they may have done: not_sent, rejected, failed, maybe_applied.");
    constexpr std::string_view outcomes[] = {"not_sent", "rejected", "failed", "maybe_applied"};
    for (std::size_t o = 0; o < m.retries.failed_by_outcome.size(); ++o)
        w.sample("request_failures_total", fmt::format("outcome=\"{}\"", outcomes[o]), m.retries.failed_by_outcome[o]);
    w.family("request_latency_seconds", "histogram", "From execute() to completion: admission, retries and speculative executions included.");
    w.histogram("request_latency_seconds", "", m.requests);

    const auto& r = m.retries;
    w.family("retries_total", "counter", "Retries the retry policy asked for and the request made, by the failure that caused them.");
    const std::pair<std::string_view, std::uint64_t> causes[] = {
        {"read_timeout", r.retries_read_timeout}, {"write_timeout", r.retries_write_timeout}, {"unavailable", r.retries_unavailable},
        {"overloaded", r.retries_overloaded},     {"connection_lost", r.retries_connection_lost}};
    std::uint64_t known = 0;
    for (const auto& [cause, n] : causes) {
        w.sample("retries_total", fmt::format("cause=\"{}\"", cause), n);
        known += n;
    }
    w.sample("retries_total", "cause=\"other\"", r.retries > known ? r.retries - known : 0);
    w.one("not_sent_moves_total", "counter", "Moves to the next node for attempts that were never sent.", r.not_sent_moves);
    w.one("retry_budget_denials_total", "counter", "Retries the retry budget refused.", r.budget_denials);
    w.one("retry_attempts_exhausted_total", "counter", "Retries refused at max_attempts.", r.attempts_exhausted);
    w.one("retry_ignored_total", "counter", "Failures a retry policy turned into an empty success.", r.ignored);
    w.one("speculative_executions_total", "counter", "Speculative executions started.", r.speculative_executions);
    w.one("speculative_wins_total", "counter", "Requests whose answer came from a speculative execution.", r.speculative_wins);
    w.one("speculative_denials_total", "counter", "Speculative executions the retry budget refused.", r.speculative_denials);

    const auto& a = m.admission;
    w.one("admission_running", "gauge", "Requests holding an admission permit.", a.running);
    w.one("admission_waiting", "gauge", "Requests waiting for an admission permit.", a.waiting);
    w.one("admission_waited_total", "counter", "Requests that started after waiting for a permit.", a.waited);
    w.family("admission_refused_total", "counter", "Requests refused by admission, by reason.");
    w.sample("admission_refused_total", "reason=\"queue_full\"", a.refused_queue_full);
    w.sample("admission_refused_total", "reason=\"rate\"", a.refused_rate);
    w.sample("admission_refused_total", "reason=\"deadline\"", a.refused_deadline);
    w.sample("admission_refused_total", "reason=\"timed_out\"", a.timed_out);
    w.sample("admission_refused_total", "reason=\"cancelled\"", a.cancelled);

    std::vector<std::string> node_labels;
    for (const auto& n : m.nodes)
        node_labels.push_back(fmt::format("host=\"{}\",datacenter=\"{}\",rack=\"{}\"", escape(n.host), escape(n.datacenter), escape(n.rack)));
    auto per_node = [&](std::string_view name, std::string_view type, std::string_view help, auto get) {
        w.family(name, type, help);
        for (std::size_t i = 0; i < m.nodes.size(); ++i) w.sample(name, node_labels[i], get(m.nodes[i]));
    };
    per_node("node_up", "gauge", "1 while the node is up.", [](const host_metrics& n) { return n.state == node_state::up ? 1 : 0; });
    per_node("node_open_connections", "gauge", "Open connections to the node.", [](const host_metrics& n) { return n.open_connections; });
    per_node("node_in_flight", "gauge", "Requests in flight on the node's connections.", [](const host_metrics& n) { return n.in_flight; });
    per_node("node_orphaned_streams", "gauge", "Stream ids held by abandoned requests.", [](const host_metrics& n) { return n.orphaned_streams; });
    per_node("node_frames_sent_total", "counter", "Frames written to the node, over all its connections.", [](const host_metrics& n) { return n.requests_sent; });
    per_node("node_unexpected_answers_total", "counter", "Answers on stream ids that carried no request (dropped): a broken server or proxy.",
             [](const host_metrics& n) { return n.unexpected_answers; });
    per_node("node_connections_replaced_total", "counter", "Connections replaced for their orphaned stream ids.",
             [](const host_metrics& n) { return n.connections_replaced; });
    per_node("node_retries_total", "counter", "Retries after a failure at the node.", [](const host_metrics& n) { return n.retries; });
    per_node("node_speculative_executions_total", "counter", "Speculative executions started on the node.",
             [](const host_metrics& n) { return n.speculative_executions; });
    w.family("node_errors_total", "counter", "Attempts at the node that failed, by kind of error.");
    for (std::size_t i = 0; i < m.nodes.size(); ++i)
        for (std::size_t k = 0; k < error_kind_count; ++k)
            w.sample("node_errors_total", fmt::format("{},kind=\"{}\"", node_labels[i], to_string(static_cast<error_kind>(k))), m.nodes[i].errors[k]);
    w.family("node_latency_seconds", "histogram", "Attempts the node answered, from the write to the answer.");
    for (std::size_t i = 0; i < m.nodes.size(); ++i) w.histogram("node_latency_seconds", node_labels[i], m.nodes[i].latency);
    return fmt::to_string(w.out);
}

}  // namespace cqlcoro
