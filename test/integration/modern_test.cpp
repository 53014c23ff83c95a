// What Cassandra 2.1 could not show, against a real Cassandra 4.0+ node (5.0 in the test command), in
// the run's protocol (target.hpp): the types that came after 2.1 round-tripped through the session,
// prepared and as simple-statement values, with edge values; the 3.0+ schema tables, system.peers_v2
// and the virtual tables as the session reads them; warnings; a trace read back; and, in v5, the
// keyspace per request, now_in_seconds and a result metadata id that changes under a prepared SELECT *.
// Tagged [cassandra-4+]: the 2.1 run leaves these out.
#include "everything.hpp"
#include "target.hpp"

#include <cqlcoro/session.hpp>
#include <cqlcoro/value.hpp>

#include "test_coro.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <limits>

using namespace cqlcoro;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;
using cqlcoro::test::address;
using cqlcoro::test::target_params;
using cqlcoro::test::test_protocol;

namespace {

/// The columns, in order, of the table below.
struct modern {
    std::int32_t k;
    date d;
    time_of_day t;
    std::int16_t si;
    std::int8_t ti;
    cql_duration du;
    std::vector<std::map<std::string, std::int32_t>> lm;   // list<frozen<map<text, int>>>
    std::map<std::int32_t, std::set<std::string>> ms;      // map<int, frozen<set<text>>>
    std::vector<std::tuple<std::int32_t, std::string>> lt; // list<frozen<tuple<int, text>>>
    std::map<std::string, address> mu;                     // map<text, frozen<address>>
    std::set<std::vector<std::int32_t>> sl;                // set<frozen<list<int>>>
    std::vector<std::vector<std::int32_t>> nested;         // frozen<list<frozen<list<int>>>>
    std::array<float, 3> ve;                               // vector<float, 3>
    std::optional<std::tuple<date, time_of_day, std::int8_t>> tu;  // tuple<date, time, tinyint>
};

constexpr const char* modern_columns = "k, d, t, si, ti, du, lm, ms, lt, mu, sl, nested, ve, tu";
constexpr const char* modern_table =
    "(k int PRIMARY KEY, d date, t time, si smallint, ti tinyint, du duration, lm list<frozen<map<text, int>>>, "
    "ms map<int, frozen<set<text>>>, lt list<frozen<tuple<int, text>>>, mu map<text, frozen<address>>, "
    "sl set<frozen<list<int>>>, nested frozen<list<frozen<list<int>>>>, ve vector<float, 3>, tu tuple<date, time, tinyint>)";

modern sample() {
    return {
        1,
        date(std::chrono::days(std::numeric_limits<std::int32_t>::min())),  // the first day CQL has (5877641 BC)
        time_of_day(86'399'999'999'999),                                   // the last nanosecond of a day
        std::numeric_limits<std::int16_t>::min(),
        std::numeric_limits<std::int8_t>::min(),
        cql_duration{-14, -3, -1},  // a duration's parts share one sign
        {{{"a", 1}, {"b", -2}}, {}, {{"\xc3\xa9", std::numeric_limits<std::int32_t>::max()}}},
        {{-1, {"x", "y"}}, {7, {}}},
        {{1, "one"}, {-1, ""}},
        {{"home", address{"Main St", 12345}}, {"work", address{"", std::nullopt}}},
        {{1, 2}, {}, {-3}},
        {{1}, {}, {2, 3}},
        {-0.0f, std::numeric_limits<float>::infinity(), 1.5f},
        std::tuple{date(std::chrono::days(-1)), time_of_day(0), std::int8_t{127}},
    };
}

void check_same(const modern& out, const modern& in) {
    CHECK(out.k == in.k);
    CHECK(out.d == in.d);
    CHECK(out.t == in.t);
    CHECK(out.si == in.si);
    CHECK(out.ti == in.ti);
    CHECK(out.du == in.du);
    CHECK(out.lm == in.lm);
    CHECK(out.ms == in.ms);
    CHECK(out.lt == in.lt);
    CHECK(out.mu == in.mu);
    CHECK(out.sl == in.sl);
    CHECK(out.nested == in.nested);
    CHECK(out.ve == in.ve);
    CHECK(std::signbit(out.ve[0]) == std::signbit(in.ve[0]));
    CHECK(out.tu == in.tu);
}

// Waits until `done` holds, checking every 10 ms, for at most 30 s.
template <class Done>
asio::awaitable<void> eventually(Done done) {
    asio::steady_timer tick(co_await asio::this_coro::executor);
    for (int i = 0; !done(); ++i) {
        if (i == 3000) throw std::runtime_error("the awaited condition did not hold within 30 s");
        tick.expires_after(10ms);
        co_await tick.async_wait(asio::use_awaitable);
    }
}

asio::awaitable<void> schema(session& s) {
    co_await s.execute(statement("CREATE KEYSPACE IF NOT EXISTS cqlcoro_modern WITH replication = "
                                 "{'class': 'SimpleStrategy', 'replication_factor': 1}"));
    co_await s.execute(statement("CREATE TYPE IF NOT EXISTS cqlcoro_modern.address (street text, zip int)"));
    co_await s.execute(statement(std::string("CREATE TABLE IF NOT EXISTS cqlcoro_modern.everything ") + modern_table));
}

}  // namespace

