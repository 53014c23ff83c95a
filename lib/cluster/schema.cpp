#include "cluster/schema.hpp"

#include "cluster/column_reader.hpp"

#include <cqlcoro/value.hpp>

#include <boost/json/src.hpp>  // Boost.JSON, header-only: compiled here once

#include <set>

#include <fmt/format.h>

#include <algorithm>

namespace cqlcoro::cluster {

namespace {

std::string type_text(const std::string& raw) {
    auto t = parse_cql_type(raw);
    return t ? to_cql_string(*t) : raw;
}

cql_type type_of(const std::string& raw) {
    auto t = parse_cql_type(raw);
    if (t) return *t;
    cql_type c = cql_type::of(type_kind::custom);
    c.custom_class = raw;
    return c;
}

// A 2.2 aggregate's serialized initial state as a CQL literal; a value its state type does not
// decode (a custom type, say) is shown as a blob literal.
std::string initial_condition_literal(byte_buffer bytes, const std::string& state_type) {
    value v;
    if (const auto t = type_of(state_type);
        t.kind != type_kind::custom && !codec<value>::decode(bytes_view(bytes.data(), bytes.size()), t, decode_options{}, v))
        return to_cql_literal(v);
    return to_cql_literal(value(type_kind::blob, std::move(bytes)));
}

column_kind kind_from(std::string_view k) {
    if (k == "partition_key") return column_kind::partition_key;
    if (k == "clustering" || k == "clustering_key") return column_kind::clustering;
    if (k == "static") return column_kind::static_;
    if (k == "compact_value") return column_kind::compact_value;
    return column_kind::regular;
}

// Columns: partition key by position, clustering by position, then the rest by name (as CQL lists them).
void order_columns(table_metadata& t) {
    auto rank = [](const column_metadata& c) {
        switch (c.kind) {
        case column_kind::partition_key: return 0;
        case column_kind::clustering: return 1;
        default: return 2;
        }
    };
    std::stable_sort(t.columns.begin(), t.columns.end(), [&](const column_metadata& a, const column_metadata& b) {
        if (rank(a) != rank(b)) return rank(a) < rank(b);
        if (rank(a) < 2) return a.position < b.position;
        return a.name < b.name;
    });
    t.partition_key.clear();
    t.clustering.clear();
    for (const auto& c : t.columns) {
        if (c.kind == column_kind::partition_key) t.partition_key.push_back(c.name);
        if (c.kind == column_kind::clustering) t.clustering.push_back(c.name);
    }
}

std::string signature_of(const std::string& name, const std::vector<std::string>& types) {
    std::string s = name + "(";
    for (std::size_t i = 0; i < types.size(); ++i) s += (i ? "," : "") + types[i];
    return s + ")";
}

}  // namespace

std::map<std::string, std::string> parse_json_object(std::string_view text) {
    std::map<std::string, std::string> out;
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) return out;
    for (const auto& [k, val] : v.as_object()) {
        if (val.is_string()) out.emplace(std::string(k), std::string(val.as_string()));
        else out.emplace(std::string(k), boost::json::serialize(val));
    }
    return out;
}

std::string cql_literal(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += '\'';
        out += c;
    }
    return out + "'";
}

schema_queries queries_for(schema_layout layout, const std::string& keyspace) {
    const auto where = keyspace.empty() ? std::string() : " WHERE keyspace_name = " + cql_literal(keyspace);
    schema_queries q;
    if (layout == schema_layout::v3) {
        q.keyspaces = "SELECT * FROM system_schema.keyspaces" + where;
        q.tables = "SELECT * FROM system_schema.tables" + where;
        q.columns = "SELECT * FROM system_schema.columns" + where;
        q.indexes = "SELECT * FROM system_schema.indexes" + where;
        q.views = "SELECT * FROM system_schema.views" + where;
        q.types = "SELECT * FROM system_schema.types" + where;
        q.functions = "SELECT * FROM system_schema.functions" + where;
        q.aggregates = "SELECT * FROM system_schema.aggregates" + where;
    } else {
        q.keyspaces = "SELECT * FROM system.schema_keyspaces" + where;
        q.tables = "SELECT * FROM system.schema_columnfamilies" + where;
        q.columns = "SELECT * FROM system.schema_columns" + where;
        q.types = "SELECT * FROM system.schema_usertypes" + where;
        q.functions = "SELECT * FROM system.schema_functions" + where;
        q.aggregates = "SELECT * FROM system.schema_aggregates" + where;
        // 2.x: indexes are columns' properties; there are no views.
    }
    return q;
}

