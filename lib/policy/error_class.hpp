// How the driver reads an error, in one place (lib/policy/error_class.cpp), for every caller that
// decides on one: the request path, the retry policies, the pools and the control connection.
// classify_failure, public for retry policies, is declared in <cqlcoro/retry_policy.hpp>.
#pragma once

#include <cqlcoro/error.hpp>

namespace cqlcoro::detail {

/// The connection did not write the request (closed first, draining, out of stream ids): it was not
/// executed, and the next node may take it without counting as a retry.
bool never_sent(const error_code& ec) noexcept;

/// An end of the whole request that no retry overrides: the application's cancellation, the deadline,
/// the session's close.
bool ends_request(const error_code& ec) noexcept;

/// A connection's end that says its node failed, so the node goes down and reconnection starts: not
/// a drain, the application's abort, a replacement for orphaned stream ids or a close that timed out.
bool is_node_failure(const error_code& ec) noexcept;

}  // namespace cqlcoro::detail