TEST_CASE("real node 4.0+, session: every type since 2.1 round-trips, prepared and as simple-statement values", "[cassandra-4+]") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, target_params());
        co_await schema(s);
        const modern in = sample();
        auto insert = co_await s.prepare(fmt::format("INSERT INTO cqlcoro_modern.everything ({}) VALUES "
                                                     "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", modern_columns));
        co_await s.execute(insert.bind(in.k, in.d, in.t, in.si, in.ti, in.du, in.lm, in.ms, in.lt, in.mu, in.sl, in.nested, in.ve, in.tu));
        auto select = co_await s.prepare(fmt::format("SELECT {} FROM cqlcoro_modern.everything WHERE k = ?", modern_columns));
        auto rows = co_await s.execute(select.bind(in.k));
        REQUIRE(rows.size() == 1);
        check_same(rows.one().as<modern>(), in);
        CHECK(to_cql_string(rows.columns()[12].type) == "vector<float, 3>");
        CHECK(fmt::format("{}", rows.one().get<value>("du")) == "-14mo3d1ns");

        // The same values typed from C++ alone (the UDTs need a marker's type: null there).
        modern simple = in;
        simple.k = 2;
        simple.mu.clear();
        co_await s.execute(statement(fmt::format("INSERT INTO cqlcoro_modern.everything ({}) VALUES "
                                                 "(?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?, ?, ?, ?)", modern_columns),
                                     simple.k, simple.d, simple.t, simple.si, simple.ti, simple.du, simple.lm, simple.ms, simple.lt,
                                     simple.sl, simple.nested, simple.ve, simple.tu));
        auto simple_rows = co_await s.execute(statement(fmt::format("SELECT {} FROM cqlcoro_modern.everything WHERE k = ?", modern_columns), 2));
        REQUIRE(simple_rows.size() == 1);
        check_same(simple_rows.one().as<modern>(), simple);
        co_await s.close();
    });
}

TEST_CASE("real node 4.0+, session: the 3.0+ schema tables and the virtual tables as the session reads them", "[cassandra-4+]") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, target_params());
        co_await schema(s);
        // The schema events of the DDL above (if it ran now) reach the metadata after the event window.
        co_await eventually([&] {
            const auto* k = s.metadata()->keyspace("cqlcoro_modern");
            return k && k->tables.count("everything") && k->user_types.count("address");
        });
        auto md = s.metadata();
        REQUIRE(md->nodes().size() == 1);
        CHECK(md->nodes()[0]->release_version == cqlcoro::test::test_server().text);
        CHECK(md->nodes()[0]->host_id != uuid{});
        CHECK(md->partitioner() == "org.apache.cassandra.dht.Murmur3Partitioner");
        // system_schema.*: keyspaces, tables, columns with their CQL types, user types.
        const auto* ks = md->keyspace("cqlcoro_modern");
        REQUIRE(ks);
        CHECK(ks->replication.strategy_class.find("SimpleStrategy") != std::string::npos);
        REQUIRE(ks->tables.count("everything") == 1);
        const auto& t = ks->tables.at("everything");
        CHECK(t.partition_key == std::vector<std::string>{"k"});
        std::map<std::string, std::string> types;
        for (const auto& c : t.columns) types[c.name] = c.type_text;
        CHECK(types["ve"] == "vector<float, 3>");
        CHECK(types["du"] == "duration");
        CHECK(types["mu"] == "map<text, frozen<address>>");
        CHECK(types["nested"] == "frozen<list<frozen<list<int>>>>");
        CHECK(t.column("ve")->type.kind == type_kind::vector);
        REQUIRE(ks->user_types.count("address") == 1);
        CHECK(ks->user_types.at("address").fields ==
              std::vector<std::pair<std::string, std::string>>{{"street", "text"}, {"zip", "int"}});
        CHECK(md->keyspace("system_schema"));

        // A virtual table (4.0+): this node's own view of its settings and of our connections.
        const auto endpoint = md->nodes()[0]->endpoint;
        auto setting = co_await s.execute(statement("SELECT value FROM system_views.settings WHERE name = 'native_transport_port'")
                                              .node_endpoint(endpoint));
        REQUIRE(setting.size() == 1);
        CHECK(setting.one().get<std::string>(0) == "9042");
        auto clients = co_await s.execute(
            statement("SELECT driver_name, driver_version, protocol_version FROM system_views.clients").node_endpoint(endpoint));
        std::size_t ours = 0;
        for (auto row : clients.rows())
            if (row.get<std::optional<std::string>>(0) == "cqlcoro") {
                ++ours;
                CHECK(row.get<std::optional<std::string>>(1) == CQLCORO_VERSION);
                CHECK(row.get<std::int32_t>(2) == test_protocol());
            }
        CHECK(ours >= 2);  // the control connection and the pool's
        co_await s.close();
    });
}

