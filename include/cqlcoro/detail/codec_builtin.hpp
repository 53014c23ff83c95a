// The codecs cqlcoro brings for the standard C++ types and its own value types: included by
// <cqlcoro/codec.hpp>, never on its own. Read codec.hpp for the customization point; this is its
// implementation for bool, the integers, float and double, text, blobs, time types, uuid, inet, varint,
// decimal, std::optional, the standard containers, std::array (vector), std::tuple and plain structs
// (UDTs).
#pragma once

namespace cqlcoro {

// ------------------------------------------------------------------ booleans and numbers

template <>
struct codec<bool> {
    static std::string name() { return "bool"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::boolean; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, bool& out) noexcept {
        if (b.size() != 1) return type_errc::bad_cell_size;
        out = b[0] != 0;
        return {};
    }
    static error_code encode(bool v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        out.push_back(v ? 1 : 0);
        return {};
    }
};

/// Integers of every width, signed or not. Reading checks that the column's type fits T (a bigint
/// column cannot be read into std::int32_t); binding checks the value's range against the column.
template <class T>
struct codec<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>>> {
    static std::string name() {
        return std::string(std::is_signed_v<T> ? "std::int" : "std::uint") + std::to_string(8 * sizeof(T)) + "_t";
    }
    static constexpr std::int64_t lo = std::is_signed_v<T> ? static_cast<std::int64_t>(std::numeric_limits<T>::min()) : 0;
    static constexpr std::uint64_t hi = static_cast<std::uint64_t>(std::numeric_limits<T>::max());

    static constexpr bool fits(std::int64_t cql_min, std::uint64_t cql_max) noexcept { return lo <= cql_min && cql_max <= hi; }

    static bool accepts(const cql_type& t) noexcept {
        switch (t.kind) {
        case type_kind::tinyint: return fits(-128, 127);
        case type_kind::smallint: return fits(-32768, 32767);
        case type_kind::int_: return fits(std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max());
        case type_kind::bigint:
        case type_kind::counter:
        case type_kind::varint: return fits(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max());
        default: return false;
        }
    }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options&, T& out) noexcept {
        std::int64_t v = 0;
        switch (t.kind) {
        case type_kind::tinyint:
            if (b.size() != 1) return type_errc::bad_cell_size;
            v = static_cast<std::int8_t>(b[0]);
            break;
        case type_kind::smallint:
            if (b.size() != 2) return type_errc::bad_cell_size;
            v = static_cast<std::int16_t>(detail::load_be<std::uint16_t>(b.data()));
            break;
        case type_kind::int_:
            if (b.size() != 4) return type_errc::bad_cell_size;
            v = static_cast<std::int32_t>(detail::load_be<std::uint32_t>(b.data()));
            break;
        case type_kind::bigint:
        case type_kind::counter:
            if (b.size() != 8) return type_errc::bad_cell_size;
            v = static_cast<std::int64_t>(detail::load_be<std::uint64_t>(b.data()));
            break;
        case type_kind::varint:
            if (auto ec = detail::decode_varint_i64(b, v)) return ec;
            break;
        default: return type_errc::type_mismatch;
        }
        if (!std::in_range<T>(v)) return type_errc::value_out_of_range;
        out = static_cast<T>(v);
        return {};
    }
    static error_code encode(T v, const cql_type& t, byte_buffer& out) {
        switch (t.kind) {
        case type_kind::tinyint:
            if (!std::in_range<std::int8_t>(v)) return type_errc::value_out_of_range;
            out.push_back(static_cast<std::uint8_t>(static_cast<std::int8_t>(v)));
            return {};
        case type_kind::smallint:
            if (!std::in_range<std::int16_t>(v)) return type_errc::value_out_of_range;
            detail::store_be(out, static_cast<std::uint16_t>(static_cast<std::int16_t>(v)));
            return {};
        case type_kind::int_:
            if (!std::in_range<std::int32_t>(v)) return type_errc::value_out_of_range;
            detail::store_be(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
            return {};
        case type_kind::bigint:
        case type_kind::counter:
            if (!std::in_range<std::int64_t>(v)) return type_errc::value_out_of_range;
            detail::store_be(out, static_cast<std::uint64_t>(static_cast<std::int64_t>(v)));
            return {};
        case type_kind::varint:
            if constexpr (std::is_unsigned_v<T> && sizeof(T) == 8) {
                if (!std::in_range<std::int64_t>(v)) {
                    detail::encode_varint(varint(v), out);
                    return {};
                }
            }
            detail::encode_varint_i64(static_cast<std::int64_t>(v), out);
            return {};
        default: return type_errc::type_mismatch;
        }
    }
};

template <>
struct codec<float> {
    static std::string name() { return "float"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::float_; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, float& out) noexcept {
        if (b.size() != 4) return type_errc::bad_cell_size;
        out = std::bit_cast<float>(detail::load_be<std::uint32_t>(b.data()));
        return {};
    }
    static error_code encode(float v, const cql_type& t, byte_buffer& out) {
        if (t.kind == type_kind::double_) {
            detail::store_be(out, std::bit_cast<std::uint64_t>(static_cast<double>(v)));
            return {};
        }
        if (!accepts(t)) return type_errc::type_mismatch;
        detail::store_be(out, std::bit_cast<std::uint32_t>(v));
        return {};
    }
};

template <>
struct codec<double> {
    static std::string name() { return "double"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::double_ || t.kind == type_kind::float_; }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, double& out) noexcept {
        if (t.kind == type_kind::float_) {
            float f = 0;
            auto ec = codec<float>::decode(b, t, o, f);
            out = f;
            return ec;
        }
        if (b.size() != 8) return type_errc::bad_cell_size;
        out = std::bit_cast<double>(detail::load_be<std::uint64_t>(b.data()));
        return {};
    }
    static error_code encode(double v, const cql_type& t, byte_buffer& out) {
        if (t.kind == type_kind::float_) {
            // Only values a float holds exactly (NaN and infinities included) go into a float column.
            if (!std::isnan(v) && static_cast<double>(static_cast<float>(v)) != v)
                return std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max() ? type_errc::value_out_of_range
                                                                                             : type_errc::inexact_float;
            detail::store_be(out, std::bit_cast<std::uint32_t>(static_cast<float>(v)));
            return {};
        }
        if (t.kind != type_kind::double_) return type_errc::type_mismatch;
        detail::store_be(out, std::bit_cast<std::uint64_t>(v));
        return {};
    }
};

