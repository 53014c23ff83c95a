// A column of a result, or a bind marker of a prepared statement.
#pragma once

#include <cqlcoro/cql_type.hpp>

#include <string>

namespace cqlcoro {

struct column_spec {
    std::string keyspace;
    std::string table;
    std::string name;
    cql_type type;
    friend bool operator==(const column_spec&, const column_spec&) = default;
};

}  // namespace cqlcoro
