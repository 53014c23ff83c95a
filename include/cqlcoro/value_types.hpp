// C++ types for the CQL types the standard library has no exact match for.
#pragma once

#include <boost/multiprecision/cpp_int.hpp>
#include <boost/uuid/uuid.hpp>

#include <chrono>
#include <compare>
#include <cstdint>
#include <string>

namespace cqlcoro {

/// uuid and timeuuid.
using uuid = boost::uuids::uuid;

/// varint: an arbitrary-precision integer.
using varint = boost::multiprecision::cpp_int;

/// decimal: unscaled * 10^-scale, exact (no binary floating point anywhere).
struct decimal {
    varint unscaled;
    std::int32_t scale = 0;

    friend bool operator==(const decimal&, const decimal&) = default;
    /// "-12.345", "1.0E+3" for negative scales.
    std::string to_string() const;
};

/// duration: months, days and nanoseconds kept apart, as CQL does (a month has no fixed length).
struct cql_duration {
    std::int32_t months = 0;
    std::int32_t days = 0;
    std::int64_t nanoseconds = 0;

    friend bool operator==(const cql_duration&, const cql_duration&) = default;
};

/// timestamp: milliseconds since the Unix epoch (any system_clock time point can be bound).
using timestamp = std::chrono::sys_time<std::chrono::milliseconds>;
/// date: days since the Unix epoch.
using date = std::chrono::sys_days;
/// time: nanoseconds since midnight, 0 to 86'399'999'999'999.
using time_of_day = std::chrono::nanoseconds;

/// The time a timeuuid (version 1 UUID) was made, to its 100 ns resolution.
std::chrono::system_clock::time_point timeuuid_time(const uuid& u) noexcept;

/// A new timeuuid for `when`, unique within this process (a random node id and clock sequence are
/// chosen once; successive calls within the same 100 ns tick get successive ticks).
uuid make_timeuuid(std::chrono::system_clock::time_point when = std::chrono::system_clock::now());

/// The smallest and largest timeuuids of the millisecond `when` falls in, for range queries
/// (minTimeuuid / maxTimeuuid in CQL).
uuid min_timeuuid(std::chrono::system_clock::time_point when) noexcept;
uuid max_timeuuid(std::chrono::system_clock::time_point when) noexcept;

}  // namespace cqlcoro