// ------------------------------------------------------------------ text and bytes

namespace detail {
inline bool is_text(type_kind k) noexcept { return k == type_kind::varchar || k == type_kind::ascii; }

inline error_code check_text(std::string_view s, const cql_type& t) noexcept {
    if (t.kind == type_kind::ascii) return valid_ascii(s) ? error_code{} : error_code(type_errc::invalid_ascii);
    return valid_utf8(s) ? error_code{} : error_code(type_errc::invalid_utf8);
}

struct text_codec_base {
    static bool accepts(const cql_type& t) noexcept { return is_text(t.kind); }
    static error_code encode(std::string_view v, const cql_type& t, byte_buffer& out) {
        if (!is_text(t.kind)) return type_errc::type_mismatch;
        if (auto ec = check_text(v, t)) return ec;
        out.insert(out.end(), v.begin(), v.end());
        return {};
    }
};
}  // namespace detail

/// text and ascii, decoded as a view into the received frame (valid while the result page lives).
template <>
struct codec<std::string_view> : detail::text_codec_base {
    static std::string name() { return "std::string_view"; }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, std::string_view& out) noexcept {
        out = detail::as_string_view(b);
        return o.validate_utf8 ? detail::check_text(out, t) : error_code{};
    }
};

template <>
struct codec<std::string> : detail::text_codec_base {
    static std::string name() { return "std::string"; }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, std::string& out) {
        std::string_view v;
        if (auto ec = codec<std::string_view>::decode(b, t, o, v)) return ec;
        out.assign(v);
        return {};
    }
};

/// The raw bytes of any cell (blob, or any type read undecoded), as a view into the frame.
template <>
struct codec<bytes_view> {
    static std::string name() { return "std::span<const std::uint8_t>"; }
    static bool accepts(const cql_type&) noexcept { return true; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, bytes_view& out) noexcept {
        out = b;
        return {};
    }
    static error_code encode(bytes_view v, const cql_type& t, byte_buffer& out) {
        if (t.kind != type_kind::blob && t.kind != type_kind::custom) return type_errc::type_mismatch;
        out.insert(out.end(), v.begin(), v.end());
        return {};
    }
};

