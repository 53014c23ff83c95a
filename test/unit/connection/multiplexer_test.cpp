// The connection's core without I/O, byte by byte: what it writes, what it makes of what it reads, and
// how each request leaves it (answered, cancelled, timed out, refused, closed).
#include "connection/multiplexer.hpp"
#include "protocol/segment.hpp"

#include "../../common/test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

using namespace std::chrono_literals;
using cqlcoro::error_code;
using cqlcoro::client_errc;
using steady = cqlcoro::connection::clock;
using cqlcoro::connection::multiplexer;
using cqlcoro::connection::request_sink;
using cqlcoro::connection::shared_frame;
using cqlcoro::test::hex;
namespace protocol = cqlcoro::protocol;

namespace {

// Remembers everything it is told, in order.
struct recorder final : request_sink {
    struct event {
        char kind;  // 'f' frame, 'x' failure, 'w' written
        std::int16_t stream = 0;
        protocol::byte_buffer body;
        error_code ec;
        bool written = false;
    };
    void on_frame(const protocol::frame_header& h, protocol::bytes_view body) override {
        events.push_back({'f', h.stream, protocol::byte_buffer(body.begin(), body.end()), {}, false});
    }
    void on_failure(error_code ec, bool written) override { events.push_back({'x', 0, {}, ec, written}); }
    void on_written() override { events.push_back({'w'}); }
    std::vector<event> events;
};

shared_frame frame_of(std::string_view h) { return std::make_shared<const protocol::byte_buffer>(hex(h)); }
// An OPTIONS request as the session encodes it: stream 0, which the multiplexer replaces.
shared_frame options() { return frame_of("04 00 0000 05 00000000"); }

multiplexer::submission to(recorder& r, std::uint64_t seq = 0, steady::time_point deadline = steady::time_point::max()) {
    return {.sink = &r, .seq = seq, .deadline = deadline, .cancellable = seq != 0};
}

const auto t0 = steady::time_point{} + 1h;

// Everything the next write holds, as one byte string.
protocol::byte_buffer next_write(multiplexer& m) {
    protocol::byte_buffer out;
    if (m.prepare_write() == 0) return out;
    for (const auto& b : m.write_buffers()) {
        const auto* p = static_cast<const std::uint8_t*>(b.data());
        out.insert(out.end(), p, p + b.size());
    }
    return out;
}

error_code feed(multiplexer& m, protocol::bytes_view bytes) {
    auto space = m.read_buffer();
    REQUIRE(space.size() >= bytes.size());
    std::copy(bytes.begin(), bytes.end(), space.begin());
    return m.commit_read(bytes.size());
}

error_code feed_byte_by_byte(multiplexer& m, protocol::bytes_view bytes) {
    for (std::size_t i = 0; i < bytes.size(); ++i)
        if (auto ec = feed(m, bytes.subspan(i, 1))) return ec;
    return {};
}

}  // namespace

TEST_CASE("multiplexer: requests queued together go out in one write, each with the lowest free stream id") {
    multiplexer m(32768, 1 << 20);
    recorder a, b;
    CHECK(m.add(options(), to(a), t0));       // the first: the shell starts a write
    CHECK_FALSE(m.add(options(), to(b), t0));  // joins it
    CHECK(m.in_flight() == 2);
    const auto bytes = next_write(m);
    CHECK(m.write_buffers().size() == 1);  // small frames are copied side by side: one buffer
    CHECK(bytes == hex("04 00 0000 05 00000000 | 04 00 0001 05 00000000"));
    CHECK(m.sent() == 2);
    CHECK(next_write(m).empty());  // nothing queued: the write loop ends
    recorder c;
    CHECK(m.add(options(), to(c), t0));  // and the next request starts another
    CHECK(next_write(m) == hex("04 00 0002 05 00000000"));
    CHECK(a.events.empty());
}

