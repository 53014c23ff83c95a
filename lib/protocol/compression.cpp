#include "protocol/compression.hpp"

#include <lz4.h>
#include <snappy.h>

#include <limits>

namespace cqlcoro::protocol {

std::string_view startup_name(compression c) noexcept {
    switch (c) {
    case compression::lz4: return "lz4";
    case compression::snappy: return "snappy";
    case compression::none: break;
    }
    return {};
}

void lz4_compress_block(bytes_view in, byte_buffer& out) {
    auto at = out.size();
    auto bound = LZ4_compressBound(static_cast<int>(in.size()));
    out.resize(at + static_cast<std::size_t>(bound));
    int n = LZ4_compress_default(reinterpret_cast<const char*>(in.data()), reinterpret_cast<char*>(out.data() + at),
                                 static_cast<int>(in.size()), bound);
    out.resize(at + static_cast<std::size_t>(n));
}

error_code lz4_decompress_block(bytes_view in, std::size_t expected, byte_buffer& out) {
    if (expected > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
        in.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        return protocol_errc::decompressed_too_large;
    auto at = out.size();
    out.resize(at + expected);
    int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data()), reinterpret_cast<char*>(out.data() + at),
                                static_cast<int>(in.size()), static_cast<int>(expected));
    if (n < 0 || static_cast<std::size_t>(n) != expected) {
        out.resize(at);
        return protocol_errc::decompression_failed;
    }
    return {};
}

void compress_body(compression c, bytes_view in, byte_buffer& out) {
    if (c == compression::lz4) {
        writer(out).i32(static_cast<std::int32_t>(in.size()));
        lz4_compress_block(in, out);
    } else if (c == compression::snappy) {
        auto at = out.size();
        out.resize(at + snappy::MaxCompressedLength(in.size()));
        std::size_t n = 0;
        snappy::RawCompress(reinterpret_cast<const char*>(in.data()), in.size(), reinterpret_cast<char*>(out.data() + at), &n);
        out.resize(at + n);
    } else {
        out.insert(out.end(), in.begin(), in.end());
    }
}

error_code decompress_body(compression c, bytes_view in, std::size_t max_size, byte_buffer& out) {
    switch (c) {
    case compression::none: return protocol_errc::compression_not_negotiated;
    case compression::lz4: {
        reader r(in);
        auto n = r.i32();
        if (!r.ok()) return protocol_errc::decompression_failed;
        if (n < 0) return protocol_errc::decompression_failed;
        if (static_cast<std::size_t>(n) > max_size) return protocol_errc::decompressed_too_large;
        if (n == 0) return {};
        return lz4_decompress_block(in.subspan(4), static_cast<std::size_t>(n), out);
    }
    case compression::snappy: {
        std::size_t n = 0;
        auto src = reinterpret_cast<const char*>(in.data());
        if (!snappy::GetUncompressedLength(src, in.size(), &n)) return protocol_errc::decompression_failed;
        if (n > max_size) return protocol_errc::decompressed_too_large;
        auto at = out.size();
        out.resize(at + n);
        if (!snappy::RawUncompress(src, in.size(), reinterpret_cast<char*>(out.data() + at))) {
            out.resize(at);
            return protocol_errc::decompression_failed;
        }
        return {};
    }
    }
    return protocol_errc::compression_not_negotiated;
}

}  // namespace cqlcoro::protocol
