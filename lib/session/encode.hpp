// Statements into request frames: the one place where statement options meet the protocol codec.
#pragma once

#include "protocol/requests.hpp"

#include <cqlcoro/statement.hpp>

namespace cqlcoro::session_detail {

/// What a frame depends on besides the statement: the connection's protocol and the session defaults.
struct encode_context {
    std::uint8_t version = 4;
    protocol::compression compression = protocol::compression::none;
    consistency default_cl = consistency::local_one;
    std::optional<std::int32_t> default_page_size = 5000;
    std::optional<consistency> default_serial_cl;
    /// The request's write timestamp when the statement sets none (client_timestamps).
    std::optional<std::int64_t> default_timestamp;
};

/// Appends the request frame (stream 0) for the statement. Errors say which option the protocol
/// version lacks (keyspace or now_in_seconds below v5, unset below v4) or what the statement breaks.
error_code encode_statement(const encode_context& ctx, const statement& s, protocol::byte_buffer& out);
error_code encode_statement(const encode_context& ctx, const bound_statement& s, protocol::byte_buffer& out);
error_code encode_statement(const encode_context& ctx, const batch& b, protocol::byte_buffer& out);
error_code encode_prepare(const encode_context& ctx, std::string_view query, std::string_view keyspace, protocol::byte_buffer& out);

}  // namespace cqlcoro::session_detail
