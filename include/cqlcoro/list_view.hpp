// list_view<E>: a list or set cell read without allocating, element by element.
//
//   for (std::optional<std::int32_t> tag : row.get<cqlcoro::list_view<std::optional<std::int32_t>>>("tags")) ...
#pragma once

#include <cqlcoro/codec.hpp>
#include <cqlcoro/error.hpp>

#include <cstddef>
#include <iterator>
#include <optional>
#include <string>

namespace cqlcoro {

/// A list or set cell as a view: no allocation, elements decoded as they are iterated. The structure
/// (count and element lengths) is checked when the cell is read; an element that does not decode
/// throws cqlcoro::error while iterating. Valid while the result page lives.
template <class E>
class list_view {
public:
    class iterator {
    public:
        using value_type = E;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        E operator*() const {
            detail::reader r(bytes_view(p_, static_cast<std::size_t>(end_ - p_)));
            auto cell = r.bytes();
            E out{};
            if (auto ec = decode_cell(cell, *type_, {}, out)) throw error(ec, "list element as " + codec<E>::name());
            return out;
        }
        iterator& operator++() noexcept {
            const std::int32_t n = static_cast<std::int32_t>(detail::load_be<std::uint32_t>(p_));
            p_ += 4 + (n > 0 ? n : 0);
            return *this;
        }
        iterator operator++(int) noexcept {
            auto t = *this;
            ++*this;
            return t;
        }
        friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.p_ == b.p_; }

    private:
        friend class list_view;
        iterator(const std::uint8_t* p, const std::uint8_t* end, const cql_type* t) noexcept : p_(p), end_(end), type_(t) {}
        const std::uint8_t* p_ = nullptr;
        const std::uint8_t* end_ = nullptr;
        const cql_type* type_ = nullptr;
    };

    list_view() = default;
    std::size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    iterator begin() const noexcept { return {elems_.data(), elems_.data() + elems_.size(), type_}; }
    iterator end() const noexcept { return {elems_.data() + elems_.size(), elems_.data() + elems_.size(), type_}; }

private:
    friend struct codec<list_view<E>>;
    bytes_view elems_;
    std::size_t count_ = 0;
    const cql_type* type_ = nullptr;
};

template <class E>
struct codec<list_view<E>> {
    static std::string name() { return "cqlcoro::list_view<" + codec<E>::name() + ">"; }
    static bool accepts(const cql_type& t) noexcept { return detail::is_list_like(t.kind) && codec<E>::accepts(t.params.at(0)); }
    static error_code decode(bytes_view b, const cql_type& t, const decode_options&, list_view<E>& out) {
        detail::reader r(b);
        const auto n = r.i32();
        if (!r.ok() || n < 0 || static_cast<std::size_t>(n) > r.remaining() / 4) return type_errc::bad_collection;
        const auto* first = r.position();
        const std::size_t fixed = detail::fixed_size(t.params[0].kind);
        for (std::int32_t i = 0; i < n; ++i) {
            auto cell = r.bytes();
            if (!r.ok()) return type_errc::bad_collection;
            if (fixed && cell && !cell->empty() && cell->size() != fixed) return type_errc::bad_cell_size;
        }
        if (r.remaining() != 0) return type_errc::bad_collection;
        out.elems_ = bytes_view(first, static_cast<std::size_t>(r.position() - first));
        out.count_ = static_cast<std::size_t>(n);
        out.type_ = &t.params[0];
        return {};
    }
};

}  // namespace cqlcoro
