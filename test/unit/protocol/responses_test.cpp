// Byte-exact response bodies, written from the v3/v4/v5 specs (sections 4.2.x and 9).
#include "protocol/responses.hpp"
#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using cqlcoro::test::hex;

namespace {

frame_header header(std::uint8_t version, opcode op, std::uint8_t flags = 0) {
    return {version, true, flags, 0, op, 0};
}

response decode(std::uint8_t version, opcode op, const byte_buffer& body, std::uint8_t flags = 0) {
    auto r = decode_response(header(version, op, flags), body);
    INFO((r ? std::string() : r.error().message()));
    REQUIRE(r.has_value());
    return std::move(*r);
}

error_code decode_error(std::uint8_t version, opcode op, const byte_buffer& body) {
    auto r = decode_response(header(version, op), body);
    REQUIRE_FALSE(r.has_value());
    return r.error();
}

template <class T>
const T& body_as(const response& r) {
    REQUIRE(std::holds_alternative<T>(r.body));
    return std::get<T>(r.body);
}

template <class T>
const T& result_as(const response& r) {
    const auto& res = body_as<result_response>(r);
    REQUIRE(std::holds_alternative<T>(res.body));
    return std::get<T>(res.body);
}

template <class T>
const T& error_detail(const response& r) {
    const auto& e = body_as<error_response>(r);
    REQUIRE(std::holds_alternative<T>(e.detail));
    return std::get<T>(e.detail);
}

// A v4 rows result: global spec ks.t, columns (k int, v text), 2 rows (1,'a') and (2,null), a paging state.
const auto rows_v4 = hex(
    "00000002 | 00000003 00000002 | 00000002 0102"
    "| 0002 'ks' 0001 't' | 0001 'k' 0009 | 0001 'v' 000d"
    "| 00000002 | 00000004 00000001 00000001 'a' | 00000004 00000002 ffffffff");

}  // namespace

TEST_CASE("responses: READY, AUTHENTICATE and SUPPORTED") {
    decode(4, opcode::ready, {});
    auto a = decode(3, opcode::authenticate, hex("002f 'org.apache.cassandra.auth.PasswordAuthenticator'"));
    CHECK(body_as<authenticate_response>(a).authenticator == "org.apache.cassandra.auth.PasswordAuthenticator");
    auto s = decode(3, opcode::supported, hex("0002 000b 'CQL_VERSION' 0001 0005 '3.2.0' 000b 'COMPRESSION' 0002 "
                                              "0006 'snappy' 0003 'lz4'"));
    const auto& opts = body_as<supported_response>(s).options;
    REQUIRE(opts.size() == 2);
    CHECK(opts[1].first == "COMPRESSION");
    CHECK(opts[1].second == std::vector<std::string>{"snappy", "lz4"});
}

TEST_CASE("responses: AUTH_CHALLENGE and AUTH_SUCCESS carry a token that may be null") {
    auto c = decode(4, opcode::auth_challenge, hex("00000002 abcd"));
    CHECK(*body_as<auth_challenge_response>(c).token == hex("abcd"));
    auto s = decode(4, opcode::auth_success, hex("ffffffff"));
    CHECK_FALSE(body_as<auth_success_response>(s).token.has_value());
}

TEST_CASE("responses: an ERROR without a structured body keeps its code and message") {
    auto r = decode(3, opcode::error, hex("00002000 0005 'oops!'"));
    const auto& e = body_as<error_response>(r);
    CHECK(e.code == static_cast<std::int32_t>(server_error::syntax_error));
    CHECK(e.message == "oops!");
    CHECK(std::holds_alternative<std::monostate>(e.detail));
    // A code this codec does not know is still a usable error.
    CHECK(body_as<error_response>(decode(4, opcode::error, hex("00007777 0001 'x'"))).code == 0x7777);
}

TEST_CASE("responses: unavailable, read and write timeouts") {
    auto u = error_detail<unavailable_error>(decode(3, opcode::error, hex("00001000 0000 | 0006 00000002 00000001")));
    CHECK(u.cl == consistency::local_quorum);
    CHECK(u.required == 2);
    CHECK(u.alive == 1);

    auto rt = error_detail<read_timeout_error>(decode(3, opcode::error, hex("00001200 0000 | 0004 00000001 00000002 01")));
    CHECK(rt.cl == consistency::quorum);
    CHECK(rt.received == 1);
    CHECK(rt.block_for == 2);
    CHECK(rt.data_present);

    auto wt = error_detail<write_timeout_error>(decode(4, opcode::error, hex("00001100 0000 | 0001 00000000 00000001 0006 'SIMPLE'")));
    CHECK(wt.write_type == "SIMPLE");
    CHECK_FALSE(wt.contentions.has_value());

    // v5: a CAS write timeout adds the number of contentions.
    auto cas = error_detail<write_timeout_error>(decode(5, opcode::error, hex("00001100 0000 | 0009 00000000 00000001 0003 'CAS' 0003")));
    CHECK(cas.cl == consistency::local_serial);
    CHECK(cas.contentions == 3);
}