/// blob as owned bytes.
template <>
struct codec<std::vector<std::uint8_t>> {
    static std::string name() { return "std::vector<std::uint8_t>"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::blob || t.kind == type_kind::custom; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, std::vector<std::uint8_t>& out) {
        out.assign(b.begin(), b.end());
        return {};
    }
    static error_code encode(const std::vector<std::uint8_t>& v, const cql_type& t, byte_buffer& out) {
        return codec<bytes_view>::encode(v, t, out);
    }
};

// ------------------------------------------------------------------ time

/// timestamp, as any system_clock time point (milliseconds on the wire; finer precision is floored).
template <class Duration>
struct codec<std::chrono::time_point<std::chrono::system_clock, Duration>,
             std::enable_if_t<!std::is_same_v<Duration, std::chrono::days>>> {
    using time_point = std::chrono::time_point<std::chrono::system_clock, Duration>;
    static std::string name() { return "std::chrono::system_clock::time_point"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::timestamp; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, time_point& out) noexcept {
        if (b.size() != 8) return type_errc::bad_cell_size;
        std::chrono::milliseconds ms(static_cast<std::int64_t>(detail::load_be<std::uint64_t>(b.data())));
        // A finer Duration (system_clock's nanoseconds) holds +-292 years: refuse what would overflow it.
        using per_ms = std::ratio_divide<std::milli, typename Duration::period>;
        if constexpr (per_ms::den == 1 && per_ms::num > 1) {
            constexpr auto limit = std::numeric_limits<typename Duration::rep>::max() / per_ms::num;
            if (ms.count() > limit || ms.count() < -limit) return type_errc::value_out_of_range;
        }
        out = time_point(std::chrono::duration_cast<Duration>(ms));
        return {};
    }
    static error_code encode(const time_point& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        auto ms = std::chrono::floor<std::chrono::milliseconds>(v.time_since_epoch()).count();
        detail::store_be(out, static_cast<std::uint64_t>(ms));
        return {};
    }
};

/// date: days since the epoch, sent as an unsigned 32-bit count centred on 2^31.
template <>
struct codec<date> {
    static std::string name() { return "std::chrono::sys_days"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::date; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, date& out) noexcept {
        if (b.size() != 4) return type_errc::bad_cell_size;
        auto raw = static_cast<std::int64_t>(detail::load_be<std::uint32_t>(b.data()));
        out = date(std::chrono::days(raw - (std::int64_t{1} << 31)));
        return {};
    }
    static error_code encode(const date& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        auto raw = static_cast<std::int64_t>(v.time_since_epoch().count()) + (std::int64_t{1} << 31);
        if (!std::in_range<std::uint32_t>(raw)) return type_errc::value_out_of_range;
        detail::store_be(out, static_cast<std::uint32_t>(raw));
        return {};
    }
};

template <>
struct codec<std::chrono::year_month_day> {
    static std::string name() { return "std::chrono::year_month_day"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::date; }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, std::chrono::year_month_day& out) noexcept {
        date d;
        auto ec = codec<date>::decode(b, t, o, d);
        out = std::chrono::year_month_day(d);
        return ec;
    }
    static error_code encode(const std::chrono::year_month_day& v, const cql_type& t, byte_buffer& out) {
        if (!v.ok()) return type_errc::value_out_of_range;
        return codec<date>::encode(date(v), t, out);
    }
};

/// time: nanoseconds since midnight.
template <>
struct codec<time_of_day> {
    static std::string name() { return "std::chrono::nanoseconds"; }
    static constexpr std::int64_t day_ns = 86'400'000'000'000;
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::time; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, time_of_day& out) noexcept {
        if (b.size() != 8) return type_errc::bad_cell_size;
        auto ns = static_cast<std::int64_t>(detail::load_be<std::uint64_t>(b.data()));
        if (ns < 0 || ns >= day_ns) return type_errc::value_out_of_range;
        out = time_of_day(ns);
        return {};
    }
    static error_code encode(const time_of_day& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        if (v.count() < 0 || v.count() >= day_ns) return type_errc::value_out_of_range;
        detail::store_be(out, static_cast<std::uint64_t>(v.count()));
        return {};
    }
};

