// What the driver has to say about itself (a connection replaced, a node gone), for the application's log.
#pragma once

#include <functional>
#include <string_view>

namespace cqlcoro {

enum class log_level {
    debug,  ///< detail for tracing the driver's own decisions
    info,   ///< a notable event that needs no action (a node came back)
    warn,   ///< something the application may want to act on (a connection replaced, a node down)
    error,  ///< a failure the driver could not work around
};

/// Receives the driver's messages, one line each, without a trailing newline. It runs on whichever of
/// the session's threads the event happens on: keep it short, and thread-safe if the io_context runs on
/// several threads. The driver prints nothing by itself.
using log_sink = std::function<void(log_level, std::string_view message)>;

}  // namespace cqlcoro
