// The server half of the codec, checked by round trips through the (byte-exact tested) client half.
#include "protocol/server_side.hpp"
#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

#include <array>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using cqlcoro::test::hex;
using cqlcoro::test::to_hex;

namespace {

// encode -> decode -> encode must give the same bytes.
void check_request_round_trip(std::uint8_t version, const request& req, const frame_options& opts = {}) {
    byte_buffer first;
    REQUIRE_FALSE(encode_request(version, req, opts, first));
    auto h = decode_header(first);
    REQUIRE(h.has_value());
    auto d = decode_request(*h, bytes_view(first).subspan(header_size));
    INFO("v" << int(version) << " " << to_hex(first));
    REQUIRE(d.has_value());
    frame_options again = opts;
    again.custom_payload = d->custom_payload;
    byte_buffer second;
    REQUIRE_FALSE(encode_request(version, d->message, again, second));
    CHECK(to_hex(second) == to_hex(first));
}

// A body decoded, re-encoded and decoded again gives the same bytes.
void check_response_round_trip(std::uint8_t version, opcode op, const byte_buffer& body, std::uint8_t flags = 0) {
    frame_header h{version, true, flags, 9, op, static_cast<std::uint32_t>(body.size())};
    auto r = decode_response(h, body);
    REQUIRE(r.has_value());
    byte_buffer out;
    REQUIRE_FALSE(encode_response(version, 9, *r, out));
    INFO("v" << int(version) << " " << to_hex(body));
    CHECK(to_hex(bytes_view(out).subspan(header_size)) == to_hex(body));
    auto h2 = decode_header(out);
    REQUIRE(h2.has_value());
    CHECK(h2->op == op);
    CHECK(h2->flags == flags);
    CHECK(h2->stream == 9);
}

const std::array<std::uint8_t, 4> one{0, 0, 0, 1};

}  // namespace

TEST_CASE("server side: every request decodes to what was encoded, in every version") {
    std::array<value_view, 3> values{value_view{one}, value_view::null(), value_view{one}};
    std::array<std::string_view, 3> names{"a", "b", "c"};
    auto paging = hex("0102");
    auto id = hex("cafe");
    std::array<std::pair<std::string_view, std::string_view>, 2> opts{{{"CQL_VERSION", "3.0.0"}, {"COMPRESSION", "lz4"}}};
    std::array<std::string_view, 2> events{"STATUS_CHANGE", "TOPOLOGY_CHANGE"};
    std::array<batch_statement, 2> stmts{batch_statement{std::string_view("INSERT"), values},
                                         batch_statement{bytes_view(id), {}}};
    for (std::uint8_t v : {3, 4, 5}) {
        check_request_round_trip(v, options_request{});
        check_request_round_trip(v, startup_request{opts});
        check_request_round_trip(v, auth_response_request{as_bytes("token")});
        check_request_round_trip(v, auth_response_request{});
        check_request_round_trip(v, register_request{events});
        check_request_round_trip(v, prepare_request{"SELECT 1", v >= 5 ? "ks" : ""});
        check_request_round_trip(v, query_request{"Q", {.cl = consistency::each_quorum, .values = values, .names = names,
                                                        .skip_metadata = true, .page_size = 10, .paging_state = bytes_view(paging),
                                                        .serial_consistency = consistency::local_serial, .default_timestamp = -5}});
        check_request_round_trip(v, execute_request{id, v >= 5 ? bytes_view(id) : bytes_view(), {.cl = consistency::two, .values = values}});
        check_request_round_trip(v, batch_request{batch_type::counter, stmts, consistency::all, consistency::serial, 77});
    }
    std::array<value_view, 1> unset{value_view::unset()};
    check_request_round_trip(4, query_request{"Q", {.values = unset}});
    check_request_round_trip(5, query_request{"Q", {.keyspace = "ks", .now_in_seconds = 3}});
    check_request_round_trip(5, batch_request{batch_type::logged, stmts, consistency::one, {}, {}, "ks", 4});
    auto v = hex("ff");
    std::array<std::pair<std::string_view, bytes_view>, 1> payload{{{"k", v}}};
    check_request_round_trip(4, prepare_request{"Q"}, {.custom_payload = payload});
}

TEST_CASE("server side: malformed requests are errors, not crashes") {
    frame_header h{4, false, 0, 0, opcode::query, 0};
    CHECK_FALSE(decode_request(h, hex("00000010 'short'")).has_value());
    // a value length of -3
    CHECK(decode_request(h, hex("00000001 'Q' 0001 01 0001 fffffffd")).error() == protocol_errc::bad_value_length);
    // unset needs v4
    h.version = 3;
    CHECK(decode_request(h, hex("00000001 'Q' 0001 01 0001 fffffffe")).error() == protocol_errc::bad_value_length);
    h.op = opcode::result;
    CHECK(decode_request(h, {}).error() == protocol_errc::unexpected_opcode);
}

