// The pool's state machine, event by event: what it asks its shell to do, and the state it is in.
#include "pool/pool_fsm.hpp"

#include <cqlcoro/error.hpp>

#include <boost/asio/error.hpp>

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using namespace cqlcoro::detail;
using change = pool_actions::node_change;
using ids = std::vector<std::uint64_t>;

namespace {

const error_code reset = boost::asio::error::connection_reset;

// A pool told to hold `n` connections, whose connects all succeeded (ids 1..n).
pool_fsm filled(std::size_t n) {
    pool_fsm p;
    const auto a = p.resume(pool_event::target(n));
    REQUIRE(a.connect == n);
    for (std::uint64_t id = 1; id <= n; ++id) p.resume(pool_event::connected(id));
    REQUIRE(p.status() == pool_status::ready);
    return p;
}

}  // namespace

TEST_CASE("pool: a target opens that many connects, and the first success marks the node up") {
    pool_fsm p;
    CHECK(p.status() == pool_status::idle);
    CHECK_FALSE(p.first_attempt_done());

    auto a = p.resume(pool_event::target(2));
    CHECK(a.connect == 2);
    CHECK(p.status() == pool_status::filling);
    CHECK(p.opening() == 2);

    a = p.resume(pool_event::connected(7));
    CHECK(a.node == change::up);
    CHECK(a.publish);
    CHECK(a.connect == 0);  // the other connect is still under way
    CHECK(p.first_attempt_done());
    CHECK(p.node() == pool_node_state::up);
    CHECK(p.status() == pool_status::filling);

    a = p.resume(pool_event::connected(8));
    CHECK(a.node == change::none);  // up already: told once
    CHECK(p.status() == pool_status::ready);
    CHECK(p.open() == ids{7, 8});
}

TEST_CASE("pool: a connect that completes when it is no longer wanted is aborted") {
    pool_fsm p;
    p.resume(pool_event::target(2));
    p.resume(pool_event::target(1));  // the distance changed while both connects ran
    p.resume(pool_event::connected(1));
    const auto a = p.resume(pool_event::connected(2));
    CHECK(a.abort == ids{2});
    CHECK(p.open() == ids{1});
    CHECK(p.status() == pool_status::ready);
}

TEST_CASE("pool: a failed connect with nothing open marks the node down and schedules a retry") {
    pool_fsm p;
    p.resume(pool_event::target(1));
    auto a = p.resume(pool_event::connect_failed(client_errc::connect_timeout, "127.0.0.1:9042: timed out"));
    CHECK(a.node == change::down);
    CHECK(a.publish);
    REQUIRE(a.retry_attempt);
    CHECK(*a.retry_attempt == 0);
    CHECK(p.status() == pool_status::backing_off);
    CHECK(p.first_attempt_done());
    CHECK(p.last_failure() == "127.0.0.1:9042: timed out");
    CHECK(p.last_error() == client_errc::connect_timeout);

    SECTION("each failure in a row asks for the next attempt's delay") {
        a = p.resume(pool_event::retry_due());
        CHECK(a.connect == 1);
        CHECK(p.status() == pool_status::filling);
        a = p.resume(pool_event::connect_failed(client_errc::connect_timeout, "again"));
        CHECK(a.node == change::none);  // down already
        REQUIRE(a.retry_attempt);
        CHECK(*a.retry_attempt == 1);
        p.resume(pool_event::retry_due());
        a = p.resume(pool_event::connected(3));
        CHECK(a.node == change::up);
        // The attempts start over after a success.
        a = p.resume(pool_event::closed(3, reset, "reset"));
        REQUIRE(a.retry_attempt);
        CHECK(*a.retry_attempt == 0);
    }
    SECTION("a down node waits for its retry when its target changes") {
        a = p.resume(pool_event::target(2));
        CHECK(a.connect == 0);
        CHECK(p.status() == pool_status::backing_off);
    }
    SECTION("the cluster saying it is up reconnects now, from the first delay") {
        a = p.resume(pool_event::cluster_up());
        CHECK(a.cancel_retry);
        CHECK(a.connect == 1);
        CHECK_FALSE(p.retry_armed());
        a = p.resume(pool_event::connect_failed(client_errc::connect_timeout, "still"));
        REQUIRE(a.retry_attempt);
        CHECK(*a.retry_attempt == 0);
    }
}

TEST_CASE("pool: a failed connect while others are open retries later, and the node stays up") {
    auto p = filled(2);
    auto a = p.resume(pool_event::closed(1));  // closed by the server, no failure: replaced at once
    CHECK(a.connect == 1);
    CHECK(a.publish);
    CHECK(a.node == change::none);
    a = p.resume(pool_event::connect_failed(client_errc::connect_timeout, "timed out"));
    CHECK(a.node == change::none);
    CHECK(a.abort.empty());
    REQUIRE(a.retry_attempt);
    CHECK(p.node() == pool_node_state::up);
    CHECK(p.open() == ids{2});
    a = p.resume(pool_event::retry_due());
    CHECK(a.connect == 1);
}

TEST_CASE("pool: a connection that fails marks the node down and aborts the others") {
    auto p = filled(3);
    auto a = p.resume(pool_event::closed(2, reset, "127.0.0.1:9042: connection reset by peer"));
    CHECK(a.node == change::down);
    CHECK(a.abort == ids{1, 3});
    CHECK(a.publish);
    CHECK(a.connect == 0);
    REQUIRE(a.retry_attempt);
    CHECK(p.open().empty());
    CHECK(p.last_failure() == "127.0.0.1:9042: connection reset by peer");

    // The aborted connections' own closes come back and change nothing.
    a = p.resume(pool_event::closed(1, reset, "aborted"));
    CHECK_FALSE(a.publish);
    CHECK(a.node == change::none);
    CHECK_FALSE(a.retry_attempt);
}

