// A node's pool on its own, without a session: the shell around pool_fsm, with a listener that records
// what it is told, against a simulated node that stops, starts and drops connections.
#include "sim.hpp"

#include "pool/node_pool.hpp"

#include <boost/asio/strand.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>

#include <fmt/format.h>

using namespace cqlcoro;
using namespace cqlcoro::detail;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t port = 19122;

struct recording_listener : pool_listener {
    std::uint16_t port_ = port;
    std::size_t changed = 0, progress = 0, ups = 0, first_ups = 0, downs = 0, replacing = 0;
    std::vector<std::size_t> attempts;  // each retry delay asked for

    connection::connection_params pool_connection_params(const node& n) const override {
        connection::connection_params c;
        c.host = n.address.to_string();
        c.port = port_;
        c.heartbeat_interval = 0ms;
        return c;
    }
    std::chrono::milliseconds pool_retry_delay(std::size_t attempt) override {
        attempts.push_back(attempt);
        return 5ms;
    }
    void pool_changed(node_pool&) override { ++changed; }
    void pool_progress(node_pool&) override { ++progress; }
    void pool_node_up(node_pool&, bool first) override {
        ++ups;
        first_ups += first ? 1 : 0;
    }
    void pool_node_down(node_pool&) override { ++downs; }
    void pool_replacing(node_pool&, const connection::connection&) override { ++replacing; }
};

std::shared_ptr<node> node_at(const std::string& address) {
    auto n = std::make_shared<node>();
    n->address = asio::ip::make_address(address);
    n->port = port;
    n->endpoint = address + ":" + std::to_string(port);
    return n;
}

struct pool_under_test {
    std::shared_ptr<recording_listener> listener;
    std::shared_ptr<node> info;
    std::shared_ptr<node_pool> pool;
};

// A pool for a node at `address`, told nothing yet.
pool_under_test pool_for(asio::any_io_executor ex, const std::string& address) {
    auto l = std::make_shared<recording_listener>();
    auto n = node_at(address);
    auto p = std::make_shared<node_pool>(asio::make_strand(ex), n, l, 1s);
    return {l, n, p};
}

std::string describe(const node_pool& p, const recording_listener& l, const sim::cluster& c) {
    return fmt::format("open {}, opening {}, node state {}, retry armed {}, ups {}, downs {}, server connections {}",
                       p.state().open().size(), p.state().opening(), static_cast<int>(p.state().node()), p.state().retry_armed(), l.ups,
                       l.downs, c.connection_count(1));
}

}  // namespace

TEST_CASE("node pool: fills to its target, follows its node down and up, and drains when removed") {
    sim::cluster c({.nodes = 1, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [l, info, p] = pool_for(ex, c.address(1));
        auto state = [&, l = l, p = p] { return describe(*p, *l, c); };

        p->set_target(2);
        co_await cqlcoro::test::yield_until([&] { return p->connections().size() == 2; }, state);
        CHECK(l->ups == 1);
        CHECK(l->first_ups == 1);
        CHECK(info->state() == node_state::up);
        CHECK(info->open_connections() == 2);
        CHECK(l->progress == 2);
        CHECK(c.connection_count(1) == 2);
        CHECK(p->state().status() == pool_status::ready);

        // The node goes away: its connections fail, the node is down, reconnection backs off.
        c.stop(1);
        co_await cqlcoro::test::yield_until([&] { return l->downs == 1; }, state);
        CHECK(info->state() == node_state::down);
        CHECK(p->connections().empty());
        CHECK(info->open_connections() == 0);
        co_await cqlcoro::test::yield_until([&] { return l->attempts.size() >= 2; }, state);  // retries fail while it is away
        CHECK(l->attempts[0] == 0);
        CHECK(l->attempts[1] == 1);

        // It comes back: the next retry finds it.
        c.start(1);
        co_await cqlcoro::test::yield_until([&] { return p->connections().size() == 2; }, state);
        CHECK(l->ups == 2);
        CHECK(l->first_ups == 1);  // known before
        CHECK(info->state() == node_state::up);

        // Removed from the cluster: its connections close and nothing reopens.
        const auto before = p->connections();
        p->remove();
        co_await cqlcoro::test::yield_until([&] { return c.connection_count(1) == 0; }, state);
        CHECK(p->connections().empty());
        CHECK(p->state().status() == pool_status::stopped);
        for (const auto& conn : before) CHECK(conn->state() == connection::connection_state::closed);
        CHECK(l->downs == 1);  // removed is not down
    });
}

TEST_CASE("node pool: a node that is not there is down after the first connect, and says why") {
    sim::cluster c({.nodes = 1, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [l, info, p] = pool_for(ex, "127.0.0.9");  // nothing listens there
        p->set_target(1);
        co_await cqlcoro::test::yield_until([&] { return p->state().first_attempt_done(); }, [&] { return describe(*p, *l, c); });
        CHECK(l->downs == 1);
        CHECK(info->state() == node_state::down);
        CHECK(p->state().status() == pool_status::backing_off);
        CHECK(p->state().last_failure().find("127.0.0.9") != std::string::npos);
        CHECK(p->state().last_error());
        auto left = p->stop();
        CHECK(left.empty());
        CHECK(p->state().status() == pool_status::stopped);
    });
}

TEST_CASE("node pool: follows its target, and a dropped connection brings the node back by the next retry") {
    sim::cluster c({.nodes = 1, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto [l, info, p] = pool_for(ex, c.address(1));
        auto state = [&, l = l, p = p] { return describe(*p, *l, c); };
        p->set_target(2);
        co_await cqlcoro::test::yield_until([&] { return p->connections().size() == 2; }, state);

        // Ignored by the load-balancing policy: no connection at all.
        p->set_target(0);
        CHECK(p->connections().empty());
        CHECK(p->state().status() == pool_status::idle);
        co_await cqlcoro::test::yield_until([&] { return c.connection_count(1) == 0; }, state);
        CHECK(l->downs == 0);

        p->set_target(1);
        co_await cqlcoro::test::yield_until([&] { return p->connections().size() == 1; }, state);
        const auto first = p->connections().front();

        // The server drops it: end of stream is a node failure (down now), and the retry finds it again.
        c.drop_connections(1);
        co_await cqlcoro::test::yield_until([&] { return l->downs == 1; }, state);
        co_await cqlcoro::test::yield_until([&] { return p->connections().size() == 1; }, state);
        CHECK(p->connections().front() != first);
        CHECK(first->state() == connection::connection_state::closed);
        CHECK(info->state() == node_state::up);
        CHECK(l->attempts == std::vector<std::size_t>{0});

        for (auto& conn : p->stop()) conn->abort();
        co_await cqlcoro::test::yield_until([&] { return c.connection_count(1) == 0; }, state);
    });
}
