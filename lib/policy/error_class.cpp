// The one place where errors are classified: what a failure may have done to the data, whether a
// request was sent, whether it ends the request, whether it says its node failed.
#include "policy/error_class.hpp"

#include <cqlcoro/metrics.hpp>
#include <cqlcoro/retry_policy.hpp>

#include <boost/asio/error.hpp>

namespace cqlcoro {

namespace detail {

bool never_sent(const error_code& ec) noexcept {
    return ec == client_errc::connection_closed_unsent || ec == client_errc::connection_draining || ec == client_errc::too_many_requests;
}

bool ends_request(const error_code& ec) noexcept {
    return ec == boost::asio::error::operation_aborted || ec == client_errc::request_timeout || ec == client_errc::session_closed;
}

bool is_node_failure(const error_code& ec) noexcept {
    return ec && ec != client_errc::connection_draining && ec != boost::asio::error::operation_aborted &&
           ec != client_errc::orphan_budget_exceeded && ec != client_errc::close_timeout;
}

}  // namespace detail

using detail::never_sent;

request_outcome classify_failure(const error_code& ec, const server_error_info* server, bool written, bool writes) noexcept {
    const auto maybe = writes ? request_outcome::maybe_applied : request_outcome::failed;
    if (&ec.category() == &server_category()) {
        switch (static_cast<server_errc>(ec.value())) {
        // Refused before anything was executed.
        case server_errc::unavailable:
        case server_errc::is_bootstrapping:
        case server_errc::unprepared:
        case server_errc::bad_credentials:
            return request_outcome::rejected;
        // Failed as a whole without writing, or a read.
        case server_errc::syntax_error:
        case server_errc::invalid:
        case server_errc::unauthorized:
        case server_errc::config_error:
        case server_errc::already_exists:
        case server_errc::protocol_error:
        case server_errc::function_failure:
        case server_errc::read_timeout:
        case server_errc::read_failure:
            return request_outcome::failed;
        // A write may have reached some replicas.
        case server_errc::write_timeout:
        case server_errc::write_failure:
        case server_errc::cas_write_unknown:
        case server_errc::cdc_write_failure:
            return request_outcome::maybe_applied;
        case server_errc::overloaded:
        case server_errc::server_error:
        case server_errc::truncate_error:
            return maybe;
        }
        (void)server;
        return maybe;  // a code this driver does not know: assume the worst for a write
    }
    if (never_sent(ec) || ec == client_errc::empty_handle || ec == client_errc::session_closed ||
        ec == client_errc::admission_queue_full || ec == client_errc::admission_rate_limited || ec == client_errc::admission_deadline ||
        ec == client_errc::invalid_statement || ec == client_errc::no_host_available)
        return request_outcome::not_sent;
    if (ec == client_errc::connection_closed_sent) return maybe;
    // Cancelled, timed out, a defunct connection, a malformed answer: it depends on whether it was sent.
    return written ? maybe : request_outcome::not_sent;
}

error_kind kind_of(const error_code& ec) noexcept {
    if (&ec.category() == &server_category()) {
        switch (static_cast<server_errc>(ec.value())) {
        case server_errc::read_timeout: return error_kind::read_timeout;
        case server_errc::write_timeout:
        case server_errc::cas_write_unknown: return error_kind::write_timeout;
        case server_errc::unavailable: return error_kind::unavailable;
        case server_errc::overloaded:
        case server_errc::is_bootstrapping:
        case server_errc::server_error:
        case server_errc::truncate_error: return error_kind::overloaded;
        default: return error_kind::request_error;
        }
    }
    if (ec == client_errc::request_timeout) return error_kind::request_timeout;
    if (ec == client_errc::no_host_available) return error_kind::no_host_available;
    if (ec == boost::asio::error::operation_aborted) return error_kind::aborted;
    if (ec == client_errc::admission_queue_full || ec == client_errc::admission_rate_limited || ec == client_errc::admission_deadline ||
        ec == client_errc::session_closed ||
        ec == client_errc::empty_handle || ec == client_errc::invalid_configuration || ec == client_errc::invalid_statement)
        return error_kind::refused;
    // The connection's own ends (closed, draining, out of ids, handshake, TLS), and the socket's errors.
    if (&ec.category() == &client_category()) return ec.value() <= static_cast<int>(client_errc::tls_failed) ? error_kind::connection : error_kind::other;
    if (&ec.category() == &boost::system::system_category() || &ec.category() == &boost::asio::error::get_misc_category() ||
        &ec.category() == &boost::asio::error::get_netdb_category())
        return error_kind::connection;
    return error_kind::other;
}

std::string_view to_string(error_kind k) noexcept {
    switch (k) {
    case error_kind::request_timeout: return "request_timeout";
    case error_kind::read_timeout: return "read_timeout";
    case error_kind::write_timeout: return "write_timeout";
    case error_kind::unavailable: return "unavailable";
    case error_kind::overloaded: return "overloaded";
    case error_kind::request_error: return "request_error";
    case error_kind::connection: return "connection";
    case error_kind::no_host_available: return "no_host_available";
    case error_kind::aborted: return "aborted";
    case error_kind::refused: return "refused";
    case error_kind::other: return "other";
    }
    return "other";
}

}  // namespace cqlcoro