TEST_CASE("real node 4.0+, session: a prepared SELECT * follows ALTER TABLE ... ADD: the new column comes back", "[cassandra-4+]") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, target_params());
        co_await schema(s);
        const auto table = fmt::format("cqlcoro_modern.altered_{}", std::chrono::steady_clock::now().time_since_epoch().count());
        co_await s.execute(statement("CREATE TABLE " + table + " (k int PRIMARY KEY, a text)"));
        co_await s.execute(statement("INSERT INTO " + table + " (k, a) VALUES (1, 'x')"));
        auto select = co_await s.prepare("SELECT * FROM " + table + " WHERE k = ?");
        const auto before = co_await s.execute(select.bind(1));
        REQUIRE(before.columns().size() == 2);
        CHECK(select.data().result_updates() == 0);

        co_await s.execute(statement("ALTER TABLE " + table + " ADD b int"));
        co_await s.execute(statement("UPDATE " + table + " SET b = 42 WHERE k = 1"));
        // v5: the server sees the old result metadata id and sends the new columns with a new id; v3 and
        // v4: it forgot the statement (UNPREPARED), and the PREPARE sent again brings the new columns.
        for (int i = 0; i < 3; ++i) {
            auto after = co_await s.execute(select.bind(1));
            REQUIRE(after.columns().size() == 3);
            CHECK(after.columns()[2].name == "b");
            CHECK(after.one().get<std::string>("a") == "x");
            CHECK(after.one().get<std::int32_t>("b") == 42);
        }
        CHECK(select.data().result_updates() == 1);  // taken once; later executions send the new id
        CHECK(select.result_columns().size() == 3);
        if (test_protocol() >= 5) CHECK(select.data().result().id != std::vector<std::uint8_t>{});
        co_await s.close();
    });
}