template <>
struct codec<cql_duration> {
    static std::string name() { return "cqlcoro::cql_duration"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::duration; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, cql_duration& out) noexcept {
        detail::reader r(b);
        std::int64_t months = 0, days = 0, ns = 0;
        if (auto ec = detail::read_vint(r, months)) return ec;
        if (auto ec = detail::read_vint(r, days)) return ec;
        if (auto ec = detail::read_vint(r, ns)) return ec;
        if (r.remaining() != 0) return type_errc::bad_cell_size;
        if (!std::in_range<std::int32_t>(months) || !std::in_range<std::int32_t>(days)) return type_errc::value_out_of_range;
        out = {static_cast<std::int32_t>(months), static_cast<std::int32_t>(days), ns};
        return {};
    }
    static error_code encode(const cql_duration& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        // CQL requires the three parts to share a sign.
        const bool neg = v.months < 0 || v.days < 0 || v.nanoseconds < 0;
        const bool pos = v.months > 0 || v.days > 0 || v.nanoseconds > 0;
        if (neg && pos) return type_errc::value_out_of_range;
        detail::writer w(out);
        detail::write_vint(w, v.months);
        detail::write_vint(w, v.days);
        detail::write_vint(w, v.nanoseconds);
        return {};
    }
};

// ------------------------------------------------------------------ uuid, inet, varint, decimal

template <>
struct codec<uuid> {
    static std::string name() { return "boost::uuids::uuid"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::uuid || t.kind == type_kind::timeuuid; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, uuid& out) noexcept {
        if (b.size() != 16) return type_errc::bad_cell_size;
        std::copy(b.begin(), b.end(), out.begin());
        return {};
    }
    static error_code encode(const uuid& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        if (t.kind == type_kind::timeuuid && v.version() != uuid::version_time_based) return type_errc::value_out_of_range;
        out.insert(out.end(), v.begin(), v.end());
        return {};
    }
};

template <>
struct codec<boost::asio::ip::address> {
    static std::string name() { return "boost::asio::ip::address"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::inet; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, boost::asio::ip::address& out) noexcept {
        if (b.size() == 4) {
            boost::asio::ip::address_v4::bytes_type a;
            std::copy(b.begin(), b.end(), a.begin());
            out = boost::asio::ip::address_v4(a);
        } else if (b.size() == 16) {
            boost::asio::ip::address_v6::bytes_type a;
            std::copy(b.begin(), b.end(), a.begin());
            out = boost::asio::ip::address_v6(a);
        } else {
            return type_errc::bad_cell_size;
        }
        return {};
    }
    static error_code encode(const boost::asio::ip::address& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        if (v.is_v4()) {
            auto a = v.to_v4().to_bytes();
            out.insert(out.end(), a.begin(), a.end());
        } else {
            auto a = v.to_v6().to_bytes();
            out.insert(out.end(), a.begin(), a.end());
        }
        return {};
    }
};

template <>
struct codec<varint> {
    static std::string name() { return "cqlcoro::varint"; }
    static bool accepts(const cql_type& t) noexcept {
        return t.kind == type_kind::varint || t.kind == type_kind::bigint || t.kind == type_kind::int_ ||
               t.kind == type_kind::smallint || t.kind == type_kind::tinyint || t.kind == type_kind::counter;
    }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, varint& out) {
        if (t.kind == type_kind::varint) {
            if (b.empty()) return type_errc::bad_cell_size;
            detail::decode_varint(b, out);
            return {};
        }
        std::int64_t v = 0;
        auto ec = codec<std::int64_t>::decode(b, t, o, v);
        out = v;
        return ec;
    }
    static error_code encode(const varint& v, const cql_type& t, byte_buffer& out) {
        if (t.kind == type_kind::varint) {
            detail::encode_varint(v, out);
            return {};
        }
        if (!accepts(t)) return type_errc::type_mismatch;
        if (v < std::numeric_limits<std::int64_t>::min() || v > std::numeric_limits<std::int64_t>::max())
            return type_errc::value_out_of_range;
        return codec<std::int64_t>::encode(static_cast<std::int64_t>(v), t, out);
    }
};

template <>
struct codec<decimal> {
    static std::string name() { return "cqlcoro::decimal"; }
    static bool accepts(const cql_type& t) noexcept { return t.kind == type_kind::decimal; }
    static error_code decode(bytes_view b, const cql_type&, const decode_options&, decimal& out) {
        if (b.size() < 5) return type_errc::bad_cell_size;
        out.scale = static_cast<std::int32_t>(detail::load_be<std::uint32_t>(b.data()));
        detail::decode_varint(b.subspan(4), out.unscaled);
        return {};
    }
    static error_code encode(const decimal& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        detail::store_be(out, static_cast<std::uint32_t>(v.scale));
        detail::encode_varint(v.unscaled, out);
        return {};
    }
};

