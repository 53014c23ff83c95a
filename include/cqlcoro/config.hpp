// A session's configuration from a JSON file (comments and trailing commas allowed), as the Java
// driver's application.conf:
//
//   auto params = cqlcoro::load_config({.file = "cqlcoro.json", .code = [](cqlcoro::session_params& p) {
//       p.on_node_event = ...;  // what only code can set, and anything code must decide
//   }});
//   auto session = co_await cqlcoro::session::connect(ex, params);
//   ...
//   session.reload_config();  // re-reads the file: profiles and request defaults change at run time
//
// Layers, lowest first: the built-in defaults (session_params{}) < the file < the environment
// (CQLCORO_*) < `code` < each statement's own options. Each key of the file is the session_params
// member of the same name; docs/cqlcoro.reference.jsonc lists every key with its default. Durations are
// strings with a unit ("150ms", "2s", "1m", "1h"); consistency levels are their CQL names
// ("LOCAL_QUORUM"). An unknown key, a value of the wrong type or out of range is refused with the key's
// path and what is expected (client_errc::invalid_configuration); nothing is half applied.
#pragma once

#include <cqlcoro/error.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cqlcoro {

struct session_params;

/// Where a configuration comes from; kept in session_params::config so reload_config() can read it again.
struct config_source {
    /// The JSON file; empty: none (the environment and `code` still apply).
    std::filesystem::path file;
    /// Read CQLCORO_* variables over the file (the list is in the reference file's header).
    bool environment = true;
    /// Applied last, over the file and the environment, at load and at each reload.
    std::function<void(session_params&)> code;
};

/// session_params from the built-in defaults, the file, the environment and `code`, in that order.
/// Throws cqlcoro::error with invalid_configuration naming the file, the key's path (and line for a
/// syntax error) and what is expected.
session_params load_config(const config_source& source);

/// The same from JSON text; `name` stands for the file in errors.
session_params parse_config(std::string_view json, const config_source& source = {}, std::string_view name = "<config>");

/// The environment variables load_config() reads, with the key each sets ("CQLCORO_REQUEST_TIMEOUT",
/// "request_timeout"): the session-wide keys whose values are strings, numbers or booleans.
std::vector<std::pair<std::string, std::string>> config_environment_keys();

}  // namespace cqlcoro
