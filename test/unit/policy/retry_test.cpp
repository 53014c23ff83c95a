// The retry policies' decision tables, row by row, and the outcome of each kind of failure.
#include <cqlcoro/retry_policy.hpp>

#include <boost/asio/error.hpp>

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using action = retry_decision::action;

namespace {

server_error_info read_timeout(std::int32_t received, std::int32_t block_for, bool data, consistency cl = consistency::local_quorum) {
    return {static_cast<std::int32_t>(server_errc::read_timeout), "timeout", read_timeout_error{cl, received, block_for, data}};
}
server_error_info write_timeout(std::string type, std::int32_t received = 0, std::int32_t block_for = 2,
                                consistency cl = consistency::local_quorum) {
    return {static_cast<std::int32_t>(server_errc::write_timeout), "timeout", write_timeout_error{cl, received, block_for, std::move(type), {}}};
}
server_error_info unavailable(std::int32_t alive, std::int32_t required = 3, consistency cl = consistency::quorum) {
    return {static_cast<std::int32_t>(server_errc::unavailable), "unavailable", unavailable_error{cl, required, alive}};
}
server_error_info plain(server_errc e) { return {static_cast<std::int32_t>(e), "x", {}}; }

retry_decision decide(const retry_policy& p, const server_error_info& e, bool idempotent, std::size_t retries = 0, bool writes = true) {
    failed_attempt f;
    f.ec = e.code_as_error();
    f.server = &e;
    f.outcome = classify_failure(f.ec, &e, true, writes);
    f.idempotent = idempotent;
    f.retries = retries;
    return p.new_state()->decide(f);
}

retry_decision decide_client(const retry_policy& p, error_code ec, bool idempotent, bool written = true) {
    failed_attempt f;
    f.ec = ec;
    f.outcome = classify_failure(ec, nullptr, written, true);
    f.idempotent = idempotent;
    return p.new_state()->decide(f);
}

}  // namespace

TEST_CASE("outcome: each failure says what it may have done to the data") {
    auto server = [](server_errc e, bool writes) { return classify_failure(make_error_code(e), nullptr, true, writes); };
    CHECK(server(server_errc::unavailable, true) == request_outcome::rejected);
    CHECK(server(server_errc::is_bootstrapping, true) == request_outcome::rejected);
    CHECK(server(server_errc::unprepared, true) == request_outcome::rejected);
    CHECK(server(server_errc::syntax_error, true) == request_outcome::failed);
    CHECK(server(server_errc::read_timeout, false) == request_outcome::failed);
    CHECK(server(server_errc::write_timeout, true) == request_outcome::maybe_applied);
    CHECK(server(server_errc::cas_write_unknown, true) == request_outcome::maybe_applied);
    CHECK(server(server_errc::write_failure, true) == request_outcome::maybe_applied);
    CHECK(server(server_errc::overloaded, true) == request_outcome::maybe_applied);
    CHECK(server(server_errc::overloaded, false) == request_outcome::failed);
    auto client = [](error_code ec, bool written) { return classify_failure(ec, nullptr, written, true); };
    CHECK(client(client_errc::connection_closed_unsent, false) == request_outcome::not_sent);
    CHECK(client(client_errc::too_many_requests, false) == request_outcome::not_sent);
    CHECK(client(client_errc::connection_closed_sent, true) == request_outcome::maybe_applied);
    CHECK(client(client_errc::request_timeout, true) == request_outcome::maybe_applied);   // a write never says "timed out" alone
    CHECK(client(client_errc::request_timeout, false) == request_outcome::not_sent);
    CHECK(client(boost::asio::error::operation_aborted, true) == request_outcome::maybe_applied);
    CHECK(client(client_errc::heartbeat_timeout, true) == request_outcome::maybe_applied);
    CHECK(classify_failure(client_errc::connection_closed_sent, nullptr, true, false) == request_outcome::failed);  // a read
    // The order is the order of doubt: a request's outcome is the worst of its attempts'.
    CHECK(request_outcome::not_sent < request_outcome::rejected);
    CHECK(request_outcome::rejected < request_outcome::failed);
    CHECK(request_outcome::failed < request_outcome::maybe_applied);
}

TEST_CASE("default retry policy: read timeouts retry the same node once, only when the data alone was missing") {
    const default_retry_policy p;
    CHECK(decide(p, read_timeout(2, 2, false), false).what == action::retry_same_node);  // idempotence does not matter for reads
    CHECK(decide(p, read_timeout(2, 2, false), true, 1).what == action::rethrow);       // once
    CHECK(decide(p, read_timeout(2, 2, true), true).what == action::rethrow);           // the data came: a digest mismatch
    CHECK(decide(p, read_timeout(1, 2, false), true).what == action::rethrow);          // too few replicas: the same again
}

