// Encoding and decoding of CQL values to and from C++ types.
//
// codec<T> says which CQL types a C++ type maps to, and converts. Specialize it for your own types:
//
//   template <> struct cqlcoro::codec<my_type> {
//       static std::string name();                                      // for error messages
//       static bool accepts(const cql_type&) noexcept;                   // checked once per result page
//       static error_code decode(bytes_view cell, const cql_type&, const decode_options&, my_type& out);
//       static error_code encode(const my_type&, const cql_type&, std::vector<std::uint8_t>& out);
//   };
//
// decode gets a non-null cell; nulls are handled by decode_cell (only std::optional<T> takes them).
// encode appends the value's bytes without their [bytes] length, and checks ranges: binding 300 to a
// tinyint column is an error before anything is sent.
#pragma once

#include <cqlcoro/cql_type.hpp>
#include <cqlcoro/detail/wire.hpp>
#include <cqlcoro/error.hpp>
#include <cqlcoro/value_types.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/pfr/core.hpp>
#include <boost/pfr/tuple_size.hpp>

#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace cqlcoro {

using bytes_view = detail::bytes_view;
using byte_buffer = detail::byte_buffer;

struct decode_options {
    /// Check that text is valid UTF-8 (and ascii is 7-bit) when reading it. Off by default: the server
    /// validates what it stores.
    bool validate_utf8 = false;
};

template <class T, class Enable = void>
struct codec;

// The compile error for a type without a codec: which C++ types map to which CQL types.
#define CQLCORO_NO_CODEC_MESSAGE                                                                                              \
    "cqlcoro: this C++ type has no codec for CQL values. Read int as std::int32_t, bigint/counter as std::int64_t, "        \
    "smallint/tinyint as std::int16_t/std::int8_t, text/varchar/ascii as std::string or std::string_view (never const "     \
    "char*), blob as std::vector<std::uint8_t> or cqlcoro::bytes_view, boolean as bool, float/double as float/double, "     \
    "timestamp as std::chrono::system_clock::time_point, date as cqlcoro::date or std::chrono::year_month_day, time as "    \
    "cqlcoro::time_of_day, duration as cqlcoro::cql_duration, uuid/timeuuid as cqlcoro::uuid, inet as "                     \
    "boost::asio::ip::address, varint/decimal as cqlcoro::varint/cqlcoro::decimal, list/set/map as std::vector/std::set/"   \
    "std::map, tuple as std::tuple, a UDT as a plain struct, vector<float, n> as std::array<float, n>, a null as "          \
    "std::optional<T>, and any column as cqlcoro::value; or specialize cqlcoro::codec<T> for your own type"

/// Opt-in mapping of a struct's fields to UDT fields (or row columns) by name instead of by position:
///   template <> struct cqlcoro::field_names<address> { static constexpr std::array names{"city", "zip"}; };
template <class T>
struct field_names;

template <class T>
concept has_codec = requires { codec<std::remove_cvref_t<T>>::accepts(std::declval<const cql_type&>()); };

namespace detail {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

/// Types that can hold a null: std::optional, and cqlcoro::value (which specializes this).
template <class T>
struct nullable : is_optional<T> {};

template <class T>
concept named_fields = requires { field_names<T>::names; };

/// Size in bytes of a fixed-size CQL type's values, or 0 for variable-size types.
constexpr std::size_t fixed_size(type_kind k) noexcept {
    switch (k) {
    case type_kind::boolean:
    case type_kind::tinyint: return 1;
    case type_kind::smallint: return 2;
    case type_kind::int_:
    case type_kind::float_:
    case type_kind::date: return 4;
    case type_kind::bigint:
    case type_kind::counter:
    case type_kind::double_:
    case type_kind::timestamp:
    case type_kind::time: return 8;
    case type_kind::uuid:
    case type_kind::timeuuid: return 16;
    default: return 0;
    }
}

template <class U>
U load_be(const std::uint8_t* p) noexcept {
    U v = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>((v << 8) | p[i]);
    return v;
}

template <class U>
void store_be(byte_buffer& out, U v) {
    std::uint8_t b[sizeof(U)];
    for (int i = static_cast<int>(sizeof(U)) - 1; i >= 0; --i, v = static_cast<U>(v >> 8)) b[i] = static_cast<std::uint8_t>(v);
    out.insert(out.end(), b, b + sizeof(U));
}

bool valid_utf8(std::string_view s) noexcept;
bool valid_ascii(std::string_view s) noexcept;

// Two's-complement big-endian integers of any length (varint), as int64 when they fit.
error_code decode_varint_i64(bytes_view b, std::int64_t& out) noexcept;
void encode_varint_i64(std::int64_t v, byte_buffer& out);
void decode_varint(bytes_view b, varint& out);
void encode_varint(const varint& v, byte_buffer& out);

// Signed zig-zag vint (duration).
error_code read_vint(reader& r, std::int64_t& out) noexcept;
void write_vint(writer& w, std::int64_t v);

/// A value with its [bytes] length: null when `cell` is nullopt.
template <class T>
error_code encode_value(const T& v, const cql_type& t, byte_buffer& out);

/// Reads one [bytes] element of a collection/tuple/UDT (nullopt for null).
inline std::optional<bytes_view> read_element(reader& r) noexcept { return r.bytes(); }

}  // namespace detail

/// Decodes a cell that may be null into T; only std::optional<T> accepts null, but for a list, set or
/// map read into a container: Cassandra stores an empty collection as null, so a null one reads as
/// empty (as in the Java driver). A zero-length cell of a fixed-size type is an "empty" value, which
/// Cassandra allows and which reads as null.
template <class T>
error_code decode_cell(std::optional<bytes_view> cell, const cql_type& t, const decode_options& o, T& out) {
    if (!cell || (cell->empty() && detail::fixed_size(t.kind) != 0)) {
        if constexpr (detail::nullable<T>::value) {
            out = T{};
            return {};
        } else {
            if constexpr (requires(T& x) { x.clear(); }) {
                if (!cell && (t.kind == type_kind::list || t.kind == type_kind::set || t.kind == type_kind::map)) {
                    out.clear();
                    return {};
                }
            }
            return type_errc::unexpected_null;
        }
    }
    return codec<T>::decode(*cell, t, o, out);
}

}  // namespace cqlcoro

// The built-in codecs (bool, integers, text, time, uuid, containers, tuples, structs, ...).
#include <cqlcoro/detail/codec_builtin.hpp>