TEST_CASE("real node 4.0+, session: v5's keyspace per request and now_in_seconds; warnings; a custom payload; a trace read back", "[cassandra-4+]") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, target_params());
        co_await schema(s);
        co_await s.execute(statement("CREATE TABLE IF NOT EXISTS cqlcoro_modern.kv (k int PRIMARY KEY, v text)"));
        if (test_protocol() >= 5) {
            // Unqualified names resolve in the statement's keyspace, not the session's (it has none).
            co_await s.execute(statement("INSERT INTO kv (k, v) VALUES (1, 'one')").keyspace("cqlcoro_modern"));
            auto one = co_await s.execute(statement("SELECT v FROM kv WHERE k = ?", 1).keyspace("cqlcoro_modern"));
            REQUIRE(one.size() == 1);
            CHECK(one.one().get<std::string>(0) == "one");
            // "Now" set to 100 s after the write: a 10 s TTL has run out for that read, not for a plain one.
            const auto now = static_cast<std::int32_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                           std::chrono::system_clock::now().time_since_epoch()).count());
            co_await s.execute(statement("INSERT INTO cqlcoro_modern.kv (k, v) VALUES (2, 'brief') USING TTL 10").now_in_seconds(now));
            auto later = co_await s.execute(statement("SELECT v FROM cqlcoro_modern.kv WHERE k = 2").now_in_seconds(now + 100));
            CHECK(later.empty());
            auto current = co_await s.execute(statement("SELECT v FROM cqlcoro_modern.kv WHERE k = 2").now_in_seconds(now));
            CHECK(current.size() == 1);
        } else {
            // Before v5 the protocol has no place for them: refused before anything is sent.
            auto [ec, r] = co_await s.execute(statement("SELECT v FROM kv WHERE k = 1").keyspace("cqlcoro_modern"),
                                              asio::as_tuple(asio::use_awaitable));
            CHECK(ec == protocol_errc::keyspace_not_supported);
            CHECK(r.diagnostics().outcome == request_outcome::not_sent);
        }

        // An unlogged batch across more partitions than unlogged_batch_across_partitions_warn_threshold (10).
        batch b(batch_kind::unlogged);
        for (int k = 100; k < 120; ++k) b.add(statement("INSERT INTO cqlcoro_modern.kv (k, v) VALUES (?, 'w')", k));
        auto warned = co_await s.execute(std::move(b));
        if (test_protocol() >= 4) {
            REQUIRE(warned.warnings().size() == 1);
            CHECK_THAT(warned.warnings()[0], ContainsSubstring("Unlogged batch covering 20 partitions"));
        } else {
            CHECK(warned.warnings().empty());  // v3 frames carry no warnings
        }

        // A read over more tombstones than tombstone_warn_threshold (1000): a null written is a tombstone.
        co_await s.execute(statement("CREATE TABLE IF NOT EXISTS cqlcoro_modern.graves (p int, c int, v text, PRIMARY KEY (p, c))"));
        const int partition = static_cast<int>(std::chrono::steady_clock::now().time_since_epoch().count() % 1'000'000);
        auto bury = co_await s.prepare("INSERT INTO cqlcoro_modern.graves (p, c, v) VALUES (?, ?, null)");
        for (int c = 0; c < 1100; c += 100) {
            batch graves(batch_kind::unlogged);
            for (int i = c; i < c + 100; ++i) graves.add(bury.bind(partition, i));
            co_await s.execute(std::move(graves));
        }
        auto haunted = co_await s.execute(statement("SELECT * FROM cqlcoro_modern.graves WHERE p = ?", partition));
        CHECK(haunted.size() == 1100);
        if (test_protocol() >= 4) {
            REQUIRE(haunted.warnings().size() == 1);
            CHECK_THAT(haunted.warnings()[0], ContainsSubstring("1100 tombstone"));
        } else {
            CHECK(haunted.warnings().empty());
        }

        // A custom payload (v4+): the stock server takes it and answers as usual (it echoes none without
        // a custom query handler); below v4 the frame has no place for it and it is left out.
        auto payload_statement = statement("SELECT v FROM cqlcoro_modern.kv WHERE k = 100");
        payload_statement.payload("cqlcoro", std::vector<std::uint8_t>{1, 2, 3});
        auto with_payload = co_await s.execute(std::move(payload_statement));
        CHECK(with_payload.size() == 1);

        // A traced request, and its trace as system_traces holds it.
        auto traced = co_await s.execute(statement("SELECT v FROM cqlcoro_modern.kv WHERE k = 100").tracing(true));
        REQUIRE(traced.tracing_id());
        // Generous for a loaded test machine: the server writes the trace in the background.
        auto trace = co_await s.fetch_trace(*traced.tracing_id(), {.attempts = 100, .interval = 50ms});
        CHECK(trace.id == *traced.tracing_id());
        CHECK(trace.request == "Execute CQL3 query");
        CHECK(trace.coordinator.to_string() == cqlcoro::test::test_host());
        CHECK(trace.started_at > timestamp{});
        CHECK(trace.duration > std::chrono::microseconds(0));
        CHECK_THAT(trace.parameters.at("query"), ContainsSubstring("SELECT v FROM cqlcoro_modern.kv"));
        REQUIRE_FALSE(trace.events.empty());
        bool parsing = false;
        for (const auto& e : trace.events) parsing = parsing || e.activity.find("Parsing") != std::string::npos;
        CHECK(parsing);
        co_await s.close();
    });
}
