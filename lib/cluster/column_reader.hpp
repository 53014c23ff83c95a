// Reading system tables' rows by column name, tolerating the differences between server versions: a
// column this version lacks, or of an unexpected type, reads as absent.
#pragma once

#include <cqlcoro/error.hpp>
#include <cqlcoro/result.hpp>

#include <fmt/format.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace cqlcoro::cluster {

class column_reader {
public:
    explicit column_reader(const result& r) : r_(r) {
        const auto& cols = r.columns();
        for (std::size_t i = 0; i < cols.size(); ++i) index_.emplace(cols[i].name, i);
    }
    bool has(std::string_view name) const { return index_.find(name) != index_.end(); }
    const column_spec* spec(std::string_view name) const {
        auto it = index_.find(name);
        return it == index_.end() ? nullptr : &r_.columns()[it->second];
    }
    template <class T>
    std::optional<T> get(const row_view& row, std::string_view name) const {
        auto it = index_.find(name);
        if (it == index_.end() || row.is_null(it->second)) return std::nullopt;
        try {
            return row.get<T>(it->second);
        } catch (const cqlcoro::error&) {  // a column of an unexpected type in this version: as absent
            return std::nullopt;
        }
    }
    template <class T>
    T get_or(const row_view& row, std::string_view name, T fallback) const {
        auto v = get<T>(row, name);
        return v ? std::move(*v) : std::move(fallback);
    }
    // Any text, int, boolean or double cell as text (table options).
    std::optional<std::string> as_text(const row_view& row, std::size_t i) const {
        if (row.is_null(i)) return std::nullopt;
        const auto& t = r_.columns()[i].type;
        try {
            switch (t.kind) {
            case type_kind::varchar:
            case type_kind::ascii: return row.get<std::string>(i);
            case type_kind::int_: return std::to_string(row.get<std::int32_t>(i));
            case type_kind::bigint: return std::to_string(row.get<std::int64_t>(i));
            case type_kind::double_: return fmt::format("{}", row.get<double>(i));
            case type_kind::boolean: return row.get<bool>(i) ? "true" : "false";
            case type_kind::map: {
                if (t.params.size() == 2 && t.params[0].kind == type_kind::varchar && t.params[1].kind == type_kind::varchar) {
                    std::string out = "{";
                    for (const auto& [k, v] : row.get<std::map<std::string, std::string>>(i))
                        out += fmt::format("{}'{}': '{}'", out.size() > 1 ? ", " : "", k, v);
                    return out + "}";
                }
                return std::nullopt;
            }
            default: return std::nullopt;
            }
        } catch (const cqlcoro::error&) {
            return std::nullopt;
        }
    }
    const result& rows() const noexcept { return r_; }

private:
    const result& r_;
    std::map<std::string, std::size_t, std::less<>> index_;
};

}  // namespace cqlcoro::cluster
