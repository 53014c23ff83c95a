#include "session/request_log.hpp"

#include <cqlcoro/value.hpp>

#include <fmt/format.h>

#include <chrono>
#include "../namespaces.hpp"

namespace cqlcoro::detail {

std::string cut_text(std::string_view text, std::size_t max) {
    if (text.size() <= max) return std::string(text);
    return std::string(text.substr(0, max)) + "...";
}

namespace {

// One bound value as a CQL literal, decoded with its bind marker's type; hex when no type is known.
std::string show_value(const bound_values& v, std::size_t i, const column_spec* spec, std::size_t max) {
    if (v.is_null(i)) return "null";
    if (v.is_unset(i)) return "unset";
    const auto raw = v.value(i);
    if (spec) {
        value out;
        if (!codec<value>::decode(raw, spec->type, decode_options{}, out)) return cut_text(to_cql_literal(out), max);
    }
    std::string hex = "0x";
    for (auto b : raw) fmt::format_to(std::back_inserter(hex), "{:02x}", static_cast<unsigned>(b));
    return cut_text(hex, max);
}

std::string show_values(const bound_values& v, std::span<const column_spec> markers, const slow_request_options& o) {
    std::string out;
    const auto n = std::min(v.size(), o.max_values);
    for (std::size_t i = 0; i < n; ++i) {
        if (i) out += ", ";
        const auto* spec = i < markers.size() ? &markers[i] : nullptr;
        if (spec && !spec->name.empty()) fmt::format_to(std::back_inserter(out), "{}=", spec->name);
        out += show_value(v, i, spec, o.max_value_length);
    }
    if (v.size() > n) fmt::format_to(std::back_inserter(out), ", ... ({} more)", v.size() - n);
    return out;
}

std::string values_of(const request& r, const slow_request_options& o) {
    if (const auto* b = std::get_if<bound_statement>(&r.what)) return b->values().size() ? show_values(b->values(), b->prepared().markers, o) : std::string();
    if (const auto* s = std::get_if<statement>(&r.what)) return s->values().size() ? show_values(s->values(), {}, o) : std::string();
    return {};
}

}  // namespace

std::string describe_request(const request& r, error_code ec, std::string_view error_text, const diagnostics& d,
                             std::chrono::nanoseconds took, const slow_request_options& o) {
    const auto ms = std::chrono::duration<double, std::milli>(took).count();
    std::string out;
    auto it = std::back_inserter(out);
    if (!ec) fmt::format_to(it, "slow request: {:.1f} ms (threshold {} ms)", ms, o.threshold.count());
    else
        fmt::format_to(it, "request failed after {:.1f} ms: {} ({}): {}", ms, ec.message(), to_string(d.outcome),
                       error_text.empty() ? std::string_view(ec.message()) : error_text);
    if (!d.host.empty()) fmt::format_to(it, ", {} {}", ec ? "last node" : "coordinator", d.host);
    fmt::format_to(it, ", {} attempt{}", d.attempts.size(), d.attempts.size() == 1 ? "" : "s");
    if (d.retries) fmt::format_to(it, ", {} retr{}", d.retries, d.retries == 1 ? "y" : "ies");
    if (d.speculative_executions) fmt::format_to(it, ", {} speculative", d.speculative_executions);
    if (std::holds_alternative<batch>(r.what)) fmt::format_to(it, ", a batch of {} (the first): ", std::get<batch>(r.what).entries().size());
    else out += ": ";
    out += cut_text(r.text(), o.max_query_length);
    if (o.show_values)
        if (auto v = values_of(r, o); !v.empty()) fmt::format_to(std::back_inserter(out), " [{}]", v);
    return out;
}

std::string describe_warning(const request& r, const std::string& coordinator, const std::string& warning, std::size_t max_query_length) {
    return fmt::format("server warning from {}: {} (request: {})", coordinator.empty() ? std::string("the coordinator") : coordinator, warning,
                       cut_text(r.text(), max_query_length));
}

}  // namespace cqlcoro::detail
