// Rows of a result page as views over the received frame.
//
//   for (auto row : page.rows()) {
//       auto id = row.get<cqlcoro::uuid>(0);             // by position
//       auto name = row.get<std::string_view>("name");   // by name; a view into the frame
//       auto [a, b] = row.as<std::tuple<int, std::string>>();
//       auto user = row.as<user_struct>();               // fields by position, or by field_names<T>
//   }
//
// Whether a C++ type can hold a column's CQL type is checked once per column set (a prepared
// statement's result columns, or one page's metadata) and C++ type, not per row or per page.
// A mismatch, a null read into a non-optional type, or a malformed cell throws cqlcoro::error naming
// the column, its CQL type and the C++ type. Views (string_view, bytes_view, row_view) are valid while
// the page lives. A page can be read from several threads at once.
#pragma once

#include <cqlcoro/codec.hpp>
#include <cqlcoro/column_spec.hpp>
#include <cqlcoro/list_view.hpp>

#include <boost/container/small_vector.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cqlcoro {

class rows_view;

namespace detail {

struct cell {
    const std::uint8_t* data = nullptr;
    std::int32_t size = -1;  // -1: null
};

template <class T>
inline constexpr char type_tag = 0;

/// Column metadata with its name index and type-check cache, shared by every page that has these
/// columns (all pages of a prepared statement), so a page costs no metadata work of its own.
struct column_set {
    explicit column_set(std::vector<column_spec> c);

    std::vector<column_spec> columns;
    std::unordered_map<std::string_view, std::size_t> by_name;  // first of duplicates wins
    std::unique_ptr<std::atomic<const void*>[]> checked;         // per column, then one for whole rows
};

struct page_data {
    page_data(std::shared_ptr<const column_set> s, std::size_t rows)
        : set(std::move(s)), columns(set->columns), row_count(rows), checked(set->checked.get()) {}

    std::shared_ptr<const column_set> set;
    const std::vector<column_spec>& columns;
    std::size_t row_count = 0;
    boost::container::small_vector<cell, 8> cells;  // row-major; a small page needs no allocation
    std::atomic<const void*>* checked;              // the set's: the last C++ type found to fit
    decode_options options;
    std::shared_ptr<const void> keep_alive;

    std::optional<bytes_view> at(std::size_t row, std::size_t col) const noexcept {
        const cell& c = cells[row * columns.size() + col];
        if (c.size < 0) return std::nullopt;
        return bytes_view(c.data, static_cast<std::size_t>(c.size));
    }
};

[[noreturn]] void throw_column_error(error_code ec, const page_data& p, std::size_t col, std::size_t row,
                                     const std::string& cpp_type);
[[noreturn]] void throw_row_error(error_code ec, const page_data& p, std::size_t row, const std::string& cpp_type);
std::size_t column_position(const page_data& p, std::string_view name);

}  // namespace detail

class row_view {
    // Defined first: later members use their deduced return types.
    const detail::page_data* page_ = nullptr;
    std::size_t row_ = 0;

    auto name_at() const {
        return [p = page_](std::size_t j) -> std::string_view { return p->columns[j].name; };
    }
    auto type_at() const {
        return [p = page_](std::size_t j) -> const cql_type& { return p->columns[j].type; };
    }

public:
    row_view() = default;

    std::size_t size() const noexcept { return page_->columns.size(); }
    std::size_t index() const noexcept { return row_; }

    /// The raw cell (nullopt for null).
    std::optional<bytes_view> raw(std::size_t col) const {
        check_col(col);
        return page_->at(row_, col);
    }
    bool is_null(std::size_t col) const { return !raw(col).has_value(); }
    bool is_null(std::string_view name) const { return is_null(detail::column_position(*page_, name)); }

    /// Column `col` as T; throws cqlcoro::error on a type mismatch, a null (unless T is std::optional)
    /// or a malformed cell.
    template <class T>
    T get(std::size_t col) const {
        T out{};
        if (auto ec = get(col, out)) detail::throw_column_error(ec, *page_, col, row_, codec<T>::name());
        return out;
    }

    /// Column `name` as T (the name is looked up in a table built once per page).
    template <class T>
    T get(std::string_view name) const {
        return get<T>(detail::column_position(*page_, name));
    }

    /// Column `col` into `out`, without throwing: type_errc::row_out_of_range, type_mismatch,
    /// unexpected_null (unless T is std::optional) or the cell's decoding error; `out` is unspecified
    /// then. For code that treats a mismatch as an answer rather than a failure.
    template <class T>
    error_code get(std::size_t col, T& out) const {
        static_assert(has_codec<T>, CQLCORO_NO_CODEC_MESSAGE);
        if (col >= page_->columns.size()) return type_errc::row_out_of_range;
        auto& seen = page_->checked[col];
        if (seen.load(std::memory_order_relaxed) != &detail::type_tag<T>) {
            if (!codec<T>::accepts(page_->columns[col].type)) return type_errc::type_mismatch;
            seen.store(&detail::type_tag<T>, std::memory_order_relaxed);
        }
        return decode_cell(page_->at(row_, col), page_->columns[col].type, page_->options, out);
    }

