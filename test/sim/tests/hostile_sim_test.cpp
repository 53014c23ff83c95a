// Hostile and wrong input from a node, through the session: a frame past the size limit, a compression
// bomb, a flood of answers on streams nothing was sent on, absurd peers and tokens. Each gets a clear
// error (or is ignored, where ignoring is right), every request completes exactly once, and the session
// serves on. docs/errors.md has the table of what was tried and what the user sees.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/config.hpp>
#include <cqlcoro/metrics.hpp>
#include <cqlcoro/session.hpp>
#include <cqlcoro/tls.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "protocol/frame.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;

namespace {

constexpr std::uint16_t port = 19072;

// A bare envelope header (9 bytes) announcing `length` bytes of body, and `body` after it.
protocol::byte_buffer envelope(std::uint8_t version, std::int16_t stream, std::uint32_t length, protocol::byte_buffer body = {},
                               std::uint8_t flags = 0) {
    protocol::frame_header h{.version = version, .response = true, .flags = flags, .stream = stream, .op = protocol::opcode::result,
                             .length = length};
    protocol::byte_buffer out(protocol::header_size);
    protocol::encode_header(h, out.data());
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

// Until the pool has a connection open again after one was closed under it.
asio::awaitable<void> reconnected(session& s) {
    co_await cqlcoro::test::yield_until([&] { return s.metrics().nodes.at(0).open_connections >= 1; }, 50'000'000);
}

// A RESULT of kind VOID on `stream`, whole.
protocol::byte_buffer void_result(std::uint8_t version, std::int16_t stream) { return envelope(version, stream, 4, {0, 0, 0, 1}); }

}  // namespace

TEST_CASE("hostile: a frame past max_frame_size fails what was in flight on its connection, says what to raise, and the pool reconnects") {
    sim::cluster c({.nodes = 1, .port = port});
    // A real page larger than the limit, and a header that announces 2 GiB - 1 and never sends it.
    c.prime({.query = "SELECT big page"}, sim::rows({sim::column("v", cql_type::of(type_kind::blob))}).row(protocol::byte_buffer(100'000)));
    c.prime({.query = "SELECT lying length"}, {sim::raw_envelopes{[](std::int16_t s, std::uint8_t v) {
                  return std::vector<protocol::byte_buffer>{envelope(v, s, 0x7fffffff)};
              }}});
    c.prime({.query = "hang"}, {sim::hang{}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = cqlcoro::test::sim_session_params(c);
        p.max_frame_size = 64 * 1024;
        p.request_timeout = std::chrono::seconds(5);
        auto s = co_await session::connect(ex, p);
        for (const char* q : {"SELECT big page", "SELECT lying length"}) {
            // A bystander on the same connection: it must complete too, once, with an error that says
            // the connection went away after its request was written.
            std::optional<error_code> bystander;
            asio::co_spawn(ex, s.execute(statement("hang").idempotent(false), asio::as_tuple(asio::use_awaitable)),
                           [&](std::exception_ptr, std::tuple<error_code, result> r) { bystander = std::get<0>(r); });
            co_await cqlcoro::test::yield_until([&] { return sim::requests_of(c, "hang").size() > 0; }, 10'000'000);
            auto [ec, r] = co_await s.execute(statement(q), asio::as_tuple(asio::use_awaitable));
            INFO(q);
            // The code tells what happened to the request (written, then the connection closed: maybe
            // executed); the attempt says why the connection closed, and what to raise.
            CHECK(ec == client_errc::connection_closed_sent);
            CHECK(r.diagnostics().outcome == request_outcome::failed);  // a read applies nothing: failed, not maybe applied
            REQUIRE_FALSE(r.diagnostics().attempts.empty());
            CHECK_THAT(r.diagnostics().attempts.back().message, ContainsSubstring("sent a malformed frame"));
            CHECK_THAT(r.diagnostics().attempts.back().message, ContainsSubstring("max_frame_size"));
            co_await cqlcoro::test::yield_until([&] { return bystander.has_value(); }, 10'000'000);
            REQUIRE(bystander.has_value());
            CHECK(*bystander);
            CHECK(*bystander != client_errc::request_timeout);  // failed when the connection closed, not at its deadline
            c.clear_requests();
            // The pool reconnects and the session serves on.
            co_await reconnected(s);
            auto ok = co_await s.execute(statement("SELECT 1"));
            CHECK(ok.empty());
        }
        co_await s.close();
    });
}

TEST_CASE("hostile: max_frame_size is checked, in code and in the config file") {
    sim::cluster c({.nodes = 1, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = cqlcoro::test::sim_session_params(c);
        p.max_frame_size = 100;
        try {
            auto s = co_await session::connect(ex, p);
            FAIL("a 100-byte max_frame_size was taken");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::invalid_configuration);
            CHECK_THAT(std::string(e.what()), ContainsSubstring("max_frame_size 100: use 4096 to 2147483647"));
        }
    });
    CHECK_THROWS_WITH(parse_config(R"({"max_frame_size": 1024})", {.environment = false}, "cqlcoro.json"),
                      ContainsSubstring("cqlcoro.json: max_frame_size"));
    CHECK(parse_config(R"({"max_frame_size": 1048576})", {.environment = false}, "cqlcoro.json").max_frame_size == 1048576u);
}

TEST_CASE("hostile: a compression bomb is refused before anything is allocated for it") {
    // v4 with LZ4: the body's first [int] is the decompressed size. 1 GiB from 8 bytes.
    sim::cluster c({.nodes = 1, .port = port, .max_version = 4});
    c.prime({.query = "SELECT bomb"}, {sim::raw_envelopes{[](std::int16_t s, std::uint8_t v) {
                  return std::vector<protocol::byte_buffer>{envelope(v, s, 8, {0x40, 0, 0, 0, 0x1f, 0, 0, 0}, /*compression*/ 0x01)};
              }}});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = cqlcoro::test::sim_session_params(c);
        p.compression = compression::lz4;
        auto s = co_await session::connect(ex, p);
        auto [ec, r] = co_await s.execute(statement("SELECT bomb"), asio::as_tuple(asio::use_awaitable));
        CHECK(ec == client_errc::connection_closed_sent);
        REQUIRE_FALSE(r.diagnostics().attempts.empty());
        CHECK_THAT(r.diagnostics().attempts.back().message, ContainsSubstring("compression bomb"));
        co_await reconnected(s);
        auto ok = co_await s.execute(statement("SELECT 1"));
        CHECK(ok.empty());
        co_await s.close();
    });
}

TEST_CASE("hostile: 32,767 answers to nothing are dropped; the one request in flight gets its own answer, once") {
    for (std::uint8_t version : {4, 5}) {
        INFO("protocol v" << int(version));
        sim::cluster c({.nodes = 1, .port = port, .max_version = version});
        // Before the real answer: a RESULT on every other stream id, none of which carries a request.
        c.prime({.query = "SELECT flood"}, {sim::raw_envelopes{[](std::int16_t s, std::uint8_t v) {
                      std::vector<protocol::byte_buffer> out;
                      for (int id = 0; id < 32768; ++id)
                          if (id != s) out.push_back(void_result(v, static_cast<std::int16_t>(id)));
                      out.push_back(envelope(v, s, 4, {0, 0, 0, 1}));
                      return out;
                  }}});
        c.prime({.query = "SELECT after"}, sim::rows({sim::column("v", cql_type::of(type_kind::int_))}).row(7));
        cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            auto s = co_await session::connect(ex, cqlcoro::test::sim_session_params(c));
            CHECK(s.metrics().nodes.at(0).unexpected_answers == 0);
            auto [ec, r] = co_await s.execute(statement("SELECT flood"), asio::as_tuple(asio::use_awaitable));
            CHECK_FALSE(ec);
            // Dropped, and counted: a broken server shows in the metrics.
            CHECK(s.metrics().nodes.at(0).unexpected_answers == 32767);
            CHECK_THAT(to_prometheus(s.metrics()), ContainsSubstring("_node_unexpected_answers_total{"));
            // The connection still pairs answers with requests: the next query gets its rows.
            auto after = co_await s.execute(statement("SELECT after"));
            REQUIRE(after.size() == 1);
            CHECK((*after.rows().begin()).get<int>(0) == 7);
            CHECK(s.metrics().nodes.at(0).open_connections >= 1);
            co_await s.close();
        });
    }
}

