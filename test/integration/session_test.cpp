// The session against a real Cassandra node (2.1 or 5.0, in the run's protocol: target.hpp).
#include "everything.hpp"
#include "raw_connection.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <set>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;
using cqlcoro::test::check_same;
using cqlcoro::test::everything;
using cqlcoro::test::yield_until;

namespace {

session_params params() { return cqlcoro::test::target_params(); }

// A keyspace and tables of our own, created once per run.
asio::awaitable<void> schema(session& s) {
    auto ks = co_await s.execute(statement(
        "CREATE KEYSPACE IF NOT EXISTS cqlcoro_session WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"));
    co_await s.execute(statement("CREATE TABLE IF NOT EXISTS cqlcoro_session.users (id int PRIMARY KEY, name text, score bigint)"));
    co_await s.execute(statement("CREATE TABLE IF NOT EXISTS cqlcoro_session.hits (page text PRIMARY KEY, n counter)"));
    co_await s.execute(statement("CREATE TABLE IF NOT EXISTS cqlcoro_session.events (p int, c int, v text, PRIMARY KEY (p, c))"));
    (void)ks;
}

}  // namespace

TEST_CASE("real node, session: DDL reports schema changes; simple and prepared statements round-trip") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        CHECK(s.protocol_version() == cqlcoro::test::test_protocol());
        co_await schema(s);
        auto created = co_await s.execute(statement("CREATE TABLE IF NOT EXISTS cqlcoro_session.fresh_" +
                                                    std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) +
                                                    " (k int PRIMARY KEY)"));
        REQUIRE(created.schema_change());
        CHECK(created.schema_change()->change_type == "CREATED");
        CHECK(created.schema_change()->keyspace == "cqlcoro_session");

        co_await s.execute(statement("INSERT INTO cqlcoro_session.users (id, name, score) VALUES (?, ?, ?)", 1, std::string("ada"),
                                     std::int64_t{10}));
        auto insert = co_await s.prepare("INSERT INTO cqlcoro_session.users (id, name, score) VALUES (?, ?, ?)");
        CHECK(insert.markers().size() == 3);
        co_await s.execute(insert.bind(2, "brian", std::int64_t{20}).idempotent(true));
        auto select = co_await s.prepare("SELECT name, score FROM cqlcoro_session.users WHERE id = ?");
        auto rs = co_await s.execute(select.bind(2));
        REQUIRE(rs.size() == 1);
        CHECK(rs.one().get<std::string>("name") == "brian");
        CHECK(rs.one().get<std::int64_t>("score") == 20);
        CHECK(rs.columns().size() == 2);  // from PREPARE: EXECUTE skipped the metadata
        auto simple = co_await s.execute(statement("SELECT name FROM cqlcoro_session.users WHERE id = ?", 1));
        CHECK(simple.one().get<std::string>(0) == "ada");
        co_await s.close();
    });
}