TEST_CASE("multiplexer: answers read a byte at a time, out of order, each reach their own sink once whole") {
    multiplexer m(32768, 1 << 20);
    recorder a, b;
    for (auto* r : {&a, &b}) {
        m.note_submitted();
        m.add(options(), to(*r), t0);
    }
    next_write(m);
    CHECK(m.load() == 2);
    // RESULT (void) on stream 1, then READY on stream 0.
    const auto answers = hex("84 00 0001 08 00000004 00000001 | 84 00 0000 02 00000000");
    REQUIRE_FALSE(feed_byte_by_byte(m, protocol::bytes_view(answers).first(12)));
    CHECK(b.events.empty());  // one byte short of the first answer
    REQUIRE_FALSE(feed_byte_by_byte(m, protocol::bytes_view(answers).subspan(12)));
    REQUIRE(b.events.size() == 1);
    CHECK(b.events[0].kind == 'f');
    CHECK(b.events[0].stream == 1);
    CHECK(b.events[0].body == hex("00000001"));
    REQUIRE(a.events.size() == 1);
    CHECK(a.events[0].kind == 'f');
    CHECK(a.events[0].body.empty());
    CHECK(m.in_flight() == 0);
    CHECK(m.load() == 0);
}

TEST_CASE("multiplexer: a request cancelled before its write is never written, and its id is free at once") {
    multiplexer m(32768, 1 << 20);
    recorder a, b;
    m.add(options(), to(a, 1), t0);
    m.add(options(), to(b, 2), t0);
    m.cancel(1);
    REQUIRE(a.events.size() == 1);
    CHECK(a.events[0].kind == 'x');
    CHECK(a.events[0].ec == boost::asio::error::operation_aborted);
    CHECK_FALSE(a.events[0].written);  // never sent: safe to retry anywhere
    CHECK(next_write(m) == hex("04 00 0001 05 00000000"));
    CHECK(m.orphans() == 0);
    recorder c;
    m.add(options(), to(c), t0);
    CHECK(next_write(m) == hex("04 00 0000 05 00000000"));  // id 0 again
    m.cancel(1);  // already completed: nothing happens
    CHECK(a.events.size() == 1);
}

TEST_CASE("multiplexer: cancelled after its write, its id is an orphan until the late answer, which is dropped") {
    multiplexer m(32768, 1 << 20);
    recorder a, b, c;
    m.add(options(), to(a, 1), t0);
    next_write(m);
    m.cancel(1);
    REQUIRE(a.events.size() == 1);
    CHECK(a.events[0].ec == boost::asio::error::operation_aborted);
    CHECK(a.events[0].written);  // the node may have executed it
    CHECK(m.orphans() == 1);
    CHECK(m.in_flight() == 0);
    m.add(options(), to(b), t0);
    CHECK(next_write(m) == hex("04 00 0001 05 00000000"));  // not the orphan's id 0
    // The late answer on id 0 completes nobody, and frees the id.
    REQUIRE_FALSE(feed(m, hex("84 00 0000 02 00000000")));
    CHECK(a.events.size() == 1);
    CHECK(b.events.empty());
    CHECK(m.orphans() == 0);
    m.add(options(), to(c), t0);
    CHECK(next_write(m) == hex("04 00 0000 05 00000000"));
}

