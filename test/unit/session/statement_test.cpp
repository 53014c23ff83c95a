// Statements and their encoding: every option reaches the frame, decoded back by the server half of
// the codec.
#include "protocol/server_side.hpp"
#include "session/encode.hpp"

#include <cqlcoro/statement.hpp>

#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace cqlcoro;
using namespace std::chrono_literals;
using cqlcoro::session_detail::encode_context;
using cqlcoro::test::to_hex;

namespace {

struct decoded {
    protocol::byte_buffer frame;
    protocol::frame_header header;
    protocol::decoded_request req;
};

template <class S>
decoded round_trip(const S& s, std::uint8_t version = 4) {
    decoded d;
    encode_context ctx{.version = version};
    auto ec = session_detail::encode_statement(ctx, s, d.frame);
    if (ec) throw cqlcoro::error(ec, "encode");
    auto h = protocol::decode_header(d.frame);
    REQUIRE(h.has_value());
    d.header = *h;
    auto r = protocol::decode_request(*h, protocol::bytes_view(d.frame).subspan(protocol::header_size));
    REQUIRE(r.has_value());
    d.req = std::move(*r);
    return d;
}

std::shared_ptr<const prepared_data> prepared_insert() {
    auto p = std::make_shared<prepared_data>();
    p->query = "INSERT INTO ks.t (k, v) VALUES (?, ?)";
    p->id = {1, 2, 3, 4};
    p->markers = {{"ks", "t", "k", cql_type::of(type_kind::bigint)}, {"ks", "t", "v", cql_type::of(type_kind::varchar)}};
    p->pk_indexes = {0};
    return p;
}

}  // namespace

TEST_CASE("statement: values are serialized from their C++ types; every option reaches the QUERY frame") {
    const auto s = statement("SELECT * FROM t WHERE a = ? AND b = ? AND c = ?", std::int32_t{7}, std::string("x"), std::optional<double>{})
                       .consistency(consistency::quorum)
                       .serial_consistency(consistency::local_serial)
                       .page_size(100)
                       .paging_state({9, 9})
                       .timestamp(1234567)
                       .tracing(true)
                       .payload("k", {1});
    auto d = round_trip(s);
    CHECK(d.header.op == protocol::opcode::query);
    CHECK((d.header.flags & protocol::frame_flag::tracing) != 0);
    const auto& q = std::get<protocol::query_request>(d.req.message);
    CHECK(q.query == "SELECT * FROM t WHERE a = ? AND b = ? AND c = ?");
    CHECK(q.params.cl == consistency::quorum);
    CHECK(q.params.serial_consistency == consistency::local_serial);
    CHECK(q.params.page_size == 100);
    REQUIRE(q.params.paging_state);
    CHECK(to_hex(*q.params.paging_state) == "0909");
    CHECK(q.params.default_timestamp == 1234567);
    REQUIRE(q.params.values.size() == 3);
    CHECK(to_hex(q.params.values[0].bytes) == "00000007");  // int32_t as int: 4 bytes
    CHECK(to_hex(q.params.values[1].bytes) == "78");
    CHECK(q.params.values[2].st == protocol::value_view::state::null);
    REQUIRE(d.req.custom_payload.size() == 1);
    CHECK(d.req.custom_payload[0].first == "k");
}

TEST_CASE("statement: defaults come from the session; named values are sent with their names") {
    auto d = round_trip(statement("UPDATE t SET v = :v WHERE k = :k", named("k", std::int64_t{1}), named("v", std::string("a"))));
    const auto& q = std::get<protocol::query_request>(d.req.message);
    CHECK(q.params.cl == consistency::local_one);
    CHECK(q.params.page_size == 5000);
    REQUIRE(q.params.names.size() == 2);
    CHECK(q.params.names[0] == "k");
    CHECK(to_hex(q.params.values[0].bytes) == "0000000000000001");  // int64_t as bigint: 8 bytes
}

TEST_CASE("statement: v5-only options are refused below v5, with the codec's error") {
    auto s = statement("SELECT * FROM t").keyspace("ks");
    protocol::byte_buffer out;
    CHECK(session_detail::encode_statement({.version = 4}, s, out) == protocol_errc::keyspace_not_supported);
    auto d = round_trip(s, 5);
    CHECK(std::get<protocol::query_request>(d.req.message).params.keyspace == "ks");
    auto unset_v3 = statement("UPDATE t SET v = ? WHERE k = 1", unset);
    CHECK(session_detail::encode_statement({.version = 3}, unset_v3, out) == protocol_errc::value_unset_not_supported);
}

