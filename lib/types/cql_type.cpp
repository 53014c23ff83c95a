#include <cqlcoro/cql_type.hpp>

#include <fmt/format.h>

namespace cqlcoro {
namespace {

std::string_view simple_name(type_kind k) noexcept {
    switch (k) {
    case type_kind::ascii: return "ascii";
    case type_kind::bigint: return "bigint";
    case type_kind::blob: return "blob";
    case type_kind::boolean: return "boolean";
    case type_kind::counter: return "counter";
    case type_kind::decimal: return "decimal";
    case type_kind::double_: return "double";
    case type_kind::float_: return "float";
    case type_kind::int_: return "int";
    case type_kind::timestamp: return "timestamp";
    case type_kind::uuid: return "uuid";
    case type_kind::varchar: return "text";
    case type_kind::varint: return "varint";
    case type_kind::timeuuid: return "timeuuid";
    case type_kind::inet: return "inet";
    case type_kind::date: return "date";
    case type_kind::time: return "time";
    case type_kind::smallint: return "smallint";
    case type_kind::tinyint: return "tinyint";
    case type_kind::duration: return "duration";
    default: return {};
    }
}

void append_unfrozen(std::string& out, const cql_type& t);

// CQL identifiers print bare when they are lower-case words, and in double quotes ("" for ") otherwise.
void append_identifier(std::string& out, std::string_view id) {
    // Type keywords are quoted too: a UDT called "list" must not read back as list<...>.
    static constexpr std::string_view keywords[] = {
        "ascii", "bigint", "blob", "boolean", "counter", "decimal", "double", "float", "int", "timestamp", "uuid",
        "text", "varchar", "varint", "timeuuid", "inet", "date", "time", "smallint", "tinyint", "duration",
        "list", "set", "map", "tuple", "frozen", "vector"};
    bool bare = !id.empty() && id[0] >= 'a' && id[0] <= 'z';
    for (char c : id) bare = bare && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
    for (auto k : keywords) bare = bare && id != k;
    if (bare) {
        out += id;
        return;
    }
    out += '"';
    for (char c : id) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

void append(std::string& out, const cql_type& t) {
    if (t.frozen) {
        out += "frozen<";
        append_unfrozen(out, t);
        out += '>';
    } else {
        append_unfrozen(out, t);
    }
}

void append_unfrozen(std::string& out, const cql_type& t) {
    auto params = [&](std::string_view open) {
        out += open;
        for (std::size_t i = 0; i < t.params.size(); ++i) {
            if (i) out += ", ";
            append(out, t.params[i]);
        }
        out += '>';
    };
    switch (t.kind) {
    case type_kind::custom:  // a string literal: ' doubled
        out += '\'';
        for (char c : t.custom_class) {
            if (c == '\'') out += '\'';
            out += c;
        }
        out += '\'';
        return;
    case type_kind::list: params("list<"); return;
    case type_kind::set: params("set<"); return;
    case type_kind::map: params("map<"); return;
    case type_kind::tuple: params("tuple<"); return;
    case type_kind::udt:
        if (!t.keyspace.empty()) {
            append_identifier(out, t.keyspace);
            out += '.';
        }
        append_identifier(out, t.name);
        return;
    case type_kind::vector:
        out += "vector<";
        if (!t.params.empty()) append(out, t.params[0]);
        out += fmt::format(", {}>", t.dimension);
        return;
    default: {
        auto n = simple_name(t.kind);
        out += n.empty() ? fmt::format("unknown(0x{:04x})", static_cast<unsigned>(t.kind)) : std::string(n);
    }
    }
}

}  // namespace

std::string to_cql_string(const cql_type& t) {
    std::string out;
    append(out, t);
    return out;
}

}  // namespace cqlcoro
