#include "protocol/crc.hpp"

#include <zlib.h>

namespace cqlcoro::protocol {

std::uint32_t crc24(bytes_view data) noexcept {
    constexpr std::uint32_t init = 0x875060, poly = 0x1974F0B;
    std::uint32_t crc = init;
    for (std::uint8_t b : data) {
        crc ^= std::uint32_t{b} << 16;
        for (int i = 0; i < 8; ++i) {
            crc <<= 1;
            if (crc & 0x1000000) crc ^= poly;
        }
    }
    return crc & 0xFFFFFF;
}

std::uint32_t crc32(bytes_view data) noexcept {
    static constexpr Bytef prime[] = {0xFA, 0x2D, 0x55, 0xCA};
    static const uLong primed = ::crc32(::crc32(0L, Z_NULL, 0), prime, sizeof prime);
    // zlib takes the length as uInt; segments are < 128 KiB, but stay correct for any size.
    uLong crc = primed;
    for (std::size_t off = 0; off < data.size();) {
        auto n = static_cast<uInt>(std::min<std::size_t>(data.size() - off, 1u << 30));
        crc = ::crc32(crc, data.data() + off, n);
        off += n;
    }
    return static_cast<std::uint32_t>(crc);
}

}  // namespace cqlcoro::protocol
