// The server's half of the codec: decoding requests and encoding responses. The simulated nodes use it,
// and round trips through it check the client half.
#pragma once

#include "protocol/requests.hpp"
#include "protocol/responses.hpp"

#include <boost/system/result.hpp>

#include <vector>

namespace cqlcoro::protocol {

/// A decoded request. Its views point into the frame body it was decoded from and into its own
/// storage (which moves with it), so it must not outlive that body.
struct decoded_request {
    request message;
    std::vector<std::pair<std::string_view, bytes_view>> custom_payload;

    // Storage behind the spans in `message`.
    std::vector<std::pair<std::string_view, std::string_view>> options;
    std::vector<std::string_view> events;
    std::vector<value_view> values;
    std::vector<std::string_view> names;
    std::vector<batch_statement> statements;
};

/// Decodes a request body (already decompressed) of a frame with header `h`.
boost::system::result<decoded_request> decode_request(const frame_header& h, bytes_view body);

/// Appends a response frame (v3/v4) or envelope (v5) for `r` on `stream`. With compression (v3/v4),
/// the body is compressed and flagged. Flags for tracing, warnings and custom payload follow `r`.
error_code encode_response(std::uint8_t version, std::int16_t stream, const response& r, byte_buffer& out,
                           compression c = compression::none);

}  // namespace cqlcoro::protocol
