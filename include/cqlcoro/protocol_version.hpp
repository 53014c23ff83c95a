// Native protocol versions cqlcoro speaks.
#pragma once

#include <cstdint>

namespace cqlcoro {

enum class protocol_version : std::uint8_t {
    v3 = 3,  ///< Cassandra 2.1+
    v4 = 4,  ///< Cassandra 2.2+: unset values, warnings, custom payloads, read/write failure errors
    v5 = 5,  ///< Cassandra 4.0+: checksummed segments, per-query keyspace, result metadata ids
};

constexpr bool is_supported(std::uint8_t v) noexcept { return v >= 3 && v <= 5; }

}  // namespace cqlcoro
