// Error codes of cqlcoro. Every code's message says what happened and what to do about it.
#pragma once

#include <cqlcoro/server_error.hpp>

#include <boost/container/small_vector.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace cqlcoro {

using boost::system::error_code;

/// Errors from the protocol codec: bytes from the wire that do not form a valid frame or message,
/// or a request that cannot be expressed in the negotiated protocol version.
enum class protocol_errc {
    truncated_frame = 1,       ///< a message body ended before a field it announced
    frame_too_large,           ///< a frame's declared length exceeds the configured maximum
    unsupported_version,       ///< the peer uses a protocol version the codec does not speak
    not_a_response,            ///< a frame without the response direction bit arrived from a server
    unknown_opcode,            ///< an opcode the protocol does not define
    unexpected_opcode,         ///< a valid opcode in the wrong direction (a request opcode from a server)
    bad_string,                ///< a negative or oversized length for a string
    bad_value_length,          ///< a value length below -2, or -2 (unset) where it is not allowed
    unknown_result_kind,       ///< a RESULT whose kind is not void, rows, set_keyspace, prepared or schema_change
    unknown_type,              ///< a column type id the protocol does not define
    type_nesting_too_deep,     ///< column types nested deeper than the codec accepts
    bad_metadata,              ///< result metadata inconsistent with itself (column counts, pk indexes)
    bad_rows,                  ///< rows content that does not match its metadata
    unknown_event,             ///< an EVENT of a type the protocol does not define
    bad_inet,                  ///< an address whose size is neither 4 nor 16
    bad_schema_change,         ///< a schema change with an unknown target
    decompression_failed,      ///< a compressed body that does not decompress
    decompressed_too_large,    ///< a compressed body that would decompress beyond the maximum frame size
    compression_not_negotiated,///< a compressed frame on a connection without compression
    segment_header_crc,        ///< a v5 segment header whose CRC24 does not match
    segment_payload_crc,       ///< a v5 segment payload whose CRC32 does not match
    segment_too_large,         ///< a v5 segment longer than 128 KiB - 1
    bad_envelope_in_segment,   ///< a v5 self-contained segment holding a partial envelope, or a multi-segment envelope that overruns
    value_unset_not_supported, ///< an unset value in protocol v3 (unset needs v4 or later)
    keyspace_not_supported,    ///< a per-request keyspace below protocol v5
    now_in_seconds_not_supported, ///< now_in_seconds below protocol v5
    too_many_values,           ///< more than 65535 bound values or batch statements
    names_mismatch,            ///< named values whose name count differs from the value count
    value_too_large,           ///< a value or query longer than the protocol's 2 GiB limit
};

/// Errors of the CQL type layer: values that do not fit their column, malformed cells, bad type strings.
enum class type_errc {
    type_mismatch = 1,      ///< a C++ type that cannot represent the column's CQL type
    unexpected_null,        ///< a null cell read into a type that cannot hold null (use std::optional)
    bad_cell_size,          ///< a cell whose size is wrong for its fixed-size type (int is 4 bytes, ...)
    bad_collection,         ///< a collection, tuple or UDT cell that is truncated or has a negative size
    invalid_utf8,           ///< text that is not valid UTF-8 (with validation on)
    invalid_ascii,          ///< ascii text with a byte above 0x7F
    value_out_of_range,     ///< a value the column's type cannot hold (300 into a tinyint)
    wrong_value_count,      ///< more or fewer bound values than the statement has markers
    unknown_name,           ///< a column or bind-marker name the metadata does not have
    bad_type_string,        ///< a type string that does not parse
    type_nesting_too_deep,  ///< a type nested deeper than 64 levels
    row_out_of_range,       ///< a row or column index past the end
    inexact_float,          ///< a double bound to a float column that a float cannot hold exactly (0.1)
};