TEST_CASE("responses: read and write failures carry a count in v4 and a reason map in v5") {
    auto rf4 = error_detail<read_failure_error>(decode(4, opcode::error, hex("00001300 0000 | 0001 00000000 00000001 00000002 00")));
    CHECK(rf4.num_failures == 2);
    CHECK_FALSE(rf4.data_present);

    auto rf5 = error_detail<read_failure_error>(decode(5, opcode::error, hex("00001300 0000 | 0001 00000000 00000001"
                                                                             "| 00000001 04 7f000002 0001 | 01")));
    REQUIRE(rf5.reasons.size() == 1);
    CHECK(rf5.reasons[0].endpoint.address_string() == "127.0.0.2");
    CHECK(rf5.reasons[0].code == 1);
    CHECK(rf5.num_failures == 1);
    CHECK(rf5.data_present);

    auto wf5 = error_detail<write_failure_error>(decode(5, opcode::error, hex("00001500 0000 | 0004 00000001 00000002"
                                                                              "| 00000001 10 00000000000000000000000000000001 0000"
                                                                              "| 0005 'BATCH'")));
    CHECK(wf5.reasons[0].endpoint.address_string() == "0:0:0:0:0:0:0:1");
    CHECK(wf5.write_type == "BATCH");

    auto wf4 = error_detail<write_failure_error>(decode(4, opcode::error, hex("00001500 0000 | 0004 00000001 00000002 00000001 0007 'COUNTER'")));
    CHECK(wf4.num_failures == 1);
    CHECK(wf4.write_type == "COUNTER");
}

TEST_CASE("responses: function failure, already exists, unprepared, CAS write unknown") {
    auto ff = error_detail<function_failure_error>(decode(4, opcode::error, hex("00001400 0000 | 0002 'ks' 0001 'f' 0002 0003 'int' 0004 'text'")));
    CHECK(ff.function == "f");
    CHECK(ff.arg_types == std::vector<std::string>{"int", "text"});

    auto ae = error_detail<already_exists_error>(decode(3, opcode::error, hex("00002400 0000 | 0002 'ks' 0000")));
    CHECK(ae.keyspace == "ks");
    CHECK(ae.table.empty());

    auto up = error_detail<unprepared_error>(decode(3, opcode::error, hex("00002500 0000 | 0003 010203")));
    CHECK(up.id == hex("010203"));

    auto cu = error_detail<cas_write_unknown_error>(decode(5, opcode::error, hex("00001700 0000 | 0008 00000001 00000002")));
    CHECK(cu.cl == consistency::serial);
    CHECK(cu.block_for == 2);
}

TEST_CASE("responses: RESULT void and set_keyspace") {
    CHECK_NOTHROW(result_as<void_result>(decode(3, opcode::result, hex("00000001"))));
    CHECK(result_as<set_keyspace_result>(decode(3, opcode::result, hex("00000003 0002 'ks'"))).keyspace == "ks");
}

TEST_CASE("responses: RESULT rows with global table spec, paging state, and the cells as a validated view") {
    auto r = decode(4, opcode::result, rows_v4);
    const auto& rows = result_as<rows_result>(r);
    CHECK(rows.metadata.column_count == 2);
    CHECK(rows.metadata.paging_state == hex("0102"));
    REQUIRE(rows.metadata.columns.size() == 2);
    CHECK(rows.metadata.columns[0].keyspace == "ks");
    CHECK(rows.metadata.columns[1].table == "t");
    CHECK(rows.metadata.columns[1].name == "v");
    CHECK(rows.metadata.columns[0].type.kind == type_kind::int_);
    CHECK(rows.metadata.columns[1].type.kind == type_kind::varchar);
    CHECK(rows.row_count == 2);
    CHECK(rows.content.size() == (8 + 5) + (8 + 4));
    CHECK(rows.content.data() == rows_v4.data() + rows_v4.size() - rows.content.size());  // zero copy
}

