// Schema metadata from the schema tables' rows: Cassandra 2.x's system.schema_* layout and 3.0+'s
// system_schema.* layout. Sans-I/O: the session runs the queries (all of a table, or the rows of one
// keyspace or element for a targeted refresh) and hands the results here.
#pragma once

#include <cqlcoro/metadata.hpp>
#include <cqlcoro/result.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cqlcoro::cluster {

enum class schema_layout { v2, v3 };  // system.schema_* (Cassandra 2.x) or system_schema.* (3.0+)

/// The rows of the schema tables (any subset: a full read, or the rows of one keyspace or table).
/// A table the server does not have (functions before 2.2, views before 3.0) stays empty.
struct schema_rows {
    std::optional<result> keyspaces, tables, columns, indexes, views, types, functions, aggregates;
};

/// The queries of each schema table in a layout, optionally restricted to a keyspace (and to one
/// element of it: `name` is the table, type, function or aggregate). The keys are schema_rows' members.
struct schema_queries {
    std::string keyspaces, tables, columns, indexes, views, types, functions, aggregates;
};
schema_queries queries_for(schema_layout layout, const std::string& keyspace = {});

/// What the rows describe: keyspaces (when keyspace rows came), and the elements found, each placed in
/// its keyspace (created empty when its row did not come).
struct schema_fragment {
    std::map<std::string, keyspace_metadata> keyspaces;
    std::vector<std::string> keyspaces_with_rows;  ///< keyspaces whose own row was read
};
schema_fragment parse_schema(schema_layout layout, const schema_rows& rows);

/// Cassandra 2.x's strategy_options text ('{"replication_factor":"3"}'); empty on malformed text.
std::map<std::string, std::string> parse_json_object(std::string_view text);

/// A CQL string literal of `s` (for the targeted queries' WHERE clauses).
std::string cql_literal(std::string_view s);

}  // namespace cqlcoro::cluster
