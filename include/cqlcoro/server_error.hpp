// Errors reported by Cassandra itself (the ERROR message): the code, the server's message and the
// structured fields some codes carry (consistency, replicas required and alive, write type, ...).
#pragma once

#include <cqlcoro/consistency.hpp>

#include <boost/system/error_code.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

namespace cqlcoro {

/// CQL server error codes, as the protocol numbers them; an error_code of server_category() carries one.
enum class server_errc : std::int32_t {
    server_error = 0x0000,
    protocol_error = 0x000A,
    bad_credentials = 0x0100,
    unavailable = 0x1000,
    overloaded = 0x1001,
    is_bootstrapping = 0x1002,
    truncate_error = 0x1003,
    write_timeout = 0x1100,
    read_timeout = 0x1200,
    read_failure = 0x1300,       ///< v4+
    function_failure = 0x1400,   ///< v4+
    write_failure = 0x1500,      ///< v4+
    cdc_write_failure = 0x1600,  ///< v5
    cas_write_unknown = 0x1700,  ///< v5
    syntax_error = 0x2000,
    unauthorized = 0x2100,
    invalid = 0x2200,
    config_error = 0x2300,
    already_exists = 0x2400,
    unprepared = 0x2500,
};

const boost::system::error_category& server_category() noexcept;
inline boost::system::error_code make_error_code(server_errc e) noexcept { return {static_cast<int>(e), server_category()}; }

/// An [inet] or [inetaddr] from the wire: 4 or 16 address bytes (and a port for [inet]).
struct inet_address {
    std::array<std::uint8_t, 16> bytes{};
    std::uint8_t size = 0;
    std::int32_t port = 0;

    std::string address_string() const;
    friend bool operator==(const inet_address&, const inet_address&) = default;
};

struct failure_reason {
    inet_address endpoint;
    std::uint16_t code = 0;  ///< RequestFailureReason (0 unknown, 1 too many tombstones, ...)
};

struct unavailable_error {
    consistency cl{};
    std::int32_t required = 0;
    std::int32_t alive = 0;
};
struct write_timeout_error {
    consistency cl{};
    std::int32_t received = 0;
    std::int32_t block_for = 0;
    std::string write_type;                  ///< SIMPLE, BATCH, BATCH_LOG, UNLOGGED_BATCH, COUNTER, CAS, VIEW, CDC
    std::optional<std::int16_t> contentions; ///< v5, CAS only
};
struct read_timeout_error {
    consistency cl{};
    std::int32_t received = 0;
    std::int32_t block_for = 0;
    bool data_present = false;
};
struct read_failure_error {
    consistency cl{};
    std::int32_t received = 0;
    std::int32_t block_for = 0;
    std::int32_t num_failures = 0;
    std::vector<failure_reason> reasons;  ///< v5 (v4 sends only the count)
    bool data_present = false;
};
struct write_failure_error {
    consistency cl{};
    std::int32_t received = 0;
    std::int32_t block_for = 0;
    std::int32_t num_failures = 0;
    std::vector<failure_reason> reasons;  ///< v5
    std::string write_type;
};
struct function_failure_error {
    std::string keyspace;
    std::string function;
    std::vector<std::string> arg_types;
};
struct already_exists_error {
    std::string keyspace;
    std::string table;  ///< empty when a keyspace already exists
};
struct unprepared_error {
    std::vector<std::uint8_t> id;
};
struct cas_write_unknown_error {
    consistency cl{};
    std::int32_t received = 0;
    std::int32_t block_for = 0;
};

/// The ERROR message: code, the server's text, and the fields its code carries.
struct server_error_info {
    std::int32_t code = 0;  ///< a server_errc value, or a code this driver does not know
    std::string message;
    std::variant<std::monostate, unavailable_error, write_timeout_error, read_timeout_error, read_failure_error,
                 write_failure_error, function_failure_error, already_exists_error, unprepared_error,
                 cas_write_unknown_error>
        detail;

    /// The code as an error_code of server_category().
    boost::system::error_code code_as_error() const noexcept { return {code, server_category()}; }
};

}  // namespace cqlcoro

/// @cond INTERNAL (specializations of other libraries' templates; not part of the reference)
template <>
struct boost::system::is_error_code_enum<cqlcoro::server_errc> : std::true_type {};
template <>
struct std::is_error_code_enum<cqlcoro::server_errc> : std::true_type {};
/// @endcond
