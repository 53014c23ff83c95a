// Binding values to a statement's markers, with every check done before anything is sent.
//
//   auto values = cqlcoro::bind_values(prepared_markers, id, "john", std::nullopt);        // positional
//   auto values = cqlcoro::bind_values(prepared_markers, cqlcoro::named("name", "john"),
//                                      cqlcoro::named("id", id));                          // by name
//
// Positional binding needs one value per marker. Named binding may leave markers out: they are sent as
// unset (protocol v4+), leaving the column as it is. Pass cqlcoro::unset for an explicit unset,
// std::nullopt (or an empty std::optional) for null.
#pragma once

#include <cqlcoro/codec.hpp>
#include <cqlcoro/column_spec.hpp>

#include <boost/container/small_vector.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cqlcoro {

struct unset_t {
    explicit constexpr unset_t(int) {}
};
/// A marker value that leaves the column unchanged (protocol v4+).
inline constexpr unset_t unset{0};

template <class T>
struct named_value {
    std::string_view name;
    const T& value;
};

/// A value bound to the marker called `name`.
template <class T>
named_value<T> named(std::string_view name, const T& value) {
    return {name, value};
}

/// Encoded marker values, ready for a QUERY, EXECUTE or BATCH.
namespace detail {
// Encoded-value buffers recycled per thread, so binding in a request loop allocates nothing once warm.
byte_buffer take_bind_buffer() noexcept;
void give_bind_buffer(byte_buffer&& b) noexcept;
}  // namespace detail

class bound_values {
public:
    bound_values() noexcept : data_(detail::take_bind_buffer()) {}
    bound_values(const bound_values&) = default;
    bound_values(bound_values&&) noexcept = default;
    bound_values& operator=(const bound_values&) = default;
    bound_values& operator=(bound_values&&) noexcept = default;
    ~bound_values() { detail::give_bind_buffer(std::move(data_)); }

    struct slot {
        std::int32_t offset = 0;
        std::int32_t length = -1;  ///< -1 null, -2 unset
    };

    std::size_t size() const noexcept { return slots_.size(); }
    bool is_null(std::size_t i) const noexcept { return slots_[i].length == -1; }
    bool is_unset(std::size_t i) const noexcept { return slots_[i].length == -2; }
    /// The encoded value (empty for null and unset).
    bytes_view value(std::size_t i) const noexcept {
        const auto& s = slots_[i];
        return s.length < 0 ? bytes_view{} : bytes_view(data_).subspan(static_cast<std::size_t>(s.offset), static_cast<std::size_t>(s.length));
    }

    /// Starts over with n markers, all unset (bind_values does this; callers may bind one at a time).
    void reset(std::size_t n) {
        data_.clear();
        slots_.assign(n, slot{0, -2});
    }
    /// Encodes v for marker i of type t, checking that it fits.
    template <class T>
    error_code set(std::size_t i, const T& v, const cql_type& t);

private:
    byte_buffer data_;
    boost::container::small_vector<slot, 8> slots_;  // no allocation for 8 markers or fewer
};

namespace detail {

template <class T>
struct bind_traits {
    using type = T;
};
template <std::size_t N>
struct bind_traits<char[N]> {
    using type = std::string_view;
};
template <>
struct bind_traits<const char*> {
    using type = std::string_view;
};
template <>
struct bind_traits<char*> {
    using type = std::string_view;
};

template <class T>
using bind_type = typename bind_traits<std::remove_cvref_t<T>>::type;

template <class T>
struct is_named : std::false_type {};
template <class T>
struct is_named<named_value<T>> : std::true_type {};

[[noreturn]] void throw_bind_error(error_code ec, std::span<const column_spec> markers, std::size_t i, const std::string& cpp_type);
[[noreturn]] void throw_bind_count(std::span<const column_spec> markers, std::size_t given);
[[noreturn]] void throw_bind_name(std::span<const column_spec> markers, std::string_view name);
std::size_t marker_position(std::span<const column_spec> markers, std::string_view name) noexcept;

}  // namespace detail

template <class T>
error_code bound_values::set(std::size_t i, const T& v, const cql_type& t) {
    using B = detail::bind_type<T>;
    auto& s = slots_[i];
    if constexpr (std::is_same_v<B, unset_t>) {
        s = {0, -2};
        return {};
    } else if constexpr (std::is_same_v<B, std::nullopt_t>) {
        s = {0, -1};
        return {};
    } else {
        if constexpr (detail::is_optional<B>::value) {
            if (!v) {
                s = {0, -1};
                return {};
            }
        }
        if (!codec<B>::accepts(t)) return type_errc::type_mismatch;
        const auto at = data_.size();
        error_code ec;
        if constexpr (std::is_same_v<B, std::remove_cvref_t<T>>)
            ec = codec<B>::encode(v, t, data_);
        else
            ec = codec<B>::encode(B(v), t, data_);  // char arrays and pointers as string_view
        if (ec) {
            data_.resize(at);
            return ec;
        }
        if (!std::in_range<std::int32_t>(data_.size())) return type_errc::value_out_of_range;
        s = {static_cast<std::int32_t>(at), static_cast<std::int32_t>(data_.size() - at)};
        return {};
    }
}

/// The C++ type name for messages (also for unset and nullopt, which have no codec).
template <class B>
std::string codec_name() {
    if constexpr (std::is_same_v<B, unset_t> || std::is_same_v<B, std::nullopt_t>)
        return "unset";
    else
        return codec<B>::name();
}

/// Encodes `args` against `markers` (a prepared statement's bind markers). Throws cqlcoro::error naming
/// the marker, its CQL type and the C++ type when a value does not fit, and when the count (positional)
/// or a name (named) does not match.
template <class... Args>
bound_values bind_values(std::span<const column_spec> markers, const Args&... args) {
    constexpr std::size_t named_count = (std::size_t{0} + ... + detail::is_named<Args>::value);
    static_assert(named_count == 0 || named_count == sizeof...(Args), "bind either all values by name or none");
    bound_values out;
    out.reset(markers.size());
    if constexpr (named_count == 0) {
        if (sizeof...(Args) != markers.size()) detail::throw_bind_count(markers, sizeof...(Args));
        std::size_t i = 0;
        auto one = [&](const auto& v) {
            using B = detail::bind_type<decltype(v)>;
            if (auto ec = out.set(i, v, markers[i].type)) detail::throw_bind_error(ec, markers, i, codec_name<B>());
            ++i;
        };
        (one(args), ...);
        (void)one;
    } else {
        auto one = [&](const auto& nv) {
            using B = detail::bind_type<decltype(nv.value)>;
            const auto i = detail::marker_position(markers, nv.name);
            if (i >= markers.size()) detail::throw_bind_name(markers, nv.name);
            if (auto ec = out.set(i, nv.value, markers[i].type)) detail::throw_bind_error(ec, markers, i, codec_name<B>());
        };
        (one(args), ...);
    }
    return out;
}

}  // namespace cqlcoro
