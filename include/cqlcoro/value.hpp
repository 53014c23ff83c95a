// A CQL value of any type, for code that does not know the types ahead: printing, generic tools.
//
//   auto v = row.get<cqlcoro::value>("payload");
//   fmt::print("{}\n", v);          // {'a': [1, 2], 'b': null}, as a CQL literal
//   if (auto* list = v.as<cqlcoro::value::list>()) ...
#pragma once

#include <cqlcoro/codec.hpp>

#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace cqlcoro {

class value {
public:
    using list = std::vector<value>;                              ///< list, set, tuple, vector
    using map = std::vector<std::pair<value, value>>;             ///< map, in wire order
    using fields = std::vector<std::pair<std::string, value>>;    ///< user-defined type
    using storage = std::variant<std::monostate, bool, std::int64_t, float, double, std::string, byte_buffer, uuid,
                                 boost::asio::ip::address, timestamp, date, time_of_day, cql_duration, decimal, varint,
                                 list, map, fields>;

    value() = default;  ///< null
    value(type_kind kind, storage s) : kind_(kind), data_(std::move(s)) {}

    bool is_null() const noexcept { return std::holds_alternative<std::monostate>(data_); }
    explicit operator bool() const noexcept { return !is_null(); }
    /// The CQL type the value came from (or is meant for).
    type_kind kind() const noexcept { return kind_; }
    const storage& data() const noexcept { return data_; }

    /// The held alternative, or nullptr: v.as<std::int64_t>() for any integer column, v.as<std::string>() for text.
    template <class T>
    const T* as() const noexcept {
        return std::get_if<T>(&data_);
    }

    friend bool operator==(const value&, const value&) = default;

private:
    type_kind kind_ = type_kind::blob;
    storage data_;
};

/// A value as a CQL literal: 'text' (quotes doubled), 0xcafe, [1, 2], {'k': v}, (1, 'a'), {field: v}, null.
std::string to_cql_literal(const value& v);

namespace detail {
template <>
struct nullable<value> : std::true_type {};
}  // namespace detail

/// Reads any column; writes back to a column of the type it was read from (or a compatible one).
template <>
struct codec<value> {
    static std::string name() { return "cqlcoro::value"; }
    static bool accepts(const cql_type&) noexcept { return true; }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options& o, value& out);
    static error_code encode(const value& v, const cql_type& t, byte_buffer& out);
};

}  // namespace cqlcoro

/// @cond INTERNAL
template <>
struct fmt::formatter<cqlcoro::value> : fmt::formatter<std::string_view> {
    template <class Ctx>
    auto format(const cqlcoro::value& v, Ctx& ctx) const {
        return fmt::formatter<std::string_view>::format(cqlcoro::to_cql_literal(v), ctx);
    }
};
/// @endcond
