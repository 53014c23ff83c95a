#include <cqlcoro/bind.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace cqlcoro::detail {

namespace {

// Bounded: a few dozen buffers of at most 4 KiB per thread. `alive` guards a bound_values destroyed
// after this thread's pool (a static one at exit).
struct bind_buffer_pool {
    static constexpr std::size_t max_buffers = 64, max_capacity = 4096;
    std::vector<byte_buffer> free;
    bool alive = true;
    ~bind_buffer_pool() { alive = false; }
};
thread_local bind_buffer_pool bind_buffers;

std::string marker_list(std::span<const column_spec> markers) {
    std::string out;
    for (const auto& m : markers) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", m.name, to_cql_string(m.type));
    return out.empty() ? "none" : out;
}
}  // namespace

byte_buffer take_bind_buffer() noexcept {
    auto& pool = bind_buffers;
    if (!pool.alive || pool.free.empty()) return {};
    byte_buffer b = std::move(pool.free.back());
    pool.free.pop_back();
    return b;
}

void give_bind_buffer(byte_buffer&& b) noexcept {
    auto& pool = bind_buffers;
    if (!pool.alive || b.capacity() == 0 || b.capacity() > bind_buffer_pool::max_capacity) return;
    if (pool.free.size() >= bind_buffer_pool::max_buffers) return;
    if (pool.free.capacity() == 0) {
        try {
            pool.free.reserve(bind_buffer_pool::max_buffers);  // once per thread
        } catch (...) {
            return;
        }
    }
    b.clear();
    pool.free.push_back(std::move(b));
}

void throw_bind_error(error_code ec, std::span<const column_spec> markers, std::size_t i, const std::string& cpp_type) {
    const auto& m = markers[i];
    const auto cql = to_cql_string(m.type);
    if (ec == type_errc::type_mismatch)
        throw error(ec, fmt::format("bind marker {} ('{}') is {}, which cannot take a {}", i, m.name, cql, cpp_type));
    throw error(ec, fmt::format("bind marker {} ('{}', {}) given a {}: {}", i, m.name, cql, cpp_type, ec.message()));
}

void throw_bind_count(std::span<const column_spec> markers, std::size_t given) {
    throw error(type_errc::wrong_value_count, fmt::format("the statement has {} bind markers ({}) but {} values were given",
                                                          markers.size(), marker_list(markers), given));
}

void throw_bind_name(std::span<const column_spec> markers, std::string_view name) {
    throw error(type_errc::unknown_name, fmt::format("the statement has no bind marker '{}' (markers: {})", name, marker_list(markers)));
}

std::size_t marker_position(std::span<const column_spec> markers, std::string_view name) noexcept {
    // Exact first; then case-insensitively, as unquoted CQL identifiers are.
    for (std::size_t i = 0; i < markers.size(); ++i)
        if (markers[i].name == name) return i;
    auto lower_eq = [](std::string_view a, std::string_view b) {
        return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
                   return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
               });
    };
    for (std::size_t i = 0; i < markers.size(); ++i)
        if (lower_eq(markers[i].name, name)) return i;
    return markers.size();
}

}  // namespace cqlcoro::detail