TEST_CASE("server side: responses re-encode to the bytes they were decoded from") {
    check_response_round_trip(4, opcode::ready, {});
    check_response_round_trip(3, opcode::authenticate, hex("0003 'abc'"));
    check_response_round_trip(3, opcode::supported, hex("0001 000b 'COMPRESSION' 0002 0006 'snappy' 0003 'lz4'"));
    check_response_round_trip(3, opcode::error, hex("00002000 0005 'oops!'"));
    check_response_round_trip(3, opcode::error, hex("00001000 0000 0006 00000002 00000001"));
    check_response_round_trip(5, opcode::error, hex("00001100 0000 0009 00000000 00000001 0003 'CAS' 0003"));
    check_response_round_trip(4, opcode::error, hex("00001200 0000 0004 00000001 00000002 01"));
    check_response_round_trip(4, opcode::error, hex("00001300 0000 0001 00000000 00000001 00000002 00"));
    check_response_round_trip(5, opcode::error, hex("00001500 0000 0004 00000001 00000002 00000001 04 7f000002 0001 0005 'BATCH'"));
    check_response_round_trip(4, opcode::error, hex("00001400 0000 0002 'ks' 0001 'f' 0001 0003 'int'"));
    check_response_round_trip(3, opcode::error, hex("00002400 0000 0002 'ks' 0001 't'"));
    check_response_round_trip(3, opcode::error, hex("00002500 0000 0002 abcd"));
    check_response_round_trip(5, opcode::error, hex("00001700 0000 0008 00000001 00000002"));
    check_response_round_trip(3, opcode::result, hex("00000001"));
    check_response_round_trip(4, opcode::result, hex("00000002 00000003 00000002 00000002 0102 0002 'ks' 0001 't' 0001 'k' 0009 "
                                                     "0001 'v' 000d 00000001 00000004 00000001 ffffffff"));
    check_response_round_trip(5, opcode::result, hex("00000002 0000000c 00000001 0002 abcd 00000000"));
    check_response_round_trip(4, opcode::result, hex("00000002 00000001 00000003 0002 'ks' 0001 't'"
                                                     "| 0001 'a' 0021 000d 0020 0009 | 0001 'b' 0031 0002 0013 0014"
                                                     "| 0001 'c' 0030 0002 'ks' 0001 'u' 0001 0001 'f' 0000 0001 'X' | 00000000"));
    check_response_round_trip(3, opcode::result, hex("00000003 0002 'ks'"));
    check_response_round_trip(4, opcode::result, hex("00000004 0001 0a 00000001 00000002 00000001 0001 0002 'ks' 0001 't' "
                                                     "0001 'a' 0009 0001 'k' 0009 00000004 00000000"));
    check_response_round_trip(5, opcode::result, hex("00000004 0001 0a 0002 cccc 00000000 00000000 00000000 "
                                                     "00000001 00000001 0002 'ks' 0001 't' 0001 'v' 000d"));
    check_response_round_trip(4, opcode::result, hex("00000005 0007 'DROPPED' 0008 'FUNCTION' 0002 'ks' 0001 'f' 0001 0003 'int'"));
    check_response_round_trip(3, opcode::event, hex("000f 'TOPOLOGY_CHANGE' 0008 'NEW_NODE' 04 7f000003 00002352"));
    check_response_round_trip(3, opcode::event, hex("000d 'SCHEMA_CHANGE' 0007 'CREATED' 0008 'KEYSPACE' 0002 'ks'"));
    check_response_round_trip(4, opcode::auth_challenge, hex("00000001 ab"));
    check_response_round_trip(4, opcode::auth_success, hex("ffffffff"));
    check_response_round_trip(4, opcode::result, hex("0102030405060708090a0b0c0d0e0f10 0001 0001 'w' 0001 0001 'k' 00000001 ff 00000001"),
                              frame_flag::tracing | frame_flag::warning | frame_flag::custom_payload);
}

TEST_CASE("server side: a compressed response decompresses to the plain body") {
    response r{.body = result_response{set_keyspace_result{std::string(300, 'k')}}};
    byte_buffer plain, packed, scratch;
    REQUIRE_FALSE(encode_response(4, 1, r, plain));
    REQUIRE_FALSE(encode_response(4, 1, r, packed, compression::snappy));
    auto h = decode_header(packed);
    REQUIRE(h.has_value());
    CHECK((h->flags & frame_flag::compression) != 0);
    auto body = frame_body(*h, bytes_view(packed).subspan(header_size), compression::snappy, 1 << 20, scratch);
    REQUIRE(body.has_value());
    CHECK(to_hex(*body) == to_hex(bytes_view(plain).subspan(header_size)));
}