/// Errors of the driver itself: connections, timeouts, configuration. The connection-loss codes say
/// whether the request had been written, which decides whether it is safe to retry.
enum class client_errc {
    connection_closed_unsent = 1, ///< the connection closed before the request was written: it was not executed
    connection_closed_sent,       ///< the connection closed after the request was written: it may have been executed
    connection_draining,          ///< the connection is closing or draining and takes no new requests
    too_many_requests,            ///< every stream id of the connection is in use
    connect_timeout,              ///< connecting (TCP, TLS and the CQL handshake) took longer than the connect timeout
    heartbeat_timeout,            ///< the server did not answer a heartbeat in time: the connection is defunct
    orphan_budget_exceeded,       ///< too many abandoned requests await late responses: the connection is replaced
    close_timeout,                ///< a graceful close gave up waiting for requests in flight
    authentication_failed,        ///< the server refused the credentials
    authentication_required,      ///< the server requires authentication and no credentials were configured
    handshake_failed,             ///< the server answered the connection handshake with an error
    tls_failed,                   ///< the TLS handshake failed (certificate not trusted, name mismatch, ...)
    invalid_configuration,        ///< a setting that cannot work (a missing certificate file, ...)
    invalid_statement,            ///< a statement that cannot be sent as built (named values in a batch, ...)
    no_host_available,            ///< every host of the query plan failed or had no open connection
    request_timeout,              ///< no response within the request timeout
    memory_budget_exhausted,      ///< a stream waited its request timeout for room in its memory budget
    invalid_paging_state,         ///< a paging state that is malformed or was made for another statement
    empty_handle,                 ///< a default-constructed or moved-from session, prepared_statement or pager was used
    session_closed,               ///< the session was closed (close(), or its last handle was destroyed)
    admission_queue_full,         ///< admission: max_queue requests already wait for a permit (nothing was sent)
    admission_rate_limited,       ///< admission: the rate limit would start the request only after its deadline (nothing was sent)
    admission_deadline,           ///< admission: the queue's expected wait is longer than the request's time left (nothing was sent)
};

const boost::system::error_category& protocol_category() noexcept;
const boost::system::error_category& client_category() noexcept;
const boost::system::error_category& type_category() noexcept;

inline error_code make_error_code(protocol_errc e) noexcept {
    return {static_cast<int>(e), protocol_category()};
}

inline error_code make_error_code(type_errc e) noexcept { return {static_cast<int>(e), type_category()}; }
inline error_code make_error_code(client_errc e) noexcept { return {static_cast<int>(e), client_category()}; }

/// What a failed attempt, or a failed request, may have done to the data, in increasing order of
/// doubt. A request's outcome is the worst of its attempts': "maybe applied" sticks.
enum class request_outcome : std::uint8_t {
    not_sent,       ///< never written to a node: certainly not executed
    rejected,       ///< a node refused it before executing anything (unavailable, bootstrapping, unprepared)
    failed,         ///< executed without effect on the data, or a read: retrying is a question of cost only
    maybe_applied,  ///< a write that may have been applied (write timeout, connection lost after the write)
    /// Attempts only: this attempt's answer completed the request. Never a failed request's outcome.
    succeeded,
};
std::string_view to_string(request_outcome o) noexcept;

/// What the request did after a failed attempt.
enum class retry_action : std::uint8_t {
    rethrow,          ///< it failed with this error
    retry_same_node,  ///< it tried the same node again
    retry_next_node,  ///< it tried the next node of the query plan
    ignore,           ///< it succeeded with an empty result, as the retry policy decided
    completed,        ///< this attempt answered: its answer is the request's result
    abandoned,        ///< another execution answered first: this one was cancelled (never written, or its answer dropped)
};
std::string_view to_string(retry_action a) noexcept;

/// One try of a request on one node, as the request path records it: every attempt, the one that
/// answered included.
struct attempt_info {
    std::string host;      ///< "address:port"
    error_code ec;         ///< what it ended with (a server_errc for an ERROR answer; empty for the answer)
    std::string message;   ///< the server's message, or a description of the client-side failure
    request_outcome outcome = request_outcome::not_sent;  ///< what it may have done (succeeded for the answer)
    retry_action decision = retry_action::rethrow;         ///< what the request did next
    std::size_t execution = 0;  ///< 0: the first execution; 1, 2...: speculative ones
    std::chrono::steady_clock::time_point start{}, end{};  ///< handed to the connection; answered or given up
};

