// libFuzzer target: the connection's multiplexer driven by a script of requests, cancellations,
// deadlines, writes and received bytes. Whatever the server sends, no request is lost or told twice:
// each is told exactly once, by the time the connection has closed.
//
// Input: byte 0: bit 0 v5 segments, bit 1 LZ4 segments, bits 2-3 v3/v4 body compression (none, LZ4,
// Snappy). Then operations, one byte each, the low two bits saying which, the other six an argument a:
//   0: the next a+1 bytes arrive from the server;
//   1: a request (a deadline a ms on when a != 0; asks to be told of its write when a is odd; may wait
//      for a stream id when bit 1 of a is set);
//   2: the request numbered a+1 is cancelled;
//   3: time moves to a ms (due deadlines expire), and the queued requests are written.
#include "connection/multiplexer.hpp"
#include "protocol/compression.hpp"
#include "protocol/responses.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

using namespace cqlcoro;
using connection::multiplexer;

namespace {

struct sink final : connection::request_sink {
    int told = 0;
    void on_frame(const protocol::frame_header& h, protocol::bytes_view body) override {
        (void)protocol::decode_response(h, body);
        tell();
    }
    void on_failure(error_code, bool) override { tell(); }
    void tell() {
        if (++told > 1) std::abort();  // told twice
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const bool v5 = (data[0] & 1) != 0;
    multiplexer m(16, 1 << 16);  // few stream ids, so that they run out
    if (v5) m.set_framing((data[0] & 2) != 0);
    const auto c = (data[0] >> 2) & 3;
    m.set_compression(c == 1 ? protocol::compression::lz4 : c == 2 ? protocol::compression::snappy : protocol::compression::none);
    m.on_unsolicited([](const protocol::frame_header& h, protocol::bytes_view body) { return decode_response(h, body).error(); });
    const auto frame = std::make_shared<const protocol::byte_buffer>(
        protocol::byte_buffer{static_cast<std::uint8_t>(v5 ? 5 : 4), 0, 0, 0, 0x05, 0, 0, 0, 0});  // OPTIONS
    const auto t0 = connection::clock::time_point{} + std::chrono::hours(1);
    auto now = t0;
    std::vector<std::unique_ptr<sink>> sinks;
    std::size_t at = 1;
    while (at < size) {
        const auto op = data[at] & 3;
        const auto a = static_cast<std::size_t>(data[at] >> 2);
        ++at;
        if (op == 0) {
            const auto n = std::min(a + 1, size - at);
            auto space = m.read_buffer();
            std::copy_n(data + at, n, space.begin());
            at += n;
            if (m.commit_read(n)) break;  // the shell closes the connection
        } else if (op == 1) {
            if (sinks.size() >= 64) continue;
            sinks.push_back(std::make_unique<sink>());
            m.note_submitted();
            const auto deadline = a == 0 ? connection::clock::time_point::max() : t0 + std::chrono::milliseconds(a);
            m.add(frame, {.sink = sinks.back().get(), .seq = sinks.size(), .deadline = deadline, .cancellable = true, .notify_written = (a & 1) != 0, .wait_for_id = (a & 2) != 0},
                  now);
        } else if (op == 2) {
            m.cancel(a + 1);
        } else {
            now = std::max(now, t0 + std::chrono::milliseconds(a));
            m.expire(now);
            while (m.prepare_write() > 0) {
            }
        }
    }
    m.fail_all();
    for (const auto& s : sinks)
        if (s->told != 1) std::abort();  // lost
    if (m.load() != 0) std::abort();
    return 0;
}