// ------------------------------------------------------------------ optional

template <class T>
struct codec<std::optional<T>> {
    static std::string name() { return "std::optional<" + codec<T>::name() + ">"; }
    static bool accepts(const cql_type& t) noexcept { return codec<T>::accepts(t); }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, std::optional<T>& out) {
        return codec<T>::decode(b, t, o, out.emplace());
    }
    // A disengaged optional is encoded by encode_value as null; this sees engaged ones only.
    static error_code encode(const std::optional<T>& v, const cql_type& t, byte_buffer& out) {
        return codec<T>::encode(*v, t, out);
    }
};

// ------------------------------------------------------------------ collections

namespace detail {

inline bool is_list_like(type_kind k) noexcept { return k == type_kind::list || k == type_kind::set; }

// Elements of a Cassandra 5 vector: fixed-size ones back to back, others with an unsigned vint length.
template <class E, class Add>
error_code decode_vector_elements(bytes_view b, const cql_type& t, const decode_options& o, Add add) {
    const auto& et = t.params.at(0);
    const std::size_t fixed = fixed_size(et.kind);
    reader r(b);
    for (std::int32_t i = 0; i < t.dimension; ++i) {
        const std::size_t n = fixed ? fixed : static_cast<std::size_t>(r.unsigned_vint());
        auto elem = r.raw(n);
        if (!r.ok()) return type_errc::bad_collection;
        E e{};
        if (auto ec = codec<E>::decode(elem, et, o, e)) return ec;
        add(std::move(e));
    }
    return r.remaining() == 0 ? error_code{} : error_code(type_errc::bad_collection);
}

template <class E, class Range>
error_code encode_vector_elements(const Range& v, std::size_t size, const cql_type& t, byte_buffer& out) {
    if (static_cast<std::size_t>(t.dimension) != size) return type_errc::value_out_of_range;
    const auto& et = t.params.at(0);
    const std::size_t fixed = fixed_size(et.kind);
    byte_buffer scratch;
    for (const auto& e : v) {
        if (fixed) {
            if (auto ec = codec<E>::encode(e, et, out)) return ec;
        } else {
            scratch.clear();
            if (auto ec = codec<E>::encode(e, et, scratch)) return ec;
            writer(out).unsigned_vint(scratch.size());
            out.insert(out.end(), scratch.begin(), scratch.end());
        }
    }
    return {};
}

// list/set: [int] n, then n [bytes] elements.
template <class E, class Add>
error_code decode_elements(bytes_view b, const cql_type& et, const decode_options& o, Add add) {
    reader r(b);
    const auto n = r.i32();
    if (!r.ok() || n < 0 || static_cast<std::size_t>(n) > r.remaining() / 4) return type_errc::bad_collection;
    for (std::int32_t i = 0; i < n; ++i) {
        auto elem = r.bytes();
        if (!r.ok()) return type_errc::bad_collection;
        E e{};
        if (auto ec = decode_cell(elem, et, o, e)) return ec;
        add(std::move(e));
    }
    return r.remaining() == 0 ? error_code{} : error_code(type_errc::bad_collection);
}

template <class E, class Range>
error_code encode_elements(const Range& v, std::size_t size, const cql_type& et, byte_buffer& out) {
    if (!std::in_range<std::int32_t>(size)) return type_errc::value_out_of_range;
    writer(out).i32(static_cast<std::int32_t>(size));
    for (const auto& e : v)
        if (auto ec = encode_value(e, et, out)) return ec;
    return {};
}

template <class C, class E>
struct list_codec {
    static std::string name_of(std::string_view container) { return std::string(container) + "<" + codec<E>::name() + ">"; }
    static bool accepts_list(const cql_type& t) noexcept { return is_list_like(t.kind) && codec<E>::accepts(t.params.at(0)); }
    static bool accepts_vector(const cql_type& t) noexcept { return t.kind == type_kind::vector && codec<E>::accepts(t.params.at(0)); }
};

}  // namespace detail

