// The TLS context for a connection's options, without throwing (make_tls_context() is the public,
// throwing form).
#pragma once

#include <cqlcoro/tls.hpp>

#include "failure.hpp"

#include <memory>

namespace cqlcoro::detail {

fallible<std::shared_ptr<boost::asio::ssl::context>> tls_context_for(const tls_options& o);

}  // namespace cqlcoro::detail
