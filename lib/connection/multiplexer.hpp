// The core of a connection, without I/O: stream ids, the in-flight table, orphans, deadlines, the
// coalescing write queue and the parsing of what the server sends. It never touches a socket or a
// timer; its shell (connection.hpp) writes the buffers it prepares, reads into the buffer it lends, arms
// one timer for its earliest deadline and tells it what happened. Tests drive it byte by byte
// (test/unit/connection/multiplexer_test.cpp).
//
// The life of one request in it:
//
//   add()            queued: it has a stream id (the lowest free one), its frame is in the write queue and,
//                    with a deadline, it is in the deadline heap. Refused at once instead when no id is
//                    free (too_many_requests), the deadline has passed (request_timeout), or the
//                    multiplexer no longer takes requests (refuse_new(), fail_all()).
//   (parked)         a request that may wait for an id (submission::wait_for_id) and finds none waits in
//                    a FIFO instead of being refused: the first id set free goes to the first parked
//                    request, which is then queued as above. Its deadline, cancel(), refuse_new() and
//                    fail_all() take it out unwritten. After a call that can free an id (commit_read,
//                    cancel, expire), take_write_start() says whether a parked request was queued and
//                    the shell must start a write.
//   prepare_write()  written: every queued request goes into one batch of buffers; each is marked
//                    written (and its sink told, if it asked). A request cancelled while queued is left out.
//   commit_read()    answered: the frame on its stream id goes to its sink, and the id is free again.
//
// Ways out other than an answer, each completing the sink exactly once with on_failure(ec, written):
//   cancel(seq)      operation_aborted; expire(now) request_timeout. A written request's id becomes an
//                    orphan: kept until the late answer arrives, which is then dropped, so that a late
//                    answer can never complete another request. An unwritten one's id is free at once.
//   fail_all()       connection_closed_sent (written: the node may have executed it) or _unsent.
//
// Rules it keeps:
//   - A sink is called inline, from inside the call that settles it; it may call add() from there (the
//     new request joins the write queue), but not commit_read() or fail_all().
//   - Frames queued while a write is in flight go out together in the next one: add() says when the
//     queue has just become non-empty with no write in progress, which is when the shell starts one.
//   - Small frames are copied into the queue with their stream id patched (their owners may reuse or
//     share them at once: retries and speculative executions send one encoded frame); large ones are
//     referenced, with a patched copy of their header.
//   - The read buffer grown for one large frame shrinks back once that frame is parsed.
//
// Not thread-safe, like the connection's strand it lives on, except the counters marked otherwise.
#pragma once

#include "connection/stream_ids.hpp"
#include "protocol/compression.hpp"
#include "protocol/frame.hpp"
#include "protocol/segment.hpp"

#include <cqlcoro/error.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cqlcoro::connection {

using clock = std::chrono::steady_clock;

/// A request encoded once for a connection's version and compression (stream id 0: the multiplexer writes
/// the real one into its own copy of the header), shareable by retries and speculative executions.
using shared_frame = std::shared_ptr<const protocol::byte_buffer>;

/// The receiver of one request: told exactly once, by one of on_frame and on_failure, on the connection's
/// strand (possibly from within the call that gave it the request, when that runs on the strand). The
/// sink must stay alive until then.
class request_sink {
public:
    /// The answer: its header and (decompressed) body, valid only during the call. Decoding it is the
    /// sink's: it can decode straight into the memory it keeps the result in.
    virtual void on_frame(const protocol::frame_header& h, protocol::bytes_view body) = 0;
    /// No answer: the connection closed, the request was cancelled, timed out, or refused. `written`:
    /// its frame had been handed to the socket (so the node may have executed it).
    virtual void on_failure(error_code ec, bool written) = 0;
    /// The frame was handed to the socket (only for a request that asked for it, before the answer):
    /// the moment a speculative execution's delay counts from.
    virtual void on_written() {}

protected:
    ~request_sink() = default;
};

class multiplexer {
public:
    /// A frame with a negative stream id (an event), its header and decompressed body. An error closes the
    /// connection (commit_read() returns it).
    using unsolicited_handler = std::function<error_code(const protocol::frame_header&, protocol::bytes_view body)>;

