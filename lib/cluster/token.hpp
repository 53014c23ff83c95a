// Partitioner tokens, as Cassandra computes them from a partition key's serialized bytes: the base of
// the token map (token-aware routing). Sans-I/O.
//
//   Murmur3Partitioner (the default since 1.2): the first 64 bits of MurmurHash3_x64_128, seed 0, in
//     Cassandra's variant (tail bytes are sign-extended before they are mixed in), as a signed integer.
//   RandomPartitioner: the absolute value of the key's MD5 digest read as a signed big-endian 128-bit
//     integer, 0..2^127.
//   ByteOrderedPartitioner: the key bytes themselves, compared as unsigned bytes.
// system.local and system.peers list tokens as strings: decimal for the first two, hex for the last.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cqlcoro::cluster {

__extension__ typedef unsigned __int128 uint128;

using key_bytes = std::span<const std::uint8_t>;

/// Murmur3Partitioner's token. An empty key gets the minimum token (INT64_MIN), as in Cassandra; a
/// hash of INT64_MIN becomes INT64_MAX, since the minimum is reserved.
std::int64_t murmur3_token(key_bytes key) noexcept;

/// RandomPartitioner's token; none for an empty key (Cassandra gives it the minimum token, -1, which
/// sorts before every other).
std::optional<uint128> random_token(key_bytes key);

/// Tokens as system.local and system.peers list them; none when the text is not a token.
std::optional<std::int64_t> parse_murmur3_token(std::string_view text) noexcept;
std::optional<uint128> parse_random_token(std::string_view text) noexcept;
std::optional<std::vector<std::uint8_t>> parse_byte_ordered_token(std::string_view hex);

/// Decimal, as Cassandra prints a RandomPartitioner token.
std::string to_string(uint128 v);

}  // namespace cqlcoro::cluster
