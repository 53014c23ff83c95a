// A latency histogram cheap enough for the request path: recording is three relaxed atomic increments,
// no lock and no allocation; reading percentiles walks the buckets.
//
// Buckets are logarithmic with 16 sub-buckets per power of two (as HDR histograms do with one
// significant hexadecimal digit), so a percentile is within 1/16 (6.25%) of the true value, from
// 1 microsecond up to about 18 minutes; longer latencies land in the last bucket.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>

namespace cqlcoro {

class latency_histogram {
public:
    static constexpr unsigned sub_bits = 4;                   // 16 sub-buckets per power of two
    static constexpr unsigned sub_count = 1u << sub_bits;
    static constexpr unsigned max_exponent = 30;              // 2^30 us: about 18 minutes
    static constexpr std::size_t bucket_count = (max_exponent - sub_bits + 2) * sub_count;

    /// Adds one latency. Safe from any thread at once.
    void record(std::chrono::nanoseconds latency) noexcept {
        const auto us = latency.count() <= 0 ? std::uint64_t{0} : static_cast<std::uint64_t>(latency.count() / 1000);
        buckets_[index_of(us)].fetch_add(1, std::memory_order_relaxed);
        count_.fetch_add(1, std::memory_order_relaxed);
        sum_.fetch_add(us, std::memory_order_relaxed);
    }

    /// Latencies recorded so far.
    std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
    /// The recorded latencies added up, in microseconds.
    std::uint64_t sum_microseconds() const noexcept { return sum_.load(std::memory_order_relaxed); }
    /// Latencies recorded in bucket i (index_of(), upper_bound_of()).
    std::uint64_t bucket(std::size_t i) const noexcept { return buckets_[i].load(std::memory_order_relaxed); }

    /// The latency at or below which a fraction q (0..1) of the recorded ones lie: the upper bound of the
    /// bucket that holds it. Zero when nothing was recorded.
    std::chrono::microseconds percentile(double q) const noexcept {
        std::uint64_t total = 0;
        for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);
        if (total == 0) return std::chrono::microseconds(0);
        if (q < 0) q = 0;
        if (q > 1) q = 1;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.5);
        if (rank == 0) rank = 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += buckets_[i].load(std::memory_order_relaxed);
            if (seen >= rank) return std::chrono::microseconds(upper_bound_of(i));
        }
        return std::chrono::microseconds(upper_bound_of(bucket_count - 1));
    }

    /// Forgets everything recorded (not atomic as a whole with concurrent recording).
    void reset() noexcept {
        for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
        count_.store(0, std::memory_order_relaxed);
        sum_.store(0, std::memory_order_relaxed);
    }

    /// The bucket of a latency in microseconds: values below 16 exactly, then 16 per power of two.
    static constexpr std::size_t index_of(std::uint64_t us) noexcept {
        if (us < sub_count) return static_cast<std::size_t>(us);
        const unsigned exponent = static_cast<unsigned>(std::bit_width(us)) - 1;  // us >= 2^exponent
        if (exponent > max_exponent) return bucket_count - 1;
        const auto sub = static_cast<std::size_t>((us >> (exponent - sub_bits)) & (sub_count - 1));
        return (exponent - sub_bits + 1) * sub_count + sub;
    }
    /// The largest latency (microseconds) that falls in bucket i.
    static constexpr std::uint64_t upper_bound_of(std::size_t i) noexcept {
        if (i < sub_count) return i;
        const auto exponent = static_cast<unsigned>(i / sub_count) + sub_bits - 1;
        const auto sub = static_cast<std::uint64_t>(i % sub_count);
        const auto width = std::uint64_t{1} << (exponent - sub_bits);
        return (std::uint64_t{1} << exponent) + (sub + 1) * width - 1;
    }

private:
    std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_{0};
};

}  // namespace cqlcoro
