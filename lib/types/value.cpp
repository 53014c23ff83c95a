#include <cqlcoro/value.hpp>


namespace cqlcoro {
namespace {

template <class T>
error_code decode_as(bytes_view b, const cql_type& t, const decode_options& o, value& out) {
    T v{};
    if (auto ec = codec<T>::decode(b, t, o, v)) return ec;
    out = value(t.kind, std::move(v));
    return {};
}

template <class T>
error_code encode_as(const value& v, const cql_type& t, byte_buffer& out) {
    const T* p = v.as<T>();
    if (!p) return type_errc::type_mismatch;
    return codec<T>::encode(*p, t, out);
}

error_code decode_elements(detail::reader& r, std::size_t n, const cql_type& et, const decode_options& o, value::list& out) {
    for (std::size_t i = 0; i < n; ++i) {
        auto cell = r.bytes();
        if (!r.ok()) return type_errc::bad_collection;
        if (auto ec = decode_cell(cell, et, o, out.emplace_back())) return ec;
    }
    return {};
}

// Years 0000 to 9999, the range an ISO date prints in.
constexpr std::int64_t min_ms = -62'167'219'200'000;
constexpr std::int64_t max_ms = 253'402'300'799'999;

void quote(std::string& out, std::string_view s) {
    out += '\'';
    for (char c : s) {
        if (c == '\'') out += '\'';
        out += c;
    }
    out += '\'';
}

void append(std::string& out, const value& v);

template <class Range, class F>
void join(std::string& out, const Range& r, char open, char close, F each) {
    out += open;
    bool first = true;
    for (const auto& e : r) {
        if (!first) out += ", ";
        first = false;
        each(e);
    }
    out += close;
}

void append(std::string& out, const value& v) {
    std::visit(
        [&](const auto& d) {
            using D = std::decay_t<decltype(d)>;
            if constexpr (std::is_same_v<D, std::monostate>) {
                out += "null";
            } else if constexpr (std::is_same_v<D, bool>) {
                out += d ? "true" : "false";
            } else if constexpr (std::is_same_v<D, std::int64_t> || std::is_same_v<D, float> || std::is_same_v<D, double>) {
                out += fmt::format("{}", d);
            } else if constexpr (std::is_same_v<D, std::string>) {
                quote(out, d);
            } else if constexpr (std::is_same_v<D, byte_buffer>) {
                out += "0x";
                for (auto b : d) out += fmt::format("{:02x}", b);
            } else if constexpr (std::is_same_v<D, uuid>) {
                for (std::size_t i = 0; i < 16; ++i) {
                    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
                    out += fmt::format("{:02x}", d.data[i]);
                }
            } else if constexpr (std::is_same_v<D, boost::asio::ip::address>) {
                quote(out, d.to_string());
            } else if constexpr (std::is_same_v<D, timestamp>) {
                // Outside years 0..9999 there is no ISO date to print: show the milliseconds.
                if (d.time_since_epoch().count() < min_ms || d.time_since_epoch().count() > max_ms) {
                    out += fmt::format("{}", d.time_since_epoch().count());
                    return;
                }
                // Civil-date arithmetic, not fmt's chrono formatting (which goes through nanoseconds).
                const auto day = std::chrono::floor<std::chrono::days>(d);
                const std::chrono::year_month_day ymd(day);
                const auto ms = (d - day).count();
                out += fmt::format("'{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z'", static_cast<int>(ymd.year()),
                                   static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), ms / 3'600'000,
                                   ms / 60'000 % 60, ms / 1000 % 60, ms % 1000);
            } else if constexpr (std::is_same_v<D, date>) {
                if (d.time_since_epoch().count() < min_ms / 86'400'000 || d.time_since_epoch().count() > max_ms / 86'400'000) {
                    out += fmt::format("{}", d.time_since_epoch().count() + (std::int64_t{1} << 31));  // CQL's raw date
                    return;
                }
                const std::chrono::year_month_day ymd(d);
                out += fmt::format("'{:04}-{:02}-{:02}'", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                                   static_cast<unsigned>(ymd.day()));
            } else if constexpr (std::is_same_v<D, time_of_day>) {
                const auto ns = d.count();
                out += fmt::format("'{:02}:{:02}:{:02}.{:09}'", ns / 3'600'000'000'000, ns / 60'000'000'000 % 60,
                                   ns / 1'000'000'000 % 60, ns % 1'000'000'000);
            } else if constexpr (std::is_same_v<D, cql_duration>) {
                const bool neg = d.months < 0 || d.days < 0 || d.nanoseconds < 0;
                out += fmt::format("{}{}mo{}d{}ns", neg ? "-" : "", std::abs(static_cast<std::int64_t>(d.months)),
                                   std::abs(static_cast<std::int64_t>(d.days)), d.nanoseconds < 0 ? -static_cast<unsigned long long>(d.nanoseconds) : static_cast<unsigned long long>(d.nanoseconds));
            } else if constexpr (std::is_same_v<D, decimal>) {
                out += d.to_string();
            } else if constexpr (std::is_same_v<D, varint>) {
                out += d.str();
            } else if constexpr (std::is_same_v<D, value::list>) {
                const char open = v.kind() == type_kind::set ? '{' : v.kind() == type_kind::tuple ? '(' : '[';
                const char close = v.kind() == type_kind::set ? '}' : v.kind() == type_kind::tuple ? ')' : ']';
                join(out, d, open, close, [&](const value& e) { append(out, e); });
            } else if constexpr (std::is_same_v<D, value::map>) {
                join(out, d, '{', '}', [&](const auto& kv) {
                    append(out, kv.first);
                    out += ": ";
                    append(out, kv.second);
                });
            } else if constexpr (std::is_same_v<D, value::fields>) {
                join(out, d, '{', '}', [&](const auto& kv) {
                    out += kv.first;
                    out += ": ";
                    append(out, kv.second);
                });
            }
        },
        v.data());
}

}  // namespace

std::string to_cql_literal(const value& v) {
    std::string out;
    append(out, v);
    return out;
}

error_code codec<value>::decode(bytes_view b, const cql_type& t, const decode_options& o, value& out) {
    switch (t.kind) {
    case type_kind::boolean: return decode_as<bool>(b, t, o, out);
    case type_kind::tinyint:
    case type_kind::smallint:
    case type_kind::int_:
    case type_kind::bigint:
    case type_kind::counter: return decode_as<std::int64_t>(b, t, o, out);
    case type_kind::varint: return decode_as<varint>(b, t, o, out);
    case type_kind::float_: return decode_as<float>(b, t, o, out);
    case type_kind::double_: return decode_as<double>(b, t, o, out);
    case type_kind::ascii:
    case type_kind::varchar: return decode_as<std::string>(b, t, o, out);
    case type_kind::blob:
    case type_kind::custom: return decode_as<byte_buffer>(b, t, o, out);
    case type_kind::uuid:
    case type_kind::timeuuid: return decode_as<uuid>(b, t, o, out);
    case type_kind::inet: return decode_as<boost::asio::ip::address>(b, t, o, out);
    case type_kind::timestamp: return decode_as<timestamp>(b, t, o, out);
    case type_kind::date: return decode_as<date>(b, t, o, out);
    case type_kind::time: return decode_as<time_of_day>(b, t, o, out);
    case type_kind::duration: return decode_as<cql_duration>(b, t, o, out);
    case type_kind::decimal: return decode_as<decimal>(b, t, o, out);
    case type_kind::list:
    case type_kind::set: {
        detail::reader r(b);
        const auto n = r.i32();
        if (!r.ok() || n < 0 || static_cast<std::size_t>(n) > r.remaining() / 4) return type_errc::bad_collection;
        value::list l;
        if (auto ec = decode_elements(r, static_cast<std::size_t>(n), t.params.at(0), o, l)) return ec;
        if (r.remaining() != 0) return type_errc::bad_collection;
        out = value(t.kind, std::move(l));
        return {};
    }
    case type_kind::map: {
        detail::reader r(b);
        const auto n = r.i32();
        if (!r.ok() || n < 0 || static_cast<std::size_t>(n) > r.remaining() / 8) return type_errc::bad_collection;
        value::map m;
        for (std::int32_t i = 0; i < n; ++i) {
            auto kc = r.bytes();
            auto vc = r.bytes();
            if (!r.ok()) return type_errc::bad_collection;
            value k, e;
            if (auto ec = decode_cell(kc, t.params.at(0), o, k)) return ec;
            if (auto ec = decode_cell(vc, t.params.at(1), o, e)) return ec;
            m.emplace_back(std::move(k), std::move(e));
        }
        if (r.remaining() != 0) return type_errc::bad_collection;
        out = value(t.kind, std::move(m));
        return {};
    }
    case type_kind::tuple:
    case type_kind::udt: {
        detail::reader r(b);
        value::list l;
        value::fields f;
        for (std::size_t i = 0; i < t.params.size(); ++i) {
            std::optional<bytes_view> cell;
            if (r.remaining() > 0) cell = r.bytes();  // short UDT values: the rest are null
            if (!r.ok()) return type_errc::bad_collection;
            value e;
            if (auto ec = decode_cell(cell, t.params[i], o, e)) return ec;
            if (t.kind == type_kind::tuple)
                l.push_back(std::move(e));
            else
                f.emplace_back(i < t.field_names.size() ? t.field_names[i] : std::to_string(i), std::move(e));
        }
        if (r.remaining() != 0) return type_errc::bad_collection;
        out = t.kind == type_kind::tuple ? value(t.kind, std::move(l)) : value(t.kind, std::move(f));
        return {};
    }
    case type_kind::vector: {
        value::list l;
        auto ec = detail::decode_vector_elements<value>(b, t, o, [&](value&& e) { l.push_back(std::move(e)); });
        if (ec) return ec;
        out = value(t.kind, std::move(l));
        return {};
    }
    }
    return type_errc::type_mismatch;
}

error_code codec<value>::encode(const value& v, const cql_type& t, byte_buffer& out) {
    switch (t.kind) {
    case type_kind::boolean: return encode_as<bool>(v, t, out);
    case type_kind::tinyint:
    case type_kind::smallint:
    case type_kind::int_:
    case type_kind::bigint:
    case type_kind::counter: return encode_as<std::int64_t>(v, t, out);
    case type_kind::varint:
        if (auto i = v.as<std::int64_t>()) return codec<std::int64_t>::encode(*i, t, out);
        return encode_as<varint>(v, t, out);
    case type_kind::float_: return encode_as<float>(v, t, out);
    case type_kind::double_: return encode_as<double>(v, t, out);
    case type_kind::ascii:
    case type_kind::varchar: return encode_as<std::string>(v, t, out);
    case type_kind::blob:
    case type_kind::custom: return encode_as<byte_buffer>(v, t, out);
    case type_kind::uuid:
    case type_kind::timeuuid: return encode_as<uuid>(v, t, out);
    case type_kind::inet: return encode_as<boost::asio::ip::address>(v, t, out);
    case type_kind::timestamp: return encode_as<timestamp>(v, t, out);
    case type_kind::date: return encode_as<date>(v, t, out);
    case type_kind::time: return encode_as<time_of_day>(v, t, out);
    case type_kind::duration: return encode_as<cql_duration>(v, t, out);
    case type_kind::decimal: return encode_as<decimal>(v, t, out);
    case type_kind::list:
    case type_kind::set: {
        const auto* l = v.as<value::list>();
        if (!l) return type_errc::type_mismatch;
        return detail::encode_elements<value>(*l, l->size(), t.params.at(0), out);
    }
    case type_kind::vector: {
        const auto* l = v.as<value::list>();
        if (!l) return type_errc::type_mismatch;
        return detail::encode_vector_elements<value>(*l, l->size(), t, out);
    }
    case type_kind::map: {
        const auto* m = v.as<value::map>();
        if (!m) return type_errc::type_mismatch;
        detail::writer(out).i32(static_cast<std::int32_t>(m->size()));
        for (const auto& [k, e] : *m) {
            if (auto ec = detail::encode_value(k, t.params.at(0), out)) return ec;
            if (auto ec = detail::encode_value(e, t.params.at(1), out)) return ec;
        }
        return {};
    }
    case type_kind::tuple: {
        const auto* l = v.as<value::list>();
        if (!l || l->size() != t.params.size()) return type_errc::type_mismatch;
        for (std::size_t i = 0; i < l->size(); ++i)
            if (auto ec = detail::encode_value((*l)[i], t.params[i], out)) return ec;
        return {};
    }
    case type_kind::udt: {
        const auto* f = v.as<value::fields>();
        if (!f) return type_errc::type_mismatch;
        // Fields in the type's order (as decoded) go by position; otherwise each is found by name.
        bool in_order = f->size() == t.params.size() && t.field_names.size() == t.params.size();
        for (std::size_t i = 0; in_order && i < f->size(); ++i) in_order = (*f)[i].first == t.field_names[i];
        if (in_order) {
            for (std::size_t i = 0; i < f->size(); ++i)
                if (auto ec = detail::encode_value((*f)[i].second, t.params[i], out)) return ec;
            return {};
        }
        for (std::size_t i = 0; i < t.params.size(); ++i) {
            const value* field = nullptr;
            for (const auto& [name, e] : *f)
                if (!field && i < t.field_names.size() && name == t.field_names[i]) field = &e;
            if (field) {
                if (auto ec = detail::encode_value(*field, t.params[i], out)) return ec;
            } else {
                detail::writer(out).null_bytes();
            }
        }
        return {};
    }
    }
    return type_errc::type_mismatch;
}

}  // namespace cqlcoro
