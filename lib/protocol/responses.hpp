// Response messages and their decoding.
//
// Everything but the rows content is decoded into owning values. Rows content stays a view over the
// frame body (zero copy): the decoder has already walked every cell, so later row views over it can
// trust the lengths they read.
#pragma once

#include "protocol/compression.hpp"
#include "protocol/frame.hpp"
#include "protocol/wire.hpp"

#include <cqlcoro/column_spec.hpp>
#include <cqlcoro/consistency.hpp>
#include <cqlcoro/cql_type.hpp>
#include <cqlcoro/server_error.hpp>

#include <boost/system/result.hpp>

#include <array>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace cqlcoro::protocol {

/// The ERROR message and its parts are public (include/cqlcoro/server_error.hpp); the codec uses them as is.
using server_error = cqlcoro::server_errc;
using inet = cqlcoro::inet_address;
using cqlcoro::already_exists_error;
using cqlcoro::cas_write_unknown_error;
using cqlcoro::failure_reason;
using cqlcoro::function_failure_error;
using cqlcoro::read_failure_error;
using cqlcoro::read_timeout_error;
using cqlcoro::unavailable_error;
using cqlcoro::unprepared_error;
using cqlcoro::write_failure_error;
using cqlcoro::write_timeout_error;
using error_response = cqlcoro::server_error_info;

struct ready_response {};
struct authenticate_response {
    std::string authenticator;
};
struct supported_response {
    std::vector<std::pair<std::string, std::vector<std::string>>> options;
};
struct auth_challenge_response {
    std::optional<byte_buffer> token;
};
struct auth_success_response {
    std::optional<byte_buffer> token;
};

/// Rows-metadata flags.
namespace metadata_flag {
inline constexpr std::uint32_t global_tables_spec = 0x01;
inline constexpr std::uint32_t has_more_pages = 0x02;
inline constexpr std::uint32_t no_metadata = 0x04;
inline constexpr std::uint32_t metadata_changed = 0x08;  ///< v5
}  // namespace metadata_flag

using cqlcoro::column_spec;

struct rows_metadata {
    std::uint32_t flags = 0;
    std::int32_t column_count = 0;
    std::optional<byte_buffer> paging_state;     ///< present when more pages follow
    std::optional<byte_buffer> new_metadata_id;  ///< v5: the result metadata changed since PREPARE
    std::vector<column_spec> columns;            ///< empty with no_metadata
};

struct prepared_metadata {
    std::uint32_t flags = 0;
    std::vector<std::uint16_t> pk_indexes;  ///< v4+: bind-marker index of each partition key component
    std::vector<column_spec> columns;       ///< one per bind marker
};

struct void_result {};
struct rows_result {
    rows_metadata metadata;
    std::int32_t row_count = 0;
    bytes_view content;  ///< row_count * column_count [bytes] cells, validated; a view over the frame body
};
struct set_keyspace_result {
    std::string keyspace;
};
struct prepared_result {
    byte_buffer id;
    byte_buffer result_metadata_id;  ///< v5
    prepared_metadata variables;
    rows_metadata result;
};
struct schema_change {
    std::string change_type;  ///< CREATED, UPDATED, DROPPED
    std::string target;       ///< KEYSPACE, TABLE, TYPE, FUNCTION, AGGREGATE
    std::string keyspace;
    std::string name;                    ///< table, type, function or aggregate name
    std::vector<std::string> arg_types;  ///< FUNCTION and AGGREGATE
};
struct schema_change_result {
    schema_change change;
};
struct result_response {
    std::variant<void_result, rows_result, set_keyspace_result, prepared_result, schema_change_result> body;
};

struct topology_change_event {
    std::string change;  ///< NEW_NODE, REMOVED_NODE, MOVED_NODE
    inet address;
};
struct status_change_event {
    std::string change;  ///< UP, DOWN
    inet address;
};
struct schema_change_event {
    schema_change change;
};
struct event_response {
    std::variant<topology_change_event, status_change_event, schema_change_event> event;
};

struct response {
    std::optional<std::array<std::uint8_t, 16>> tracing_id;
    std::vector<std::string> warnings;
    std::vector<std::pair<std::string, std::optional<byte_buffer>>> custom_payload;
    std::variant<error_response, ready_response, authenticate_response, supported_response, result_response,
                 event_response, auth_challenge_response, auth_success_response>
        body;
};

/// The body of a frame as the message decoder wants it: decompressed into `scratch` when the frame has
/// the compression flag (v3/v4), otherwise `body` itself.
boost::system::result<bytes_view> frame_body(const frame_header& h, bytes_view body, compression c,
                                             std::size_t max_size, byte_buffer& scratch);

/// Decodes a response body (already decompressed). Views in the result point into `body`.
boost::system::result<response> decode_response(const frame_header& h, bytes_view body);

/// True when `e`, the answer to a STARTUP or OPTIONS sent in protocol version `requested` and received
/// in a frame with header `h`, means the server does not speak that version (so the client should
/// retry with a lower one). Servers differ: newer ones send a protocol error (0x000A); Cassandra 2.1
/// sends a server error (0x0000) in a v3 frame whose message names the version; a v5-beta server
/// refuses a client that did not set the beta flag.
bool rejects_protocol_version(const frame_header& h, const error_response& e, std::uint8_t requested);

/// Decodes one [option] type specification (exposed for the type layer and the fuzzers).
error_code read_type(reader& r, cql_type& out, int depth = 0);

}  // namespace cqlcoro::protocol
