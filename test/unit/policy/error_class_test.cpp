// The one classification of errors the request path, the retry policies and the pools share.
#include "policy/error_class.hpp"

#include <cqlcoro/retry_policy.hpp>

#include <boost/asio/error.hpp>

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using namespace cqlcoro::detail;

TEST_CASE("error class: a request the connection never wrote is not sent, and goes to the next node") {
    for (error_code ec : {make_error_code(client_errc::connection_closed_unsent), make_error_code(client_errc::connection_draining),
                          make_error_code(client_errc::too_many_requests)}) {
        CHECK(never_sent(ec));
        CHECK(classify_failure(ec, nullptr, false, true) == request_outcome::not_sent);
        CHECK_FALSE(ends_request(ec));
    }
    CHECK_FALSE(never_sent(client_errc::connection_closed_sent));
    CHECK_FALSE(never_sent(server_errc::overloaded));
    CHECK_FALSE(never_sent({}));
}

TEST_CASE("error class: cancellation, the deadline and the session's close end the request; node failures do not") {
    CHECK(ends_request(boost::asio::error::operation_aborted));
    CHECK(ends_request(client_errc::request_timeout));
    CHECK(ends_request(client_errc::session_closed));
    CHECK_FALSE(ends_request(client_errc::connection_closed_sent));
    CHECK_FALSE(ends_request(client_errc::heartbeat_timeout));
    CHECK_FALSE(ends_request(server_errc::unavailable));
}

TEST_CASE("error class: a connection's end marks its node down only when it says the node failed") {
    CHECK(is_node_failure(client_errc::heartbeat_timeout));
    CHECK(is_node_failure(client_errc::connection_closed_sent));
    CHECK(is_node_failure(boost::asio::error::connection_reset));
    CHECK(is_node_failure(protocol_errc::segment_payload_crc));
    // Ends the driver chose: a drain, the application's abort, a replacement, a close that timed out.
    CHECK_FALSE(is_node_failure({}));
    CHECK_FALSE(is_node_failure(client_errc::connection_draining));
    CHECK_FALSE(is_node_failure(boost::asio::error::operation_aborted));
    CHECK_FALSE(is_node_failure(client_errc::orphan_budget_exceeded));
    CHECK_FALSE(is_node_failure(client_errc::close_timeout));
}
