#include "protocol/frame.hpp"

#include <cqlcoro/protocol_version.hpp>

namespace cqlcoro::protocol {

bool is_request_opcode(opcode op) noexcept {
    switch (op) {
    case opcode::startup:
    case opcode::options:
    case opcode::query:
    case opcode::prepare:
    case opcode::execute:
    case opcode::register_:
    case opcode::batch:
    case opcode::auth_response: return true;
    default: return false;
    }
}

bool is_response_opcode(opcode op) noexcept {
    switch (op) {
    case opcode::error:
    case opcode::ready:
    case opcode::authenticate:
    case opcode::supported:
    case opcode::result:
    case opcode::event:
    case opcode::auth_challenge:
    case opcode::auth_success: return true;
    default: return false;
    }
}

void encode_header(const frame_header& h, std::uint8_t out[header_size]) noexcept {
    out[0] = static_cast<std::uint8_t>(h.version | (h.response ? 0x80 : 0));
    out[1] = h.flags;
    out[2] = static_cast<std::uint8_t>(static_cast<std::uint16_t>(h.stream) >> 8);
    out[3] = static_cast<std::uint8_t>(h.stream);
    out[4] = static_cast<std::uint8_t>(h.op);
    out[5] = static_cast<std::uint8_t>(h.length >> 24);
    out[6] = static_cast<std::uint8_t>(h.length >> 16);
    out[7] = static_cast<std::uint8_t>(h.length >> 8);
    out[8] = static_cast<std::uint8_t>(h.length);
}

boost::system::result<frame_header> decode_header(bytes_view in, std::uint32_t max_body) noexcept {
    if (in.size() < header_size) return error_code(protocol_errc::truncated_frame);
    frame_header h;
    h.version = in[0] & 0x7F;
    h.response = (in[0] & 0x80) != 0;
    if (!is_supported(h.version)) return error_code(protocol_errc::unsupported_version);
    h.flags = in[1];
    h.stream = static_cast<std::int16_t>((in[2] << 8) | in[3]);
    h.op = static_cast<opcode>(in[4]);
    if (!is_request_opcode(h.op) && !is_response_opcode(h.op)) return error_code(protocol_errc::unknown_opcode);
    h.length = (std::uint32_t{in[5]} << 24) | (std::uint32_t{in[6]} << 16) | (std::uint32_t{in[7]} << 8) | in[8];
    if (h.length > max_body || h.length > protocol_max_body) return error_code(protocol_errc::frame_too_large);
    return h;
}

}  // namespace cqlcoro::protocol