TEST_CASE("multiplexer: deadlines expire earliest first with request_timeout; a past one is refused at once") {
    multiplexer m(32768, 1 << 20);
    recorder late, early, middle, never, past;
    m.add(options(), to(late, 1, t0 + 3s), t0);
    m.add(options(), to(early, 2, t0 + 1s), t0);
    m.add(options(), to(middle, 3, t0 + 2s), t0);
    m.add(options(), to(never, 4), t0);
    CHECK(m.earliest_deadline() == t0 + 1s);
    next_write(m);  // all are written, so the ids of those that time out become orphans
    m.expire(t0 + 2s);
    REQUIRE(early.events.size() == 1);
    CHECK(early.events[0].ec == client_errc::request_timeout);
    CHECK(early.events[0].written);
    REQUIRE(middle.events.size() == 1);
    CHECK(middle.events[0].ec == client_errc::request_timeout);
    CHECK(late.events.empty());
    CHECK(m.earliest_deadline() == t0 + 3s);
    CHECK(m.orphans() == 2);
    // An answer removes its request from the deadlines.
    REQUIRE_FALSE(feed(m, hex("84 00 0000 02 00000000")));
    CHECK(late.events.size() == 1);
    CHECK(m.earliest_deadline() == steady::time_point::max());

    CHECK_FALSE(m.add(options(), to(past, 5, t0), t0 + 1ms));
    REQUIRE(past.events.size() == 1);
    CHECK(past.events[0].ec == client_errc::request_timeout);
    CHECK_FALSE(past.events[0].written);
}

TEST_CASE("multiplexer: the deadline heap stays ordered through random adds, answers and cancellations") {
    multiplexer m(32768, 1 << 20);
    std::mt19937 rng(7);
    std::vector<recorder> sinks(2000);
    std::vector<steady::time_point> deadline(sinks.size());
    std::vector<int> order(sinks.size());
    std::iota(order.begin(), order.end(), 1);
    std::shuffle(order.begin(), order.end(), rng);  // distinct deadlines, in random order
    for (std::size_t i = 0; i < sinks.size(); ++i) {
        deadline[i] = t0 + std::chrono::milliseconds(order[i]);
        m.add(options(), to(sinks[i], i + 1, deadline[i]), t0);
    }
    next_write(m);
    std::vector<bool> gone(sinks.size());
    for (std::size_t i = 0; i < sinks.size(); i += 3) {  // cancel a third, answer another third
        m.cancel(i + 1);
        gone[i] = true;
    }
    for (std::size_t i = 1; i < sinks.size(); i += 3) {
        const auto s = static_cast<std::uint16_t>(i);  // request i was given stream id i
        REQUIRE_FALSE(feed(m, protocol::byte_buffer{0x84, 0, static_cast<std::uint8_t>(s >> 8), static_cast<std::uint8_t>(s), 2, 0, 0, 0, 0}));
        REQUIRE(sinks[i].events.back().kind == 'f');
        gone[i] = true;
    }
    // The rest expire in deadline order.
    std::vector<std::size_t> left;
    for (std::size_t i = 0; i < sinks.size(); ++i)
        if (!gone[i]) left.push_back(i);
    std::sort(left.begin(), left.end(), [&](auto a, auto b) { return deadline[a] < deadline[b]; });
    for (auto i : left) {
        CHECK(m.earliest_deadline() == deadline[i]);
        m.expire(deadline[i]);
        REQUIRE(sinks[i].events.back().ec == client_errc::request_timeout);
    }
    CHECK(m.earliest_deadline() == steady::time_point::max());
    CHECK(m.in_flight() == 0);
}

TEST_CASE("multiplexer: with every stream id taken, a request is refused with too_many_requests, unsent") {
    multiplexer m(2, 1 << 20);
    recorder a, b, c;
    m.add(options(), to(a), t0);
    m.add(options(), to(b), t0);
    CHECK(m.available() == 0);
    CHECK_FALSE(m.add(options(), to(c), t0));
    REQUIRE(c.events.size() == 1);
    CHECK(c.events[0].ec == client_errc::too_many_requests);
    CHECK_FALSE(c.events[0].written);
    CHECK(next_write(m) == hex("04 00 0000 05 00000000 | 04 00 0001 05 00000000"));
}

