// Checksums of the v5 framing layer.
#pragma once

#include "protocol/wire.hpp"

#include <cstdint>

namespace cqlcoro::protocol {

/// CRC24 of a v5 segment header, as the v5 spec defines it (init 0x875060, polynomial 0x1974F0B,
/// bytes fed in wire order, not reflected).
std::uint32_t crc24(bytes_view data) noexcept;

/// CRC32 of a v5 segment payload: zlib's CRC32 primed with the bytes FA 2D 55 CA, as Cassandra does.
std::uint32_t crc32(bytes_view data) noexcept;

}  // namespace cqlcoro::protocol
