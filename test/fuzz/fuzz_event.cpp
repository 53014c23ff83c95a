// libFuzzer target: an EVENT body (TOPOLOGY_CHANGE, STATUS_CHANGE, SCHEMA_CHANGE), decoded as the
// control connection receives it, encoded again as the simulated node sends it, and decoded once
// more: what decodes must survive the round trip unchanged.
// Input: byte 0 = protocol version (3..5); the rest is the body.
#include "protocol/responses.hpp"
#include "protocol/server_side.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

using namespace cqlcoro::protocol;

namespace {


byte_buffer encode_v4(const response& r) {
    byte_buffer out;
    if (encode_response(4, -1, r, out)) __builtin_trap();  // a decoded event that cannot be sent again
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    frame_header h;
    h.version = static_cast<std::uint8_t>(3 + data[0] % 3);
    h.response = true;
    h.op = opcode::event;
    h.stream = -1;
    auto first = decode_response(h, bytes_view(data + 1, size - 1));
    if (!first) return 0;
    if (!std::holds_alternative<event_response>(first->body)) __builtin_trap();
    const auto once = encode_v4(*first);
    h.version = 4;
    auto second = decode_response(h, bytes_view(once.data() + header_size, once.size() - header_size));
    if (!second) __builtin_trap();
    const auto twice = encode_v4(*second);
    if (once.size() != twice.size() || std::memcmp(once.data(), twice.data(), once.size()) != 0) __builtin_trap();
    return 0;
}