/// list, set and (Cassandra 5) vector columns.
template <class E, class A>
struct codec<std::vector<E, A>, std::enable_if_t<!std::is_same_v<E, std::uint8_t>>> {
    using L = detail::list_codec<std::vector<E, A>, E>;
    static std::string name() { return L::name_of("std::vector"); }
    static bool accepts(const cql_type& t) noexcept { return L::accepts_list(t) || L::accepts_vector(t); }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, std::vector<E, A>& out) {
        out.clear();
        auto add = [&](E&& e) { out.push_back(std::move(e)); };
        if (t.kind == type_kind::vector) return detail::decode_vector_elements<E>(b, t, o, add);
        return detail::decode_elements<E>(b, t.params.at(0), o, add);
    }
    static error_code encode(const std::vector<E, A>& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        if (t.kind == type_kind::vector) return detail::encode_vector_elements<E>(v, v.size(), t, out);
        return detail::encode_elements<E>(v, v.size(), t.params[0], out);
    }
};

/// vector<T, N> columns (and lists of exactly N elements).
template <class E, std::size_t N>
struct codec<std::array<E, N>> {
    using L = detail::list_codec<std::array<E, N>, E>;
    static std::string name() { return "std::array<" + codec<E>::name() + ", " + std::to_string(N) + ">"; }
    static bool accepts(const cql_type& t) noexcept {
        return (L::accepts_vector(t) && static_cast<std::size_t>(t.dimension) == N) || L::accepts_list(t);
    }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, std::array<E, N>& out) {
        std::size_t i = 0;
        auto add = [&](E&& e) {
            if (i < N) out[i] = std::move(e);
            ++i;
        };
        auto ec = t.kind == type_kind::vector ? detail::decode_vector_elements<E>(b, t, o, add)
                                              : detail::decode_elements<E>(b, t.params.at(0), o, add);
        if (ec) return ec;
        return i == N ? error_code{} : error_code(type_errc::value_out_of_range);
    }
    static error_code encode(const std::array<E, N>& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        if (t.kind == type_kind::vector) return detail::encode_vector_elements<E>(v, N, t, out);
        return detail::encode_elements<E>(v, N, t.params[0], out);
    }
};

namespace detail {
template <class Set, class E>
struct set_codec {
    static std::string name() { return "std::set<" + codec<E>::name() + ">"; }
    static bool accepts(const cql_type& t) noexcept { return detail::is_list_like(t.kind) && codec<E>::accepts(t.params.at(0)); }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, Set& out) {
        out.clear();
        return detail::decode_elements<E>(b, t.params.at(0), o, [&](E&& e) { out.insert(std::move(e)); });
    }
    static error_code encode(const Set& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        return detail::encode_elements<E>(v, v.size(), t.params[0], out);
    }
};
}  // namespace detail
template <class E, class C, class A>
struct codec<std::set<E, C, A>> : detail::set_codec<std::set<E, C, A>, E> {};
template <class E, class H, class Eq, class A>
struct codec<std::unordered_set<E, H, Eq, A>> : detail::set_codec<std::unordered_set<E, H, Eq, A>, E> {};

namespace detail {
template <class Map, class K, class V>
struct map_codec {
    static std::string name() { return "std::map<" + codec<K>::name() + ", " + codec<V>::name() + ">"; }
    static bool accepts(const cql_type& t) noexcept {
        return t.kind == type_kind::map && codec<K>::accepts(t.params.at(0)) && codec<V>::accepts(t.params.at(1));
    }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, Map& out) {
        out.clear();
        detail::reader r(b);
        const auto n = r.i32();
        if (!r.ok() || n < 0 || static_cast<std::size_t>(n) > r.remaining() / 8) return type_errc::bad_collection;
        for (std::int32_t i = 0; i < n; ++i) {
            auto kb = r.bytes();
            auto vb = r.bytes();
            if (!r.ok()) return type_errc::bad_collection;
            K k{};
            V v{};
            if (auto ec = decode_cell(kb, t.params[0], o, k)) return ec;
            if (auto ec = decode_cell(vb, t.params[1], o, v)) return ec;
            out.emplace(std::move(k), std::move(v));
        }
        return r.remaining() == 0 ? error_code{} : error_code(type_errc::bad_collection);
    }
    static error_code encode(const Map& m, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        if (!std::in_range<std::int32_t>(m.size())) return type_errc::value_out_of_range;
        detail::writer(out).i32(static_cast<std::int32_t>(m.size()));
        for (const auto& [k, v] : m) {
            if (auto ec = detail::encode_value(k, t.params[0], out)) return ec;
            if (auto ec = detail::encode_value(v, t.params[1], out)) return ec;
        }
        return {};
    }
};
}  // namespace detail
template <class K, class V, class C, class A>
struct codec<std::map<K, V, C, A>> : detail::map_codec<std::map<K, V, C, A>, K, V> {};
template <class K, class V, class H, class Eq, class A>
struct codec<std::unordered_map<K, V, H, Eq, A>> : detail::map_codec<std::unordered_map<K, V, H, Eq, A>, K, V> {};