    /// What add() is told besides the frame.
    struct submission {
        request_sink* sink = nullptr;
        std::uint64_t seq = 0;  ///< the request's number, which cancel() names it by
        clock::time_point deadline = clock::time_point::max();
        bool cancellable = false;     ///< cancel(seq) may be called for it
        bool notify_written = false;  ///< call sink->on_written() when it is written
        bool wait_for_id = false;     ///< with every id in use, wait (parked) for one rather than be refused
    };

    /// At most `max_requests` in flight (stream ids), answers of at most `max_frame` bytes.
    multiplexer(std::size_t max_requests, std::uint32_t max_frame);

    /// The body compression answers may use (v3, v4), from the handshake on.
    void set_compression(protocol::compression c) noexcept { compression_ = c; }
    /// From now on, both ways: v5 segments (with LZ4 when `lz4`), as after the answer to STARTUP in v5.
    void set_framing(bool lz4);
    bool framing() const noexcept { return segments_.has_value(); }
    void on_unsolicited(unsolicited_handler h) { unsolicited_ = std::move(h); }

    /// Queues a request. Returns true when the shell must start a write (the queue was empty and no write
    /// is in progress). A refused request's sink is told at once, and false is returned.
    bool add(shared_frame frame, const submission& s, clock::time_point now);

    /// Stops taking requests: add() refuses with `why`, and so are the parked ones, unwritten (those in
    /// flight go on).
    void refuse_new(error_code why);

    /// True once after a parked request was given a freed id and queued while no write was in progress:
    /// the shell must start a write (as when add() returns true).
    bool take_write_start() noexcept { return std::exchange(write_start_, false); }

    /// The next write: moves the queue into one batch and returns how many requests it holds; 0 when the
    /// queue is empty (nothing to write: the write loop ends, and the next add() starts another). The
    /// buffers stay valid until the next prepare_write().
    std::size_t prepare_write();
    const std::vector<boost::asio::const_buffer>& write_buffers() const noexcept { return buffers_; }

    /// Where the next read goes: at least 16 KiB of space, after the bytes not yet parsed.
    std::span<std::uint8_t> read_buffer();
    /// `n` bytes were read into read_buffer(): dispatches every whole frame they complete. An error means
    /// the server sent what cannot be parsed; the connection must close.
    error_code commit_read(std::size_t n);

    /// Abandons the request numbered `seq` (if it is still in flight) with operation_aborted.
    void cancel(std::uint64_t seq);
    /// The earliest deadline of a request in flight, or time_point::max().
    clock::time_point earliest_deadline() const noexcept;
    /// Abandons every request whose deadline is at or before `now`, with request_timeout.
    void expire(clock::time_point now);

    /// Completes every request with connection_closed_sent or _unsent and takes no more (add() refuses with
    /// connection_closed_unsent).
    void fail_all();

    /// Requests in flight, orphans not counted (strand only).
    std::size_t in_flight() const noexcept { return ids_.in_flight(); }
    std::size_t available() const noexcept { return ids_.available(); }
    /// Requests waiting for a stream id (strand only).
    std::size_t parked() const noexcept { return parked_.size(); }
    std::size_t read_buffer_capacity() const noexcept { return in_.capacity(); }