TEST_CASE("real node, session: logged, unlogged and counter batches; a lightweight transaction") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        co_await schema(s);
        auto insert = co_await s.prepare("INSERT INTO cqlcoro_session.users (id, name, score) VALUES (?, ?, ?)");
        co_await s.execute(batch(batch_kind::logged).add(insert.bind(10, "l1", std::int64_t{1})).add(insert.bind(11, "l2", std::int64_t{2})));
        co_await s.execute(batch(batch_kind::unlogged)
                               .add(statement("INSERT INTO cqlcoro_session.users (id, name) VALUES (?, ?)", 12, std::string("u1")))
                               .add(insert.bind(13, "u2", std::int64_t{3})));
        auto rs = co_await s.execute(statement("SELECT id FROM cqlcoro_session.users WHERE id IN (10, 11, 12, 13)"));
        CHECK(rs.size() == 4);

        auto before = co_await s.execute(statement("SELECT n FROM cqlcoro_session.hits WHERE page = 'home'"));
        const std::int64_t start = before.empty() ? 0 : before.one().get<std::int64_t>(0);
        co_await s.execute(batch(batch_kind::counter)
                               .add(statement("UPDATE cqlcoro_session.hits SET n = n + 2 WHERE page = 'home'"))
                               .add(statement("UPDATE cqlcoro_session.hits SET n = n + 3 WHERE page = 'home'")));
        auto after = co_await s.execute(statement("SELECT n FROM cqlcoro_session.hits WHERE page = 'home'"));
        CHECK(after.one().get<std::int64_t>(0) == start + 5);

        // Lightweight transaction: [applied] and, when not applied, the current row. A key of this run
        // only (a plain DELETE before an LWT races the Paxos timestamps).
        const int id = 1'000'000 + static_cast<int>(std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000'000);
        auto lwt = [&](const char* name) { return statement("INSERT INTO cqlcoro_session.users (id, name) VALUES (?, ?) IF NOT EXISTS", id, std::string(name)); };
        auto first = co_await s.execute(lwt("x"));
        CHECK(first.one().get<bool>("[applied]"));
        auto second = co_await s.execute(lwt("y"));
        CHECK_FALSE(second.one().get<bool>("[applied]"));
        CHECK(second.one().get<std::string>("name") == "x");
        co_await s.close();
    });
}

TEST_CASE("real node, session: paging by hand with the paging state; tracing id") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        co_await schema(s);
        auto insert = co_await s.prepare("INSERT INTO cqlcoro_session.events (p, c, v) VALUES (?, ?, ?)");
        for (int c = 0; c < 25; ++c) co_await s.execute(insert.bind(1, c, "v"));
        std::set<int> seen;
        std::vector<std::uint8_t> state;
        int pages = 0;
        do {
            auto page = co_await s.execute(statement("SELECT c FROM cqlcoro_session.events WHERE p = 1").page_size(10).paging_state(state));
            for (auto row : page.rows()) seen.insert(row.get<int>(0));
            state.assign(page.paging_state().begin(), page.paging_state().end());
            ++pages;
        } while (!state.empty());
        CHECK(seen.size() == 25);
        CHECK(pages == 3);

        auto traced = co_await s.execute(statement("SELECT c FROM cqlcoro_session.events WHERE p = 1 AND c = 3").tracing(true));
        CHECK(traced.tracing_id().has_value());
        CHECK(traced.warnings().empty());  // protocol v3 carries no warnings
        co_await s.close();
    });
}

TEST_CASE("real node, session: syntax, invalid and unavailable errors carry their structured fields") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        co_await schema(s);
        auto [e1, r1] = co_await s.execute(statement("SELEKT 1"), asio::as_tuple(asio::use_awaitable));
        CHECK(e1 == server_errc::syntax_error);
        auto [e2, r2] = co_await s.execute(statement("SELECT nope FROM cqlcoro_session.users"), asio::as_tuple(asio::use_awaitable));
        CHECK(e2 == server_errc::invalid);
        REQUIRE(r2.diagnostics().server);
        CHECK_THAT(r2.diagnostics().server->message, ContainsSubstring("nope"));

        co_await s.execute(statement("CREATE KEYSPACE IF NOT EXISTS cqlcoro_rf3 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}"));
        co_await s.execute(statement("CREATE TABLE IF NOT EXISTS cqlcoro_rf3.t (k int PRIMARY KEY)"));
        try {
            co_await s.execute(statement("SELECT k FROM cqlcoro_rf3.t WHERE k = 1").consistency(consistency::quorum));
            FAIL("QUORUM of 3 replicas on a one-node cluster succeeded");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == server_errc::unavailable);
            const auto& u = std::get<unavailable_error>(e.diagnostics().server->detail);
            CHECK(u.cl == consistency::quorum);
            CHECK(u.required == 2);
            CHECK(u.alive == 1);
            CHECK_THAT(std::string(e.what()), ContainsSubstring("1 of 2 required replicas alive"));
        }
        co_await s.close();
    });
}