// ------------------------------------------------------------------ tuples and UDTs

namespace detail {

// Fields of tuples and UDTs: [bytes] each, in order. A UDT value may have fewer fields than its type
// (fields added later): the missing ones read as null.
template <class... F, std::size_t... I>
error_code decode_fields(bytes_view b, const std::vector<cql_type>& types, const decode_options& o,
                         std::tuple<F&...> fields, std::index_sequence<I...>, bool allow_short) {
    reader r(b);
    error_code ec;
    auto one = [&](auto& field, const cql_type& t) {
        if (ec) return;
        if (r.remaining() == 0 && allow_short) {
            ec = decode_cell(std::optional<bytes_view>{}, t, o, field);
            return;
        }
        auto cell = r.bytes();
        if (!r.ok()) {
            ec = type_errc::bad_collection;
            return;
        }
        ec = decode_cell(cell, t, o, field);
    };
    (one(std::get<I>(fields), types[I]), ...);
    return ec;
}

template <class... F, std::size_t... I>
error_code encode_fields(const std::vector<cql_type>& types, byte_buffer& out, std::tuple<const F&...> fields,
                         std::index_sequence<I...>) {
    error_code ec;
    ((ec = ec ? ec : encode_value(std::get<I>(fields), types[I], out)), ...);
    return ec;
}

template <class T>
struct is_std_array : std::false_type {};
template <class E, std::size_t N>
struct is_std_array<std::array<E, N>> : std::true_type {};

/// A plain struct mapped field by field (Boost.PFR). Types with a codec of their own (uuid, decimal,
/// cql_duration, std::array) are matched by their more specific specializations first.
template <class T>
concept udt_struct = std::is_aggregate_v<T> && std::is_class_v<T> && !is_std_array<T>::value;

inline constexpr std::size_t npos = static_cast<std::size_t>(-1);

/// Where struct field i comes from among `count` sources (UDT fields or row columns): by position,
/// or by name when field_names<T> is specialized.
template <class T, class NameAt>
std::size_t source_index(std::size_t i, std::size_t count, NameAt name_at) {
    if constexpr (named_fields<T>) {
        const std::string_view want = field_names<T>::names[i];
        for (std::size_t j = 0; j < count; ++j)
            if (name_at(j) == want) return j;
        return npos;
    } else {
        return i < count ? i : npos;
    }
}

template <class T, std::size_t I>
using field_t = std::remove_cvref_t<decltype(boost::pfr::get<I>(std::declval<T&>()))>;

template <class T, class NameAt, class TypeAt>
bool struct_accepts(std::size_t count, NameAt name_at, TypeAt type_at) {
    constexpr std::size_t n = boost::pfr::tuple_size_v<T>;
    if constexpr (named_fields<T>) {
        static_assert(std::tuple_size_v<std::remove_cvref_t<decltype(field_names<T>::names)>> == n,
                      "field_names<T>::names must name every field of T");
    } else {
        if (n != count) return false;
    }
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
        return ([&] {
            const auto j = source_index<T>(I, count, name_at);
            return j != npos && codec<field_t<T, I>>::accepts(type_at(j));
        }() && ...);
    }(std::make_index_sequence<n>{});
}

/// Decodes struct fields from their sources; `cell_at(j)` is source j's cell (nullopt for null).
template <class T, class NameAt, class TypeAt, class CellAt>
error_code decode_struct(T& out, std::size_t count, NameAt name_at, TypeAt type_at, CellAt cell_at, const decode_options& o) {
    constexpr std::size_t n = boost::pfr::tuple_size_v<T>;
    error_code ec;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (([&] {
             if (ec) return;
             const auto j = source_index<T>(I, count, name_at);
             if (j == npos) {
                 ec = type_errc::unknown_name;
                 return;
             }
             ec = decode_cell(cell_at(j), type_at(j), o, boost::pfr::get<I>(out));
         }()),
         ...);
    }(std::make_index_sequence<n>{});
    return ec;
}

}  // namespace detail