schema_fragment parse_schema(schema_layout layout, const schema_rows& rows) {
    schema_fragment out;
    auto ks_of = [&](const std::string& name) -> keyspace_metadata& {
        auto& k = out.keyspaces[name];
        k.name = name;
        return k;
    };
    const bool v3 = layout == schema_layout::v3;

    if (rows.keyspaces) {
        column_reader r(*rows.keyspaces);
        for (auto row : rows.keyspaces->rows()) {
            auto name = r.get<std::string>(row, "keyspace_name");
            if (!name) continue;
            auto& k = ks_of(*name);
            out.keyspaces_with_rows.push_back(*name);
            k.durable_writes = r.get_or<bool>(row, "durable_writes", true);
            if (v3) {
                auto rep = r.get_or<std::map<std::string, std::string>>(row, "replication", {});
                k.replication.strategy_class = rep.count("class") ? rep["class"] : "";
                rep.erase("class");
                k.replication.options = std::move(rep);
            } else {
                k.replication.strategy_class = r.get_or<std::string>(row, "strategy_class", "");
                k.replication.options = parse_json_object(r.get_or<std::string>(row, "strategy_options", "{}"));
            }
        }
    }

    auto table_rows = [&](const std::optional<result>& res, bool views) {
        if (!res) return;
        column_reader r(*res);
        const char* name_col = views ? "view_name" : (v3 ? "table_name" : "columnfamily_name");
        static const std::set<std::string> skip{"keyspace_name", "table_name", "columnfamily_name", "view_name", "id", "cf_id",
                                                "base_table_id", "base_table_name", "where_clause", "include_all_columns",
                                                "column_aliases", "key_aliases", "value_alias", "key_validator", "comparator",
                                                "default_validator", "subcomparator", "type", "is_dense", "flags"};
        for (auto row : res->rows()) {
            auto ks = r.get<std::string>(row, "keyspace_name");
            auto name = r.get<std::string>(row, name_col);
            if (!ks || !name) continue;
            auto& k = ks_of(*ks);
            auto& t = (views ? k.views : k.tables)[*name];
            t.keyspace = *ks;
            t.name = *name;
            t.is_view = views;
            if (views) {
                t.base_table = r.get_or<std::string>(row, "base_table_name", "");
                t.where_clause = r.get_or<std::string>(row, "where_clause", "");
            }
            for (std::size_t i = 0; i < res->columns().size(); ++i) {
                const auto& col = res->columns()[i].name;
                if (skip.count(col)) continue;
                if (auto v = r.as_text(row, i)) t.options[col] = *v;
            }
        }
    };
    table_rows(rows.tables, false);
    table_rows(rows.views, true);

    auto find_table = [&](const std::string& ks, const std::string& name) -> table_metadata& {
        auto& k = ks_of(ks);
        if (auto it = k.views.find(name); it != k.views.end()) return it->second;
        auto& t = k.tables[name];
        t.keyspace = ks;
        t.name = name;
        return t;
    };

    if (rows.columns) {
        column_reader r(*rows.columns);
        for (auto row : rows.columns->rows()) {
            auto ks = r.get<std::string>(row, "keyspace_name");
            auto table = r.get<std::string>(row, v3 ? "table_name" : "columnfamily_name");
            auto name = r.get<std::string>(row, "column_name");
            if (!ks || !table || !name) continue;
            auto& t = find_table(*ks, *table);
            column_metadata c;
            c.name = *name;
            if (v3) {
                auto raw = r.get_or<std::string>(row, "type", "");
                c.type = type_of(raw);
                c.type_text = type_text(raw);
                c.kind = kind_from(r.get_or<std::string>(row, "kind", "regular"));
                c.position = r.get_or<std::int32_t>(row, "position", -1);
                c.descending = r.get_or<std::string>(row, "clustering_order", "none") == "desc";
            } else {
                auto raw = r.get_or<std::string>(row, "validator", "");
                c.type = type_of(raw);
                c.type_text = type_text(raw);
                c.kind = kind_from(r.get_or<std::string>(row, "type", "regular"));
                c.position = r.get_or<std::int32_t>(row, "component_index", 0);
                c.descending = raw.find("ReversedType(") != std::string::npos;
                // 2.x: an index is a property of its column.
                if (auto idx = r.get<std::string>(row, "index_name"); idx && !idx->empty()) {
                    index_metadata i;
                    i.name = *idx;
                    i.kind = r.get_or<std::string>(row, "index_type", "");
                    i.target = c.name;
                    i.options = parse_json_object(r.get_or<std::string>(row, "index_options", "{}"));
                    t.indexes.push_back(std::move(i));
                }
            }
            if (c.kind != column_kind::partition_key && c.kind != column_kind::clustering) c.position = -1;
            t.columns.push_back(std::move(c));
        }
    }

    if (rows.indexes) {
        column_reader r(*rows.indexes);
        for (auto row : rows.indexes->rows()) {
            auto ks = r.get<std::string>(row, "keyspace_name");
            auto table = r.get<std::string>(row, "table_name");
            auto name = r.get<std::string>(row, "index_name");
            if (!ks || !table || !name) continue;
            index_metadata i;
            i.name = *name;
            i.kind = r.get_or<std::string>(row, "kind", "");
            i.options = r.get_or<std::map<std::string, std::string>>(row, "options", {});
            if (auto it = i.options.find("target"); it != i.options.end()) i.target = it->second;
            find_table(*ks, *table).indexes.push_back(std::move(i));
        }
    }

    for (auto& [_, k] : out.keyspaces) {
        for (auto& [__, t] : k.tables) order_columns(t);
        for (auto& [__, t] : k.views) order_columns(t);
    }

    if (rows.types) {
        column_reader r(*rows.types);
        for (auto row : rows.types->rows()) {
            auto ks = r.get<std::string>(row, "keyspace_name");
            auto name = r.get<std::string>(row, "type_name");
            if (!ks || !name) continue;
            user_type_metadata u;
            u.keyspace = *ks;
            u.name = *name;
            auto names = r.get_or<std::vector<std::string>>(row, "field_names", {});
            auto types = r.get_or<std::vector<std::string>>(row, "field_types", {});
            for (std::size_t i = 0; i < names.size() && i < types.size(); ++i) u.fields.emplace_back(names[i], type_text(types[i]));
            ks_of(*ks).user_types[*name] = std::move(u);
        }
    }

    if (rows.functions) {
        column_reader r(*rows.functions);
        for (auto row : rows.functions->rows()) {
            auto ks = r.get<std::string>(row, "keyspace_name");
            auto name = r.get<std::string>(row, "function_name");
            if (!ks || !name) continue;
            function_metadata f;
            f.keyspace = *ks;
            f.name = *name;
            f.argument_names = r.get_or<std::vector<std::string>>(row, "argument_names", {});
            for (const auto& a : r.get_or<std::vector<std::string>>(row, "argument_types", {})) f.argument_types.push_back(type_text(a));
            f.return_type = type_text(r.get_or<std::string>(row, "return_type", ""));
            f.language = r.get_or<std::string>(row, "language", "");
            f.body = r.get_or<std::string>(row, "body", "");
            f.called_on_null_input = r.get_or<bool>(row, "called_on_null_input", false);
            ks_of(*ks).functions[f.signature()] = std::move(f);
        }
    }

    if (rows.aggregates) {
        column_reader r(*rows.aggregates);
        for (auto row : rows.aggregates->rows()) {
            auto ks = r.get<std::string>(row, "keyspace_name");
            auto name = r.get<std::string>(row, "aggregate_name");
            if (!ks || !name) continue;
            aggregate_metadata a;
            a.keyspace = *ks;
            a.name = *name;
            for (const auto& t : r.get_or<std::vector<std::string>>(row, "argument_types", {})) a.argument_types.push_back(type_text(t));
            a.state_function = r.get_or<std::string>(row, "state_func", "");
            const auto state_type_raw = r.get_or<std::string>(row, "state_type", "");
            a.state_type = type_text(state_type_raw);
            a.final_function = r.get_or<std::string>(row, "final_func", "");
            a.return_type = type_text(r.get_or<std::string>(row, "return_type", ""));
            if (const auto* s = r.spec("initcond"); s && s->type.kind == type_kind::blob) {
                // 2.2 keeps the initial state serialized in the state type: shown as 3.0+ does, a CQL literal.
                if (auto b = r.get<byte_buffer>(row, "initcond")) a.initial_condition = initial_condition_literal(std::move(*b), state_type_raw);
            } else {
                a.initial_condition = r.get_or<std::string>(row, "initcond", "");
            }
            ks_of(*ks).aggregates[a.signature()] = std::move(a);
        }
    }
    return out;
}

}  // namespace cqlcoro::cluster

namespace cqlcoro {

std::string function_metadata::signature() const { return cluster::signature_of(name, argument_types); }
std::string aggregate_metadata::signature() const { return cluster::signature_of(name, argument_types); }

}  // namespace cqlcoro