TEST_CASE("multiplexer: a request that may wait for a stream id is parked, and takes the first id set free") {
    multiplexer m(2, 1 << 20);
    recorder a, b, first, second, late, gone;
    auto parked = [](recorder& r, std::uint64_t seq, steady::time_point deadline = steady::time_point::max()) {
        auto s = to(r, seq, deadline);
        s.wait_for_id = true;
        return s;
    };
    m.add(options(), to(a, 1), t0);
    m.add(options(), to(b, 2), t0);
    CHECK(next_write(m) == hex("04 00 0000 05 00000000 | 04 00 0001 05 00000000"));
    CHECK(next_write(m).empty());  // the write loop ends
    CHECK_FALSE(m.add(options(), parked(first, 3), t0));
    CHECK_FALSE(m.add(options(), parked(gone, 4), t0));
    CHECK_FALSE(m.add(options(), parked(late, 5, t0 + 1s), t0));
    CHECK_FALSE(m.add(options(), parked(second, 6), t0));
    CHECK(m.parked() == 4);
    CHECK(m.earliest_deadline() == t0 + 1s);  // a parked request's deadline arms the timer too
    CHECK(first.events.empty());
    CHECK_FALSE(m.take_write_start());

    m.cancel(4);  // cancelled while parked: told at once, never written
    REQUIRE(gone.events.size() == 1);
    CHECK(gone.events[0].ec == boost::asio::error::operation_aborted);
    CHECK_FALSE(gone.events[0].written);

    // The answer on id 1 frees it: the first parked request takes it, and the shell is told to write.
    REQUIRE_FALSE(feed(m, hex("84 00 0001 02 00000000")));
    REQUIRE(b.events.size() == 1);
    CHECK(m.parked() == 2);
    CHECK(m.take_write_start());
    CHECK_FALSE(m.take_write_start());  // once
    CHECK(next_write(m) == hex("04 00 0001 05 00000000"));
    next_write(m);

    m.expire(t0 + 1s);  // the one with a deadline times out where it waits, unsent
    REQUIRE(late.events.size() == 1);
    CHECK(late.events[0].ec == client_errc::request_timeout);
    CHECK_FALSE(late.events[0].written);
    CHECK(m.earliest_deadline() == steady::time_point::max());

    // A written request cancelled leaves an orphan, not a free id: the parked one still waits for the late answer.
    m.cancel(1);
    CHECK(m.parked() == 1);
    REQUIRE_FALSE(feed(m, hex("84 00 0000 02 00000000")));  // the late answer frees id 0
    CHECK(m.parked() == 0);
    CHECK(m.take_write_start());
    CHECK(next_write(m) == hex("04 00 0000 05 00000000"));
    REQUIRE_FALSE(feed(m, hex("84 00 0000 02 00000000 | 84 00 0001 02 00000000")));
    REQUIRE(first.events.size() == 1);
    CHECK(first.events[0].kind == 'f');
    REQUIRE(second.events.size() == 1);
    CHECK(second.events[0].kind == 'f');
    CHECK(m.in_flight() == 0);
}

TEST_CASE("multiplexer: parked requests leave unwritten when the connection drains or closes") {
    multiplexer m(1, 1 << 20);
    recorder a, drained, closed;
    auto parked = [](recorder& r, std::uint64_t seq) {
        auto s = to(r, seq);
        s.wait_for_id = true;
        return s;
    };
    m.add(options(), to(a, 1), t0);
    next_write(m);
    m.add(options(), parked(drained, 2), t0);
    m.refuse_new(client_errc::connection_draining);
    REQUIRE(drained.events.size() == 1);
    CHECK(drained.events[0].ec == client_errc::connection_draining);  // so the request moves to another node
    CHECK_FALSE(drained.events[0].written);

    multiplexer n(1, 1 << 20);
    n.add(options(), to(a, 1), t0);
    n.add(options(), parked(closed, 2), t0);
    n.fail_all();
    REQUIRE(closed.events.size() == 1);
    CHECK(closed.events[0].ec == client_errc::connection_closed_unsent);
    CHECK_FALSE(closed.events[0].written);
}

