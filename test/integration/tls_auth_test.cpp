// TLS and authentication against real Cassandra nodes (2.1 or 5.0). The test command starts two extra
// single-node clusters beside each plain one (test/cluster/ccluster with CQLCORO_CLUSTER_BASE), named by
// CQLCORO_TEST_[<TARGET>_]... (target.hpp):
//   - TLS with PasswordAuthenticator (cassandra/cassandra): TLS_HOST, TLS_CA
//   - TLS requiring client certificates: MTLS_HOST, MTLS_CA, MTLS_CLIENT_CERT, MTLS_CLIENT_KEY
#include "connection/connection.hpp"

#include <cqlcoro/rows.hpp>
#include <cqlcoro/tls.hpp>

#include <openssl/ssl.h>

#include <boost/asio/use_awaitable.hpp>

#include "target.hpp"
#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdlib>
#include <stdexcept>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using actor = cqlcoro::connection::connection;
using cqlcoro::connection::connection_params;
using Catch::Matchers::ContainsSubstring;
namespace asio = boost::asio;

namespace {

std::string env(const char* name) { return cqlcoro::test::required_test_env(name); }
using cqlcoro::test::test_server;

connection_params tls_node() {
    auto p = cqlcoro::test::target_connection();
    p.host = env("TLS_HOST");
    p.tls = tls_options{.ca_file = env("TLS_CA")};
    p.auth = plain_text("cassandra", "cassandra");
    return p;
}

connection_params mtls_node() {
    auto p = cqlcoro::test::target_connection();
    p.host = env("MTLS_HOST");
    p.tls = tls_options{.ca_file = env("MTLS_CA"),
                        .cert_file = env("MTLS_CLIENT_CERT"),
                        .key_file = env("MTLS_CLIENT_KEY")};
    return p;
}

// Connects, runs a query, and returns the release version the node reports.
asio::awaitable<std::string> release_version(asio::any_io_executor ex, connection_params p) {
    auto conn = co_await actor::connect(ex, p);
    CHECK(conn->version() == cqlcoro::test::test_protocol());
    query_request q{"SELECT release_version FROM system.local", {.cl = consistency::one}};
    auto f = co_await conn->execute(q, asio::use_awaitable);
    conn->abort();
    auto owned = std::make_shared<cqlcoro::connection::response_frame>(std::move(f));
    const auto& rows = std::get<rows_result>(std::get<result_response>(owned->message.body).body);
    result_page page(rows.metadata.columns, static_cast<std::size_t>(rows.row_count), rows.content, owned);
    co_return page.rows()[0].get<std::string>(0);
}

// The error connect() throws, or a failure when it connects.
asio::awaitable<cqlcoro::error> connect_error(asio::any_io_executor ex, connection_params p) {
    try {
        auto conn = co_await actor::connect(ex, p);
        conn->abort();
    } catch (const cqlcoro::error& e) {
        co_return e;
    }
    FAIL("connected, but should have been refused");
    co_return cqlcoro::error(error_code{});
}

}  // namespace

TEST_CASE("real node, TLS: verified server certificate and IP address, PlainText login, LZ4") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = tls_node();
        p.compression = protocol::compression::lz4;
        CHECK(co_await release_version(ex, p) == test_server().text);
    });
}

TEST_CASE("real node, authentication: a wrong or missing password gets a clear error") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto wrong = tls_node();
        wrong.auth = plain_text("cassandra", "not-the-password");
        auto e = co_await connect_error(ex, wrong);
        CHECK(e.boost_code() == client_errc::authentication_failed);
        CHECK_THAT(std::string(e.what()), ContainsSubstring("check the user name and password"));
        CHECK_THAT(std::string(e.what()), ContainsSubstring("and/or password are incorrect"));  // 2.1: "Username ...", 5.0: "Provided username cassandra ..."

        auto none = tls_node();
        none.auth = nullptr;
        auto e2 = co_await connect_error(ex, none);
        CHECK(e2.boost_code() == client_errc::authentication_required);
        CHECK_THAT(std::string(e2.what()), ContainsSubstring("PasswordAuthenticator"));
    });
}

TEST_CASE("real node, TLS: a certificate from the wrong CA, or for another name, is rejected") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto wrong_ca = tls_node();
        wrong_ca.tls->ca_file = env("MTLS_CLIENT_CERT");  // a self-signed certificate that signed nothing
        auto e = co_await connect_error(ex, wrong_ca);
        CHECK(e.boost_code() == client_errc::tls_failed);
        CHECK_THAT(std::string(e.what()), ContainsSubstring("certificate verify failed"));

        auto wrong_name = tls_node();
        wrong_name.tls->server_name = "db.example.org";  // the node's certificate names 127.0.0.x and localhost
        auto e2 = co_await connect_error(ex, wrong_name);
        CHECK(e2.boost_code() == client_errc::tls_failed);

        // The same with host name verification off: the chain is still verified, and it connects.
        wrong_name.tls->verify_hostname = false;
        CHECK(co_await release_version(ex, wrong_name) == test_server().text);

        // A CA file that does not exist is a configuration error, reported before any connection.
        auto missing = tls_node();
        missing.tls->ca_file = "/nonexistent/ca.pem";
        auto e3 = co_await connect_error(ex, missing);
        CHECK(e3.boost_code() == client_errc::invalid_configuration);
        CHECK_THAT(std::string(e3.what()), ContainsSubstring("/nonexistent/ca.pem"));
    });
}

TEST_CASE("real node, TLS: plain TCP to the TLS port fails within the connect timeout, saying so") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto plain = tls_node();
        plain.tls.reset();
        plain.connect_timeout = std::chrono::seconds(2);
        const auto t0 = std::chrono::steady_clock::now();
        auto e = co_await connect_error(ex, plain);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));  // bounded: no hang
        CHECK_THAT(std::string(e.what()), ContainsSubstring("if the server expects TLS, configure tls"));
    });
}

TEST_CASE("real node, mutual TLS: with the client certificate it connects; without, it is refused") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        CHECK(co_await release_version(ex, mtls_node()) == test_server().text);

        auto anonymous = mtls_node();
        anonymous.tls->cert_file.clear();
        anonymous.tls->key_file.clear();
        anonymous.connect_timeout = std::chrono::seconds(5);
        auto e = co_await connect_error(ex, anonymous);
        INFO(e.what());
        CHECK((e.boost_code() == client_errc::tls_failed || e.boost_code() == asio::error::eof ||
               e.boost_code() == asio::error::connection_reset));
        CHECK_THAT(std::string(e.what()), ContainsSubstring(env("MTLS_HOST") + ":9042"));
    });
}

TEST_CASE("real node, TLS: a client that allows TLS 1.3 only connects to 5.0; 2.1's cipher list has no 1.3 suite") {
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = tls_node();
        p.tls->context = make_tls_context(*p.tls);
        REQUIRE(SSL_CTX_set_min_proto_version(p.tls->context->native_handle(), TLS1_3_VERSION) == 1);
        if (test_server().at_least(4)) {
            CHECK(co_await release_version(ex, p) == test_server().text);
        } else {
            auto e = co_await connect_error(ex, p);
            CHECK(e.boost_code() == client_errc::tls_failed);
        }
    });
}
