// Request messages and their encoding into frames (v3/v4) or envelopes (v5).
//
// Request structs are views: they borrow the query text, ids and bound values from the caller, so a
// request is encoded without copying anything but into the output buffer.
#pragma once

#include "protocol/compression.hpp"
#include "protocol/frame.hpp"
#include "protocol/wire.hpp"

#include <cqlcoro/consistency.hpp>

#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <variant>

namespace cqlcoro::protocol {

/// A bound value in its serialized form, or null, or (v4+) unset.
struct value_view {
    enum class state : std::uint8_t { set, null, unset };
    bytes_view bytes;
    state st = state::set;

    static value_view null() noexcept { return {{}, state::null}; }
    static value_view unset() noexcept { return {{}, state::unset}; }
};

/// Query flags (the <flags> of QUERY/EXECUTE; a [byte] in v3/v4, an [int] in v5).
namespace query_flag {
inline constexpr std::uint32_t values = 0x01;
inline constexpr std::uint32_t skip_metadata = 0x02;
inline constexpr std::uint32_t page_size = 0x04;
inline constexpr std::uint32_t paging_state = 0x08;
inline constexpr std::uint32_t serial_consistency = 0x10;
inline constexpr std::uint32_t default_timestamp = 0x20;
inline constexpr std::uint32_t names_for_values = 0x40;
inline constexpr std::uint32_t keyspace = 0x80;         ///< v5
inline constexpr std::uint32_t now_in_seconds = 0x100;  ///< v5
}  // namespace query_flag

struct query_params {
    consistency cl = consistency::local_one;
    std::span<const value_view> values;
    std::span<const std::string_view> names;  ///< empty, or one name per value (named binding)
    bool skip_metadata = false;
    std::optional<std::int32_t> page_size;
    std::optional<bytes_view> paging_state;
    std::optional<consistency> serial_consistency;
    std::optional<std::int64_t> default_timestamp;  ///< microseconds since the epoch
    std::string_view keyspace;                      ///< v5 only
    std::optional<std::int32_t> now_in_seconds;     ///< v5 only
};

struct startup_request {
    /// e.g. {"CQL_VERSION", "3.0.0"}, {"COMPRESSION", "lz4"}, {"DRIVER_NAME", "cqlcoro"}
    std::span<const std::pair<std::string_view, std::string_view>> options;
};
struct auth_response_request {
    std::optional<bytes_view> token;  ///< nullopt encodes a null token
};
struct options_request {};
struct query_request {
    std::string_view query;
    query_params params;
};
struct prepare_request {
    std::string_view query;
    std::string_view keyspace;  ///< v5 only
};
struct execute_request {
    bytes_view id;
    bytes_view result_metadata_id;  ///< v5 only (required there)
    query_params params;
};
enum class batch_type : std::uint8_t { logged = 0, unlogged = 1, counter = 2 };
/// A BATCH entry. Values are positional only: BATCH puts its flags after the statements, so a server
/// cannot know while reading them whether names precede the values, and Cassandra refuses named values
/// in batches.
struct batch_statement {
    std::variant<std::string_view, bytes_view> query_or_id;  ///< a query string, or a prepared id
    std::span<const value_view> values;
};
struct batch_request {
    batch_type type = batch_type::logged;
    std::span<const batch_statement> statements;
    consistency cl = consistency::local_one;
    std::optional<consistency> serial_consistency;
    std::optional<std::int64_t> default_timestamp;
    std::string_view keyspace;                   ///< v5 only
    std::optional<std::int32_t> now_in_seconds;  ///< v5 only
};
struct register_request {
    std::span<const std::string_view> events;  ///< "TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"
};

/// Per-frame options of a request.
struct frame_options {
    std::int16_t stream = 0;
    bool tracing = false;
    bool use_beta = false;
    /// Custom payload (v4+; QUERY, PREPARE, EXECUTE and BATCH only).
    std::span<const std::pair<std::string_view, bytes_view>> custom_payload;
    /// v3/v4 body compression; ignored in v5 (the segment layer compresses) and for STARTUP/OPTIONS.
    protocol::compression compression = compression::none;
};

using request = std::variant<startup_request, auth_response_request, options_request, query_request,
                             prepare_request, execute_request, batch_request, register_request>;

/// Appends one frame (v3/v4) or envelope (v5) to `out`. Nothing is appended on error: the errors say
/// which feature the protocol version lacks, or which limit the request breaks.
error_code encode_request(std::uint8_t version, const request& req, const frame_options& opts, byte_buffer& out);

/// Finishes a frame whose body was written after a header_size gap at `start` of `out`: compresses
/// the body with `c` (none for no compression), checks the size limit and writes the header with the
/// final length. On error `out` is cut back to `start`. Shared by the request and response encoders.
error_code seal_frame(frame_header h, std::size_t start, compression c, byte_buffer& out);

}  // namespace cqlcoro::protocol