/// What is known about a request beyond its error code.
struct diagnostics {
    std::string host;                         ///< the host of the last attempt (the coordinator, if it answered)
    std::optional<server_error_info> server;  ///< the server's ERROR that failed the request, with its structured fields
    /// Every attempt, in the order they ended (the answer's last); one inline, so recording the usual
    /// single attempt allocates nothing. Moves past nodes with no open connection are attempts too.
    boost::container::small_vector<attempt_info, 1> attempts;
    /// For a failed request: the worst outcome over its attempts (not_sent when none reached a node).
    request_outcome outcome = request_outcome::not_sent;
    std::size_t retries = 0;                  ///< attempts beyond the first that the retry policy asked for
    /// The consistency a retry policy lowered the request to (downgrading_consistency_retry_policy): its
    /// answer, or its error, is at that level.
    std::optional<consistency> downgraded_to;
    std::size_t speculative_executions = 0;   ///< executions started beside the first (speculative_execution_policy)
};

/// The exception cqlcoro throws: an error code plus a message that names what failed (the column, the
/// CQL type, the C++ type, the host) and what to do about it, and for requests, their diagnostics.
/// The message of an error: `what`, followed by the code's own message unless `what` already says it
/// (each fact once: "TCP connect failed: Connection refused", never "...: Connection refused: Connection refused").
std::string error_message(const error_code& ec, std::string_view what);

class error : public std::system_error {
public:
    error(error_code ec, const std::string& what)
        : std::system_error(ec), code_(ec), what_(std::make_shared<const std::string>(error_message(ec, what))) {}
    explicit error(error_code ec) : error(ec, std::string()) {}
    error(error_code ec, const std::string& what, cqlcoro::diagnostics d)
        : error(ec, what) {
        diagnostics_ = std::make_shared<const cqlcoro::diagnostics>(std::move(d));
    }

    /// One line: what failed (the host, the column, ...), then the code's advice unless already said.
    const char* what() const noexcept override { return what_->c_str(); }

    /// The code as Boost.System sees it (std::system_error::code() gives the std:: view of it).
    const error_code& boost_code() const noexcept { return code_; }
    /// The request's diagnostics (empty for errors that are not about a request).
    const cqlcoro::diagnostics& diagnostics() const noexcept {
        static const cqlcoro::diagnostics none;
        return diagnostics_ ? *diagnostics_ : none;
    }

private:
    error_code code_;
    std::shared_ptr<const std::string> what_;                  // shared: exceptions are copied without throwing
    std::shared_ptr<const cqlcoro::diagnostics> diagnostics_;
};

/// The exception for an ERROR answer from `host`: its code is the server's, its message the server's
/// text with the code's advice, and diagnostics() holds the structured fields.
error make_server_error(server_error_info info, std::string host);
/// "host: the server's message (the fields that matter for its code)".
std::string describe_server_error(const server_error_info& info, std::string_view host);

}  // namespace cqlcoro

/// @cond INTERNAL (specializations of other libraries' templates; not part of the reference)
template <>
struct boost::system::is_error_code_enum<cqlcoro::type_errc> : std::true_type {};
template <>
struct std::is_error_code_enum<cqlcoro::type_errc> : std::true_type {};
template <>
struct boost::system::is_error_code_enum<cqlcoro::protocol_errc> : std::true_type {};
template <>
struct std::is_error_code_enum<cqlcoro::protocol_errc> : std::true_type {};
template <>
struct boost::system::is_error_code_enum<cqlcoro::client_errc> : std::true_type {};
template <>
struct std::is_error_code_enum<cqlcoro::client_errc> : std::true_type {};
/// @endcond
