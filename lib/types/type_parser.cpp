// Recursive-descent parser for CQL type strings and Cassandra marshal class names.
#include <cqlcoro/cql_type.hpp>
#include <cqlcoro/error.hpp>

#include <algorithm>
#include <cctype>
#include <array>
#include <charconv>
#include <utility>

namespace cqlcoro {
namespace {

constexpr int max_depth = 64;
constexpr std::string_view marshal_prefix = "org.apache.cassandra.db.marshal.";

struct named_kind {
    std::string_view name;
    type_kind kind;
};

// CQL names (lower case) and marshal class short names of the simple types.
constexpr std::array<named_kind, 22> cql_names{{
    {"ascii", type_kind::ascii},     {"bigint", type_kind::bigint},       {"blob", type_kind::blob},
    {"boolean", type_kind::boolean}, {"counter", type_kind::counter},     {"decimal", type_kind::decimal},
    {"double", type_kind::double_},  {"float", type_kind::float_},        {"int", type_kind::int_},
    {"timestamp", type_kind::timestamp}, {"uuid", type_kind::uuid},       {"text", type_kind::varchar},
    {"varchar", type_kind::varchar}, {"varint", type_kind::varint},       {"timeuuid", type_kind::timeuuid},
    {"inet", type_kind::inet},       {"date", type_kind::date},           {"time", type_kind::time},
    {"smallint", type_kind::smallint}, {"tinyint", type_kind::tinyint},   {"duration", type_kind::duration},
    {"ascii", type_kind::ascii},
}};
constexpr std::array<named_kind, 22> marshal_names{{
    {"AsciiType", type_kind::ascii},          {"LongType", type_kind::bigint},
    {"BytesType", type_kind::blob},           {"BooleanType", type_kind::boolean},
    {"CounterColumnType", type_kind::counter}, {"DecimalType", type_kind::decimal},
    {"DoubleType", type_kind::double_},       {"FloatType", type_kind::float_},
    {"Int32Type", type_kind::int_},           {"TimestampType", type_kind::timestamp},
    {"DateType", type_kind::timestamp},       {"UUIDType", type_kind::uuid},
    {"UTF8Type", type_kind::varchar},         {"IntegerType", type_kind::varint},
    {"TimeUUIDType", type_kind::timeuuid},    {"InetAddressType", type_kind::inet},
    {"SimpleDateType", type_kind::date},      {"TimeType", type_kind::time},
    {"ShortType", type_kind::smallint},       {"ByteType", type_kind::tinyint},
    {"DurationType", type_kind::duration},    {"LexicalUUIDType", type_kind::uuid},
}};

class parser {
public:
    explicit parser(std::string_view s) : s_(s) {}

