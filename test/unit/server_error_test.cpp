// Server errors as users see them: the server_errc category and cqlcoro::error's diagnostics, from an
// ERROR message that went through the codec.
#include "protocol/responses.hpp"
#include "protocol/server_side.hpp"

#include <cqlcoro/error.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace cqlcoro;
using Catch::Matchers::ContainsSubstring;

TEST_CASE("server errors: an UNAVAILABLE answer becomes an error with its structured fields") {
    protocol::response r;
    r.body = protocol::error_response{0x1000, "Cannot achieve consistency level QUORUM", unavailable_error{consistency::quorum, 2, 1}};
    protocol::byte_buffer frame;
    REQUIRE_FALSE(protocol::encode_response(4, 7, r, frame));
    auto h = protocol::decode_header(frame);
    REQUIRE(h.has_value());
    auto decoded = protocol::decode_response(*h, protocol::bytes_view(frame).subspan(protocol::header_size));
    REQUIRE(decoded.has_value());
    auto e = make_server_error(std::get<protocol::error_response>(decoded->body), "127.0.0.3:9042");

    CHECK(e.boost_code() == server_errc::unavailable);
    CHECK(e.code() == std::error_code(server_errc::unavailable));
    CHECK_THAT(std::string(e.what()), ContainsSubstring("127.0.0.3:9042: Cannot achieve consistency level QUORUM"));
    CHECK_THAT(std::string(e.what()), ContainsSubstring("1 of 2 required replicas alive"));
    const auto& d = e.diagnostics();
    CHECK(d.host == "127.0.0.3:9042");
    REQUIRE(d.server);
    const auto& u = std::get<unavailable_error>(d.server->detail);
    CHECK(u.cl == consistency::quorum);
    CHECK(u.required == 2);
    CHECK(u.alive == 1);
    REQUIRE(d.attempts.size() == 1);
    CHECK(d.attempts[0].ec == server_errc::unavailable);

    // Exceptions are copied when thrown and caught: the diagnostics travel along.
    try {
        throw e;
    } catch (const cqlcoro::error& copy) {
        CHECK(copy.diagnostics().server->code == 0x1000);
    }
}

TEST_CASE("server errors: every code has a message of its own; unknown codes are still described") {
    for (auto c : {server_errc::server_error, server_errc::protocol_error, server_errc::bad_credentials, server_errc::unavailable,
                   server_errc::overloaded, server_errc::is_bootstrapping, server_errc::truncate_error, server_errc::write_timeout,
                   server_errc::read_timeout, server_errc::read_failure, server_errc::function_failure, server_errc::write_failure,
                   server_errc::cdc_write_failure, server_errc::cas_write_unknown, server_errc::syntax_error, server_errc::unauthorized,
                   server_errc::invalid, server_errc::config_error, server_errc::already_exists, server_errc::unprepared})
        CHECK_THAT(error_code(c).message(), !ContainsSubstring("server error code"));
    CHECK(error_code(0x7777, server_category()).message() == "server error code 0x7777");
    CHECK(error_code(server_errc::unprepared).message().find("prepare it again") != std::string::npos);
    // Errors that are not about a request have empty diagnostics.
    cqlcoro::error plain(client_errc::connect_timeout, "x");
    CHECK_FALSE(plain.diagnostics().server);
    CHECK(plain.diagnostics().attempts.empty());
}

TEST_CASE("errors: the code's message follows the text once, never twice") {
    CHECK(std::string(error(client_errc::connect_timeout, "127.0.0.1:9042: no answer").what()) ==
          "127.0.0.1:9042: no answer: " + error_code(client_errc::connect_timeout).message());
    // A text that already carries the code's message is left as it is.
    const auto refused = error_code(boost::system::errc::connection_refused, boost::system::generic_category());
    CHECK(std::string(error(refused, "TCP connect failed: " + refused.message()).what()) == "TCP connect failed: " + refused.message());
    CHECK(std::string(error(server_errc::invalid, "x: invalid request").what()) == "x: invalid request");
    // No text: the code's message alone; a copy keeps the message.
    error plain(client_errc::session_closed);
    error copy = plain;
    CHECK(std::string(copy.what()) == error_code(client_errc::session_closed).message());
    CHECK(copy.boost_code() == client_errc::session_closed);
}
