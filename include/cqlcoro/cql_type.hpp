// The CQL type tree, as it arrives in result metadata.
#pragma once

#include <boost/system/result.hpp>

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
    /// Cassandra 5 vector<element, dimension>. Not a protocol id: it travels as the custom class
    /// org.apache.cassandra.db.marshal.VectorType, which the codec turns into this kind.
    vector = 0xF000,
};

/// A CQL type. Collections, tuples and UDTs hold their component types in `params`.
struct cql_type {
    type_kind kind = type_kind::blob;
    std::vector<cql_type> params;          ///< component types (see type_kind)
    std::string custom_class;              ///< for custom: the marshal class name
    std::string keyspace;                  ///< for udt: its keyspace
    std::string name;                      ///< for udt: its name
    std::vector<std::string> field_names;  ///< for udt: one per entry of params
    std::int32_t dimension = 0;            ///< for vector: the number of elements
    bool frozen = false;                   ///< frozen<...> in a type string (not visible in result metadata)

    friend bool operator==(const cql_type&, const cql_type&) = default;

    // Built member by member, so that users' builds with -Wextra see no missing initializers.
    static cql_type of(type_kind k) {
        cql_type t;
        t.kind = k;
        return t;
    }
    static cql_type with(type_kind k, std::vector<cql_type> params) {
        cql_type t;
        t.kind = k;
        t.params = std::move(params);
        return t;
    }
    static cql_type list_of(cql_type e) { return with(type_kind::list, {std::move(e)}); }
    static cql_type set_of(cql_type e) { return with(type_kind::set, {std::move(e)}); }
    static cql_type map_of(cql_type k, cql_type v) { return with(type_kind::map, {std::move(k), std::move(v)}); }
    static cql_type tuple_of(std::vector<cql_type> elems) { return with(type_kind::tuple, std::move(elems)); }
    static cql_type vector_of(cql_type e, std::int32_t dimension) {
        auto t = with(type_kind::vector, {std::move(e)});
        t.dimension = dimension;
        return t;
    }
};

/// Parses a type as CQL writes it ("map<text, frozen<list<int>>>", "vector<float, 3>", "ks.udt_name",
/// "'custom.Class'") or as a Cassandra marshal class name, as the 2.1 schema tables and custom types
/// carry it ("org.apache.cassandra.db.marshal.ListType(org.apache.cassandra.db.marshal.Int32Type)",
/// including UserType with hex-encoded names and VectorType). A UDT named in CQL syntax has no fields.
boost::system::result<cql_type> parse_cql_type(std::string_view text);

/// The CQL spelling of a type: "map<text, frozen<list<int>>>" (UDTs by name, custom types quoted).
/// Parsing it back with parse_cql_type gives the same type (UDT fields aside).
std::string to_cql_string(const cql_type& t);

}  // namespace cqlcoro
