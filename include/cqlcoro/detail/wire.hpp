// The protocol's notations (shared by the codec in lib/protocol and the header-only value codecs) ([int], [string], [bytes], ...) as a bounds-checked reader and an appending writer.
//
// The reader has a sticky error: after the first failure every read returns an empty value and the
// error stays. Decoders read a whole message linearly and check `ok()` once where it matters, and a
// count read after a failure is 0, so loops stop. No read ever touches memory past the input.
#pragma once

#include <cqlcoro/error.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cqlcoro::detail {

using bytes_view = std::span<const std::uint8_t>;
using byte_buffer = std::vector<std::uint8_t>;

inline std::string_view as_string_view(bytes_view b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline bytes_view as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

class reader {
public:
    explicit reader(bytes_view in) noexcept : p_(in.data()), end_(in.data() + in.size()) {}

    bool ok() const noexcept { return !ec_; }
    error_code error() const noexcept { return ec_; }
    std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
    const std::uint8_t* position() const noexcept { return p_; }

    void fail(protocol_errc e) noexcept {
        if (!ec_) ec_ = e;
        p_ = end_;
    }

    std::uint8_t u8() noexcept { return take_be<std::uint8_t>(); }
    std::uint16_t u16() noexcept { return take_be<std::uint16_t>(); }
    std::int16_t i16() noexcept { return static_cast<std::int16_t>(take_be<std::uint16_t>()); }
    std::int32_t i32() noexcept { return static_cast<std::int32_t>(take_be<std::uint32_t>()); }
    std::int64_t i64() noexcept { return static_cast<std::int64_t>(take_be<std::uint64_t>()); }

    /// n raw bytes, or an empty view (and truncated_frame) when fewer remain.
    bytes_view raw(std::size_t n) noexcept {
        if (n > remaining()) {
            fail(protocol_errc::truncated_frame);
            return {};
        }
        bytes_view out{p_, n};
        p_ += n;
        return out;
    }

    std::array<std::uint8_t, 16> uuid() noexcept {
        std::array<std::uint8_t, 16> out{};
        auto b = raw(16);
        if (!b.empty()) std::memcpy(out.data(), b.data(), 16);
        return out;
    }

    std::string_view string() noexcept { return as_string_view(raw(u16())); }

    std::string_view long_string() noexcept {
        auto n = i32();
        if (n < 0) {
            fail(protocol_errc::bad_string);
            return {};
        }
        return as_string_view(raw(static_cast<std::size_t>(n)));
    }

    /// [bytes]: nullopt for null (any negative length).
    std::optional<bytes_view> bytes() noexcept {
        auto n = i32();
        if (n < 0 || !ok()) return std::nullopt;
        return raw(static_cast<std::size_t>(n));
    }

    bytes_view short_bytes() noexcept { return raw(u16()); }

    /// A count of elements each at least `min_element_size` bytes long, validated against what
    /// remains, so a hostile count can never drive an allocation larger than the input.
    std::size_t count(std::int64_t n, std::size_t min_element_size) noexcept {
        if (n < 0 || static_cast<std::uint64_t>(n) * min_element_size > remaining()) {
            fail(n < 0 ? protocol_errc::bad_metadata : protocol_errc::truncated_frame);
            return 0;
        }
        return static_cast<std::size_t>(n);
    }

    std::vector<std::string> string_list() {
        std::vector<std::string> out(count(u16(), 2));
        for (auto& s : out) s = std::string(string());
        return out;
    }

    std::vector<std::pair<std::string, std::string>> string_map() {
        std::vector<std::pair<std::string, std::string>> out(count(u16(), 4));
        for (auto& [k, v] : out) {
            k = std::string(string());
            v = std::string(string());
        }
        return out;
    }

    std::vector<std::pair<std::string, std::vector<std::string>>> string_multimap() {
        std::vector<std::pair<std::string, std::vector<std::string>>> out(count(u16(), 4));
        for (auto& [k, v] : out) {
            k = std::string(string());
            v = string_list();
        }
        return out;
    }

    std::vector<std::pair<std::string, std::optional<byte_buffer>>> bytes_map() {
        std::vector<std::pair<std::string, std::optional<byte_buffer>>> out(count(u16(), 6));
        for (auto& [k, v] : out) {
            k = std::string(string());
            if (auto b = bytes()) v.emplace(b->begin(), b->end());
        }
        return out;
    }

    /// [inetaddr]: 4 or 16 address bytes (empty on error).
    bytes_view inetaddr() noexcept {
        auto n = u8();
        if (ok() && n != 4 && n != 16) {
            fail(protocol_errc::bad_inet);
            return {};
        }
        return raw(n);
    }

    /// [unsigned vint] (v5 notation): MSB-first with the extra byte count in the leading one bits.
    std::uint64_t unsigned_vint() noexcept {
        std::uint8_t first = u8();
        int extra = 0;
        while (extra < 8 && (first & (0x80 >> extra))) ++extra;
        std::uint64_t v = extra == 8 ? 0 : (first & (0xFFu >> (extra + 1)));
        for (int i = 0; i < extra; ++i) v = (v << 8) | u8();
        return v;
    }

private:
    template <class T>
    T take_be() noexcept {
        if (remaining() < sizeof(T)) {
            fail(protocol_errc::truncated_frame);
            return 0;
        }
        T v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | p_[i]);
        p_ += sizeof(T);
        return v;
    }

    const std::uint8_t* p_;
    const std::uint8_t* end_;
    error_code ec_;
};

