// execute_many() against three simulated nodes owning one replica each (RF 1): each key at the node
// that owns it, results in the caller's order, writes batched per replica set, one deadline, errors
// and outcomes per key, cancellation, and bad options.
#include <cqlcoro/session.hpp>

#include "sim.hpp"
#include "sim_session.hpp"
#include "test_coro.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch_test_macros.hpp>

#include <map>
#include <optional>

using namespace cqlcoro;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t port = 19172;
const std::string read_q = "SELECT v FROM ks.t WHERE k = ?";
const std::string write_q = "INSERT INTO ks.t (k, v) VALUES (?, ?)";

sim::cluster_config three_nodes() {
    return {.nodes = 3, .port = port, .tokens_per_node = 8,
            .keyspaces = {{"ks", {{"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "1"}}}}};
}

void prime(sim::cluster& c) {
    const auto int_ = cql_type::of(type_kind::int_);
    // Each node answers the read with its own number, so an answer tells where it was read.
    for (std::size_t n = 1; n <= 3; ++n)
        c.prime({.query = read_q, .node = n},
                sim::prime_then{.answer = sim::rows({sim::column("v", int_)}).row(static_cast<std::int32_t>(n)),
                                .markers = {{"ks", "t", "k", int_}},
                                .pk_indexes = {0}});
    c.prime({.query = write_q}, sim::prime_then{.answer = sim::void_answer{}, .markers = {{"ks", "t", "k", int_}, {"ks", "t", "v", int_}}, .pk_indexes = {0}});
}

session_params params_for(const sim::cluster& c) {
    auto p = cqlcoro::test::sim_session_params(c);
    p.health.enabled = false;
    return p;
}

// The node (1-based) that owns key k, as a single execute routes it.
asio::awaitable<std::map<std::int32_t, std::string>> owners(session& s, const prepared_statement& read, int keys) {
    std::map<std::int32_t, std::string> out;
    for (std::int32_t k = 0; k < keys; ++k) {
        auto r = co_await s.execute(read.bind(k));
        out[k] = r.coordinator();
    }
    co_return out;
}

}  // namespace

TEST_CASE("fan-out: reads go one per key to the key's replica, and come back in the caller's order") {
    sim::cluster c(three_nodes());
    prime(c);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        auto read = co_await s.prepare(read_q);
        const auto owner = co_await owners(s, read, 60);
        std::vector<bound_statement> v;
        for (std::int32_t k = 59; k >= 0; --k) v.push_back(read.bind(k));  // any order
        const auto out = co_await s.execute_many(std::move(v), {.concurrency = 16});
        REQUIRE(out.items.size() == 60);
        CHECK(out.ok());
        CHECK(out.requests == 60);
        CHECK(out.batches == 0);
        CHECK(out.replica_groups == 3);
        for (std::size_t i = 0; i < 60; ++i) {
            const auto k = static_cast<std::int32_t>(59 - i);
            const auto& item = out.items[i];
            REQUIRE_FALSE(item.ec);
            CHECK(item.value.coordinator() == owner.at(k));
            // The answer is the owner's own (node n answers n): the item is this key's.
            const auto n = item.value.one().get<std::int32_t>(0);
            CHECK(item.value.coordinator() == c.address(static_cast<std::size_t>(n)) + ":" + std::to_string(port));
        }
        co_await s.close(100ms);
    });
}

TEST_CASE("fan-out: writes sharing a replica set go as unlogged batches to that replica; a plain loop costs one request per key") {
    sim::cluster c(three_nodes());
    prime(c);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        auto read = co_await s.prepare(read_q);
        auto write = co_await s.prepare(write_q);
        const auto owner = co_await owners(s, read, 60);
        std::map<std::string, std::size_t> per_node;
        for (const auto& [k, n] : owner) ++per_node[n];
        std::vector<bound_statement> v;
        for (std::int32_t k = 0; k < 60; ++k) v.push_back(write.bind(k, k * 10));
        c.clear_requests();
        const auto out = co_await s.execute_many(std::move(v), {.batch_writes = true, .max_batch = 8});
        CHECK(out.ok());
        std::size_t expected_batches = 0, expected_requests = 0;
        for (const auto& [n, count] : per_node) {
            expected_requests += (count + 7) / 8;
            expected_batches += count / 8 + (count % 8 > 1 ? 1 : 0);  // a lone statement goes as itself
        }
        CHECK(out.requests == expected_requests);
        CHECK(out.batches == expected_batches);
        // Every key was written by the node that owns it.
        for (std::int32_t k = 0; k < 60; ++k) CHECK(out.items[static_cast<std::size_t>(k)].value.coordinator() == owner.at(k));
        std::size_t batches_seen = 0, executes_seen = 0;
        for (const auto& r : c.requests()) {
            batches_seen += r.op == protocol::opcode::batch ? 1 : 0;
            executes_seen += r.op == protocol::opcode::execute ? 1 : 0;
        }
        CHECK(batches_seen == out.batches);
        CHECK(batches_seen + executes_seen == out.requests);
        // Without batching: a request per key.
        std::vector<bound_statement> w;
        for (std::int32_t k = 0; k < 60; ++k) w.push_back(write.bind(k, k));
        const auto plain = co_await s.execute_many(std::move(w));
        CHECK(plain.requests == 60);
        CHECK(plain.batches == 0);
        co_await s.close(100ms);
    });
}

