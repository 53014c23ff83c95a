#include <cqlcoro/cql_type.hpp>
#include <cqlcoro/error.hpp>

#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;

namespace {
std::string round(std::string_view s) {
    auto t = parse_cql_type(s);
    INFO(s);
    REQUIRE(t.has_value());
    return to_cql_string(*t);
}
}  // namespace

TEST_CASE("type strings: every simple CQL type parses, case-insensitively") {
    for (auto n : {"ascii", "bigint", "blob", "boolean", "counter", "decimal", "double", "float", "int", "timestamp",
                   "uuid", "text", "varint", "timeuuid", "inet", "date", "time", "smallint", "tinyint", "duration"})
        CHECK(round(n) == n);
    CHECK(round("VARCHAR") == "text");
    CHECK(round("  Int ") == "int");
}

TEST_CASE("type strings: nested collections, tuples, frozen and vectors") {
    CHECK(round("map<text, frozen<list<int>>>") == "map<text, frozen<list<int>>>");
    CHECK(round("set<frozen<tuple<int,text , uuid>>>") == "set<frozen<tuple<int, text, uuid>>>");
    CHECK(round("vector<float, 3>") == "vector<float, 3>");
    auto v = parse_cql_type("vector<float,1536>");
    CHECK(v->dimension == 1536);
    CHECK(v->params.at(0).kind == type_kind::float_);
    CHECK(parse_cql_type("frozen<list<int>>")->frozen);
}

TEST_CASE("type strings: user-defined types by name, with or without keyspace") {
    auto t = parse_cql_type("frozen<ks.address>");
    REQUIRE(t.has_value());
    CHECK(t->kind == type_kind::udt);
    CHECK(t->keyspace == "ks");
    CHECK(t->name == "address");
    CHECK(parse_cql_type("address")->name == "address");
}

TEST_CASE("type strings: bare identifiers fold to lower case; quoted ones keep case and print quoted") {
    auto t = parse_cql_type("frozen<KS.Address>");
    CHECK(t->keyspace == "ks");
    CHECK(t->name == "address");
    auto q = parse_cql_type("\"My KS\".\"Odd \"\"Name\"\"\"");
    REQUIRE(q.has_value());
    CHECK(q->keyspace == "My KS");
    CHECK(q->name == "Odd \"Name\"");
    CHECK(round(to_cql_string(*q)) == to_cql_string(*q));
    CHECK(to_cql_string(*q) == "\"My KS\".\"Odd \"\"Name\"\"\"");
    CHECK(round("ks.\"MixedCase\"") == "ks.\"MixedCase\"");
    CHECK(round("\"list\"") == "\"list\"");  // a UDT named like a keyword stays quoted
    CHECK_FALSE(parse_cql_type("\"unterminated").has_value());
    CHECK_FALSE(parse_cql_type("\"\"").has_value());
}

TEST_CASE("type strings: Cassandra 2.1 marshal class names") {
    CHECK(round("org.apache.cassandra.db.marshal.Int32Type") == "int");
    CHECK(round("org.apache.cassandra.db.marshal.MapType(org.apache.cassandra.db.marshal.UTF8Type,"
                "org.apache.cassandra.db.marshal.ListType(org.apache.cassandra.db.marshal.TimeUUIDType))") ==
          "map<text, list<timeuuid>>");
    CHECK(round("org.apache.cassandra.db.marshal.ReversedType(org.apache.cassandra.db.marshal.TimestampType)") == "timestamp");
    CHECK(round("org.apache.cassandra.db.marshal.FrozenType(org.apache.cassandra.db.marshal.SetType(org.apache.cassandra.db.marshal.InetAddressType))") ==
          "frozen<set<inet>>");
    CHECK(round("org.apache.cassandra.db.marshal.TupleType(org.apache.cassandra.db.marshal.ShortType,org.apache.cassandra.db.marshal.ByteType)") ==
          "tuple<smallint, tinyint>");
    CHECK(round("org.apache.cassandra.db.marshal.DateType") == "timestamp");  // the legacy name of timestamp
}

TEST_CASE("type strings: marshal UserType decodes its hex-encoded name and field names") {
    // UserType(ks, hex("address"), hex("city"):UTF8Type, hex("zip"):Int32Type)
    auto t = parse_cql_type("org.apache.cassandra.db.marshal.UserType(ks,61646472657373,"
                            "63697479:org.apache.cassandra.db.marshal.UTF8Type,7a6970:org.apache.cassandra.db.marshal.Int32Type)");
    REQUIRE(t.has_value());
    CHECK(t->kind == type_kind::udt);
    CHECK(t->keyspace == "ks");
    CHECK(t->name == "address");
    CHECK(t->field_names == std::vector<std::string>{"city", "zip"});
    CHECK(t->params.at(1).kind == type_kind::int_);
}

TEST_CASE("type strings: VectorType and unknown classes") {
    auto v = parse_cql_type("org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType, 3)");
    REQUIRE(v.has_value());
    CHECK(to_cql_string(*v) == "vector<float, 3>");
    auto c = parse_cql_type("'com.example.MyType(a,b)'");
    REQUIRE(c.has_value());
    CHECK(c->kind == type_kind::custom);
    CHECK(c->custom_class == "com.example.MyType(a,b)");
    CHECK(to_cql_string(*c) == "'com.example.MyType(a,b)'");
    auto q = parse_cql_type("'a.B(''x'')'");
    REQUIRE(q.has_value());
    CHECK(q->custom_class == "a.B('x')");
    CHECK(to_cql_string(*q) == "'a.B(''x'')'");
}

TEST_CASE("type strings: malformed strings and nesting bombs are errors") {
    for (auto bad : {"", "list<int", "map<int>", "list<int,text>", "vector<float>", "vector<float, 0>", "tuple<>",
                     "int int", "'unterminated", "org.apache.cassandra.db.marshal.ListType(", "frozen<>",
                     "org.apache.cassandra.db.marshal.UserType(ks,zz)"}) {
        INFO(bad);
        CHECK_FALSE(parse_cql_type(bad).has_value());
    }
    std::string bomb;
    for (int i = 0; i < 1000; ++i) bomb += "list<";
    bomb += "int";
    for (int i = 0; i < 1000; ++i) bomb += ">";
    CHECK(parse_cql_type(bomb).error() == type_errc::type_nesting_too_deep);
}