    /// The whole row as a std::tuple (columns in order) or a struct (by position, or by name with
    /// field_names<T>).
    template <class T>
    T as() const {
        check_row_type<T>();
        T out{};
        error_code ec;
        if constexpr (is_tuple<T>::value) {
            ec = std::apply([&](auto&... f) {
                error_code e;
                std::size_t i = 0;
                ((e = e ? e : decode_cell(page_->at(row_, i), page_->columns[i].type, page_->options, f), ++i), ...);
                return e;
            }, out);
        } else {
            ec = detail::decode_struct(out, size(), name_at(), type_at(), [&](std::size_t j) { return page_->at(row_, j); },
                                       page_->options);
        }
        if (ec) detail::throw_row_error(ec, *page_, row_, row_type_name<T>());
        return out;
    }

private:
    friend class rows_view;
    row_view(const detail::page_data* p, std::size_t row) noexcept : page_(p), row_(row) {}

    template <class T>
    struct is_tuple : std::false_type {};
    template <class... Ts>
    struct is_tuple<std::tuple<Ts...>> : std::true_type {};

    void check_col(std::size_t col) const {
        if (col >= page_->columns.size()) detail::throw_column_error(type_errc::row_out_of_range, *page_, col, row_, "");
    }

    template <class T>
    void check_row_type() const {
        auto& seen = page_->checked[page_->columns.size()];
        if (seen.load(std::memory_order_relaxed) == &detail::type_tag<T>) return;
        bool ok;
        if constexpr (is_tuple<T>::value) {
            ok = std::tuple_size_v<T> == size() && [&]<std::size_t... I>(std::index_sequence<I...>) {
                return (codec<std::tuple_element_t<I, T>>::accepts(page_->columns[I].type) && ...);
            }(std::make_index_sequence<std::tuple_size_v<T>>{});
        } else {
            ok = detail::struct_accepts<T>(size(), name_at(), type_at());
        }
        if (!ok) detail::throw_row_error(type_errc::type_mismatch, *page_, row_, row_type_name<T>());
        seen.store(&detail::type_tag<T>, std::memory_order_relaxed);
    }

    template <class T>
    static std::string row_type_name() {
        if constexpr (is_tuple<T>::value)
            return codec<T>::name();
        else
            return "a struct of " + std::to_string(boost::pfr::tuple_size_v<T>) + " fields";
    }

};

class rows_view {
public:
    class iterator {
    public:
        using value_type = row_view;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        row_view operator*() const noexcept { return {page_, row_}; }
        iterator& operator++() noexcept {
            ++row_;
            return *this;
        }
        iterator operator++(int) noexcept {
            auto t = *this;
            ++row_;
            return t;
        }
        friend bool operator==(const iterator&, const iterator&) = default;

    private:
        friend class rows_view;
        iterator(const detail::page_data* p, std::size_t r) noexcept : page_(p), row_(r) {}
        const detail::page_data* page_ = nullptr;
        std::size_t row_ = 0;
    };

    explicit rows_view(const detail::page_data* p) noexcept : page_(p) {}

    std::size_t size() const noexcept { return page_->row_count; }
    bool empty() const noexcept { return size() == 0; }
    iterator begin() const noexcept { return {page_, 0}; }
    iterator end() const noexcept { return {page_, size()}; }
    row_view operator[](std::size_t i) const {
        if (i >= size()) detail::throw_row_error(type_errc::row_out_of_range, *page_, i, "");
        return {page_, i};
    }

private:
    const detail::page_data* page_;
};

namespace detail {
/// Indexes `content` (row_count * columns [bytes] cells) into d.cells; throws cqlcoro::error when the
/// cells do not match the metadata. `content` must outlive `d`'s use.
/// Indexes the cells of `content` into `d`; empty, or why the content does not match the metadata.
std::string_view index_cells(page_data& d, bytes_view content);
}  // namespace detail

/// One page of rows: the column metadata and the cells, indexed once when the page is made.
class result_page {
public:
    /// `content` holds row_count * columns.size() [bytes] cells (as a RESULT's rows content does) and
    /// must stay alive as long as `keep_alive`; throws cqlcoro::error if the cells do not match.
    result_page(std::vector<column_spec> columns, std::size_t row_count, bytes_view content,
                std::shared_ptr<const void> keep_alive, decode_options options = {});
    /// The same with columns shared with other pages (a prepared statement's result columns).
    result_page(std::shared_ptr<const detail::column_set> columns, std::size_t row_count, bytes_view content,
                std::shared_ptr<const void> keep_alive, decode_options options = {});
    /// A page whose data its owner already holds (in the same allocation as the received frame, say):
    /// `data` is indexed over `content` here; its keep_alive may stay empty when `data` owns the bytes.
    result_page(std::shared_ptr<detail::page_data> data, bytes_view content);

    rows_view rows() const noexcept { return rows_view(data_.get()); }
    const std::vector<column_spec>& columns() const noexcept { return data_->columns; }
    std::size_t size() const noexcept { return data_->row_count; }
    /// Position of column `name`; throws cqlcoro::error (unknown_name) if there is none.
    std::size_t column(std::string_view name) const { return detail::column_position(*data_, name); }

private:
    friend class result;
    struct indexed_t {};
    // A page already indexed, owned through `data` (a result's page: no second pass over the cells).
    result_page(indexed_t, std::shared_ptr<const detail::page_data> data) noexcept : data_(std::move(data)) {}

    std::shared_ptr<const detail::page_data> data_;
};

}  // namespace cqlcoro