TEST_CASE("multiplexer: fail_all says which requests were written, and refuses every later one") {
    multiplexer m(32768, 1 << 20);
    recorder sent, queued, later;
    m.add(options(), to(sent, 1, t0 + 1s), t0);
    next_write(m);
    m.add(options(), to(queued), t0);
    m.fail_all();
    REQUIRE(sent.events.size() == 1);
    CHECK(sent.events[0].ec == client_errc::connection_closed_sent);
    CHECK(sent.events[0].written);
    REQUIRE(queued.events.size() == 1);
    CHECK(queued.events[0].ec == client_errc::connection_closed_unsent);
    CHECK_FALSE(queued.events[0].written);
    CHECK(m.earliest_deadline() == steady::time_point::max());
    CHECK_FALSE(m.add(options(), to(later), t0));
    CHECK(later.events.at(0).ec == client_errc::connection_closed_unsent);
    CHECK(next_write(m).empty());
    m.cancel(1);  // nothing left to cancel
    m.fail_all();  // once only
    CHECK(sent.events.size() == 1);
}

TEST_CASE("multiplexer: refuse_new turns new requests away while those in flight are answered") {
    multiplexer m(32768, 1 << 20);
    recorder a, b;
    m.add(options(), to(a), t0);
    next_write(m);
    m.refuse_new(client_errc::connection_draining);
    CHECK_FALSE(m.add(options(), to(b), t0));
    CHECK(b.events.at(0).ec == client_errc::connection_draining);
    REQUIRE_FALSE(feed(m, hex("84 00 0000 02 00000000")));
    CHECK(a.events.at(0).kind == 'f');
    CHECK(m.in_flight() == 0);
}

TEST_CASE("multiplexer: a large frame is referenced, not copied, behind its own header with the stream id") {
    multiplexer m(32768, 1 << 20);
    recorder a, b;
    m.add(options(), to(a), t0);
    auto big = std::make_shared<protocol::byte_buffer>(hex("04 00 0000 07 00005000"));  // QUERY, 20 KiB body
    big->resize(9 + 0x5000, 0x2a);
    m.add(big, to(b), t0);
    REQUIRE(m.prepare_write() == 2);
    const auto& bufs = m.write_buffers();
    REQUIRE(bufs.size() == 3);  // the small frame, the big one's header, its body
    const auto* h = static_cast<const std::uint8_t*>(bufs[1].data());
    CHECK(protocol::byte_buffer(h, h + 9) == hex("04 00 0001 07 00005000"));
    CHECK(bufs[2].data() == big->data() + 9);  // the caller's bytes, not a copy
    CHECK(bufs[2].size() == 0x5000);
    CHECK((*big)[3] == 0);  // and the caller's frame is left as it was
}

TEST_CASE("multiplexer: sinks are told of the write when they ask, before their answer") {
    multiplexer m(32768, 1 << 20);
    recorder a;
    m.add(options(), {.sink = &a, .notify_written = true}, t0);
    CHECK(a.events.empty());
    next_write(m);
    REQUIRE(a.events.size() == 1);
    CHECK(a.events[0].kind == 'w');
    REQUIRE_FALSE(feed(m, hex("84 00 0000 02 00000000")));
    CHECK(a.events.at(1).kind == 'f');
}

TEST_CASE("multiplexer: a sink may add a request from its answer; it joins the next write") {
    struct chaining final : request_sink {
        multiplexer* m;
        recorder next;
        bool started = false;
        void on_frame(const protocol::frame_header&, protocol::bytes_view) override { started = m->add(options(), to(next), t0); }
        void on_failure(error_code, bool) override {}
    };
    multiplexer m(32768, 1 << 20);
    chaining a;
    a.m = &m;
    m.add(options(), {.sink = &a}, t0);
    next_write(m);
    REQUIRE(m.prepare_write() == 0);  // the write loop ended
    REQUIRE_FALSE(feed(m, hex("84 00 0000 02 00000000")));
    CHECK(a.started);  // so the chained request starts a write
    CHECK(next_write(m) == hex("04 00 0000 05 00000000"));
}

