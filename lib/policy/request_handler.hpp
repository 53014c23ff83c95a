// The built-in request path: one request, its executions (the first and speculative ones), and their
// attempts, each on one node over one connection. See request_handler.cpp.
#pragma once

#include <cqlcoro/detail/erased_handler.hpp>
#include <cqlcoro/session.hpp>

#include <memory>

namespace cqlcoro::detail {

struct session_impl;

/// Runs `r` through the built-in layers (deadline, query plan, retries, speculative execution) and
/// completes `h` exactly once.
void launch_request(std::shared_ptr<session_impl> s, request r, erased_handler h);

}  // namespace cqlcoro::detail
