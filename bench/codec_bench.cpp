// Codec micro-benchmarks: encoding the requests of the hot path and decoding a page of rows.
// Figures are reported per message (time) and as bytes per second of frame.
#include "protocol/requests.hpp"
#include "protocol/responses.hpp"
#include "protocol/server_side.hpp"

#include <benchmark/benchmark.h>

#include <array>
#include <cstring>

using namespace cqlcoro;
using namespace cqlcoro::protocol;

namespace {

void put_be32(byte_buffer& b, std::int32_t v) { writer(b).i32(v); }

void put_string(byte_buffer& b, std::string_view s) { writer(b).string(s); }

/// A RESULT body: 100 rows of (id uuid, name text, n bigint, ts timestamp, tags list<int>).
byte_buffer rows_body(int rows) {
    byte_buffer b;
    writer w(b);
    w.i32(2);                 // kind: rows
    w.i32(0x0001);            // global table spec
    w.i32(5);
    put_string(b, "ks");
    put_string(b, "users");
    const std::pair<const char*, std::uint16_t> cols[] = {{"id", 0x0C}, {"name", 0x0D}, {"n", 0x02}, {"ts", 0x0B}};
    for (auto [name, type] : cols) {
        put_string(b, name);
        w.u16(type);
    }
    put_string(b, "tags");
    w.u16(0x20);
    w.u16(0x09);
    w.i32(rows);
    for (int i = 0; i < rows; ++i) {
        std::array<std::uint8_t, 16> id{};
        std::memcpy(id.data(), &i, sizeof i);
        w.bytes(id);
        w.bytes(as_bytes("a user name of some length"));
        put_be32(b, 8);
        w.i64(i);
        put_be32(b, 8);
        w.i64(1700000000000 + i);
        put_be32(b, 4 + 3 * 8);  // list<int> of 3: [int] n, then 3 x ([int] 4, value)
        w.i32(3);
        for (int k = 0; k < 3; ++k) {
            w.i32(4);
            w.i32(k);
        }
    }
    return b;
}

void BM_encode_query(benchmark::State& state) {
    byte_buffer out;
    out.reserve(256);
    query_request q{"SELECT id, name, n FROM ks.users WHERE id = 42", {.cl = consistency::local_quorum, .page_size = 5000}};
    for (auto _ : state) {
        out.clear();
        auto ec = encode_request(4, q, {.stream = 17}, out);
        benchmark::DoNotOptimize(ec);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
    state.counters["frame_bytes"] = static_cast<double>(out.size());
}

void BM_encode_execute_10_values(benchmark::State& state) {
    const auto version = static_cast<std::uint8_t>(state.range(0));
    byte_buffer out;
    out.reserve(512);
    std::array<std::uint8_t, 16> id{};
    std::array<std::uint8_t, 8> bigint{};
    std::array<value_view, 10> values;
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = i % 2 ? value_view{bigint} : value_view{as_bytes("text value")};
    execute_request e{id, id, {.cl = consistency::local_quorum, .values = values, .skip_metadata = true}};
    for (auto _ : state) {
        out.clear();
        auto ec = encode_request(version, e, {.stream = 17}, out);
        benchmark::DoNotOptimize(ec);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
    state.counters["frame_bytes"] = static_cast<double>(out.size());
}

void BM_decode_rows_100(benchmark::State& state) {
    auto body = rows_body(100);
    frame_header h{4, true, 0, 17, opcode::result, static_cast<std::uint32_t>(body.size())};
    for (auto _ : state) {
        auto r = decode_response(h, body);
        benchmark::DoNotOptimize(r);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * (body.size() + header_size)));
    state.counters["frame_bytes"] = static_cast<double>(body.size() + header_size);
}

void BM_decode_query(benchmark::State& state) {
    byte_buffer frame;
    query_request q{"SELECT id, name, n FROM ks.users WHERE id = 42", {.cl = consistency::local_quorum, .page_size = 5000}};
    (void)encode_request(4, q, {.stream = 17}, frame);
    auto h = *decode_header(frame);
    bytes_view body = bytes_view(frame).subspan(header_size);
    for (auto _ : state) {
        auto r = decode_request(h, body);
        benchmark::DoNotOptimize(r);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame.size()));
}

void BM_decode_execute_10_values(benchmark::State& state) {
    byte_buffer frame;
    std::array<std::uint8_t, 16> id{};
    std::array<std::uint8_t, 8> bigint{};
    std::array<value_view, 10> values;
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = i % 2 ? value_view{bigint} : value_view{as_bytes("text value")};
    (void)encode_request(4, execute_request{id, {}, {.cl = consistency::local_quorum, .values = values}}, {.stream = 17}, frame);
    auto h = *decode_header(frame);
    bytes_view body = bytes_view(frame).subspan(header_size);
    for (auto _ : state) {
        auto r = decode_request(h, body);
        benchmark::DoNotOptimize(r);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame.size()));
}

void BM_encode_rows_100(benchmark::State& state) {
    auto body = rows_body(100);
    frame_header h{4, true, 0, 17, opcode::result, static_cast<std::uint32_t>(body.size())};
    auto decoded = *decode_response(h, body);
    byte_buffer out;
    out.reserve(body.size() + 64);
    for (auto _ : state) {
        out.clear();
        auto ec = encode_response(4, 17, decoded, out);
        benchmark::DoNotOptimize(ec);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

}  // namespace

BENCHMARK(BM_encode_query);
BENCHMARK(BM_decode_query);
BENCHMARK(BM_decode_execute_10_values);
BENCHMARK(BM_encode_rows_100);
BENCHMARK(BM_encode_execute_10_values)->Arg(4)->Arg(5);
BENCHMARK(BM_decode_rows_100);
BENCHMARK_MAIN();
