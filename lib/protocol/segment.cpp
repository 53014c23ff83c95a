#include "protocol/segment.hpp"

#include "protocol/compression.hpp"
#include "protocol/crc.hpp"

namespace cqlcoro::protocol {
namespace {

void put_le(byte_buffer& out, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i, v >>= 8) out.push_back(static_cast<std::uint8_t>(v));
}

std::uint64_t get_le(const std::uint8_t* p, int n) noexcept {
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

void put_header(byte_buffer& out, std::uint64_t fields, int field_bytes) {
    auto at = out.size();
    put_le(out, fields, field_bytes);
    put_le(out, crc24(bytes_view(out).subspan(at, static_cast<std::size_t>(field_bytes))), 3);
}

void put_trailer(byte_buffer& out, std::size_t payload_at) {
    put_le(out, crc32(bytes_view(out).subspan(payload_at)), 4);
}

}  // namespace

void encode_segment(bytes_view payload, bool self_contained, bool lz4, byte_buffer& out) {
    const std::uint64_t sc = self_contained ? 1 : 0;
    if (!lz4) {
        put_header(out, payload.size() | (sc << 17), 3);
        auto at = out.size();
        out.insert(out.end(), payload.begin(), payload.end());
        put_trailer(out, at);
        return;
    }
    byte_buffer compressed;
    lz4_compress_block(payload, compressed);
    const bool stored = compressed.size() >= payload.size();
    bytes_view body = stored ? payload : bytes_view(compressed);
    const std::uint64_t uncompressed = stored ? 0 : payload.size();
    put_header(out, body.size() | (uncompressed << 17) | (sc << 34), 5);
    auto at = out.size();
    out.insert(out.end(), body.begin(), body.end());
    put_trailer(out, at);
}

void encode_envelopes(std::span<const bytes_view> envelopes, bool lz4, byte_buffer& out) {
    byte_buffer joined;
    for (std::size_t i = 0; i < envelopes.size();) {
        if (envelopes[i].size() > max_segment_payload) {
            for (bytes_view rest = envelopes[i]; !rest.empty();) {
                auto n = std::min(rest.size(), max_segment_payload);
                encode_segment(rest.first(n), false, lz4, out);
                rest = rest.subspan(n);
            }
            ++i;
            continue;
        }
        std::size_t j = i, total = 0;
        while (j < envelopes.size() && total + envelopes[j].size() <= max_segment_payload) total += envelopes[j++].size();
        if (j == i + 1) {
            encode_segment(envelopes[i], true, lz4, out);
        } else {
            joined.clear();
            for (std::size_t k = i; k < j; ++k) joined.insert(joined.end(), envelopes[k].begin(), envelopes[k].end());
            encode_segment(joined, true, lz4, out);
        }
        i = j;
    }
}

boost::system::result<std::optional<segment>> segment_decoder::decode(bytes_view in) {
    const std::size_t hsize = segment_header_size(lz4_);
    if (in.size() < hsize) {
        needed_ = hsize;
        return std::optional<segment>{};
    }
    const int field_bytes = lz4_ ? 5 : 3;
    const std::uint64_t fields = get_le(in.data(), field_bytes);
    if (get_le(in.data() + field_bytes, 3) != crc24(in.first(static_cast<std::size_t>(field_bytes))))
        return error_code(protocol_errc::segment_header_crc);

    const std::size_t wire_len = fields & 0x1FFFF;
    const std::size_t uncompressed = lz4_ ? (fields >> 17) & 0x1FFFF : 0;
    segment s;
    s.self_contained = ((fields >> (lz4_ ? 34 : 17)) & 1) != 0;
    s.consumed = hsize + wire_len + segment_trailer_size;
    if (in.size() < s.consumed) {
        needed_ = s.consumed;
        return std::optional<segment>{};
    }
    bytes_view wire = in.subspan(hsize, wire_len);
    if (get_le(wire.data() + wire_len, 4) != crc32(wire)) return error_code(protocol_errc::segment_payload_crc);
    if (lz4_ && uncompressed != 0) {
        scratch_.clear();
        if (auto ec = lz4_decompress_block(wire, uncompressed, scratch_)) return ec;
        s.payload = scratch_;
    } else {
        s.payload = wire;
    }
    needed_ = 0;
    return std::optional<segment>{s};
}

}  // namespace cqlcoro::protocol
