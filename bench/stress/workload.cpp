#include "workload.hpp"

#include <cqlcoro/error.hpp>
#include <cqlcoro/value_types.hpp>

#include <fmt/format.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace stress {

namespace {

std::string trim(std::string s) {
    const auto b = s.find_first_not_of(" \t\r");
    const auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

template <class T>
T number(const std::string& text, const std::string& what) {
    T v{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) throw std::invalid_argument(fmt::format("{}: \"{}\" is not a number", what, text));
    return v;
}

double real(const std::string& text, const std::string& what) {
    try {
        std::size_t used = 0;
        const double v = std::stod(text, &used);
        if (used == text.size()) return v;
    } catch (const std::exception&) {
    }
    throw std::invalid_argument(fmt::format("{}: \"{}\" is not a number", what, text));
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string part; std::getline(ss, part, sep);) out.push_back(part);
    return out;
}

generator parse_generator(const std::string& spec, const key_distribution& keys, const std::string& where) {
    const auto parts = split(spec, ':');
    const std::string& g = parts.empty() ? spec : parts[0];
    auto arg = [&](std::size_t i) -> const std::string& {
        if (parts.size() <= i) throw std::invalid_argument(fmt::format("{}: {{{}}} needs more arguments (see the generators in the header of the workload format)", where, spec));
        return parts[i];
    };
    generator out;
    if (g == "key" && parts.size() == 1) {
        out.k = generator::kind::key;
        out.dist = keys;
    } else if (g == "seq" && parts.size() == 1) {
        out.k = generator::kind::seq;
    } else if (g == "uniform" && parts.size() == 2) {
        out.k = generator::kind::uniform;
        out.dist = {key_distribution::kind::uniform, number<std::uint64_t>(arg(1), where), 0};
    } else if (g == "zipf" && parts.size() == 3) {
        out.k = generator::kind::zipf;
        out.dist = {key_distribution::kind::zipf, number<std::uint64_t>(arg(1), where), real(arg(2), where)};
    } else if (g == "int" && parts.size() == 3) {
        out.k = generator::kind::int_range;
        out.min = number<std::int64_t>(arg(1), where);
        out.max = number<std::int64_t>(arg(2), where);
        if (out.max < out.min) throw std::invalid_argument(fmt::format("{}: {{{}}}: MAX is below MIN", where, spec));
    } else if ((g == "text" || g == "blob") && parts.size() == 2) {
        out.k = g == "text" ? generator::kind::text : generator::kind::blob;
        out.size = number<std::size_t>(arg(1), where);
        if (out.size > (16u << 20)) throw std::invalid_argument(fmt::format("{}: {{{}}}: at most 16 MiB per value", where, spec));
    } else if (g == "uuid" && parts.size() == 1) {
        out.k = generator::kind::uuid;
    } else {
        throw std::invalid_argument(fmt::format(
            "{}: unknown generator {{{}}}: use key, seq, uniform:N, zipf:N:S, int:MIN:MAX, text:SIZE, blob:SIZE or uuid", where, spec));
    }
    if ((out.k == generator::kind::uniform || out.k == generator::kind::zipf) && out.dist.n == 0)
        throw std::invalid_argument(fmt::format("{}: {{{}}}: N must be at least 1", where, spec));
    return out;
}

// "... {key} ... {text:100}" -> "... ? ... ?" and the generators.
std::pair<std::string, std::vector<generator>> compile_cql(const std::string& text, const key_distribution& keys, const std::string& where) {
    std::string cql;
    std::vector<generator> gens;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '{') {
            cql += text[i];
            continue;
        }
        const auto close = text.find('}', i);
        if (close == std::string::npos) throw std::invalid_argument(fmt::format("{}: a '{{' without its '}}'", where));
        const std::string spec = text.substr(i + 1, close - i - 1);
        // A map or set literal ({'class': ...}) is CQL, not a generator.
        if (spec.find('\'') != std::string::npos || spec.find(' ') != std::string::npos) {
            cql += text.substr(i, close - i + 1);
        } else {
            gens.push_back(parse_generator(spec, keys, where));
            cql += '?';
        }
        i = close;
    }
    return {cql, gens};
}

