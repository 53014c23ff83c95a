// Protocol v5 framing: envelopes (9-byte header + body) travel inside checksummed segments.
//
// An uncompressed segment is a 6-byte header (17-bit payload length, self-contained bit, CRC24 of the
// first 3 bytes), the payload and a CRC32 of it; an LZ4 segment has an 8-byte header with both the
// compressed and the uncompressed length. All framing integers are little-endian. A self-contained
// segment holds one or more whole envelopes; a larger envelope is split across a run of segments
// that are not self-contained.
#pragma once

#include "protocol/frame.hpp"
#include "protocol/wire.hpp"

#include <boost/system/result.hpp>

#include <optional>
#include <span>

namespace cqlcoro::protocol {

inline constexpr std::size_t max_segment_payload = 128 * 1024 - 1;
inline constexpr std::size_t segment_trailer_size = 4;

inline constexpr std::size_t segment_header_size(bool lz4) noexcept { return lz4 ? 8 : 6; }

/// Appends one segment holding `payload` (at most max_segment_payload bytes). With lz4 the payload is
/// compressed unless that would not make it smaller, in which case it is stored (uncompressed length 0).
void encode_segment(bytes_view payload, bool self_contained, bool lz4, byte_buffer& out);

/// Appends segments carrying the given whole envelopes: neighbours share self-contained segments up to
/// the payload limit, and an envelope larger than the limit is split across non-self-contained ones.
void encode_envelopes(std::span<const bytes_view> envelopes, bool lz4, byte_buffer& out);

struct segment {
    std::size_t consumed = 0;    ///< input bytes this segment took (header + payload + trailer)
    bool self_contained = false;
    bytes_view payload;          ///< into the input, or into the decoder's scratch buffer when decompressed
};

class segment_decoder {
public:
    explicit segment_decoder(bool lz4) noexcept : lz4_(lz4) {}

    /// Decodes the segment at the front of `in`. nullopt: `in` does not yet hold a whole segment (the
    /// header is verified first, so `bytes_needed()` then says how much input a whole segment needs).
    /// The payload view stays valid until the next call.
    boost::system::result<std::optional<segment>> decode(bytes_view in);

    std::size_t bytes_needed() const noexcept { return needed_; }

private:
    bool lz4_;
    std::size_t needed_ = 0;
    byte_buffer scratch_;
};

/// Turns segment payloads back into envelopes, joining the pieces of a multi-segment envelope.
class envelope_assembler {
public:
    explicit envelope_assembler(std::uint32_t max_body = protocol_max_body) noexcept : max_body_(max_body) {}

    /// Calls `on_envelope(const frame_header&, bytes_view body)` for each envelope completed by `s`.
    /// The body view is valid only during the call.
    template <class OnEnvelope>
    error_code feed(const segment& s, OnEnvelope&& on_envelope) {
        if (s.self_contained) {
            if (!partial_.empty()) return protocol_errc::bad_envelope_in_segment;
            bytes_view rest = s.payload;
            while (!rest.empty()) {
                auto h = decode_header(rest, max_body_);
                if (!h) return h.error() == protocol_errc::truncated_frame ? protocol_errc::bad_envelope_in_segment : h.error();
                if (rest.size() - header_size < h->length) return protocol_errc::bad_envelope_in_segment;
                on_envelope(*h, rest.subspan(header_size, h->length));
                rest = rest.subspan(header_size + h->length);
            }
            return {};
        }
        partial_.insert(partial_.end(), s.payload.begin(), s.payload.end());
        if (partial_.size() < header_size) return {};
        auto h = decode_header(partial_, max_body_);
        if (!h) return h.error();
        std::size_t total = header_size + h->length;
        if (partial_.size() > total) return protocol_errc::bad_envelope_in_segment;
        if (partial_.size() == total) {
            on_envelope(*h, bytes_view(partial_).subspan(header_size));
            partial_.clear();
        }
        return {};
    }

    bool idle() const noexcept { return partial_.empty(); }

private:
    std::uint32_t max_body_;
    byte_buffer partial_;
};

}  // namespace cqlcoro::protocol
