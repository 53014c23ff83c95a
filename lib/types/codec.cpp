// The out-of-line parts of the value codecs: varints, vints, text validation.
#include <cqlcoro/codec.hpp>

#include <boost/multiprecision/cpp_int/import_export.hpp>

namespace cqlcoro::detail {

bool valid_ascii(std::string_view s) noexcept {
    for (unsigned char c : s)
        if (c > 0x7F) return false;
    return true;
}

bool valid_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
        const unsigned char c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        int n;
        std::uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (end - p <= n) return false;
        for (int i = 1; i <= n; ++i) {
            if ((p[i] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        // Overlong forms, surrogates and code points past U+10FFFF are invalid.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

error_code decode_varint_i64(bytes_view b, std::int64_t& out) noexcept {
    if (b.empty()) return type_errc::bad_cell_size;
    // Leading bytes that only repeat the sign may be skipped; beyond 8 significant bytes it does not fit.
    std::size_t skip = 0;
    while (b.size() - skip > 8) {
        const std::uint8_t sign = (b[skip + 1] & 0x80) ? 0xFF : 0x00;
        if (b[skip] != sign) return type_errc::value_out_of_range;
        ++skip;
    }
    std::int64_t v = (b[skip] & 0x80) ? -1 : 0;
    for (std::size_t i = skip; i < b.size(); ++i) v = static_cast<std::int64_t>((static_cast<std::uint64_t>(v) << 8) | b[i]);
    out = v;
    return {};
}

void encode_varint_i64(std::int64_t v, byte_buffer& out) {
    std::uint8_t bytes[8];
    for (int i = 7; i >= 0; --i) bytes[7 - i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * i));
    int start = 0;  // drop leading bytes that only repeat the sign of the next one
    while (start < 7 && ((bytes[start] == 0x00 && !(bytes[start + 1] & 0x80)) || (bytes[start] == 0xFF && (bytes[start + 1] & 0x80))))
        ++start;
    out.insert(out.end(), bytes + start, bytes + 8);
}

void decode_varint(bytes_view b, varint& out) {
    out = 0;
    if (b.empty()) return;
    boost::multiprecision::import_bits(out, b.begin(), b.end(), 8, true);
    if (b[0] & 0x80) out -= varint(1) << (8 * b.size());  // two's complement
}

void encode_varint(const varint& v, byte_buffer& out) {
    if (v >= std::numeric_limits<std::int64_t>::min() && v <= std::numeric_limits<std::int64_t>::max()) {
        encode_varint_i64(static_cast<std::int64_t>(v), out);
        return;
    }
    // Minimal two's complement: magnitude bits plus a sign bit, rounded up to whole bytes.
    const bool neg = v < 0;
    const varint mag = neg ? varint(-v - 1) : v;  // for negatives, ~x has the same bit length as -x-1
    std::size_t bits = mag == 0 ? 0 : boost::multiprecision::msb(mag) + 1;
    const std::size_t nbytes = bits / 8 + 1;
    const varint twos = neg ? (varint(1) << (8 * nbytes)) + v : v;
    byte_buffer tmp;
    boost::multiprecision::export_bits(twos, std::back_inserter(tmp), 8, true);
    out.insert(out.end(), nbytes - tmp.size(), 0);  // export_bits drops leading zero bytes
    out.insert(out.end(), tmp.begin(), tmp.end());
}

error_code read_vint(reader& r, std::int64_t& out) noexcept {
    if (r.remaining() == 0) return type_errc::bad_cell_size;
    const auto first = *r.position();
    int extra = 0;
    while (extra < 8 && (first & (0x80 >> extra))) ++extra;
    if (r.remaining() < static_cast<std::size_t>(extra) + 1) return type_errc::bad_cell_size;
    const auto u = r.unsigned_vint();
    out = static_cast<std::int64_t>(u >> 1) ^ -static_cast<std::int64_t>(u & 1);
    return {};
}

void write_vint(writer& w, std::int64_t v) {
    w.unsigned_vint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
}

}  // namespace cqlcoro::detail
