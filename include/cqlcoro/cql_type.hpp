// The CQL type tree, as it arrives in result metadata.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cqlcoro {

/// Type ids as the native protocol encodes them in an [option].
enum class type_kind : std::uint16_t {
    custom = 0x0000,     ///< a server-side class name (`custom_class`), e.g. a Cassandra 5 VectorType
    ascii = 0x0001,
    bigint = 0x0002,
    blob = 0x0003,
    boolean = 0x0004,
    counter = 0x0005,
    decimal = 0x0006,
    double_ = 0x0007,
    float_ = 0x0008,
    int_ = 0x0009,
    timestamp = 0x000B,
    uuid = 0x000C,
    varchar = 0x000D,    ///< text
    varint = 0x000E,
    timeuuid = 0x000F,
    inet = 0x0010,
    date = 0x0011,       ///< v4+
    time = 0x0012,       ///< v4+
    smallint = 0x0013,   ///< v4+
    tinyint = 0x0014,    ///< v4+
    duration = 0x0015,   ///< v5
    list = 0x0020,       ///< params: [element]
    map = 0x0021,        ///< params: [key, value]
    set = 0x0022,        ///< params: [element]
    udt = 0x0030,        ///< params: field types; field_names; keyspace and name
    tuple = 0x0031,      ///< params: element types
};

/// A CQL type. Collections, tuples and UDTs hold their component types in `params`.
struct cql_type {
    type_kind kind = type_kind::blob;
    std::vector<cql_type> params;          ///< component types (see type_kind)
    std::string custom_class;              ///< for custom: the marshal class name
    std::string keyspace;                  ///< for udt: its keyspace
    std::string name;                      ///< for udt: its name
    std::vector<std::string> field_names;  ///< for udt: one per entry of params

    friend bool operator==(const cql_type&, const cql_type&) = default;
};

/// The CQL spelling of a type: "map<text, frozen<list<int>>>" (UDTs by name, custom types quoted).
std::string to_cql_string(const cql_type& t);

}  // namespace cqlcoro