bool integer_generator(generator::kind k) {
    return k == generator::kind::key || k == generator::kind::seq || k == generator::kind::uniform || k == generator::kind::zipf ||
           k == generator::kind::int_range;
}

std::uint64_t draw(const key_distribution& d, std::mt19937_64& rng, std::uint64_t* seq) {
    switch (d.k) {
    case key_distribution::kind::seq:
        return std::atomic_ref<std::uint64_t>(*seq).fetch_add(1, std::memory_order_relaxed) % d.n;
    case key_distribution::kind::uniform:
        return std::uniform_int_distribution<std::uint64_t>(0, d.n - 1)(rng);
    case key_distribution::kind::zipf: {
        // The inverse of a bounded power law's distribution function: P(x) ~ x^-s on [1, n + 1).
        const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
        const double n = static_cast<double>(d.n);
        double x;
        if (std::abs(d.s - 1.0) < 1e-9)
            x = std::exp(u * std::log(n + 1.0));
        else
            x = std::pow((std::pow(n + 1.0, 1.0 - d.s) - 1.0) * u + 1.0, 1.0 / (1.0 - d.s));
        const auto k = static_cast<std::uint64_t>(x) - 1;
        return k < d.n ? k : d.n - 1;
    }
    }
    return 0;
}

}  // namespace

key_distribution key_distribution::parse(const std::string& text, std::uint64_t n) {
    if (n == 0) throw std::invalid_argument("--keys must be at least 1");
    if (text == "uniform") return {kind::uniform, n, 0};
    if (text == "seq") return {kind::seq, n, 0};
    if (text.starts_with("zipf:")) {
        const double s = real(text.substr(5), "--distribution zipf:S");
        if (s <= 0 || s > 10) throw std::invalid_argument("--distribution zipf:S takes an exponent S above 0 and at most 10 (1.1 is usual)");
        return {kind::zipf, n, s};
    }
    if (text == "zipf") return {kind::zipf, n, 1.1};
    throw std::invalid_argument(fmt::format("--distribution takes uniform, seq or zipf:S, not \"{}\"", text));
}

std::string key_distribution::describe() const {
    switch (k) {
    case kind::uniform: return fmt::format("uniform over {} keys", n);
    case kind::seq: return fmt::format("sequential over {} keys", n);
    case kind::zipf: return fmt::format("zipf (s = {}) over {} keys", s, n);
    }
    return {};
}

unsigned workload::total_weight() const {
    unsigned w = 0;
    for (const auto& op : ops) w += op.weight;
    return w;
}

workload parse_workload(const std::string& text, const std::string& name, const key_distribution& keys) {
    workload w;
    w.name = name;
    std::stringstream in(text);
    std::size_t line_no = 0;
    for (std::string line; std::getline(in, line);) {
        ++line_no;
        const std::string where = fmt::format("{}:{}", name, line_no);
        line = trim(line);
        if (line.empty() || line[0] == '#') continue;
        if (line.starts_with("schema:")) {
            w.schema.push_back(trim(line.substr(7)));
            continue;
        }
        if (line.starts_with("op ")) {
            const auto colon = line.find(':');
            if (colon == std::string::npos) throw std::invalid_argument(fmt::format("{}: \"op NAME WEIGHT: CQL\" needs the colon", where));
            const auto head = split(trim(line.substr(3, colon - 3)), ' ');
            if (head.size() != 2) throw std::invalid_argument(fmt::format("{}: write \"op NAME WEIGHT: CQL\", e.g. \"op read 3: SELECT ...\"", where));
            operation op;
            op.name = head[0];
            op.weight = number<unsigned>(head[1], where + ": the weight");
            if (op.weight == 0) throw std::invalid_argument(fmt::format("{}: a weight of 0 would never run", where));
            std::tie(op.cql, op.values) = compile_cql(trim(line.substr(colon + 1)), keys, where);
            if (op.cql.empty()) throw std::invalid_argument(fmt::format("{}: the operation has no CQL", where));
            w.ops.push_back(std::move(op));
            continue;
        }
        throw std::invalid_argument(fmt::format("{}: a line is \"schema: CQL\", \"op NAME WEIGHT: CQL\", a comment (#) or blank", where));
    }
    if (w.ops.empty()) throw std::invalid_argument(fmt::format("{}: no operation (\"op NAME WEIGHT: CQL\")", name));
    return w;
}

