#include "cluster/token.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <limits>

namespace cqlcoro::cluster {
namespace {

constexpr std::uint64_t c1 = 0x87c37b91114253d5ULL;
constexpr std::uint64_t c2 = 0x4cf5ad432745937fULL;

constexpr std::uint64_t rotl(std::uint64_t v, int r) noexcept { return (v << r) | (v >> (64 - r)); }

constexpr std::uint64_t fmix(std::uint64_t k) noexcept {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

std::uint64_t little_endian(const std::uint8_t* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// Cassandra reads a tail byte as a Java byte and widens it to long: sign-extended.
std::uint64_t tail_byte(std::uint8_t b, int shift) noexcept {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int8_t>(b))) << shift;
}

}  // namespace

std::int64_t murmur3_token(key_bytes key) noexcept {
    if (key.empty()) return std::numeric_limits<std::int64_t>::min();
    const std::size_t len = key.size();
    const std::uint8_t* data = key.data();
    std::uint64_t h1 = 0, h2 = 0;
    const std::size_t blocks = len / 16;
    for (std::size_t i = 0; i < blocks; ++i) {
        std::uint64_t k1 = little_endian(data + i * 16), k2 = little_endian(data + i * 16 + 8);
        k1 *= c1, k1 = rotl(k1, 31), k1 *= c2, h1 ^= k1;
        h1 = rotl(h1, 27), h1 += h2, h1 = h1 * 5 + 0x52dce729;
        k2 *= c2, k2 = rotl(k2, 33), k2 *= c1, h2 ^= k2;
        h2 = rotl(h2, 31), h2 += h1, h2 = h2 * 5 + 0x38495ab5;
    }
    const std::uint8_t* tail = data + blocks * 16;
    const std::size_t rest = len & 15;
    std::uint64_t k1 = 0, k2 = 0;
    for (std::size_t i = rest; i > 8; --i) k2 ^= tail_byte(tail[i - 1], static_cast<int>((i - 9) * 8));
    if (rest > 8) k2 *= c2, k2 = rotl(k2, 33), k2 *= c1, h2 ^= k2;
    for (std::size_t i = std::min<std::size_t>(rest, 8); i > 0; --i) k1 ^= tail_byte(tail[i - 1], static_cast<int>((i - 1) * 8));
    if (rest > 0) k1 *= c1, k1 = rotl(k1, 31), k1 *= c2, h1 ^= k1;
    h1 ^= len, h2 ^= len;
    h1 += h2, h2 += h1;
    h1 = fmix(h1), h2 = fmix(h2);
    h1 += h2;
    const auto token = static_cast<std::int64_t>(h1);
    return token == std::numeric_limits<std::int64_t>::min() ? std::numeric_limits<std::int64_t>::max() : token;
}

std::optional<uint128> random_token(key_bytes key) {
    if (key.empty()) return std::nullopt;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(key.data(), key.size(), digest, &n, EVP_md5(), nullptr) != 1 || n != 16) return std::nullopt;
    uint128 v = 0;
    for (unsigned i = 0; i < 16; ++i) v = (v << 8) | digest[i];
    const bool negative = (digest[0] & 0x80) != 0;
    return negative ? ~v + 1 : v;  // |two's complement|; -2^127 gives 2^127, as BigInteger.abs does
}

std::optional<std::int64_t> parse_murmur3_token(std::string_view text) noexcept {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return v;
}

std::optional<uint128> parse_random_token(std::string_view text) noexcept {
    if (text.empty() || text.size() > 39) return std::nullopt;
    uint128 v = 0;
    const uint128 limit = uint128{1} << 127;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
        if (v > limit) return std::nullopt;
    }
    return v;
}

std::optional<std::vector<std::uint8_t>> parse_byte_ordered_token(std::string_view hex) {
    if (hex.size() % 2 != 0) return std::nullopt;
    std::vector<std::uint8_t> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto [end, ec] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, out[i], 16);
        if (ec != std::errc() || end != hex.data() + 2 * i + 2) return std::nullopt;
    }
    return out;
}

std::string to_string(uint128 v) {
    if (v == 0) return "0";
    std::string out;
    while (v != 0) {
        out.insert(out.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
        v /= 10;
    }
    return out;
}

}  // namespace cqlcoro::cluster
