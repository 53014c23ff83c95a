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
#include <type_traits>

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
        T out{};
        if (row.get(it->second, out)) return std::nullopt;  // a column of an unexpected type in this version: as absent
        return out;
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
        // The cell as T, then as text; nothing when it does not decode.
        auto text = [&]<class T>(std::type_identity<T>, auto to_text) -> std::optional<std::string> {
            T v{};
            if (row.get(i, v)) return std::nullopt;
            return to_text(v);
        };
        switch (t.kind) {
        case type_kind::varchar:
        case type_kind::ascii: return text(std::type_identity<std::string>{}, [](const std::string& v) { return v; });
        case type_kind::int_: return text(std::type_identity<std::int32_t>{}, [](std::int32_t v) { return std::to_string(v); });
        case type_kind::bigint: return text(std::type_identity<std::int64_t>{}, [](std::int64_t v) { return std::to_string(v); });
        case type_kind::double_: return text(std::type_identity<double>{}, [](double v) { return fmt::format("{}", v); });
        case type_kind::boolean: return text(std::type_identity<bool>{}, [](bool v) { return std::string(v ? "true" : "false"); });
        case type_kind::map:
            if (t.params.size() == 2 && t.params[0].kind == type_kind::varchar && t.params[1].kind == type_kind::varchar)
                return text(std::type_identity<std::map<std::string, std::string>>{}, [](const std::map<std::string, std::string>& m) {
                    std::string out = "{";
                    for (const auto& [k, v] : m) out += fmt::format("{}'{}': '{}'", out.size() > 1 ? ", " : "", k, v);
                    return out + "}";
                });
            return std::nullopt;
        default: return std::nullopt;
        }
    }
    const result& rows() const noexcept { return r_; }

private:
    const result& r_;
    std::map<std::string, std::size_t, std::less<>> index_;
};

}  // namespace cqlcoro::cluster
