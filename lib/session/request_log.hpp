// The lines the session logs about one request: a slow or failed request
// (session_params::slow_requests), and the warnings a server attached to its answer.
#pragma once

#include <cqlcoro/chain.hpp>
#include <cqlcoro/request_tracker.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace cqlcoro::detail {

/// "slow request: 812 ms (threshold 500 ms), coordinator 10.0.0.1:9042, 2 attempts, 1 retry: <text>
/// [values]" or "request failed after ...: request_timeout (not sent): <message>: <text>". The text is
/// cut to o.max_query_length; values appear only with o.show_values.
std::string describe_request(const request& r, error_code ec, std::string_view error_text, const diagnostics& d,
                             std::chrono::nanoseconds took, const slow_request_options& o);

/// "server warning from 10.0.0.1:9042: <warning> (request: <text>)", one line per warning.
std::string describe_warning(const request& r, const std::string& coordinator, const std::string& warning, std::size_t max_query_length);

/// The query text cut to `max` characters, with "..." where it was cut.
std::string cut_text(std::string_view text, std::size_t max);

}  // namespace cqlcoro::detail