workload builtin_workload(const std::string& kind, const std::string& keyspace, const std::string& ratio, std::size_t value_size,
                          const key_distribution& keys, unsigned replication_factor) {
    unsigned reads = 0, writes = 0;
    if (kind == "read") {
        reads = 1;
    } else if (kind == "write") {
        writes = 1;
    } else if (kind == "mixed") {
        const auto parts = split(ratio, ':');
        if (parts.size() != 2) throw std::invalid_argument(fmt::format("--ratio takes READS:WRITES, such as 3:1, not \"{}\"", ratio));
        reads = number<unsigned>(parts[0], "--ratio's reads");
        writes = number<unsigned>(parts[1], "--ratio's writes");
        if (reads + writes == 0) throw std::invalid_argument("--ratio 0:0 runs nothing");
    } else {
        throw std::invalid_argument(fmt::format("--workload takes read, write, mixed or a file, not \"{}\"", kind));
    }
    std::string text = fmt::format(
        "schema: CREATE KEYSPACE IF NOT EXISTS {0} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {1}}}\n"
        "schema: CREATE TABLE IF NOT EXISTS {0}.stress (k bigint PRIMARY KEY, v blob)\n",
        keyspace, replication_factor);
    if (reads) text += fmt::format("op read {}: SELECT v FROM {}.stress WHERE k = {{key}}\n", reads, keyspace);
    if (writes) text += fmt::format("op write {}: INSERT INTO {}.stress (k, v) VALUES ({{key}}, {{blob:{}}})\n", writes, keyspace, value_size);
    return parse_workload(text, kind, keys);
}

std::uint64_t value_source::draw_key(const key_distribution& d) { return draw(d, rng, seq); }

void check_markers(const operation& op) {
    const auto markers = op.prepared.markers();
    if (markers.size() != op.values.size())
        throw std::invalid_argument(fmt::format("operation {}: the server counts {} markers in \"{}\", the workload {} generators",
                                                op.name, markers.size(), op.cql, op.values.size()));
    using tk = cqlcoro::type_kind;
    for (std::size_t i = 0; i < markers.size(); ++i) {
        const auto kind = markers[i].type.kind;
        const auto g = op.values[i].k;
        bool ok = false;
        if (integer_generator(g))
            ok = kind == tk::int_ || kind == tk::bigint || kind == tk::counter || kind == tk::varint || kind == tk::smallint ||
                 kind == tk::tinyint || kind == tk::timestamp || kind == tk::varchar || kind == tk::ascii || kind == tk::blob ||
                 kind == tk::uuid;
        else if (g == generator::kind::text)
            ok = kind == tk::varchar || kind == tk::ascii || kind == tk::blob;
        else if (g == generator::kind::blob)
            ok = kind == tk::blob;
        else if (g == generator::kind::uuid)
            ok = kind == tk::uuid || kind == tk::timeuuid;
        if (!ok)
            throw std::invalid_argument(fmt::format("operation {}: marker {} ({}) is of CQL type {}, which its generator cannot make", op.name,
                                                    i + 1, markers[i].name, cqlcoro::to_cql_string(markers[i].type)));
    }
}