    // Readable from any thread.
    /// Requests given to the connection and not yet completed: note_submitted() from any thread counts
    /// one in before it reaches the strand.
    void note_submitted() noexcept { load_.fetch_add(1, std::memory_order_relaxed); }
    std::size_t load() const noexcept { return load_.load(std::memory_order_relaxed); }
    /// Stream ids held by abandoned requests whose late responses have not arrived.
    std::size_t orphans() const noexcept { return orphans_.load(std::memory_order_relaxed); }
    /// Requests written so far.
    std::uint64_t sent() const noexcept { return sent_.load(std::memory_order_relaxed); }
    /// Answers that came on stream ids carrying no request (never used, or already answered): dropped.
    std::uint64_t unexpected() const noexcept { return unexpected_.load(std::memory_order_relaxed); }

private:
    static constexpr std::uint32_t no_deadline = ~std::uint32_t{0};
    struct pending {
        request_sink* sink = nullptr;
        std::uint64_t seq = 0;
        bool written = false;         ///< handed to the socket
        bool notify_written = false;  ///< tell the sink when it is
        bool cancellable = false;     ///< listed in cancellable_
        bool in_use = false;
        clock::time_point deadline = clock::time_point::max();
        std::uint32_t heap_pos = no_deadline;  ///< position in deadlines_
    };
    // A small frame is copied, stream id patched, into queue_bytes_ when it is queued, so its owner can
    // reuse its buffer at once and a batch of them goes out as one buffer; a large one is referenced.
    static constexpr std::size_t copy_limit = 16 * 1024;
    struct queued {
        std::array<std::uint8_t, protocol::header_size> header;  // large frames: the header with the stream id
        shared_frame frame;                                       // large frames only
        std::uint32_t offset = 0, size = 0;                       // small frames: where in the bytes
        std::int16_t id;
        std::uint64_t seq;
    };

    void refuse(request_sink* sink, error_code ec);
    // Takes an id and queues the frame; true when the shell must start a write.
    bool enqueue(std::int16_t id, shared_frame frame, const submission& s);
    // Gives freed ids to parked requests, first come first served.
    void unpark();
    // Takes parked requests out, unwritten, with `why`: every one (`all`), or those due by `now`.
    void refuse_parked(error_code why, bool all, clock::time_point now);
    void settle(request_sink* sink, error_code ec, bool written);
    void abandon(std::int16_t id, error_code why);
    pending take(std::int16_t id);
    error_code deliver(const protocol::frame_header& h, protocol::bytes_view raw);
    // Requests with a deadline, in a binary heap of stream ids ordered by deadline.
    void heap_push(std::int16_t id);
    void heap_erase(std::int16_t id);
    void heap_place(std::uint32_t pos, std::int16_t id);
    bool heap_less(std::uint32_t a, std::uint32_t b) const noexcept;
    void sift(std::uint32_t pos);

    std::uint32_t max_frame_;
    protocol::compression compression_ = protocol::compression::none;
    error_code refusal_;
    bool lz4_ = false;  // v5 segments compressed
    bool writing_ = false;
    bool closed_ = false;
    unsolicited_handler unsolicited_;

    stream_ids ids_;
    std::vector<pending> in_flight_;                               // by stream id
    std::vector<std::int16_t> deadlines_;                          // heap of stream ids by deadline
    std::unordered_map<std::uint64_t, std::int16_t> cancellable_;  // seq -> id, for requests that may be cancelled
    struct parked_request {
        shared_frame frame;
        submission s;
    };
    std::deque<parked_request> parked_;                            // waiting for an id, in arrival order
    // At or before the earliest deadline of the parked requests (a stale bound after some leave: the
    // timer may then fire early, and expire() computes it again).
    clock::time_point parked_earliest_ = clock::time_point::max();
    bool write_start_ = false;
    std::vector<queued> queue_;                                    // frames waiting for the next write
    std::vector<queued> batch_;                                    // the write in progress
    protocol::byte_buffer queue_bytes_, batch_bytes_;              // the small frames of queue_ and batch_
    std::vector<boost::asio::const_buffer> buffers_;
    protocol::byte_buffer segments_out_;  // v5: the batch as segments
    protocol::byte_buffer envelopes_;     // v5: the batch's envelopes, joined
    std::vector<std::size_t> envelope_sizes_;
    std::vector<protocol::bytes_view> envelope_views_;
    protocol::byte_buffer in_;  // received bytes: [0, in_used_) unparsed
    std::size_t in_used_ = 0;
    std::optional<protocol::segment_decoder> segments_;
    protocol::envelope_assembler assembler_;

    std::atomic<std::size_t> load_{0};
    std::atomic<std::size_t> orphans_{0};
    std::atomic<std::uint64_t> sent_{0};
    std::atomic<std::uint64_t> unexpected_{0};
};

}  // namespace cqlcoro::connection