TEST_CASE("responses: RESULT rows without metadata (skip_metadata) and with per-column table specs") {
    auto nm = decode(4, opcode::result, hex("00000002 | 00000004 00000001 | 00000001 | 00000001 07"));
    const auto& rows = result_as<rows_result>(nm);
    CHECK(rows.metadata.columns.empty());
    CHECK(rows.row_count == 1);

    auto pc = decode(3, opcode::result, hex("00000002 | 00000000 00000001 | 0001 'a' 0001 'b' 0001 'c' 0003 | 00000000"));
    const auto& c = result_as<rows_result>(pc).metadata.columns.at(0);
    CHECK(c.keyspace == "a");
    CHECK(c.table == "b");
    CHECK(c.type.kind == type_kind::blob);
}

TEST_CASE("responses: v5 rows metadata may announce a new result metadata id") {
    auto r = decode(5, opcode::result, hex("00000002 | 0000000c 00000001 | 0002 abcd | 00000000"));
    CHECK(result_as<rows_result>(r).metadata.new_metadata_id == hex("abcd"));
}

TEST_CASE("responses: column types decode recursively: collections, tuples, UDTs and custom classes") {
    auto r = decode(4, opcode::result, hex(
        "00000002 | 00000001 00000004 | 0002 'ks' 0001 't'"
        "| 0001 'a' 0021 000d 0020 0009"                                  // map<text, list<int>>
        "| 0001 'b' 0031 0002 0013 0014"                                  // tuple<smallint, tinyint>
        "| 0001 'c' 0030 0002 'ks' 0004 'addr' 0002 0004 'city' 000d 0003 'zip' 0009"  // udt
        "| 0001 'd' 0000 0028 'org.apache.cassandra.db.marshal.DateType'"
        "| 00000000"));
    const auto& cols = result_as<rows_result>(r).metadata.columns;
    REQUIRE(cols.size() == 4);
    CHECK(to_cql_string(cols[0].type) == "map<text, list<int>>");
    CHECK(to_cql_string(cols[1].type) == "tuple<smallint, tinyint>");
    CHECK(cols[2].type.kind == type_kind::udt);
    CHECK(cols[2].type.field_names == std::vector<std::string>{"city", "zip"});
    CHECK(to_cql_string(cols[2].type) == "ks.addr");
    CHECK(cols[3].type.custom_class == "org.apache.cassandra.db.marshal.DateType");
}

TEST_CASE("responses: types newer than the protocol version arrive as marshal classes and get their own kinds") {
    // A v3 row of Cassandra 5.0: smallint, tinyint, date and time have ids from v4 on, duration from v5.
    auto r = decode(3, opcode::result, hex(
        "00000002 | 00000001 00000006 | 0002 'ks' 0001 't'"
        "| 0001 'a' 0000 0029 'org.apache.cassandra.db.marshal.ShortType'"
        "| 0001 'b' 0000 0028 'org.apache.cassandra.db.marshal.ByteType'"
        "| 0001 'c' 0000 002e 'org.apache.cassandra.db.marshal.SimpleDateType'"
        "| 0001 'd' 0000 0028 'org.apache.cassandra.db.marshal.TimeType'"
        "| 0001 'e' 0020 0000 002c 'org.apache.cassandra.db.marshal.DurationType'"  // list<duration>
        "| 0001 'f' 0000 0028 'org.apache.cassandra.db.marshal.DateType'"            // timestamp's old name: stays custom
        "| 00000000"));
    const auto& cols = result_as<rows_result>(r).metadata.columns;
    REQUIRE(cols.size() == 6);
    CHECK(to_cql_string(cols[0].type) == "smallint");
    CHECK(to_cql_string(cols[1].type) == "tinyint");
    CHECK(to_cql_string(cols[2].type) == "date");
    CHECK(to_cql_string(cols[3].type) == "time");
    CHECK(to_cql_string(cols[4].type) == "list<duration>");
    CHECK(cols[0].type.custom_class.empty());
    CHECK(cols[5].type.kind == type_kind::custom);
}