    boost::system::result<cql_type> parse_all() {
        cql_type t;
        if (auto ec = parse(t, 0)) return ec;
        skip_space();
        if (pos_ != s_.size()) return error_code(type_errc::bad_type_string);
        return t;
    }

private:
    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
    }
    bool eat(char c) {
        skip_space();
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    // An identifier: letters, digits, '_', '.', '$' (marshal class names are dotted).
    std::string_view ident() {
        skip_space();
        auto start = pos_;
        while (pos_ < s_.size()) {
            char c = s_[pos_];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '.' || c == '$';
            if (!ok) break;
            ++pos_;
        }
        return s_.substr(start, pos_ - start);
    }
    static std::string lower(std::string_view v) {
        std::string out(v);
        std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
        return out;
    }

    error_code parse(cql_type& out, int depth) {
        if (depth > max_depth) return type_errc::type_nesting_too_deep;
        skip_space();
        if (pos_ < s_.size() && s_[pos_] == '\'') {  // 'custom.Class', with '' for a quote inside
            std::string cls;
            if (auto ec = quoted(cls, '\'')) return ec;
            return parse_custom_class(cls, out, depth, [] {});
        }
        if (pos_ < s_.size() && s_[pos_] == '"') return parse_udt_name(out);
        auto name = ident();
        if (name.empty()) return type_errc::bad_type_string;
        // A Java class name has a package (two dots or more); a qualified UDT name has exactly one dot.
        if (std::count(name.begin(), name.end(), '.') >= 2) return parse_marshal(name, out, depth);
        return parse_cql(lower(name), name, out, depth);
    }

    template <class Done>
    error_code parse_custom_class(std::string_view cls, cql_type& out, int depth, Done done) {
        parser inner(cls);
        auto t = inner.parse_marshal_or_custom(depth);
        done();
        if (!t) return t.error();
        out = std::move(*t);
        return {};
    }

    boost::system::result<cql_type> parse_marshal_or_custom(int depth) {
        auto name = ident();
        cql_type t;
        if (name.empty()) return error_code(type_errc::bad_type_string);
        if (auto ec = parse_marshal(name, t, depth)) return ec;
        skip_space();
        if (pos_ != s_.size()) return error_code(type_errc::bad_type_string);
        return t;
    }

    error_code parse_params(std::vector<cql_type>& params, int depth, char close) {
        do {
            auto& p = params.emplace_back();
            if (auto ec = parse(p, depth + 1)) return ec;
        } while (eat(','));
        return eat(close) ? error_code{} : error_code(type_errc::bad_type_string);
    }

    error_code parse_int(std::int32_t& v) {
        skip_space();
        auto start = pos_;
        while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
        auto [p, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, v);
        if (ec != std::errc() || p == s_.data() + start || v <= 0) return type_errc::bad_type_string;
        return {};
    }

    error_code parse_cql(const std::string& name, std::string_view original, cql_type& out, int depth) {
        for (const auto& n : cql_names) {
            if (n.name == name) {
                out = cql_type::of(n.kind);
                return {};
            }
        }
        auto generic = [&](type_kind k, std::size_t arity) -> error_code {
            out = cql_type::of(k);
            if (!eat('<')) return type_errc::bad_type_string;
            if (auto ec = parse_params(out.params, depth, '>')) return ec;
            return arity == 0 || out.params.size() == arity ? error_code{} : error_code(type_errc::bad_type_string);
        };
        if (name == "list") return generic(type_kind::list, 1);
        if (name == "set") return generic(type_kind::set, 1);
        if (name == "map") return generic(type_kind::map, 2);
        if (name == "tuple") return generic(type_kind::tuple, 0);
        if (name == "frozen") {
            if (!eat('<')) return type_errc::bad_type_string;
            if (auto ec = parse(out, depth + 1)) return ec;
            out.frozen = true;
            return eat('>') ? error_code{} : error_code(type_errc::bad_type_string);
        }
        if (name == "vector") {
            out = cql_type::of(type_kind::vector);
            if (!eat('<')) return type_errc::bad_type_string;
            if (auto ec = parse(out.params.emplace_back(), depth + 1)) return ec;
            if (!eat(',')) return type_errc::bad_type_string;
            if (auto ec = parse_int(out.dimension)) return ec;
            return eat('>') ? error_code{} : error_code(type_errc::bad_type_string);
        }
        // Anything else names a user-defined type, optionally keyspace-qualified; bare identifiers are
        // case-insensitive in CQL, so they are lower-cased.
        out = cql_type::of(type_kind::udt);
        auto dot = original.find('.');
        if (dot == std::string_view::npos) {
            out.name = lower(original);
            return {};
        }
        out.keyspace = lower(original.substr(0, dot));
        auto rest = original.substr(dot + 1);
        if (rest.find('.') != std::string_view::npos || out.keyspace.empty()) return type_errc::bad_type_string;
        if (rest.empty()) {  // ks."Quoted Name"
            if (pos_ >= s_.size() || s_[pos_] != '"') return type_errc::bad_type_string;
            return quoted(out.name);
        }
        out.name = lower(rest);
        return {};
    }

    // A quoted, non-empty text at pos_: "identifier" or 'string', the quote doubled inside it.
    error_code quoted(std::string& out, char q = '"') {
        out.clear();
        ++pos_;
        while (pos_ < s_.size()) {
            char c = s_[pos_++];
            if (c != q) {
                out += c;
            } else if (pos_ < s_.size() && s_[pos_] == q) {
                out += q;
                ++pos_;
            } else {
                return out.empty() ? error_code(type_errc::bad_type_string) : error_code{};
            }
        }
        return type_errc::bad_type_string;
    }

    // A UDT name starting with a quoted identifier: "ks"."name", "ks".name or "name".
    error_code parse_udt_name(cql_type& out) {
        out = cql_type::of(type_kind::udt);
        std::string first;
        if (auto ec = quoted(first)) return ec;
        if (pos_ < s_.size() && s_[pos_] == '.') {
            ++pos_;
            out.keyspace = std::move(first);
            if (pos_ < s_.size() && s_[pos_] == '"') return quoted(out.name);
            auto n = ident();
            if (n.empty() || n.find('.') != std::string_view::npos) return type_errc::bad_type_string;
            out.name = lower(n);
            return {};
        }
        out.name = std::move(first);
        return {};
    }

    static std::string unhex(std::string_view h, bool& ok) {
        std::string out;
        ok = h.size() % 2 == 0;
        for (std::size_t i = 0; ok && i < h.size(); i += 2) {
            unsigned v = 0;
            auto [p, ec] = std::from_chars(h.data() + i, h.data() + i + 2, v, 16);
            ok = ec == std::errc() && p == h.data() + i + 2;
            out.push_back(static_cast<char>(v));
        }
        return out;
    }

    error_code parse_marshal(std::string_view name, cql_type& out, int depth) {
        if (depth > max_depth) return type_errc::type_nesting_too_deep;
        std::string_view shortname = name.starts_with(marshal_prefix) ? name.substr(marshal_prefix.size()) : name;
        for (const auto& n : marshal_names) {
            if (n.name == shortname) {
                out = cql_type::of(n.kind);
                return {};
            }
        }
        auto params = [&](type_kind k, std::size_t arity) -> error_code {
            out = cql_type::of(k);
            if (!eat('(')) return type_errc::bad_type_string;
            if (auto ec = parse_marshal_params(out.params, depth)) return ec;
            return arity == 0 || out.params.size() == arity ? error_code{} : error_code(type_errc::bad_type_string);
        };
        if (shortname == "ListType") return params(type_kind::list, 1);
        if (shortname == "SetType") return params(type_kind::set, 1);
        if (shortname == "MapType") return params(type_kind::map, 2);
        if (shortname == "TupleType") return params(type_kind::tuple, 0);
        if (shortname == "FrozenType" || shortname == "ReversedType") {
            std::vector<cql_type> inner;
            if (!eat('(')) return type_errc::bad_type_string;
            if (auto ec = parse_marshal_params(inner, depth)) return ec;
            if (inner.size() != 1) return type_errc::bad_type_string;
            out = std::move(inner[0]);
            if (shortname == "FrozenType") out.frozen = true;
            return {};
        }
        if (shortname == "VectorType") {
            out = cql_type::of(type_kind::vector);
            if (!eat('(')) return type_errc::bad_type_string;
            if (auto ec = parse(out.params.emplace_back(), depth + 1)) return ec;
            if (!eat(',')) return type_errc::bad_type_string;
            if (auto ec = parse_int(out.dimension)) return ec;
            return eat(')') ? error_code{} : error_code(type_errc::bad_type_string);
        }
        if (shortname == "UserType") {
            // UserType(keyspace, hex(name), hex(field1):type1, ...)
            out = cql_type::of(type_kind::udt);
            if (!eat('(')) return type_errc::bad_type_string;
            out.keyspace = std::string(ident());
            bool ok = eat(',');
            out.name = unhex(ident(), ok);
            if (!ok || out.keyspace.empty() || out.name.empty()) return type_errc::bad_type_string;
            while (eat(',')) {
                auto field = unhex(ident(), ok);
                if (!ok || field.empty() || !eat(':')) return type_errc::bad_type_string;
                out.field_names.push_back(std::move(field));
                if (auto ec = parse(out.params.emplace_back(), depth + 1)) return ec;
            }
            return eat(')') ? error_code{} : error_code(type_errc::bad_type_string);
        }
        // Any other class is a custom type; keep its full text (parameters included) as the class name.
        auto start = pos_;
        if (eat('(')) {
            int open = 1;
            while (pos_ < s_.size() && open > 0) {
                if (s_[pos_] == '(') ++open;
                if (s_[pos_] == ')') --open;
                ++pos_;
            }
            if (open != 0) return type_errc::bad_type_string;
        }
        out = cql_type::of(type_kind::custom);
        out.custom_class = std::string(name) + std::string(s_.substr(start, pos_ - start));
        return {};
    }

    error_code parse_marshal_params(std::vector<cql_type>& params, int depth) {
        do {
            if (auto ec = parse(params.emplace_back(), depth + 1)) return ec;
        } while (eat(','));
        return eat(')') ? error_code{} : error_code(type_errc::bad_type_string);
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

}  // namespace

boost::system::result<cql_type> parse_cql_type(std::string_view text) { return parser(text).parse_all(); }

}  // namespace cqlcoro