TEST_CASE("fan-out: each key's error and outcome; one deadline; cancellation; bad options") {
    sim::cluster c(three_nodes());
    prime(c);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, params_for(c));
        auto read = co_await s.prepare(read_q);
        const auto owner = co_await owners(s, read, 30);
        const auto node2 = c.address(2) + ":" + std::to_string(port);
        const auto node3 = c.address(3) + ":" + std::to_string(port);
        auto all_keys = [&] {
            std::vector<bound_statement> v;
            for (std::int32_t k = 0; k < 30; ++k) v.push_back(read.bind(k));
            return v;
        };
        // Node 2 refuses the read: its keys fail with the server's error (a read: failed), the others succeed.
        c.prime({.query = read_q, .node = 2},
                sim::prime_then{.answer = protocol::error_response{static_cast<std::int32_t>(server_errc::invalid), "primed refusal", {}}});
        auto out = co_await s.execute_many(all_keys());
        std::size_t on_2 = 0;
        for (std::int32_t k = 0; k < 30; ++k) {
            const auto& item = out.items[static_cast<std::size_t>(k)];
            if (owner.at(k) == node2) {
                ++on_2;
                CHECK(item.ec == server_errc::invalid);
                CHECK(item.value.diagnostics().outcome == request_outcome::failed);
            } else {
                CHECK_FALSE(item.ec);
            }
        }
        REQUIRE(on_2 > 0);
        CHECK(out.failed == on_2);
        c.clear_primes();
        // Node 3 swallows the read; one at a time with a deadline of 300 ms: the first key on node 3
        // times out, and the keys after it are never sent.
        c.prime({.query = read_q}, sim::prime_then{.answer = sim::one_int_row(), .markers = {{"ks", "t", "k", cql_type::of(type_kind::int_)}}, .pk_indexes = {0}});
        c.prime({.query = read_q, .node = 3}, sim::prime_then{.answer = sim::hang{}});
        out = co_await s.execute_many(all_keys(), {.concurrency = 1, .timeout = 300ms});
        std::size_t ok = 0, timed_out_sent = 0, not_sent = 0;
        for (const auto& item : out.items) {
            if (!item.ec) {
                ++ok;
                continue;
            }
            CHECK(item.ec == client_errc::request_timeout);
            if (item.value.diagnostics().outcome == request_outcome::not_sent) ++not_sent;
            else ++timed_out_sent;
        }
        CHECK(timed_out_sent == 1);
        CHECK(not_sent > 0);
        CHECK(ok + timed_out_sent + not_sent == 30);
        CHECK(out.requests == ok + timed_out_sent);
        // Cancelled while node 3's key hangs: that request ends aborted, the rest are not sent.
        asio::cancellation_signal stop;
        std::optional<fan_out_result> got;
        asio::co_spawn(ex, s.execute_many(all_keys(), {.concurrency = 1}, asio::bind_cancellation_slot(stop.slot(), asio::use_awaitable)),
                       [&](std::exception_ptr, fan_out_result r) { got = std::move(r); });
        co_await cqlcoro::test::yield_until([&] {
            for (const auto& r : c.requests())
                if (r.node == 3 && r.op == protocol::opcode::execute) return true;
            return false;
        });
        c.clear_requests();
        stop.emit(asio::cancellation_type::terminal);
        co_await cqlcoro::test::yield_until([&] { return got.has_value(); });
        std::size_t aborted = 0;
        for (const auto& item : got->items) aborted += item.ec == asio::error::operation_aborted ? 1 : 0;
        CHECK(aborted == got->failed);
        CHECK(aborted > 1);
        for (const auto& r : c.requests()) CHECK(r.op != protocol::opcode::execute);  // nothing sent after the cancellation
        // Bad options: said at once.
        auto [bad, none] = co_await s.execute_many(all_keys(), {.concurrency = 0}, asio::as_tuple(asio::use_awaitable));
        CHECK(bad == client_errc::invalid_configuration);
        co_await s.close(100ms);
    });
}
