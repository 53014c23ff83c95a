#include <cqlcoro/rows.hpp>

#include <fmt/format.h>

namespace cqlcoro {
namespace detail {

void throw_column_error(error_code ec, const page_data& p, std::size_t col, std::size_t row, const std::string& cpp_type) {
    if (col >= p.columns.size())
        throw error(ec, fmt::format("column {} does not exist: the result has {} columns", col, p.columns.size()));
    const auto& c = p.columns[col];
    const auto cql = to_cql_string(c.type);
    if (ec == type_errc::type_mismatch)
        throw error(ec, fmt::format("column '{}' is {}, which cannot be read as {}", c.name, cql, cpp_type));
    if (ec == type_errc::unexpected_null)
        throw error(ec, fmt::format("column '{}' ({}) is null in row {}: read it as std::optional<{}>", c.name, cql, row, cpp_type));
    throw error(ec, fmt::format("column '{}' ({}) in row {} as {}: {}", c.name, cql, row, cpp_type, ec.message()));
}

void throw_row_error(error_code ec, const page_data& p, std::size_t row, const std::string& cpp_type) {
    if (ec == type_errc::row_out_of_range)
        throw error(ec, fmt::format("row {} does not exist: the page has {} rows", row, p.row_count));
    std::string cols;
    for (const auto& c : p.columns) cols += fmt::format("{}{} {}", cols.empty() ? "" : ", ", c.name, to_cql_string(c.type));
    if (ec == type_errc::type_mismatch)
        throw error(ec, fmt::format("the row ({}) cannot be read as {}: field count or a field type does not match", cols, cpp_type));
    throw error(ec, fmt::format("row {} ({}) as {}: {}", row, cols, cpp_type, ec.message()));
}

column_set::column_set(std::vector<column_spec> c)
    : columns(std::move(c)), checked(std::make_unique<std::atomic<const void*>[]>(columns.size() + 1)) {
    for (std::size_t i = 0; i < columns.size(); ++i) by_name.emplace(columns[i].name, i);
}

std::size_t column_position(const page_data& p, std::string_view name) {
    if (auto it = p.set->by_name.find(name); it != p.set->by_name.end()) return it->second;
    std::string cols;
    for (const auto& c : p.columns) cols += fmt::format("{}{}", cols.empty() ? "" : ", ", c.name);
    throw error(type_errc::unknown_name, fmt::format("no column '{}' in this result (columns: {})", name, cols));
}

}  // namespace detail

result_page::result_page(std::vector<column_spec> columns, std::size_t row_count, bytes_view content,
                         std::shared_ptr<const void> keep_alive, decode_options options)
    : result_page(std::make_shared<const detail::column_set>(std::move(columns)), row_count, content, std::move(keep_alive), options) {}

result_page::result_page(std::shared_ptr<const detail::column_set> columns, std::size_t row_count, bytes_view content,
                         std::shared_ptr<const void> keep_alive, decode_options options)
    : result_page(
          [&] {
              auto d = std::make_shared<detail::page_data>(std::move(columns), row_count);
              d->options = options;
              d->keep_alive = std::move(keep_alive);
              return d;
          }(),
          content) {}

std::string_view detail::index_cells(page_data& d, bytes_view content) {
    const std::size_t ncols = d.columns.size();
    const std::size_t row_count = d.row_count;
    if (ncols != 0 && row_count > content.size() / 4 / ncols) return "result page: more cells announced than the content holds";
    d.cells.resize(row_count * ncols);
    detail::reader r(content);
    for (auto& c : d.cells) {
        const auto n = r.i32();
        if (n >= 0) {
            c.data = r.raw(static_cast<std::size_t>(n)).data();
            c.size = n;
        }
        if (!r.ok()) return "result page: a cell overruns the rows content";
    }
    return {};
}

result_page::result_page(std::shared_ptr<detail::page_data> d, bytes_view content) {
    if (auto why = detail::index_cells(*d, content); !why.empty()) throw error(type_errc::bad_collection, std::string(why));
    data_ = std::move(d);
}

}  // namespace cqlcoro