TEST_CASE("pool: a failure without a text is described by its code") {
    auto p = filled(1);
    p.resume(pool_event::closed(1, reset));
    CHECK(p.last_failure() == reset.message());
}

TEST_CASE("pool: a connection over its orphan budget is drained only once its replacement is up") {
    auto p = filled(2);
    auto a = p.resume(pool_event::over_budget(1));
    REQUIRE(a.replacing);
    CHECK(*a.replacing == 1);
    CHECK(a.connect == 1);  // one more than the target, for a while
    CHECK(a.drain.empty());
    CHECK(p.open() == ids{1, 2});

    a = p.resume(pool_event::over_budget(1));  // told twice: one replacement
    CHECK_FALSE(a.replacing);
    CHECK(a.connect == 0);

    a = p.resume(pool_event::connected(3));
    CHECK(a.drain == ids{1});
    CHECK(p.open() == ids{2, 3});
    CHECK(p.status() == pool_status::ready);

    a = p.resume(pool_event::closed(1));  // the drained one closes: nothing more to do
    CHECK_FALSE(a.publish);
    CHECK(a.connect == 0);
}

TEST_CASE("pool: the replaced connection closing first is not drained later") {
    auto p = filled(1);
    p.resume(pool_event::over_budget(1));
    auto a = p.resume(pool_event::closed(1));  // it closed before its replacement came up
    CHECK(a.connect == 0);  // the replacement under way is the one the target wants
    a = p.resume(pool_event::connected(2));
    CHECK(a.drain.empty());
    CHECK(p.open() == ids{2});
}

TEST_CASE("pool: the cluster's word on a node") {
    SECTION("down is ignored while connections answer") {
        auto p = filled(1);
        const auto a = p.resume(pool_event::cluster_down());
        CHECK(a.node == change::none);
        CHECK(p.node() == pool_node_state::up);
    }
    SECTION("down with nothing open or opening marks it down") {
        pool_fsm p;
        p.resume(pool_event::target(1));
        p.resume(pool_event::connected(1));
        p.resume(pool_event::closed(1));  // replaced: a connect is under way
        auto a = p.resume(pool_event::cluster_down());
        CHECK(a.node == change::none);  // still opening
        p.resume(pool_event::connect_failed(client_errc::connect_timeout, "x"));
        CHECK(p.node() == pool_node_state::down);
    }
    SECTION("an ignored node's state follows the cluster, quietly") {
        pool_fsm p;
        auto a = p.resume(pool_event::target(0));
        CHECK(a.connect == 0);
        CHECK(p.first_attempt_done());
        a = p.resume(pool_event::cluster_up());
        CHECK(a.node == change::up_quietly);
        CHECK(a.connect == 0);
        a = p.resume(pool_event::cluster_down());
        CHECK(a.node == change::down_quietly);
        CHECK_FALSE(a.retry_attempt);
    }
    SECTION("up for a node that is up changes nothing") {
        auto p = filled(1);
        const auto a = p.resume(pool_event::cluster_up());
        CHECK(a.connect == 0);
        CHECK_FALSE(a.cancel_retry);
    }
}

TEST_CASE("pool: a target of 0 aborts every connection and cancels the retry") {
    auto p = filled(2);
    p.resume(pool_event::closed(1, reset, "reset"));  // down, retry armed
    REQUIRE(p.retry_armed());
    auto a = p.resume(pool_event::target(0));
    CHECK(a.cancel_retry);
    CHECK(p.status() == pool_status::idle);

    auto q = filled(2);
    a = q.resume(pool_event::target(0));
    CHECK(a.abort == ids{1, 2});
    CHECK(q.open().empty());
    a = q.resume(pool_event::target(1));  // wanted again
    CHECK(a.connect == 1);
}

TEST_CASE("pool: removed, it drains everything and never opens again") {
    auto p = filled(2);
    p.resume(pool_event::closed(1));  // a replacement is opening
    auto a = p.resume(pool_event::remove());
    CHECK(a.drain == ids{2});
    CHECK(p.status() == pool_status::stopped);
    a = p.resume(pool_event::connected(3));
    CHECK(a.abort == ids{3});
    a = p.resume(pool_event::connect_failed(reset, "late"));
    CHECK_FALSE(a.retry_attempt);
    CHECK(a.node == change::none);
    a = p.resume(pool_event::target(4));
    CHECK(a.connect == 0);
    a = p.resume(pool_event::cluster_up());
    CHECK(a.connect == 0);
}

TEST_CASE("pool: stopped by the session, it cancels its retry and leaves the connections to the caller") {
    pool_fsm p;
    p.resume(pool_event::target(1));
    p.resume(pool_event::connect_failed(reset, "refused"));
    REQUIRE(p.retry_armed());
    auto a = p.resume(pool_event::stop());
    CHECK(a.cancel_retry);
    CHECK(a.abort.empty());
    CHECK(a.drain.empty());
    a = p.resume(pool_event::retry_due());  // a timer that fired before the cancel
    CHECK(a.connect == 0);

    auto q = filled(1);
    a = q.resume(pool_event::stop());
    CHECK(a.drain.empty());
    a = q.resume(pool_event::closed(1, reset, "closed by close()"));
    CHECK(a.node == change::none);  // a closing session does not mark nodes down
    CHECK_FALSE(a.retry_attempt);
}