TEST_CASE("responses: RESULT prepared in v3 (no pk indexes), v4 (pk indexes) and v5 (result metadata id)") {
    auto v3 = decode(3, opcode::result, hex("00000004 | 0002 0a0b | 00000001 00000001 0002 'ks' 0001 't' 0001 'k' 0009"
                                            "| 00000004 00000000"));
    const auto& p3 = result_as<prepared_result>(v3);
    CHECK(p3.id == hex("0a0b"));
    CHECK(p3.variables.columns.at(0).name == "k");
    CHECK(p3.variables.pk_indexes.empty());
    CHECK(p3.result.flags == metadata_flag::no_metadata);

    auto v4 = decode(4, opcode::result, hex("00000004 | 0001 0a | 00000001 00000002 00000001 0001"
                                            "| 0002 'ks' 0001 't' 0001 'a' 0009 0001 'k' 0009 | 00000004 00000000"));
    CHECK(result_as<prepared_result>(v4).variables.pk_indexes == std::vector<std::uint16_t>{1});

    auto v5 = decode(5, opcode::result, hex("00000004 | 0001 0a | 0002 cccc | 00000000 00000000 00000000"
                                            "| 00000001 00000001 0002 'ks' 0001 't' 0001 'v' 000d"));
    const auto& p5 = result_as<prepared_result>(v5);
    CHECK(p5.result_metadata_id == hex("cccc"));
    CHECK(p5.result.columns.at(0).name == "v");
}

TEST_CASE("responses: RESULT and EVENT schema changes for each target") {
    auto ks = result_as<schema_change_result>(decode(3, opcode::result, hex("00000005 0007 'CREATED' 0008 'KEYSPACE' 0002 'ks'")));
    CHECK(ks.change.target == "KEYSPACE");
    CHECK(ks.change.keyspace == "ks");
    auto fn = result_as<schema_change_result>(decode(4, opcode::result, hex("00000005 0007 'DROPPED' 0008 'FUNCTION' 0002 'ks' 0001 'f' 0001 0003 'int'")));
    CHECK(fn.change.arg_types == std::vector<std::string>{"int"});
    auto ev = body_as<event_response>(decode(3, opcode::event, hex("000d 'SCHEMA_CHANGE' 0007 'UPDATED' 0005 'TABLE' 0002 'ks' 0001 't'")));
    CHECK(std::get<schema_change_event>(ev.event).change.name == "t");
    CHECK(decode_error(3, opcode::result, hex("00000005 0007 'CREATED' 0004 'VIEW' 0002 'ks'")) == protocol_errc::bad_schema_change);
}

TEST_CASE("responses: topology and status events carry an [inet] with port") {
    auto t = body_as<event_response>(decode(3, opcode::event, hex("000f 'TOPOLOGY_CHANGE' 0008 'NEW_NODE' 04 7f000003 00002352")));
    const auto& tc = std::get<topology_change_event>(t.event);
    CHECK(tc.change == "NEW_NODE");
    CHECK(tc.address.address_string() == "127.0.0.3");
    CHECK(tc.address.port == 9042);
    auto s = body_as<event_response>(decode(4, opcode::event, hex("000d 'STATUS_CHANGE' 0004 'DOWN' 10 fe800000000000000000000000000001 00002352")));
    CHECK(std::get<status_change_event>(s.event).address.address_string() == "fe80:0:0:0:0:0:0:1");
    CHECK(decode_error(3, opcode::event, hex("0004 'NOPE'")) == protocol_errc::unknown_event);
}

TEST_CASE("responses: tracing id, warnings and custom payload precede the message, in that order") {
    auto r = decode(4, opcode::result,
                    hex("0102030405060708090a0b0c0d0e0f10 | 0001 0004 'warn' | 0001 0001 'k' 00000001 ff | 00000001"),
                    frame_flag::tracing | frame_flag::warning | frame_flag::custom_payload);
    CHECK(r.tracing_id->at(15) == 0x10);
    CHECK(r.warnings == std::vector<std::string>{"warn"});
    CHECK(r.custom_payload.at(0).first == "k");
    CHECK(r.custom_payload.at(0).second == hex("ff"));
    CHECK_NOTHROW(result_as<void_result>(r));
}

TEST_CASE("responses: every truncation of a valid message is an error, never a crash or over-read") {
    for (std::size_t n = 0; n < rows_v4.size(); ++n) {
        byte_buffer cut(rows_v4.begin(), rows_v4.begin() + static_cast<std::ptrdiff_t>(n));
        CHECK_FALSE(decode_response(header(4, opcode::result), cut).has_value());
    }
}