TEST_CASE("hostile: a node listing absurd peers and tokens is read with those rows left out; the session serves on") {
    sim::cluster c({.nodes = 2, .port = port});
    const auto text_set = cql_type::set_of(cql_type::of(type_kind::varchar));
    auto col = [](std::string name, cql_type t) { return column_spec{"system", "peers", std::move(name), std::move(t)}; };
    auto peers = sim::rows({col("peer", cql_type::of(type_kind::inet)), col("data_center", cql_type::of(type_kind::varchar)),
                            col("host_id", cql_type::of(type_kind::uuid)), col("preferred_ip", cql_type::of(type_kind::inet)),
                            col("rack", cql_type::of(type_kind::varchar)), col("release_version", cql_type::of(type_kind::varchar)),
                            col("rpc_address", cql_type::of(type_kind::inet)), col("schema_version", cql_type::of(type_kind::uuid)),
                            col("tokens", text_set)});
    const auto n2 = asio::ip::make_address(c.address(2));
    uuid id2{}, some_id{};
    id2.data[0] = 2;
    some_id.data[0] = 10;
    // The real second node, with tokens that do not parse beside one that does.
    peers.row(n2, "dc1", id2, std::nullopt, "rack1", "3.11.16", n2, std::nullopt,
              std::set<std::string>{"not-a-token", "99999999999999999999999999999", "", "-5"});
    // No host id, no address to reach it at, no datacenter: nothing a driver can use.
    peers.row(asio::ip::make_address("127.0.0.9"), std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
              std::nullopt, std::nullopt, std::nullopt);
    // The wildcard address as its rpc_address (a misconfigured node): reached at its peer address instead.
    peers.row(asio::ip::make_address("127.0.0.10"), "dc1", some_id, std::nullopt, "rack1", "3.11.16",
              asio::ip::make_address("0.0.0.0"), std::nullopt, std::set<std::string>{"42"});
    c.prime({.query = "SELECT \\* FROM system\\.peers", .regex = true}, peers);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = cqlcoro::test::sim_session_params(c);
        auto s = co_await session::connect(ex, p);
        auto md = s.metadata();
        bool saw_nameless = false;
        for (const auto& n : md->nodes()) saw_nameless |= n->host_id == uuid{};
        CHECK_FALSE(saw_nameless);  // the peer without a host id is left out
        bool saw_n2 = false;
        for (const auto& n : md->nodes()) saw_n2 |= n->host_id == id2;
        CHECK(saw_n2);  // its good token is enough
        // Requests go on, to the nodes that answer.
        for (int i = 0; i < 20; ++i) {
            auto [ec, r] = co_await s.execute(statement("SELECT 1").idempotent(true), asio::as_tuple(asio::use_awaitable));
            CHECK_FALSE(ec);
        }
        co_await s.close();
    });
}