TEST_CASE("default retry policy: write timeouts fail (maybe applied), but an idempotent batchlog write is retried once") {
    const default_retry_policy p;
    for (const auto* type : {"SIMPLE", "BATCH", "UNLOGGED_BATCH", "COUNTER", "CAS", "VIEW", "CDC"}) {
        INFO(type);
        CHECK(decide(p, write_timeout(type), true).what == action::rethrow);
    }
    CHECK(decide(p, write_timeout("BATCH_LOG"), true).what == action::retry_same_node);
    CHECK(decide(p, write_timeout("BATCH_LOG"), true, 1).what == action::rethrow);
    CHECK(decide(p, write_timeout("BATCH_LOG"), false).what == action::rethrow);  // not idempotent: never
}

TEST_CASE("default retry policy: unavailable tries the next node once; bootstrapping the next node") {
    const default_retry_policy p;
    CHECK(decide(p, unavailable(1), false) == retry_decision::next_node());
    CHECK(decide(p, unavailable(1), false, 1).what == action::rethrow);
    CHECK(decide(p, plain(server_errc::is_bootstrapping), false).what == action::retry_next_node);
}

TEST_CASE("default retry policy: overloaded and server errors go to the next node after a jittered backoff, idempotent only") {
    const default_retry_policy p({.base = std::chrono::milliseconds(10), .cap = std::chrono::milliseconds(50)});
    for (auto e : {server_errc::overloaded, server_errc::server_error, server_errc::truncate_error}) {
        for (std::size_t retries : {0u, 1u, 2u, 10u}) {
            auto d = decide(p, plain(e), true, retries);
            CHECK(d.what == action::retry_next_node);
            CHECK(d.delay >= std::chrono::milliseconds(0));
            CHECK(d.delay <= std::min(std::chrono::milliseconds(50), std::chrono::milliseconds(10 << retries)));
        }
        CHECK(decide(p, plain(e), false).what == action::rethrow);
    }
}

TEST_CASE("default retry policy: a connection lost after the write retries idempotent statements only; the rest fails") {
    const default_retry_policy p;
    CHECK(decide_client(p, client_errc::connection_closed_sent, true).what == action::retry_next_node);
    CHECK(decide_client(p, client_errc::heartbeat_timeout, true).what == action::retry_next_node);
    CHECK(decide_client(p, client_errc::request_timeout, true).what == action::retry_next_node);  // an attempt timeout
    CHECK(decide_client(p, client_errc::connection_closed_sent, false).what == action::rethrow);
    CHECK(decide_client(p, boost::asio::error::operation_aborted, true).what == action::rethrow);  // the application cancelled
    for (auto e : {server_errc::syntax_error, server_errc::invalid, server_errc::unauthorized, server_errc::read_failure,
                   server_errc::write_failure, server_errc::cas_write_unknown, server_errc::function_failure, server_errc::already_exists}) {
        CHECK(decide(p, plain(e), true).what == action::rethrow);
    }
}

TEST_CASE("fallthrough retry policy never retries") {
    const fallthrough_retry_policy p;
    CHECK(decide(p, read_timeout(2, 2, false), true).what == action::rethrow);
    CHECK(decide(p, unavailable(1), true).what == action::rethrow);
    CHECK(decide(p, plain(server_errc::overloaded), true).what == action::rethrow);
    CHECK(decide_client(p, client_errc::connection_closed_sent, true).what == action::rethrow);
}

TEST_CASE("downgrading retry policy: retries at the consistency the replicas can meet, and says so") {
    const downgrading_consistency_retry_policy p;
    CHECK(decide(p, read_timeout(1, 2, false), true) == retry_decision::same_node(consistency::one));
    CHECK(decide(p, read_timeout(2, 3, true), true) == retry_decision::same_node(consistency::two));
    CHECK(decide(p, read_timeout(0, 2, false), true).what == action::rethrow);
    CHECK(decide(p, read_timeout(1, 2, false, consistency::serial), true).what == action::rethrow);  // never below SERIAL
    CHECK(decide(p, read_timeout(2, 2, false), true) == retry_decision::same_node());
    CHECK(decide(p, unavailable(2), true) == retry_decision::same_node(consistency::two));
    CHECK(decide(p, unavailable(0), true).what == action::rethrow);
    CHECK(decide(p, unavailable(1, 2, consistency::local_serial), true).what == action::retry_next_node);
    CHECK(decide(p, write_timeout("SIMPLE", 1), true).what == action::ignore);  // reported as downgraded, not hidden
    CHECK(decide(p, write_timeout("SIMPLE", 0), true).what == action::rethrow);
    CHECK(decide(p, write_timeout("SIMPLE", 1), false).what == action::rethrow);
    CHECK(decide(p, write_timeout("UNLOGGED_BATCH", 1, 3), true) == retry_decision::same_node(consistency::one));
    CHECK(decide(p, write_timeout("BATCH_LOG"), true) == retry_decision::same_node());
    CHECK(decide(p, write_timeout("CAS", 1), true).what == action::rethrow);
    CHECK(decide(p, read_timeout(1, 2, false), true, 1).what == action::rethrow);  // once
}