TEST_CASE("responses: rows whose cells do not match the metadata are rejected") {
    // A cell claims 100 bytes; 1 is there.
    CHECK(decode_error(4, opcode::result, hex("00000002 00000004 00000001 00000001 00000064 07")) == protocol_errc::bad_rows);
    // Two billion rows announced in a few bytes: rejected without walking them.
    CHECK(decode_error(4, opcode::result, hex("00000002 00000004 00000001 7fffffff 00000000")) == protocol_errc::bad_rows);
    CHECK(decode_error(4, opcode::result, hex("00000002 00000004 00000001 ffffffff")) == protocol_errc::bad_rows);
    CHECK(decode_error(4, opcode::result, hex("00000002 00000004 ffffffff 00000000")) == protocol_errc::bad_metadata);
    // Two billion rows of no columns take no bytes: rejected too (found by fuzz_cluster_rows, whose
    // reading of them looped past its time limit). No rows of no columns is an empty result.
    CHECK(decode_error(4, opcode::result, hex("00000002 00000000 00000000 7fffffff")) == protocol_errc::bad_rows);
    CHECK(decode_response(header(4, opcode::result), hex("00000002 00000000 00000000 00000000")).has_value());
}

TEST_CASE("responses: malformed metadata gives a precise error") {
    // pk index 5 with 1 bound column
    CHECK(decode_error(4, opcode::result, hex("00000004 0001 0a 00000001 00000001 00000001 0005")) == protocol_errc::bad_metadata);
    // unknown type id 0x0099
    CHECK(decode_error(4, opcode::result, hex("00000002 00000001 00000001 0001 'a' 0001 'b' 0001 'c' 0099 00000000")) ==
          protocol_errc::unknown_type);
    CHECK(decode_error(4, opcode::result, hex("00000009")) == protocol_errc::unknown_result_kind);
}

TEST_CASE("responses: a type nesting bomb stops at the depth limit") {
    byte_buffer body = hex("00000002 00000001 00000001 0001 'a' 0001 'b' 0001 'c'");
    for (int i = 0; i < 10000; ++i) body.insert(body.end(), {0x00, 0x20});  // list<list<list<...
    body.insert(body.end(), {0x00, 0x09, 0, 0, 0, 0});
    CHECK(decode_error(4, opcode::result, body) == protocol_errc::type_nesting_too_deep);
}

TEST_CASE("responses: a request opcode or a missing response bit is a protocol violation") {
    CHECK(decode_error(4, opcode::query, {}) == protocol_errc::unexpected_opcode);
    frame_header h = header(4, opcode::ready);
    h.response = false;
    CHECK(decode_response(h, {}).error() == protocol_errc::not_a_response);
}

TEST_CASE("responses: frame_body decompresses flagged v3/v4 bodies and leaves others alone") {
    byte_buffer plain = hex("00000001");
    byte_buffer packed, scratch;
    compress_body(compression::lz4, plain, packed);
    frame_header h = header(4, opcode::result, frame_flag::compression);
    auto body = frame_body(h, packed, compression::lz4, 1 << 20, scratch);
    REQUIRE(body.has_value());
    CHECK(byte_buffer(body->begin(), body->end()) == plain);
    CHECK(frame_body(h, packed, compression::none, 1 << 20, scratch).error() == protocol_errc::compression_not_negotiated);
    h.flags = 0;
    CHECK(frame_body(h, plain, compression::lz4, 1 << 20, scratch)->data() == plain.data());
}

TEST_CASE("responses: version rejections are recognised in each server's dialect") {
    auto err = [](std::int32_t code, std::string msg) { return error_response{code, std::move(msg), {}}; };
    // Cassandra 2.1: a server error in a v3 frame.
    CHECK(rejects_protocol_version(header(3, opcode::error),
                                   err(0x0000, "java.lang.ProtocolException: Invalid or unsupported protocol version: 4"), 4));
    // Newer servers: a protocol error in the requested version's frame.
    CHECK(rejects_protocol_version(header(5, opcode::error), err(0x000A, "Invalid or unsupported protocol version (5)"), 5));
    CHECK(rejects_protocol_version(header(5, opcode::error),
                                   err(0x000A, "Beta version of the protocol used (5/v5-beta), but USE_BETA flag is unset"), 5));
    // Other errors are not version rejections.
    CHECK_FALSE(rejects_protocol_version(header(4, opcode::error), err(0x000A, "Unknown opcode 7"), 4));
    CHECK_FALSE(rejects_protocol_version(header(3, opcode::error), err(0x0100, "bad credentials"), 4));
}
