#include <cqlcoro/completion.hpp>
#include <cqlcoro/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <fmt/format.h>

#include "failure.hpp"

#include <string>

namespace cqlcoro {
namespace {

class protocol_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "cqlcoro.protocol"; }

    std::string message(int ev) const override {
        switch (static_cast<protocol_errc>(ev)) {
        case protocol_errc::truncated_frame:
            return "truncated message: the frame body ended before a field it announced (a corrupt frame or a "
                   "server bug; the connection should be closed)";
        case protocol_errc::frame_too_large:
            return "frame larger than the maximum frame size (session_params::max_frame_size, 256 MiB by default: "
                   "raise it if pages this large are expected, or lower the page size)";
        case protocol_errc::unsupported_version:
            return "the peer uses a native protocol version cqlcoro does not speak (v3, v4 and v5 are supported; "
                   "Cassandra 2.1 or later is needed)";
        case protocol_errc::not_a_response:
            return "received a request frame where a response was expected (is the peer a Cassandra node?)";
        case protocol_errc::unknown_opcode:
            return "unknown opcode in frame header (is the peer a Cassandra node speaking the CQL native protocol?)";
        case protocol_errc::unexpected_opcode:
            return "a request opcode arrived from the server (protocol violation)";
        case protocol_errc::bad_string:
            return "malformed string in message: negative or oversized length";
        case protocol_errc::bad_value_length:
            return "malformed value: length below -2, or an unset value where none is allowed";
        case protocol_errc::unknown_result_kind:
            return "RESULT message of unknown kind (the server may speak a newer protocol; pin the protocol version)";
        case protocol_errc::unknown_type:
            return "column of unknown type id in result metadata (the server may speak a newer protocol; pin the "
                   "protocol version)";
        case protocol_errc::type_nesting_too_deep:
            return "column types nested too deeply in result metadata (limit is 64 levels)";
        case protocol_errc::bad_metadata:
            return "inconsistent result metadata (column count, or partition key index out of range)";
        case protocol_errc::bad_rows:
            return "rows content does not match its metadata (a cell overruns the frame, or bytes are left over)";
        case protocol_errc::unknown_event:
            return "EVENT of unknown type (register only for TOPOLOGY_CHANGE, STATUS_CHANGE and SCHEMA_CHANGE)";
        case protocol_errc::bad_inet:
            return "malformed inet address: its size must be 4 (IPv4) or 16 (IPv6)";
        case protocol_errc::bad_schema_change:
            return "schema change with an unknown target (expected KEYSPACE, TABLE, TYPE, FUNCTION or AGGREGATE)";
        case protocol_errc::decompression_failed:
            return "compressed frame body does not decompress (corrupt data, or client and server disagree on "
                   "the compression algorithm)";
        case protocol_errc::decompressed_too_large:
            return "compressed frame body declares a size beyond the maximum frame size (a compression bomb, or a "
                   "page larger than session_params::max_frame_size: raise it if pages this large are expected)";
        case protocol_errc::compression_not_negotiated:
            return "received a compressed frame on a connection that did not negotiate compression";
        case protocol_errc::segment_header_crc:
            return "v5 segment header CRC24 mismatch: the stream is corrupt (the connection must be closed)";
        case protocol_errc::segment_payload_crc:
            return "v5 segment payload CRC32 mismatch: the data was corrupted in transit (the connection must be "
                   "closed)";
        case protocol_errc::segment_too_large:
            return "v5 segment payload larger than 128 KiB - 1";
        case protocol_errc::bad_envelope_in_segment:
            return "v5 segment does not hold whole envelopes as its self-contained flag says, or a multi-segment "
                   "envelope overruns its declared length";
        case protocol_errc::value_unset_not_supported:
            return "unset values need protocol v4 or later: bind null instead, or use a newer server";
        case protocol_errc::keyspace_not_supported:
            return "a per-request keyspace needs protocol v5: qualify table names with their keyspace instead";
        case protocol_errc::now_in_seconds_not_supported:
            return "now_in_seconds needs protocol v5";
        case protocol_errc::too_many_values:
            return "more than 65535 bound values (or batch statements): split the request";
        case protocol_errc::names_mismatch:
            return "named values: the number of names differs from the number of values";
        case protocol_errc::value_too_large:
            return "a value or query string exceeds the protocol limit of 2 GiB";
        }
        return "unknown cqlcoro protocol error";
    }
};

class type_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "cqlcoro.type"; }

    std::string message(int ev) const override {
        switch (static_cast<type_errc>(ev)) {
        case type_errc::type_mismatch: return "the C++ type cannot represent the column's CQL type";
        case type_errc::unexpected_null: return "null value read into a type that cannot hold null: read it as std::optional<T>";
        case type_errc::bad_cell_size: return "malformed cell: wrong size for a fixed-size type";
        case type_errc::bad_collection: return "malformed collection, tuple or UDT value: truncated, or a negative size";
        case type_errc::invalid_utf8: return "text value is not valid UTF-8";
        case type_errc::invalid_ascii: return "ascii value has a byte above 0x7F: use text for non-ASCII strings";
        case type_errc::value_out_of_range: return "value out of range for the column's CQL type";
        case type_errc::wrong_value_count: return "wrong number of bound values for the statement's bind markers";
        case type_errc::unknown_name: return "no column or bind marker of that name";
        case type_errc::bad_type_string: return "malformed CQL type string";
        case type_errc::type_nesting_too_deep: return "CQL type nested too deeply (limit is 64 levels)";
        case type_errc::row_out_of_range: return "row or column index out of range";
        case type_errc::inexact_float:
            return "the double has no exact float value (0.1 is not a float; 0.5 is): pass a float (0.1f), or convert it "
                   "to float yourself if rounding is fine";
        }
        return "unknown cqlcoro type error";
    }
};

