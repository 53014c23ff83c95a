// The short names the implementation uses. Internal: public headers spell boost::asio and
// std::chrono out, so nothing leaks from namespace cqlcoro into an application's code.
#pragma once

#include <chrono>

namespace boost::asio {}

namespace cqlcoro {
namespace asio = boost::asio;
using namespace std::chrono_literals;
}  // namespace cqlcoro