cqlcoro::bound_statement bind(const operation& op, value_source& src) {
    const auto markers = op.prepared.markers();
    cqlcoro::bound_values vals;
    vals.reset(markers.size());
    thread_local std::vector<std::uint8_t> bytes;
    thread_local std::string text;
    using tk = cqlcoro::type_kind;
    for (std::size_t i = 0; i < markers.size(); ++i) {
        const generator& g = op.values[i];
        const cqlcoro::cql_type& t = markers[i].type;
        cqlcoro::error_code ec;
        if (integer_generator(g.k)) {
            std::int64_t x = 0;
            switch (g.k) {
            case generator::kind::seq:
                x = static_cast<std::int64_t>(std::atomic_ref<std::uint64_t>(*src.seq).fetch_add(1, std::memory_order_relaxed));
                break;
            case generator::kind::int_range:
                x = std::uniform_int_distribution<std::int64_t>(g.min, g.max)(src.rng);
                break;
            default:
                x = static_cast<std::int64_t>(src.draw_key(g.dist));
            }
            switch (t.kind) {
            case tk::int_: ec = vals.set(i, static_cast<std::int32_t>(x % 2147483647), t); break;
            case tk::smallint: ec = vals.set(i, static_cast<std::int16_t>(x % 32767), t); break;
            case tk::tinyint: ec = vals.set(i, static_cast<std::int8_t>(x % 127), t); break;
            case tk::timestamp:
                ec = vals.set(i, std::chrono::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(x)), t);
                break;
            case tk::varchar:
            case tk::ascii: text = std::to_string(x); ec = vals.set(i, std::string_view(text), t); break;
            case tk::blob: {
                std::uint8_t be[8];
                for (int b = 0; b < 8; ++b) be[b] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(x) >> (56 - 8 * b));
                ec = vals.set(i, cqlcoro::bytes_view(be, 8), t);
                break;
            }
            case tk::uuid: {
                cqlcoro::uuid u{};
                for (int b = 0; b < 8; ++b) u.data[8 + b] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(x) >> (56 - 8 * b));
                u.data[6] = 0x40;  // version 4, variant 1: a well-formed UUID per number
                u.data[8] = static_cast<std::uint8_t>((u.data[8] & 0x3F) | 0x80);
                ec = vals.set(i, u, t);
                break;
            }
            default: ec = vals.set(i, x, t);
            }
        } else if (g.k == generator::kind::text) {
            text = std::to_string(src.draw_key({key_distribution::kind::uniform, 1'000'000'000, 0}));
            text.resize(g.size, 'x');
            if (t.kind == tk::blob)
                ec = vals.set(i, cqlcoro::bytes_view(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), t);
            else
                ec = vals.set(i, std::string_view(text), t);
        } else if (g.k == generator::kind::blob) {
            bytes.resize(g.size);
            for (std::size_t b = 0; b + 8 <= bytes.size(); b += 8) {
                const auto r = src.rng();
                std::memcpy(bytes.data() + b, &r, 8);
            }
            ec = vals.set(i, cqlcoro::bytes_view(bytes.data(), bytes.size()), t);
        } else {  // uuid
            if (t.kind == tk::timeuuid) {
                ec = vals.set(i, cqlcoro::make_timeuuid(), t);
            } else {
                cqlcoro::uuid u{};
                const auto a = src.rng(), b = src.rng();
                std::memcpy(u.data, &a, 8);
                std::memcpy(u.data + 8, &b, 8);
                u.data[6] = static_cast<std::uint8_t>((u.data[6] & 0x0F) | 0x40);
                u.data[8] = static_cast<std::uint8_t>((u.data[8] & 0x3F) | 0x80);
                ec = vals.set(i, u, t);
            }
        }
        if (ec) throw cqlcoro::error(ec, fmt::format("operation {}: marker {} ({})", op.name, i + 1, markers[i].name));
    }
    return cqlcoro::bound_statement(op.prepared.shared(), std::move(vals));
}

}  // namespace stress