TEST_CASE("multiplexer: events go to the unsolicited handler; an answer on a stream nothing was sent on is dropped") {
    multiplexer m(32768, 1 << 20);
    std::vector<std::int16_t> events;
    m.on_unsolicited([&](const protocol::frame_header& h, protocol::bytes_view) {
        events.push_back(h.stream);
        return error_code{};
    });
    REQUIRE_FALSE(feed(m, hex("84 00 ffff 02 00000000 | 84 00 0005 02 00000000")));
    CHECK(events == std::vector<std::int16_t>{-1});
    CHECK(m.in_flight() == 0);
    // A handler that cannot make sense of an event closes the connection.
    m.on_unsolicited([](const protocol::frame_header&, protocol::bytes_view) { return error_code(cqlcoro::protocol_errc::truncated_frame); });
    CHECK(feed(m, hex("84 00 ffff 02 00000000")) == cqlcoro::protocol_errc::truncated_frame);
}

TEST_CASE("multiplexer: what cannot be parsed is an error for the shell to close on") {
    multiplexer m(32768, 1 << 20);
    CHECK(feed(m, hex("84 00 0000 7f 00000000")));  // no such opcode
    multiplexer small(32768, 16);
    CHECK(feed(small, hex("84 00 0000 08 00000100")));  // larger than the frame limit
    multiplexer v2(32768, 1 << 20);
    CHECK(feed(v2, hex("82 00 00 02 00000000 00")));  // protocol v2
}

TEST_CASE("multiplexer: v5 writes requests in segments and reads answers from segments, a byte at a time") {
    for (bool lz4 : {false, true}) {
        multiplexer m(32768, 1 << 20);
        m.set_framing(lz4);
        CHECK(m.framing());
        recorder a, b;
        m.add(frame_of("05 00 0000 05 00000000"), to(a), t0);
        m.add(frame_of("05 00 0000 05 00000000"), to(b), t0);
        const auto written = next_write(m);
        // One self-contained segment holding both envelopes, their stream ids patched.
        protocol::segment_decoder dec(lz4);
        auto seg = dec.decode(written);
        REQUIRE(seg.has_value());
        REQUIRE(seg->has_value());
        CHECK((*seg)->self_contained);
        CHECK((*seg)->consumed == written.size());
        CHECK(protocol::byte_buffer((*seg)->payload.begin(), (*seg)->payload.end()) == hex("05 00 0000 05 00000000 | 05 00 0001 05 00000000"));

        const auto r1 = hex("85 00 0001 08 00000004 00000001"), r0 = hex("85 00 0000 02 00000000");
        std::vector<protocol::bytes_view> envelopes{r1, r0};
        protocol::byte_buffer answers;
        protocol::encode_envelopes(envelopes, lz4, answers);
        REQUIRE_FALSE(feed_byte_by_byte(m, answers));
        CHECK(b.events.at(0).body == hex("00000001"));
        CHECK(a.events.at(0).kind == 'f');
        // A segment whose CRC does not hold is an error.
        answers.back() ^= 1;
        CHECK(feed(m, answers));
    }
}

TEST_CASE("multiplexer: the read buffer grown for one large answer shrinks back once it is parsed") {
    multiplexer m(32768, 8 << 20);
    recorder a;
    m.add(options(), to(a), t0);
    next_write(m);
    auto answer = hex("84 00 0000 08 00200000");  // RESULT, 2 MiB (the sink decodes it, not the multiplexer)
    answer.resize(9 + (2 << 20), 0);
    for (std::size_t at = 0; at < answer.size();) {
        auto space = m.read_buffer();
        const auto n = std::min(space.size(), answer.size() - at);
        std::copy_n(answer.begin() + static_cast<std::ptrdiff_t>(at), n, space.begin());
        REQUIRE_FALSE(m.commit_read(n));
        at += n;
    }
    REQUIRE(a.events.size() == 1);
    CHECK(a.events[0].body.size() == std::size_t{2} << 20);
    CHECK(m.read_buffer_capacity() <= 64 * 1024);
}
