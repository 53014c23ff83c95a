// Consistency levels, with the values the native protocol puts on the wire.
#pragma once

#include <cstdint>
#include <string_view>

namespace cqlcoro {

enum class consistency : std::uint16_t {
    any = 0x0000,           ///< a write succeeds once any node (even a hint) has it
    one = 0x0001,           ///< one replica
    two = 0x0002,           ///< two replicas
    three = 0x0003,         ///< three replicas
    quorum = 0x0004,        ///< a majority of all replicas
    all = 0x0005,           ///< every replica
    local_quorum = 0x0006,  ///< a majority of the replicas in the coordinator's datacenter
    each_quorum = 0x0007,   ///< a majority in every datacenter
    serial = 0x0008,        ///< Paxos phase of lightweight transactions, across datacenters
    local_serial = 0x0009,  ///< Paxos phase confined to the local datacenter
    local_one = 0x000A,     ///< one replica in the local datacenter
};

/// The CQL name of a consistency level ("LOCAL_QUORUM"), or "UNKNOWN" for a value off the list.
constexpr std::string_view to_string(consistency c) noexcept {
    switch (c) {
    case consistency::any: return "ANY";
    case consistency::one: return "ONE";
    case consistency::two: return "TWO";
    case consistency::three: return "THREE";
    case consistency::quorum: return "QUORUM";
    case consistency::all: return "ALL";
    case consistency::local_quorum: return "LOCAL_QUORUM";
    case consistency::each_quorum: return "EACH_QUORUM";
    case consistency::serial: return "SERIAL";
    case consistency::local_serial: return "LOCAL_SERIAL";
    case consistency::local_one: return "LOCAL_ONE";
    }
    return "UNKNOWN";
}

}  // namespace cqlcoro