TEST_CASE("hostile: wrong credentials fail connect clearly, and no password reaches an error, a log line or the diagnostics") {
    sim::cluster c({.nodes = 2, .port = port, .credentials = std::pair{std::string("app_user"), std::string("right-pw-4711")}});
    std::vector<std::string> lines;
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = cqlcoro::test::sim_session_params(c);
        p.logger = [&](log_level, std::string_view m) { lines.emplace_back(m); };
        p.min_log_level = log_level::debug;
        p.auth = plain_text("app_user", "wrong-pw-0815");
        std::string what;
        try {
            auto s = co_await session::connect(ex, p);
            FAIL("a wrong password connected");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::authentication_failed);
            what = e.what();
            for (const auto& a : e.diagnostics().attempts) what += " | " + a.message;
        }
        CHECK_THAT(what, ContainsSubstring("user name and password"));
        CHECK(what.find("wrong-pw-0815") == std::string::npos);
        // The right password connects; nothing it logs at debug holds either password.
        p.auth = plain_text("app_user", "right-pw-4711");
        auto s = co_await session::connect(ex, p);
        auto r = co_await s.execute(statement("SELECT 1"));
        CHECK(r.empty());
        // A connection lost and made again (with the handshake, credentials and all) is logged.
        c.drop_connections(2);
        co_await cqlcoro::test::yield_until([&] { return !lines.empty(); }, 50'000'000);
        co_await s.close();
    });
    CHECK_FALSE(lines.empty());
    for (const auto& l : lines) {
        INFO(l);
        CHECK(l.find("wrong-pw-0815") == std::string::npos);
        CHECK(l.find("right-pw-4711") == std::string::npos);
    }
}

TEST_CASE("hostile: a config file's password is never echoed by its errors") {
    // A password of the wrong type, and one without a user name.
    for (const char* text : {R"({"auth": {"password": 987654321}})", R"({"auth": {"password": "pw-987654321"}})"}) {
        INFO(text);
        try {
            (void)parse_config(text, {.environment = false}, "cqlcoro.json");
            FAIL("taken");
        } catch (const cqlcoro::error& e) {
            CHECK(e.boost_code() == client_errc::invalid_configuration);
            CHECK(std::string(e.what()).find("987654321") == std::string::npos);
        }
    }
}

TEST_CASE("hostile: an expired server certificate is refused by default, saying so; a current one from the same CA connects") {
    const auto dir = std::filesystem::temp_directory_path() / ("cqlcoro-hostile-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto d = dir.string();
    // A CA, and two server certificates it signed for 127.0.0.1: one that expired yesterday, one current.
    const std::string cmd =
        "cd " + d + " && printf 'subjectAltName=IP:127.0.0.1\\n' > ext && "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=hostile-ca "
        "-keyout ca.key -out ca.pem >/dev/null 2>&1 && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out srv.csr "
        ">/dev/null 2>&1 && "
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days -1 -extfile ext -out expired.pem >/dev/null 2>&1 && "
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out current.pem >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    auto connect_with = [&](const char* cert) {
        sim::cluster c({.nodes = 1, .port = port, .tls = sim::tls_files{d + "/" + cert, d + "/key.pem", ""}});
        std::string failure;
        cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            auto p = cqlcoro::test::sim_session_params(c);
            tls_options tls;
            tls.ca_file = d + "/ca.pem";
            p.tls = tls;
            p.connect_timeout = std::chrono::seconds(5);
            try {
                auto s = co_await session::connect(ex, p);
                co_await s.close();
            } catch (const cqlcoro::error& e) {
                failure = e.what();
                CHECK(e.boost_code() == client_errc::tls_failed);
            }
        });
        return failure;
    };
    const auto expired = connect_with("expired.pem");
    CHECK_THAT(expired, ContainsSubstring("certificate has expired"));
    CHECK(connect_with("current.pem").empty());
    std::filesystem::remove_all(dir);
}