TEST_CASE("real node, session: cancellation and the request timeout") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        co_await schema(s);
        // Cancelled at once: it completes with operation_aborted (whether it was written by then depends
        // on timing against a real node; the simulated-node tests pin down both cases).
        asio::cancellation_signal early;
        std::optional<error_code> early_ec;
        asio::steady_timer early_done(ex, asio::steady_timer::time_point::max());
        s.execute(statement("INSERT INTO cqlcoro_session.users (id, name) VALUES (30, 'never')"),
                  asio::bind_cancellation_slot(early.slot(), [&](error_code ec, result) {
                      early_ec = ec;
                      early_done.cancel();
                  }));
        early.emit(asio::cancellation_type::terminal);
        if (!early_ec) co_await early_done.async_wait(asio::as_tuple(asio::use_awaitable));
        REQUIRE(early_ec);
        CHECK(*early_ec == asio::error::operation_aborted);
        // A timeout too short for any answer: the request completes with request_timeout, at once.
        auto [ec, r] = co_await s.execute(statement("SELECT * FROM " + cqlcoro::test::columns_table()).timeout(std::chrono::milliseconds(0)),
                                          asio::as_tuple(asio::use_awaitable));
        CHECK(ec == client_errc::request_timeout);
        // And the session goes on.
        auto ok = co_await s.execute(statement("SELECT release_version FROM system.local"));
        CHECK(ok.one().get<std::string>(0) == cqlcoro::test::test_server().text);
        co_await s.close();
    });
}

namespace {

// Pauses the real node (SIGSTOP through the harness) and resumes it when it goes out of scope, even
// when a check fails in between.
struct paused_node {
    paused_node() { run("pause"); }
    ~paused_node() { run("resume"); }
    static void run(const char* what) { cqlcoro::test::harness("", std::string(what) + " 1"); }
};

}  // namespace

namespace {

const host_metrics& only_host(const session& s) {
    static thread_local std::vector<host_metrics> last;
    last = s.metrics().nodes;
    REQUIRE(last.size() == 1);
    return last.front();
}

}  // namespace

TEST_CASE("real node, session: a request cancelled before its write is never executed") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        co_await schema(s);
        const int id = 2'000'000 + static_cast<int>(std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000'000);
        asio::steady_timer wake(ex, asio::steady_timer::time_point::max());
        auto note = [&](std::optional<error_code>& into) {
            return [&](error_code ec, result) {
                into = ec;
                wake.cancel();
            };
        };
        std::optional<error_code> big_ec, cancelled_ec;
        asio::cancellation_signal cancel;
        {
            paused_node pause;
            // 32 MiB cannot fit the socket buffers of a stopped node: this write stays in progress...
            const auto sent_before = only_host(s).requests_sent;
            s.execute(statement("INSERT INTO cqlcoro_session.users (id, name) VALUES (?, ?)", id, std::string(32 << 20, 'x')), note(big_ec));
            co_await yield_until([&] { return only_host(s).requests_sent > sent_before; });
            // ...so this request is still unwritten when it is cancelled (queued, or not yet started).
            s.execute(statement("INSERT INTO cqlcoro_session.users (id, name) VALUES (?, 'never')", id + 1),
                      asio::bind_cancellation_slot(cancel.slot(), note(cancelled_ec)));
            cancel.emit(asio::cancellation_type::terminal);
            while (!cancelled_ec) co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
            CHECK(*cancelled_ec == asio::error::operation_aborted);
            CHECK_FALSE(big_ec);  // the stopped node has not answered anything
        }
        while (!big_ec) co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        auto rows = co_await s.execute(statement("SELECT id FROM cqlcoro_session.users WHERE id = ?", id + 1));
        CHECK(rows.empty());  // never sent, so never executed
        co_await s.close();
    });
}


