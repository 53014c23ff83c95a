// The 9-byte frame header of protocol v3/v4, which is also the v5 envelope header.
#pragma once

#include "protocol/wire.hpp"

#include <boost/system/result.hpp>

#include <cstdint>

namespace cqlcoro::protocol {

enum class opcode : std::uint8_t {
    error = 0x00,
    startup = 0x01,
    ready = 0x02,
    authenticate = 0x03,
    options = 0x05,
    supported = 0x06,
    query = 0x07,
    result = 0x08,
    prepare = 0x09,
    execute = 0x0A,
    register_ = 0x0B,
    event = 0x0C,
    batch = 0x0D,
    auth_challenge = 0x0E,
    auth_response = 0x0F,
    auth_success = 0x10,
};

bool is_request_opcode(opcode op) noexcept;
bool is_response_opcode(opcode op) noexcept;

/// Frame flags (a bit mask in frame_header::flags).
namespace frame_flag {
inline constexpr std::uint8_t compression = 0x01;     ///< body compressed (v3/v4; ignored in v5)
inline constexpr std::uint8_t tracing = 0x02;         ///< request: trace it; response: body starts with a tracing id
inline constexpr std::uint8_t custom_payload = 0x04;  ///< body carries a [bytes map] payload
inline constexpr std::uint8_t warning = 0x08;         ///< response body carries a [string list] of warnings
inline constexpr std::uint8_t use_beta = 0x10;        ///< the client opts into a beta protocol version
}  // namespace frame_flag

inline constexpr std::size_t header_size = 9;
/// The protocol's own ceiling on a frame body (256 MiB); connections may configure a lower one.
inline constexpr std::uint32_t protocol_max_body = 256u * 1024 * 1024;

struct frame_header {
    std::uint8_t version = 4;  ///< protocol version without the direction bit
    bool response = false;     ///< direction bit (0x80 of the version byte)
    std::uint8_t flags = 0;
    std::int16_t stream = 0;   ///< negative ids are server-initiated (EVENT uses -1)
    opcode op = opcode::options;
    std::uint32_t length = 0;  ///< body length in bytes
};

void encode_header(const frame_header& h, std::uint8_t out[header_size]) noexcept;

/// Decodes a header from at least header_size bytes. Rejects versions below 3 or above 5, unknown
/// opcodes, and bodies longer than `max_body` (decoding stays safe for any byte sequence).
boost::system::result<frame_header> decode_header(bytes_view in, std::uint32_t max_body = protocol_max_body) noexcept;

}  // namespace cqlcoro::protocol