/// A user-defined type as a plain struct: fields by position, or by name with field_names<T>.
template <detail::udt_struct T>
struct codec<T, void> {
    static std::string name() { return "a struct of " + std::to_string(boost::pfr::tuple_size_v<T>) + " fields"; }
    static bool accepts(const cql_type& t) noexcept {
        if (t.kind != type_kind::udt) return false;
        return detail::struct_accepts<T>(t.params.size(), name_at(t), type_at(t));
    }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, T& out) {
        constexpr std::size_t inline_fields = 16;
        std::array<std::optional<bytes_view>, inline_fields> small{};
        std::vector<std::optional<bytes_view>> large;
        std::span<std::optional<bytes_view>> cells = small;
        if (t.params.size() > inline_fields) {
            large.resize(t.params.size());
            cells = large;
        }
        detail::reader r(b);
        for (std::size_t j = 0; j < t.params.size() && r.remaining() > 0; ++j) cells[j] = r.bytes();  // short values: the rest null
        if (!r.ok() || r.remaining() != 0) return type_errc::bad_collection;
        return detail::decode_struct(out, t.params.size(), name_at(t), type_at(t), [&](std::size_t j) { return cells[j]; }, o);
    }
    static error_code encode(const T& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        constexpr std::size_t n = boost::pfr::tuple_size_v<T>;
        for (std::size_t j = 0; j < t.params.size(); ++j) {
            // The struct field that feeds UDT field j, if any; fields the struct lacks are null.
            error_code ec;
            bool written = false;
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                ((!written && detail::source_index<T>(I, t.params.size(), name_at(t)) == j
                      ? (ec = detail::encode_value(boost::pfr::get<I>(v), t.params[j], out), written = true)
                      : false),
                 ...);
            }(std::make_index_sequence<n>{});
            if (ec) return ec;
            if (!written) detail::writer(out).null_bytes();
        }
        return {};
    }

private:
    static auto name_at(const cql_type& t) {
        return [&t](std::size_t j) -> std::string_view { return j < t.field_names.size() ? std::string_view(t.field_names[j]) : std::string_view(); };
    }
    static auto type_at(const cql_type& t) {
        return [&t](std::size_t j) -> const cql_type& { return t.params[j]; };
    }
};

namespace detail {

template <class T>
error_code encode_value(const T& v, const cql_type& t, byte_buffer& out) {
    if constexpr (nullable<T>::value) {
        if (!v) {  // an empty optional, a null value
            writer(out).null_bytes();
            return {};
        }
    }
    const std::size_t at = out.size();
    out.resize(at + 4);
    if (auto ec = codec<T>::encode(v, t, out)) {
        out.resize(at);
        return ec;
    }
    const std::size_t len = out.size() - at - 4;
    if (!std::in_range<std::int32_t>(len)) {
        out.resize(at);
        return type_errc::value_out_of_range;
    }
    writer(out).patch_i32(at, static_cast<std::int32_t>(len));
    return {};
}

}  // namespace detail

template <class... Ts>
struct codec<std::tuple<Ts...>> {
    static std::string name() {
        std::string n = "std::tuple<";
        ((n += codec<Ts>::name() + ", "), ...);
        if constexpr (sizeof...(Ts) > 0) n.resize(n.size() - 2);
        return n + ">";
    }
    static bool accepts(const cql_type& t) noexcept {
        if (t.kind != type_kind::tuple || t.params.size() != sizeof...(Ts)) return false;
        std::size_t i = 0;
        return (codec<Ts>::accepts(t.params[i++]) && ...);
    }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, std::tuple<Ts...>& out) {
        return std::apply([&](auto&... f) {
            return detail::decode_fields(b, t.params, o, std::tie(f...), std::index_sequence_for<Ts...>{}, false);
        }, out);
    }
    static error_code encode(const std::tuple<Ts...>& v, const cql_type& t, byte_buffer& out) {
        if (!accepts(t)) return type_errc::type_mismatch;
        return std::apply([&](const auto&... f) {
            return detail::encode_fields(t.params, out, std::tie(f...), std::index_sequence_for<Ts...>{});
        }, v);
    }
};

}  // namespace cqlcoro