TEST_CASE("real node, session: every Cassandra 2.1 type round-trips, prepared and as simple-statement values") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        co_await schema(s);
        co_await s.execute(statement("CREATE TYPE IF NOT EXISTS cqlcoro_session.address (street text, zip int)"));
        co_await s.execute(statement(std::string("CREATE TABLE IF NOT EXISTS cqlcoro_session.everything ") +
                                     cqlcoro::test::everything_table));
        const std::string columns = cqlcoro::test::everything_columns;
        const everything in = cqlcoro::test::sample_everything();
        auto insert = co_await s.prepare("INSERT INTO cqlcoro_session.everything (" + columns +
                                         ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        co_await s.execute(insert.bind(in.k, in.a, in.b, in.c, in.d, in.e, in.f, in.g, in.h, in.i, in.j, in.l, in.m, in.n, in.o,
                                       in.p, in.q, in.r, in.s, in.t, in.v));
        auto select = co_await s.prepare("SELECT " + columns + " FROM cqlcoro_session.everything WHERE k = ?");
        auto prepared_rows = co_await s.execute(select.bind(in.k));
        REQUIRE(prepared_rows.size() == 1);
        check_same(prepared_rows.one().as<everything>(), in);

        // The same values typed from C++ in a simple statement (the UDT needs the prepared marker's type).
        everything simple = in;
        simple.k = 2;
        simple.t = std::nullopt;
        simple.v = "varchar";
        co_await s.execute(statement("INSERT INTO cqlcoro_session.everything (" + columns +
                                         ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?)",
                                     simple.k, simple.a, simple.b, simple.c, simple.d, simple.e, simple.f, simple.g, simple.h,
                                     simple.i, simple.j, simple.l, simple.m, simple.n, simple.o, simple.p, simple.q, simple.r,
                                     simple.s, simple.v));
        auto simple_rows = co_await s.execute(statement("SELECT " + columns + " FROM cqlcoro_session.everything WHERE k = ?", 2));
        REQUIRE(simple_rows.size() == 1);
        check_same(simple_rows.one().as<everything>(), simple);
        // Column metadata came with the rows of the simple statement, and with PREPARE for the bound one.
        REQUIRE(simple_rows.columns().size() == 21);
        CHECK(simple_rows.columns()[19].type.kind == type_kind::udt);
        CHECK(prepared_rows.columns().size() == 21);
        co_await s.close();
    });
}


TEST_CASE("real node, session: a request cancelled after its write completes at once, and its late answer is dropped") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params());
        co_await schema(s);
        const int id = 3'000'000 + static_cast<int>(std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000'000);
        std::optional<error_code> ec;
        asio::steady_timer wake(ex, asio::steady_timer::time_point::max());
        asio::cancellation_signal cancel;
        {
            paused_node pause;
            const auto sent_before = only_host(s).requests_sent;
            s.execute(statement("INSERT INTO cqlcoro_session.users (id, name) VALUES (?, 'late')", id),
                      asio::bind_cancellation_slot(cancel.slot(), [&](error_code e, result) {
                          ec = e;
                          wake.cancel();
                      }));
            // The stopped node's socket buffer takes the small frame: it is written, and no answer can come.
            co_await yield_until([&] { return only_host(s).requests_sent > sent_before; });
            cancel.emit(asio::cancellation_type::terminal);
            while (!ec) co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
            CHECK(*ec == asio::error::operation_aborted);  // at once, while the node is still stopped
            CHECK(only_host(s).orphaned_streams == 1);     // its stream id waits for the late answer
            CHECK(only_host(s).in_flight == 0);
        }
        // Written means it may have run: the node executes it once resumed, and the late answer is dropped.
        auto rows = co_await s.execute(statement("SELECT name FROM cqlcoro_session.users WHERE id = ?", id));
        REQUIRE(rows.size() == 1);
        CHECK(rows.one().get<std::string>(0) == "late");
        asio::steady_timer tick(ex);
        for (int i = 0; only_host(s).orphaned_streams != 0 && i < 10'000; ++i) {  // the late answer is on its way
            tick.expires_after(1ms);
            co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        CHECK(only_host(s).orphaned_streams == 0);
        auto again = co_await s.execute(statement("SELECT name FROM cqlcoro_session.users WHERE id = ?", id));
        CHECK(again.size() == 1);  // and the connection serves on
        co_await s.close();
    });
}
