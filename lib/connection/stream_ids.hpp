// Stream ids of one connection: which are free, which carry a request, which are orphans.
//
// An orphan is an id whose request was abandoned (cancelled, timed out) after its frame was written: the
// server will still answer on it, so it must not be reused until that late response arrives, or the late
// response would complete someone else's request. Allocation takes the lowest free id without scanning:
// a three-level bitset (a top word over 8 summary words over 512 id words) and count-trailing-zeros.
//
// Not thread-safe: it belongs to its connection's strand, like everything else of the connection.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <optional>

namespace cqlcoro::connection {

class stream_ids {
public:
    static constexpr std::size_t max_capacity = 32768;

    /// What a response's stream id was, when it arrived.
    enum class arrival {
        active,    ///< it carried a live request: complete that request
        orphan,    ///< its request was abandoned: drop the response; the id is free again
        unexpected ///< nothing was in flight on it: a protocol violation (drop it; the connection is suspect)
    };

    /// `capacity` ids, 0 .. capacity-1 (at most 32768, the protocol's limit for v3+).
    explicit stream_ids(std::size_t capacity = max_capacity) noexcept : capacity_(capacity > max_capacity ? max_capacity : capacity) {
        for (std::size_t i = 0; i < capacity_; ++i) free(static_cast<std::int16_t>(i));
    }

    /// The lowest free id, or nullopt when every id is in flight or orphaned.
    std::optional<std::int16_t> acquire() noexcept {
        if (top_ == 0) return std::nullopt;
        const auto s = static_cast<std::size_t>(std::countr_zero(top_));
        const auto w = s * 64 + static_cast<std::size_t>(std::countr_zero(summary_[s]));
        const auto b = static_cast<std::size_t>(std::countr_zero(free_[w]));
        free_[w] &= free_[w] - 1;  // clear the lowest set bit
        if (free_[w] == 0) {
            summary_[s] &= ~(std::uint64_t{1} << (w % 64));
            if (summary_[s] == 0) top_ &= ~(std::uint64_t{1} << s);
        }
        ++in_flight_;
        return static_cast<std::int16_t>(w * 64 + b);
    }

    /// The request on `id` will get no response (its frame was never written): the id is free at once.
    void release(std::int16_t id) noexcept {
        if (!is_taken(id) || is_orphan(id)) return;
        --in_flight_;
        free(id);
    }

    /// The request on `id` was abandoned after its frame was written: keep the id until its response.
    void orphan(std::int16_t id) noexcept {
        if (!is_taken(id) || is_orphan(id)) return;
        orphan_[index(id) / 64] |= bit(id);
        --in_flight_;
        ++orphans_;
    }

    /// A response arrived on `id`: says what it was and frees the id (unless it was unexpected).
    arrival on_response(std::int16_t id) noexcept {
        if (id < 0 || !is_taken(id)) return arrival::unexpected;
        if (is_orphan(id)) {
            orphan_[index(id) / 64] &= ~bit(id);
            --orphans_;
            free(id);
            return arrival::orphan;
        }
        --in_flight_;
        free(id);
        return arrival::active;
    }

    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t in_flight() const noexcept { return in_flight_; }
    std::size_t orphans() const noexcept { return orphans_; }
    std::size_t available() const noexcept { return capacity_ - in_flight_ - orphans_; }
    bool is_orphan(std::int16_t id) const noexcept { return valid(id) && (orphan_[index(id) / 64] & bit(id)) != 0; }

private:
    static constexpr std::size_t words = max_capacity / 64;  // 512 words of ids
    static constexpr std::size_t summaries = words / 64;     // 8 words, a bit per non-empty id word

    static std::size_t index(std::int16_t id) noexcept { return static_cast<std::size_t>(static_cast<std::uint16_t>(id)); }
    static std::uint64_t bit(std::int16_t id) noexcept { return std::uint64_t{1} << (index(id) % 64); }
    bool valid(std::int16_t id) const noexcept { return id >= 0 && index(id) < capacity_; }
    bool is_taken(std::int16_t id) const noexcept { return valid(id) && (free_[index(id) / 64] & bit(id)) == 0; }

    void free(std::int16_t id) noexcept {
        const auto w = index(id) / 64;
        free_[w] |= bit(id);
        summary_[w / 64] |= std::uint64_t{1} << (w % 64);
        top_ |= std::uint64_t{1} << (w / 64);
    }

    std::size_t capacity_;
    std::size_t in_flight_ = 0;
    std::size_t orphans_ = 0;
    std::uint64_t top_ = 0;                              // bit s: summary_[s] != 0
    std::array<std::uint64_t, summaries> summary_{};     // bit w % 64 of summary_[w / 64]: free_[w] != 0
    std::array<std::uint64_t, words> free_{};
    std::array<std::uint64_t, words> orphan_{};
};

}  // namespace cqlcoro::connection