class client_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "cqlcoro.client"; }

    std::string message(int ev) const override {
        switch (static_cast<client_errc>(ev)) {
        case client_errc::connection_closed_unsent:
            return "the connection closed before the request was written: it was not executed and is safe to retry";
        case client_errc::connection_closed_sent:
            return "the connection closed after the request was written: it may or may not have been executed "
                   "(retry only if it is idempotent)";
        case client_errc::connection_draining:
            return "the connection is closing or draining and takes no new requests: use another connection";
        case client_errc::too_many_requests:
            return "every stream id of the connection is in use: wait for responses or open more connections";
        case client_errc::connect_timeout:
            return "no connection within the connect timeout: check the address and port, and whether the server "
                   "expects TLS";
        case client_errc::heartbeat_timeout:
            return "the server did not answer a heartbeat within the heartbeat timeout: the connection is defunct";
        case client_errc::orphan_budget_exceeded:
            return "too many abandoned requests are still awaiting late responses: the connection is drained and "
                   "replaced (raise the request timeout or the orphan budget if this recurs)";
        case client_errc::close_timeout:
            return "the graceful close timed out with requests still in flight";
        case client_errc::authentication_failed:
            return "authentication failed: check the user name and password";
        case client_errc::authentication_required:
            return "the server requires authentication: configure credentials or an authenticator";
        case client_errc::handshake_failed:
            return "the server refused the connection handshake";
        case client_errc::tls_failed:
            return "the TLS handshake failed: check the CA certificate, the server name, and the client certificate";
        case client_errc::invalid_configuration:
            return "invalid configuration";
        case client_errc::invalid_statement:
            return "the statement cannot be sent as built";
        case client_errc::no_host_available:
            return "no node could take the request: each one tried was down, unreachable, or failed it";
        case client_errc::request_timeout:
            return "no response within the request timeout (a request already written may still be executed)";
        case client_errc::memory_budget_exhausted:
            return "the stream's memory budget stayed full for the whole request timeout: release pages held by "
                   "other streams, or raise session_params::stream_memory_budget";
        case client_errc::invalid_paging_state:
            return "the paging state is malformed or belongs to another statement: resume only with a state taken "
                   "from a stream of the same statement and values";
        case client_errc::empty_handle:
            return "an empty handle was used (a default-constructed or moved-from session, prepared_statement or pager): "
                   "assign it from session::connect(), session.prepare() or session.stream() first";
        case client_errc::session_closed:
            return "the session is closed (close() was called, or its last handle was destroyed): connect a new session";
        case client_errc::admission_queue_full:
            return "the session's admission queue is full (session_params::admission.max_queue requests wait for a permit): "
                   "the request was not sent; slow down, or raise admission.max_concurrent or max_queue";
        case client_errc::admission_rate_limited:
            return "the session's rate limit (session_params::admission.max_per_second) would start the request only after its "
                   "deadline: the request was not sent; slow down, or raise the limit or the timeout";
        case client_errc::admission_deadline:
            return "the session's admission queue would hold the request past its deadline (its expected wait, from the rate "
                   "permits came free at lately, is longer than the time it has left): the request was not sent; slow down, "
                   "raise admission.max_concurrent or the timeout, or set admission.refuse_unmeetable to false to wait anyway";
        }
        return "unknown cqlcoro client error";
    }
};

}  // namespace

std::string error_message(const error_code& ec, std::string_view what) {
    auto code = ec ? ec.message() : std::string();
    if (what.empty()) return code;
    if (code.empty() || what.find(code) != std::string_view::npos) return std::string(what);
    return std::string(what) + ": " + code;
}

namespace detail {

failure failure_of(const std::exception_ptr& e, std::string_view who) {
    try {
        std::rethrow_exception(e);
    } catch (const error& x) {
        return {x.boost_code(), x.what()};
    } catch (const boost::system::system_error& x) {  // operation_aborted: cancelled
        return {x.code(), x.what()};
    } catch (const std::exception& x) {
        return {boost::asio::error::fault, fmt::format("{} threw: {}", who, x.what())};
    } catch (...) {
        return {boost::asio::error::fault, fmt::format("{} threw something that is not a std::exception", who)};
    }
}

error_code code_of(const std::exception_ptr& e) noexcept {
    try {
        return failure_of(e, "an operation").code;
    } catch (...) {  // no memory for the text
        return boost::asio::error::fault;
    }
}

}  // namespace detail

const boost::system::error_category& client_category() noexcept {
    static const client_category_impl instance;
    return instance;
}

const boost::system::error_category& type_category() noexcept {
    static const type_category_impl instance;
    return instance;
}

const boost::system::error_category& protocol_category() noexcept {
    static const protocol_category_impl instance;
    return instance;
}

}  // namespace cqlcoro
