// Frame-body compression of protocol v3/v4 (negotiated in STARTUP), and the raw LZ4 block codec the
// v5 segments use.
#pragma once

#include "protocol/wire.hpp"

#include <cstdint>
#include <string_view>

namespace cqlcoro::protocol {

enum class compression : std::uint8_t {
    none,    ///< bodies travel as they are
    lz4,     ///< v3/v4: [int] uncompressed length + LZ4 block; v5: LZ4 blocks inside segments
    snappy,  ///< v3/v4 only: a raw Snappy block
};

// Note: a server may already compress its answer to the STARTUP that negotiates compression (Cassandra
// 2.1 does), so a connection must be ready to decompress before it reads that answer.

/// The STARTUP "COMPRESSION" option value ("lz4", "snappy"), empty for none.
std::string_view startup_name(compression c) noexcept;

/// Appends the compressed form of `in` to `out` in the v3/v4 body format of `c` (c != none).
void compress_body(compression c, bytes_view in, byte_buffer& out);

/// Appends the decompressed body to `out`. Never produces more than `max_size` bytes: a body that
/// declares more is rejected before any allocation (decompression bombs).
error_code decompress_body(compression c, bytes_view in, std::size_t max_size, byte_buffer& out);

/// Raw LZ4 block (no length prefix) for v5 segments.
void lz4_compress_block(bytes_view in, byte_buffer& out);
/// Decompresses a raw LZ4 block that must inflate to exactly `expected` bytes.
error_code lz4_decompress_block(bytes_view in, std::size_t expected, byte_buffer& out);

}  // namespace cqlcoro::protocol
