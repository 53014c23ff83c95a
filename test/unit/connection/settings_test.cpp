// Connection settings that are checked before any connection: TLS context building, authenticator
// tokens, and the client error messages.
#include <cqlcoro/auth.hpp>
#include <cqlcoro/error.hpp>
#include <cqlcoro/tls.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace cqlcoro;
using Catch::Matchers::ContainsSubstring;

namespace {

client_errc code_of(const tls_options& o) {
    try {
        make_tls_context(o);
    } catch (const cqlcoro::error& e) {
        CHECK(e.boost_code().category() == client_category());
        return static_cast<client_errc>(e.boost_code().value());
    }
    return client_errc{};
}

}  // namespace

TEST_CASE("tls: unreadable files and half a key pair are configuration errors that name the culprit") {
    CHECK(code_of({.ca_file = "/nonexistent/ca.pem"}) == client_errc::invalid_configuration);
    CHECK(code_of({.ca_pem = "not a certificate"}) == client_errc::invalid_configuration);
    CHECK(code_of({.cert_file = "/nonexistent/client.pem"}) == client_errc::invalid_configuration);
    try {
        make_tls_context({.key_file = "/nonexistent/client.key"});
        FAIL("a missing key file was accepted");
    } catch (const cqlcoro::error& e) {
        CHECK_THAT(std::string(e.what()), ContainsSubstring("/nonexistent/client.key"));
    }
}

TEST_CASE("tls: default options build a verifying context from the system's CA paths") {
    auto ctx = make_tls_context({});
    REQUIRE(ctx);
    CHECK(SSL_CTX_get_verify_mode(ctx->native_handle()) == SSL_VERIFY_PEER);
    auto lax = make_tls_context({.verify_peer = false});
    CHECK(SSL_CTX_get_verify_mode(lax->native_handle()) == SSL_VERIFY_NONE);
    // A context of the application's own is used as it is.
    auto own = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
    CHECK(make_tls_context({.context = own}) == own);
}

TEST_CASE("auth: PLAIN sends authzid, user and password separated by NULs, and refuses challenges") {
    auto provider = plain_text("user", "pass word");
    auto a = provider->new_authenticator("127.0.0.1", "org.apache.cassandra.auth.PasswordAuthenticator");
    const auto token = a->initial_response();
    const std::string expected = std::string(1, '\0') + "user" + std::string(1, '\0') + "pass word";
    CHECK(std::string(token.begin(), token.end()) == expected);
    CHECK_THROWS(a->evaluate_challenge({}));
}

TEST_CASE("client errors: connection losses say whether a retry is safe") {
    CHECK_THAT(error_code(client_errc::connection_closed_unsent).message(), ContainsSubstring("safe to retry"));
    CHECK_THAT(error_code(client_errc::connection_closed_sent).message(), ContainsSubstring("idempotent"));
    CHECK(std::string(client_category().name()) == "cqlcoro.client");
}
