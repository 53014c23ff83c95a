#include "connection/multiplexer.hpp"

#include "protocol/responses.hpp"

#include <algorithm>
#include <cstring>

namespace cqlcoro::connection {
namespace {

constexpr std::size_t min_read_space = 16 * 1024;
// The read buffer's usual size, and the size beyond which a buffer grown for one large frame is given
// back once that frame is parsed (so one 100 MiB answer does not pin 100 MiB for the connection's life).
constexpr std::size_t usual_read_buffer = 64 * 1024;
constexpr std::size_t kept_read_buffer = 1024 * 1024;

// Requests are encoded before they reach the strand, with stream 0; the multiplexer writes the real id in.
void patch_stream(std::uint8_t* frame, std::int16_t id) noexcept {
    frame[2] = static_cast<std::uint8_t>(static_cast<std::uint16_t>(id) >> 8);
    frame[3] = static_cast<std::uint8_t>(id);
}

}  // namespace

multiplexer::multiplexer(std::size_t max_requests, std::uint32_t max_frame)
    : max_frame_(max_frame), ids_(max_requests), in_flight_(std::min<std::size_t>(ids_.capacity(), 64)), assembler_(max_frame) {}

void multiplexer::set_framing(bool lz4) {
    lz4_ = lz4;
    segments_.emplace(lz4);
}

void multiplexer::refuse(request_sink* sink, error_code ec) { settle(sink, ec, false); }

void multiplexer::settle(request_sink* sink, error_code ec, bool written) {
    load_.fetch_sub(1, std::memory_order_relaxed);
    sink->on_failure(ec, written);
}

bool multiplexer::add(shared_frame frame, const submission& s, clock::time_point now) {
    if (refusal_) {
        refuse(s.sink, refusal_);
        return false;
    }
    if (!frame || frame->size() < protocol::header_size) {
        refuse(s.sink, protocol_errc::truncated_frame);
        return false;
    }
    const bool timed = s.deadline != clock::time_point::max();
    if (timed && s.deadline <= now) {
        refuse(s.sink, client_errc::request_timeout);
        return false;
    }
    auto id = ids_.acquire();
    if (!id) {
        // Parked: at most as many as the protocol has ids, so a connection that never frees one cannot hoard requests.
        if (s.wait_for_id && parked_.size() < stream_ids::max_capacity) {
            parked_.push_back({std::move(frame), s});
            if (timed) parked_earliest_ = std::min(parked_earliest_, s.deadline);
            return false;
        }
        refuse(s.sink, client_errc::too_many_requests);
        return false;
    }
    return enqueue(*id, std::move(frame), s);
}

// Inlined: add() is the request path (unpark() is rare).
[[gnu::always_inline]] inline bool multiplexer::enqueue(std::int16_t id, shared_frame frame, const submission& s) {
    const bool timed = s.deadline != clock::time_point::max();
    // The table grows with the highest id in use (ids are handed out lowest first), so an idle
    // connection of a large pool does not hold 32768 entries.
    const auto at = static_cast<std::size_t>(id);
    if (at >= in_flight_.size()) in_flight_.resize(std::min(ids_.capacity(), std::max(in_flight_.size() * 2, at + 1)));
    auto& p = in_flight_[at];
    p.sink = s.sink;
    p.seq = s.seq;
    p.written = false;
    p.notify_written = s.notify_written;
    p.cancellable = s.cancellable;
    p.in_use = true;
    p.deadline = s.deadline;
    p.heap_pos = no_deadline;
    if (timed) heap_push(id);
    if (s.cancellable) cancellable_.emplace(s.seq, id);
    auto& q = queue_.emplace_back();
    q.id = id;
    q.seq = s.seq;
    if (frame->size() <= copy_limit) {
        q.offset = static_cast<std::uint32_t>(queue_bytes_.size());
        q.size = static_cast<std::uint32_t>(frame->size());
        queue_bytes_.insert(queue_bytes_.end(), frame->begin(), frame->end());
        patch_stream(queue_bytes_.data() + q.offset, id);
    } else {
        std::copy_n(frame->begin(), protocol::header_size, q.header.begin());
        patch_stream(q.header.data(), id);
        q.frame = std::move(frame);
    }
    if (writing_) return false;
    writing_ = true;
    return true;
}

void multiplexer::unpark() {
    while (!parked_.empty() && !closed_) {
        const auto id = ids_.acquire();
        if (!id) return;
        auto p = std::move(parked_.front());
        parked_.pop_front();
        if (enqueue(*id, std::move(p.frame), p.s)) write_start_ = true;
    }
    if (parked_.empty()) parked_earliest_ = clock::time_point::max();
}

void multiplexer::refuse_parked(error_code why, bool all, clock::time_point now) {
    if (parked_.empty()) return;
    // Out of the FIFO first, then told: a sink may call add(), which may park again.
    std::vector<request_sink*> out;
    auto earliest = clock::time_point::max();
    std::erase_if(parked_, [&](const parked_request& p) {
        if (all || p.s.deadline <= now) {
            out.push_back(p.s.sink);
            return true;
        }
        earliest = std::min(earliest, p.s.deadline);
        return false;
    });
    parked_earliest_ = earliest;
    for (auto* sink : out) refuse(sink, why);
}

void multiplexer::refuse_new(error_code why) {
    refusal_ = why;
    refuse_parked(why, true, {});
}

std::size_t multiplexer::prepare_write() {
    while (!queue_.empty() && !closed_) {
        batch_.clear();
        batch_.swap(queue_);
        batch_bytes_.clear();
        batch_bytes_.swap(queue_bytes_);
        buffers_.clear();
        envelopes_.clear();
        envelope_sizes_.clear();
        std::size_t count = 0;
        for (const auto& q : batch_) {
            auto& p = in_flight_[static_cast<std::size_t>(q.id)];
            if (!p.in_use || p.seq != q.seq) continue;  // cancelled before it was written
            p.written = true;
            if (p.notify_written) p.sink->on_written();
            ++count;
            if (segments_) {
                if (q.frame) {
                    envelopes_.insert(envelopes_.end(), q.header.begin(), q.header.end());
                    envelopes_.insert(envelopes_.end(), q.frame->begin() + protocol::header_size, q.frame->end());
                    envelope_sizes_.push_back(q.frame->size());
                } else {
                    envelopes_.insert(envelopes_.end(), batch_bytes_.begin() + q.offset, batch_bytes_.begin() + q.offset + q.size);
                    envelope_sizes_.push_back(q.size);
                }
            } else if (q.frame) {
                buffers_.emplace_back(boost::asio::buffer(q.header));
                buffers_.emplace_back(q.frame->data() + protocol::header_size, q.frame->size() - protocol::header_size);
            } else {
                const auto* at = batch_bytes_.data() + q.offset;
                if (!buffers_.empty() && static_cast<const std::uint8_t*>(buffers_.back().data()) + buffers_.back().size() == at)
                    buffers_.back() = boost::asio::const_buffer(buffers_.back().data(), buffers_.back().size() + q.size);  // adjacent: one buffer
                else
                    buffers_.emplace_back(at, q.size);
            }
        }
        if (count == 0) continue;
        sent_.fetch_add(count, std::memory_order_relaxed);
        if (segments_) {
            // v5: envelopes travel in segments (self-contained where they fit, with CRCs, maybe LZ4).
            envelope_views_.clear();
            std::size_t at = 0;
            for (const auto n : envelope_sizes_) {
                envelope_views_.emplace_back(envelopes_.data() + at, n);
                at += n;
            }
            segments_out_.clear();
            protocol::encode_envelopes(envelope_views_, lz4_, segments_out_);
            buffers_.assign(1, boost::asio::buffer(segments_out_));
        }
        return count;
    }
    batch_.clear();
    writing_ = false;
    return 0;
}

std::span<std::uint8_t> multiplexer::read_buffer() {
    if (in_.size() - in_used_ < min_read_space)
        in_.resize(std::max<std::size_t>({in_used_ + min_read_space, in_.size() * 2, usual_read_buffer}));
    return {in_.data() + in_used_, in_.size() - in_used_};
}

error_code multiplexer::commit_read(std::size_t n) {
    in_used_ += n;
    std::size_t used = 0;
    error_code ec;
    auto on_envelope = [&](const protocol::frame_header& h, protocol::bytes_view raw) {
        if (!ec) ec = deliver(h, raw);
    };
    while (!ec && !closed_) {
        const protocol::bytes_view rest = protocol::bytes_view(in_.data(), in_used_).subspan(used);
        if (segments_) {
            auto s = segments_->decode(rest);
            if (!s) return s.error();
            if (!*s) break;
            if (auto fe = assembler_.feed(**s, on_envelope)) return fe;
            used += (*s)->consumed;
            continue;
        }
        if (rest.size() < protocol::header_size) break;
        auto h = protocol::decode_header(rest, max_frame_);
        if (!h) return h.error();
        if (rest.size() - protocol::header_size < h->length) break;
        on_envelope(*h, rest.subspan(protocol::header_size, h->length));
        used += protocol::header_size + h->length;
    }
    if (used > 0) {
        std::memmove(in_.data(), in_.data() + used, in_used_ - used);
        in_used_ -= used;
        if (in_.size() > kept_read_buffer && in_used_ <= usual_read_buffer - min_read_space) {
            protocol::byte_buffer usual(usual_read_buffer);
            std::memcpy(usual.data(), in_.data(), in_used_);
            in_.swap(usual);
        }
    }
    return ec;
}

// One whole frame: to its sink, to the unsolicited handler (events), or dropped (a late answer to an
// abandoned request, or one on a stream nothing was sent on).
error_code multiplexer::deliver(const protocol::frame_header& h, protocol::bytes_view raw) {
    protocol::byte_buffer scratch;  // for a compressed body only
    auto b = protocol::frame_body(h, raw, compression_, max_frame_, scratch);
    if (!b) return b.error();
    if (h.stream < 0) return unsolicited_ ? unsolicited_(h, *b) : error_code{};
    switch (ids_.on_response(h.stream)) {
    case stream_ids::arrival::active: {
        const pending p = take(h.stream);
        load_.fetch_sub(1, std::memory_order_relaxed);
        p.sink->on_frame(h, *b);
        if (!parked_.empty()) unpark();
        break;
    }
    case stream_ids::arrival::orphan:
        orphans_.store(ids_.orphans(), std::memory_order_relaxed);
        if (!parked_.empty()) unpark();
        break;
    case stream_ids::arrival::unexpected: unexpected_.fetch_add(1, std::memory_order_relaxed); break;
    }
    return {};
}

// The in-flight entry of `id`, out of the table, the deadline heap and the cancellables.
multiplexer::pending multiplexer::take(std::int16_t id) {
    auto& slot = in_flight_[static_cast<std::size_t>(id)];
    if (slot.heap_pos != no_deadline) heap_erase(id);
    const pending p = slot;
    slot.in_use = false;
    if (p.cancellable) cancellable_.erase(p.seq);
    return p;
}

void multiplexer::cancel(std::uint64_t seq) {
    auto it = cancellable_.find(seq);
    if (it == cancellable_.end()) {  // parked, or already completed
        const auto at = std::find_if(parked_.begin(), parked_.end(), [&](const parked_request& p) { return p.s.cancellable && p.s.seq == seq; });
        if (at == parked_.end()) return;
        auto* sink = at->s.sink;
        parked_.erase(at);
        refuse(sink, boost::asio::error::operation_aborted);
        return;
    }
    const auto id = it->second;
    const auto& p = in_flight_[static_cast<std::size_t>(id)];
    if (!p.in_use || p.seq != seq) return;
    abandon(id, boost::asio::error::operation_aborted);
}

// Completes the request on `id` without its answer. Written, its id becomes an orphan until the late
// answer; not yet written, its queued frame is skipped by prepare_write (the seq no longer matches).
void multiplexer::abandon(std::int16_t id, error_code why) {
    const pending p = take(id);
    if (p.written) {
        ids_.orphan(id);  // its late answer must find the id still taken
        orphans_.store(ids_.orphans(), std::memory_order_relaxed);
    } else {
        ids_.release(id);
    }
    settle(p.sink, why, p.written);
    if (!p.written && !parked_.empty()) unpark();
}

clock::time_point multiplexer::earliest_deadline() const noexcept {
    const auto first = deadlines_.empty() ? clock::time_point::max() : in_flight_[static_cast<std::size_t>(deadlines_.front())].deadline;
    return std::min(first, parked_earliest_);
}

void multiplexer::expire(clock::time_point now) {
    if (parked_earliest_ <= now) refuse_parked(client_errc::request_timeout, false, now);
    while (!deadlines_.empty() && !closed_) {
        const auto id = deadlines_.front();
        if (in_flight_[static_cast<std::size_t>(id)].deadline > now) break;
        abandon(id, client_errc::request_timeout);
    }
}

void multiplexer::fail_all() {
    if (closed_) return;
    closed_ = true;
    refusal_ = client_errc::connection_closed_unsent;
    deadlines_.clear();
    for (std::size_t i = 0; i < in_flight_.size(); ++i) {  // by index: a sink may call add() (refused now)
        auto& slot = in_flight_[i];
        if (!slot.in_use) continue;
        const pending p = slot;
        slot.in_use = false;
        slot.heap_pos = no_deadline;
        settle(p.sink, p.written ? client_errc::connection_closed_sent : client_errc::connection_closed_unsent, p.written);
    }
    queue_.clear();
    queue_bytes_.clear();
    cancellable_.clear();
    refuse_parked(client_errc::connection_closed_unsent, true, {});
}

bool multiplexer::heap_less(std::uint32_t a, std::uint32_t b) const noexcept {
    return in_flight_[static_cast<std::size_t>(deadlines_[a])].deadline < in_flight_[static_cast<std::size_t>(deadlines_[b])].deadline;
}

void multiplexer::heap_place(std::uint32_t pos, std::int16_t id) {
    deadlines_[pos] = id;
    in_flight_[static_cast<std::size_t>(id)].heap_pos = pos;
}

// Moves the entry at `pos` up or down until the heap order holds.
void multiplexer::sift(std::uint32_t pos) {
    while (pos > 0) {
        const auto parent = (pos - 1) / 2;
        if (!heap_less(pos, parent)) break;
        const auto a = deadlines_[pos], b = deadlines_[parent];
        heap_place(pos, b);
        heap_place(parent, a);
        pos = parent;
    }
    const auto n = static_cast<std::uint32_t>(deadlines_.size());
    for (;;) {
        auto least = pos;
        for (auto child : {2 * pos + 1, 2 * pos + 2})
            if (child < n && heap_less(child, least)) least = child;
        if (least == pos) break;
        const auto a = deadlines_[pos], b = deadlines_[least];
        heap_place(pos, b);
        heap_place(least, a);
        pos = least;
    }
}

void multiplexer::heap_push(std::int16_t id) {
    deadlines_.push_back(id);
    const auto pos = static_cast<std::uint32_t>(deadlines_.size() - 1);
    heap_place(pos, id);
    sift(pos);
}

// `id` is still in flight (its entry holds its position).
void multiplexer::heap_erase(std::int16_t id) {
    auto& p = in_flight_[static_cast<std::size_t>(id)];
    const auto pos = p.heap_pos;
    p.heap_pos = no_deadline;
    const auto last = deadlines_.back();
    deadlines_.pop_back();
    if (pos == deadlines_.size()) return;
    heap_place(pos, last);
    sift(pos);
}

}  // namespace cqlcoro::connection
