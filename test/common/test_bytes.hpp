// Helpers for byte-exact tests: write expected frames as annotated hex.
#pragma once

#include "protocol/wire.hpp"

#include <boost/system/result.hpp>
#include <catch2/catch_tostring.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace cqlcoro::test {

/// Bytes from hex digits; spaces, '|' and "..."-quoted text are allowed for readability:
/// hex("0004 'abcd' 00") == {0,4,'a','b','c','d',0}.
inline protocol::byte_buffer hex(std::string_view s) {
    protocol::byte_buffer out;
    auto nib = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        throw std::invalid_argument("bad hex digit");
    };
    for (std::size_t i = 0; i < s.size();) {
        char c = s[i];
        if (c == ' ' || c == '|' || c == '\n') {
            ++i;
        } else if (c == '\'') {
            auto end = s.find('\'', i + 1);
            for (auto j = i + 1; j < end; ++j) out.push_back(static_cast<std::uint8_t>(s[j]));
            i = end + 1;
        } else {
            out.push_back(static_cast<std::uint8_t>(nib(c) << 4 | nib(s[i + 1])));
            i += 2;
        }
    }
    return out;
}

inline std::string to_hex(protocol::bytes_view b) {
    static constexpr char d[] = "0123456789abcdef";
    std::string s;
    for (auto x : b) {
        s += d[x >> 4];
        s += d[x & 15];
    }
    return s;
}

}  // namespace cqlcoro::test

// Catch would otherwise try (and fail) to print the value of a result through operator<<.
template <class T>
struct Catch::StringMaker<boost::system::result<T>> {
    static std::string convert(const boost::system::result<T>& r) {
        return r ? std::string("a value") : "error: " + r.error().message();
    }
};
