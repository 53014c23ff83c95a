#include <cqlcoro/value_types.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>

namespace cqlcoro {
namespace {

// 100 ns intervals between the UUID epoch (1582-10-15) and the Unix epoch.
constexpr std::int64_t uuid_epoch_offset = 0x01B21DD213814000LL;

std::int64_t to_uuid_ticks(std::chrono::system_clock::time_point t) noexcept {
    using ticks = std::chrono::duration<std::int64_t, std::ratio<1, 10'000'000>>;
    return std::chrono::floor<ticks>(t.time_since_epoch()).count() + uuid_epoch_offset;
}

uuid assemble(std::int64_t ticks, std::uint16_t clock_seq, std::uint64_t node) noexcept {
    uuid u{};
    const auto t = static_cast<std::uint64_t>(ticks);
    const std::uint32_t time_low = static_cast<std::uint32_t>(t);
    const std::uint16_t time_mid = static_cast<std::uint16_t>(t >> 32);
    const std::uint16_t time_hi = static_cast<std::uint16_t>(((t >> 48) & 0x0FFF) | 0x1000);  // version 1
    const std::uint16_t seq = static_cast<std::uint16_t>((clock_seq & 0x3FFF) | 0x8000);     // RFC 4122 variant
    for (int i = 0; i < 4; ++i) u.data[i] = static_cast<std::uint8_t>(time_low >> (24 - 8 * i));
    u.data[4] = static_cast<std::uint8_t>(time_mid >> 8);
    u.data[5] = static_cast<std::uint8_t>(time_mid);
    u.data[6] = static_cast<std::uint8_t>(time_hi >> 8);
    u.data[7] = static_cast<std::uint8_t>(time_hi);
    u.data[8] = static_cast<std::uint8_t>(seq >> 8);
    u.data[9] = static_cast<std::uint8_t>(seq);
    for (int i = 0; i < 6; ++i) u.data[10 + i] = static_cast<std::uint8_t>(node >> (40 - 8 * i));
    return u;
}

}  // namespace

std::string decimal::to_string() const {
    // As Java's BigDecimal.toString: plain notation unless the exponent is positive or the adjusted
    // exponent is below -6; then d.dddE+n. The output stays proportional to the digits, whatever the scale.
    const std::string digits = (unscaled < 0 ? varint(-unscaled) : unscaled).str();
    const std::string sign = unscaled < 0 ? "-" : "";
    const std::int64_t adjusted = -static_cast<std::int64_t>(scale) + static_cast<std::int64_t>(digits.size()) - 1;
    if (scale >= 0 && adjusted >= -6) {
        if (scale == 0) return sign + digits;
        const auto s = static_cast<std::size_t>(scale);
        std::string d = digits;
        if (d.size() <= s) d.insert(0, s - d.size() + 1, '0');
        d.insert(d.size() - s, 1, '.');
        return sign + d;
    }
    std::string mantissa = digits.substr(0, 1);
    if (digits.size() > 1) mantissa += "." + digits.substr(1);
    return sign + mantissa + "E" + (adjusted >= 0 ? "+" : "") + std::to_string(adjusted);
}

std::chrono::system_clock::time_point timeuuid_time(const uuid& u) noexcept {
    std::uint64_t t = 0;
    t |= static_cast<std::uint64_t>(u.data[6] & 0x0F) << 56;
    t |= static_cast<std::uint64_t>(u.data[7]) << 48;
    t |= static_cast<std::uint64_t>(u.data[4]) << 40;
    t |= static_cast<std::uint64_t>(u.data[5]) << 32;
    for (int i = 0; i < 4; ++i) t |= static_cast<std::uint64_t>(u.data[i]) << (24 - 8 * i);
    using ticks = std::chrono::duration<std::int64_t, std::ratio<1, 10'000'000>>;
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(ticks(static_cast<std::int64_t>(t) - uuid_epoch_offset)));
}

uuid make_timeuuid(std::chrono::system_clock::time_point when) {
    // One random node id (multicast bit set, as RFC 4122 asks of non-MAC ids) and clock sequence per
    // process; the last tick handed out keeps ids unique when calls share a 100 ns tick.
    static const auto [node, clock_seq] = [] {
        std::random_device rd;
        std::uint64_t n = (static_cast<std::uint64_t>(rd()) << 32 | rd()) & 0xFFFFFFFFFFFFULL;
        return std::pair{n | 0x010000000000ULL, static_cast<std::uint16_t>(rd())};
    }();
    static std::atomic<std::int64_t> last{0};
    std::int64_t ticks = to_uuid_ticks(when);
    std::int64_t prev = last.load(std::memory_order_relaxed);
    while (true) {
        const std::int64_t next = ticks > prev ? ticks : prev + 1;
        if (last.compare_exchange_weak(prev, next, std::memory_order_relaxed)) {
            ticks = next;
            break;
        }
    }
    return assemble(ticks, clock_seq, node);
}

// Cassandra orders timeuuids with equal times by their last 8 bytes compared as signed bytes, so its
// minTimeuuid/maxTimeuuid fill them with 0x80 and 0x7F; these match it byte for byte.
uuid min_timeuuid(std::chrono::system_clock::time_point when) noexcept {
    auto ms = std::chrono::floor<std::chrono::milliseconds>(when);
    uuid u = assemble(to_uuid_ticks(ms), 0, 0);
    std::fill(u.data + 8, u.data + 16, std::uint8_t{0x80});
    return u;
}

uuid max_timeuuid(std::chrono::system_clock::time_point when) noexcept {
    auto ms = std::chrono::floor<std::chrono::milliseconds>(when) + std::chrono::milliseconds(1);
    uuid u = assemble(to_uuid_ticks(ms) - 1, 0, 0);
    std::fill(u.data + 8, u.data + 16, std::uint8_t{0x7F});
    return u;
}

}  // namespace cqlcoro