TEST_CASE("bound statement: values are checked against the markers and sent as EXECUTE") {
    prepared_statement p(prepared_insert());
    auto d = round_trip(p.bind(std::int64_t{42}, "hello").idempotent(true).consistency(consistency::all));
    CHECK(d.header.op == protocol::opcode::execute);
    const auto& e = std::get<protocol::execute_request>(d.req.message);
    CHECK(to_hex(e.id) == "01020304");
    CHECK(e.params.cl == consistency::all);
    CHECK(to_hex(e.params.values[0].bytes) == "000000000000002a");
    // A C++ type that is not the marker's is refused before sending, naming the marker (as the Java
    // driver refuses an Integer for a bigint).
    try {
        (void)p.bind(42, "x");
        FAIL("bound a string to a bigint");
    } catch (const cqlcoro::error& err) {
        CHECK_THAT(std::string(err.what()), Catch::Matchers::ContainsSubstring("bind marker 0 ('k') is bigint"));
    }
    // By name, leaving a marker unset (v4+).
    auto byname = round_trip(p.bind(named("k", std::int64_t{1})));
    CHECK(std::get<protocol::execute_request>(byname.req.message).params.values[1].st == protocol::value_view::state::unset);
}

TEST_CASE("batch: simple and bound statements in one BATCH; named simple values are refused") {
    prepared_statement p(prepared_insert());
    auto b = batch(batch_kind::unlogged)
                 .add(statement("INSERT INTO ks.t (k, v) VALUES (?, ?)", std::int64_t{1}, std::string("a")))
                 .add(p.bind(std::int64_t{2}, "b"))
                 .consistency(consistency::two)
                 .timestamp(99);
    auto d = round_trip(b);
    const auto& r = std::get<protocol::batch_request>(d.req.message);
    CHECK(r.type == protocol::batch_type::unlogged);
    REQUIRE(r.statements.size() == 2);
    CHECK(std::get<std::string_view>(r.statements[0].query_or_id) == "INSERT INTO ks.t (k, v) VALUES (?, ?)");
    CHECK(to_hex(std::get<protocol::bytes_view>(r.statements[1].query_or_id)) == "01020304");
    CHECK(r.cl == consistency::two);
    CHECK(r.default_timestamp == 99);

    auto named_batch = batch().add(statement("INSERT INTO t (k) VALUES (:k)", named("k", 1)));
    protocol::byte_buffer out;
    CHECK(session_detail::encode_statement({}, named_batch, out) == client_errc::invalid_statement);
}

TEST_CASE("statement: a std::array is sent as a Cassandra 5 vector: the elements back to back, no count") {
    const auto s = statement("INSERT INTO t (k, v) VALUES (1, ?)", std::array<float, 2>{1.0f, -0.0f});
    auto d = round_trip(s, 5);
    const auto& q = std::get<protocol::query_request>(d.req.message);
    REQUIRE(q.params.values.size() == 1);
    CHECK(to_hex(q.params.values[0].bytes) == "3f80000080000000");  // a list<float> would begin with its count
}

TEST_CASE("prepared statement: the result metadata follows the server, and a version read stays valid") {
    auto p = std::make_shared<prepared_data>();
    const auto col = [](const char* name) { return column_spec{"ks", "t", name, cql_type::of(type_kind::int_)}; };
    CHECK(p->result_columns().empty());
    CHECK(p->result().set == nullptr);
    p->update_result({1}, {col("a")});  // PREPARE's own
    CHECK(p->result_updates() == 0);
    const auto& first = p->result();
    const auto first_columns = p->result_columns();
    p->update_result({1}, {col("a")});  // the same again: nothing changes
    CHECK(&p->result() == &first);
    CHECK(p->result_updates() == 0);
    p->update_result({2}, {col("a"), col("b")});  // ALTER TABLE ... ADD b
    CHECK(p->result_updates() == 1);
    CHECK(p->result().id == std::vector<std::uint8_t>{2});
    REQUIRE(p->result_columns().size() == 2);
    CHECK(p->result_columns()[1].name == "b");
    // What a request read before the change is still there to read.
    CHECK(first.id == std::vector<std::uint8_t>{1});
    REQUIRE(first_columns.size() == 1);
    CHECK(first_columns[0].name == "a");
    // Before v5 there is no id: the columns alone tell a change.
    auto q = std::make_shared<prepared_data>();
    q->update_result({}, {col("a")});
    q->update_result({}, {col("a"), col("b")});
    CHECK(q->result_updates() == 1);
    CHECK(q->result().id.empty());
}