class writer {
public:
    explicit writer(byte_buffer& out) noexcept : out_(out) {}

    byte_buffer& buffer() noexcept { return out_; }
    std::size_t size() const noexcept { return out_.size(); }

    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v) { put_be(v); }
    void i16(std::int16_t v) { put_be(static_cast<std::uint16_t>(v)); }
    void i32(std::int32_t v) { put_be(static_cast<std::uint32_t>(v)); }
    void i64(std::int64_t v) { put_be(static_cast<std::uint64_t>(v)); }
    void raw(bytes_view b) { out_.insert(out_.end(), b.begin(), b.end()); }
    void raw(std::string_view s) { raw(as_bytes(s)); }

    /// Overwrites 4 bytes at `at` with a big-endian int (length back-patching).
    void patch_i32(std::size_t at, std::int32_t v) noexcept {
        auto u = static_cast<std::uint32_t>(v);
        for (int i = 3; i >= 0; --i, u >>= 8) out_[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(u);
    }

    // The caller guarantees the length limits ([short] strings < 64 KiB); encoders check them first.
    void string(std::string_view s) {
        u16(static_cast<std::uint16_t>(s.size()));
        raw(s);
    }
    void long_string(std::string_view s) {
        i32(static_cast<std::int32_t>(s.size()));
        raw(s);
    }
    void bytes(bytes_view b) {
        i32(static_cast<std::int32_t>(b.size()));
        raw(b);
    }
    void null_bytes() { i32(-1); }
    void short_bytes(bytes_view b) {
        u16(static_cast<std::uint16_t>(b.size()));
        raw(b);
    }
    void string_list(std::span<const std::string_view> l) {
        u16(static_cast<std::uint16_t>(l.size()));
        for (auto s : l) string(s);
    }
    void unsigned_vint(std::uint64_t v) {
        int extra = 0;  // bytes after the first
        while (extra < 8 && (v >> (7 * (extra + 1))) != 0) ++extra;
        if (extra == 8) {
            u8(0xFF);
            put_be(v);
            return;
        }
        auto first = static_cast<std::uint8_t>(~(0xFFu >> extra) | (v >> (8 * extra)));
        u8(first);
        for (int i = extra - 1; i >= 0; --i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
    }

private:
    template <class T>
    void put_be(T v) {
        std::uint8_t b[sizeof(T)];
        for (int i = static_cast<int>(sizeof(T)) - 1; i >= 0; --i, v = static_cast<T>(v >> 8)) b[i] = static_cast<std::uint8_t>(v);
        out_.insert(out_.end(), b, b + sizeof(T));
    }

    byte_buffer& out_;
};

}  // namespace cqlcoro::detail
