// The built-in request path without sockets, against fake node connections (as the Java driver's
// RequestHandlerTestHarness does): the test decides when each attempt is written and what each node
// answers, and from which thread. Retries, speculative scheduling and both kinds of losers, the budget,
// the deadline across retries and hedges, the write timestamp across attempts, and exactly-once
// completion when answers, hedges and cancellations race on several threads.
#include "cluster/metadata_access.hpp"
#include "connection/connection.hpp"
#include "policy/request_handler.hpp"
#include "protocol/server_side.hpp"
#include "session/session_impl.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

using namespace cqlcoro;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;

namespace {

// One node's connection as the request path sees it: every submit is recorded for the test to settle.
struct fake_node final : connection::request_target {
    struct submitted {
        protocol::byte_buffer frame;  // copied, as a connection copies small frames when it queues them
        connection::request_sink* sink = nullptr;
        bool notify_written = false;
        bool wait_for_id = false;
        connection::clock::time_point deadline = connection::clock::time_point::max();
        std::shared_ptr<std::atomic<bool>> cancel_asked = std::make_shared<std::atomic<bool>>(false);
    };
    mutable std::mutex m;
    std::condition_variable arrived;
    std::deque<submitted> queue;  // not yet settled by the test
    std::size_t total = 0;

    std::uint8_t version() const noexcept override { return 4; }
    protocol::compression frame_compression() const noexcept override { return protocol::compression::none; }
    connection::connection_state state() const noexcept override { return connection::connection_state::ready; }
    std::size_t in_flight() const noexcept override { return 0; }
    std::pair<error_code, std::string> failure() const override { return {client_errc::connection_closed_sent, "the fake node closed"}; }
    void submit(connection::shared_frame frame, connection::request_sink* sink, asio::cancellation_slot slot,
                connection::clock::time_point deadline, bool notify_written, bool wait_for_id) override {
        submitted s;
        s.frame.assign(frame->begin(), frame->end());
        s.sink = sink;
        s.notify_written = notify_written;
        s.wait_for_id = wait_for_id;
        s.deadline = deadline;
        // As a connection does: a cancellation is only noted here; the sink hears of it later, once.
        if (slot.is_connected()) slot.assign([flag = s.cancel_asked](asio::cancellation_type) { flag->store(true); });
        std::lock_guard lock(m);
        queue.push_back(std::move(s));
        ++total;
        arrived.notify_all();
    }
    std::size_t waiting() const {
        std::lock_guard lock(m);
        return queue.size();
    }
    submitted take() {
        std::unique_lock lock(m);
        if (!arrived.wait_for(lock, 10s, [&] { return !queue.empty(); })) throw std::runtime_error("no request reached the fake node");
        auto s = std::move(queue.front());
        queue.pop_front();
        return s;
    }
};

// An answer as a node sends it: the header and the body.
struct answer {
    protocol::frame_header header;
    protocol::byte_buffer bytes;
    protocol::bytes_view body() const { return protocol::bytes_view(bytes.data() + protocol::header_size, bytes.size() - protocol::header_size); }
};

answer make_answer(protocol::response r) {
    answer a;
    REQUIRE_FALSE(protocol::encode_response(4, 0, r, a.bytes));
    auto h = protocol::decode_header(protocol::bytes_view(a.bytes.data(), protocol::header_size));
    REQUIRE(h.has_value());
    a.header = *h;
    return a;
}
answer void_answer() { return make_answer({.body = protocol::result_response{protocol::void_result{}}}); }
answer error_answer(server_errc code, decltype(server_error_info::detail) detail = {}) {
    return make_answer({.body = protocol::error_response{static_cast<std::int32_t>(code), "fake", std::move(detail)}});
}

void reply(const fake_node::submitted& s, const answer& a) { s.sink->on_frame(a.header, a.body()); }

// The request's client timestamp, as the node would read it.
std::optional<std::int64_t> timestamp_of(const protocol::byte_buffer& frame) {
    auto h = protocol::decode_header(protocol::bytes_view(frame.data(), protocol::header_size));
    auto r = protocol::decode_request(*h, protocol::bytes_view(frame.data() + protocol::header_size, frame.size() - protocol::header_size));
    if (!r) return std::nullopt;
    if (const auto* q = std::get_if<protocol::query_request>(&r->message)) return q->params.default_timestamp;
    return std::nullopt;
}

struct harness {
    asio::io_context io;
    std::shared_ptr<detail::session_impl> impl;
    std::vector<std::unique_ptr<fake_node>> nodes;

    explicit harness(std::size_t n, session_params p = {}) {
        p.heartbeat_interval = 0ms;
        impl = std::make_shared<detail::session_impl>(io.get_executor());
        impl->params = std::move(p);
        impl->version = 4;
        impl->retries = std::make_unique<retry_budget>(impl->params.retry_budget);
        impl->lb = std::make_shared<default_load_balancing_policy>();
        impl->profiles = detail::resolve_profiles(impl->params, impl->params.profiles, impl->lb);
        auto v = std::make_shared<detail::routing_view>();
        v->profiles = impl->profiles;
        for (std::uint32_t i = 0; i < n; ++i) {
            auto info = std::make_shared<node>();
            info->endpoint = "10.0.0." + std::to_string(i + 1) + ":9042";
            info->datacenter = "dc1";
            detail::metadata_access::state(*info) = node_state::up;
            detail::metadata_access::distance(*info) = node_distance::local;
            nodes.push_back(std::make_unique<fake_node>());
            auto h = std::make_shared<detail::host_conns>();
            h->info = info;
            h->targets.push_back(nodes.back().get());
            v->hosts.push_back(h);
            v->nodes.push_back(info);
            v->local.push_back(i);
        }
        impl->view.store(v);
    }
    std::string name(std::size_t i) const { return nodes.size() > i ? "10.0.0." + std::to_string(i + 1) + ":9042" : ""; }

    // Starts `s`; the outcome lands in `out` when the io_context runs the handler.
    template <class Handler>
    void start(statement s, Handler h) {
        detail::launch_request(impl, request{std::move(s), {}, {}}, detail::erased_handler(std::move(h)));
    }
    // The node (index) that got the request's first attempt.
    std::size_t first_node() const {
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i]->waiting()) return i;
        throw std::runtime_error("no node has a request");
    }
    // Runs the io_context in short slices until a node not in `skip` has a submit waiting (a hedge
    // fired, a backoff ended): that node's index, or nodes.size() if none came within two seconds.
    std::size_t run_until_submit(std::initializer_list<std::size_t> skip = {}) {
        for (int i = 0; i < 1000; ++i) {
            for (std::size_t n = 0; n < nodes.size(); ++n)
                if (std::find(skip.begin(), skip.end(), n) == skip.end() && nodes[n]->waiting()) return n;
            io.run_for(2ms);
            io.restart();
        }
        return nodes.size();
    }
    // Runs whatever is ready now (completions staged by the answers the test gave).
    void poll() {
        io.restart();
        io.poll();
    }
};

struct outcome_box {
    std::optional<std::pair<error_code, result>> got;
    auto handler() {
        return [this](error_code ec, result r) { got.emplace(ec, std::move(r)); };
    }
};

const char* read_query = "SELECT v FROM ks.t WHERE k = 1";

}  // namespace

TEST_CASE("request handler: UNAVAILABLE moves to the next node; every attempt is recorded with its execution and times") {
    harness h(3);
    outcome_box box;
    h.start(statement(read_query), box.handler());
    const auto first = h.first_node();
    auto a = h.nodes[first]->take();
    reply(a, error_answer(server_errc::unavailable, unavailable_error{consistency::quorum, 2, 1}));
    std::size_t second = 0;
    while (second < 3 && !h.nodes[second]->waiting()) ++second;
    REQUIRE(second < 3);
    CHECK(second != first);
    auto b = h.nodes[second]->take();
    reply(b, void_answer());
    h.poll();
    REQUIRE(box.got);
    CHECK_FALSE(box.got->first);
    const auto& d = box.got->second.diagnostics();
    REQUIRE(d.attempts.size() == 2);
    CHECK(d.attempts[0].host == h.name(first));
    CHECK(d.attempts[0].decision == retry_action::retry_next_node);
    CHECK(d.attempts[0].outcome == request_outcome::rejected);
    CHECK(d.attempts[1].host == h.name(second));
    CHECK(d.attempts[1].decision == retry_action::completed);
    CHECK(d.attempts[1].outcome == request_outcome::succeeded);
    CHECK(d.attempts[0].end <= d.attempts[1].start);
    CHECK(d.retries == 1);
    // The retry carried the same client timestamp.
    REQUIRE(timestamp_of(a.frame));
    CHECK(timestamp_of(a.frame) == timestamp_of(b.frame));
}

TEST_CASE("request handler: the hedge waits for the write, goes to another node, wins; a written loser is cancelled and recorded") {
    session_params p;
    p.speculative_execution = std::make_shared<constant_speculative_execution>(5ms);
    harness h(2, p);
    outcome_box box;
    h.start(statement(read_query), box.handler());
    const auto first = h.first_node(), other = 1 - first;
    auto a = h.nodes[first]->take();
    CHECK(a.notify_written);
    // Not written yet: no hedge is armed (the delay counts from the write), so this returns at once.
    h.io.run();
    h.io.restart();
    CHECK(h.nodes[other]->waiting() == 0);
    a.sink->on_written();
    REQUIRE(h.run_until_submit({first}) == other);
    REQUIRE(h.nodes[other]->waiting() == 1);
    auto b = h.nodes[other]->take();
    CHECK(timestamp_of(a.frame) == timestamp_of(b.frame));  // one timestamp for every execution
    reply(b, void_answer());
    CHECK(a.cancel_asked->load());  // the winner cancels the loser at its connection
    h.poll();
    REQUIRE(box.got);
    CHECK_FALSE(box.got->first);
    const auto& d = box.got->second.diagnostics();
    CHECK(d.speculative_executions == 1);
    REQUIRE(d.attempts.size() == 2);
    CHECK(d.attempts[0].execution == 1);
    CHECK(d.attempts[0].decision == retry_action::completed);
    CHECK(d.attempts[1].execution == 0);
    CHECK(d.attempts[1].decision == retry_action::abandoned);
    CHECK(d.attempts[1].outcome == request_outcome::failed);  // written: a read, so nothing applied
    // The loser's connection settles it later, as a connection does; nothing more happens.
    a.sink->on_failure(asio::error::operation_aborted, true);
    h.poll();
    CHECK(h.impl->counts.speculative_wins.load() == 1);
}

TEST_CASE("request handler: a loser never written is cancelled before its write, and recorded as not sent") {
    session_params p;
    p.speculative_execution = std::make_shared<constant_speculative_execution>(1ms, 2);
    harness h(3, p);
    outcome_box box;
    h.start(statement(read_query), box.handler());
    const auto first = h.first_node();
    auto a = h.nodes[first]->take();
    a.sink->on_written();
    // The first hedge: written; the second: still queued when the first execution answers.
    const auto second = h.run_until_submit({first});
    REQUIRE(second < 3);
    auto b = h.nodes[second]->take();
    b.sink->on_written();
    const auto third = h.run_until_submit({first, second});
    REQUIRE(third < 3);
    auto c = h.nodes[third]->take();  // queued, never written
    reply(a, void_answer());
    CHECK(b.cancel_asked->load());
    CHECK(c.cancel_asked->load());
    b.sink->on_failure(asio::error::operation_aborted, true);
    c.sink->on_failure(asio::error::operation_aborted, false);
    h.poll();
    REQUIRE(box.got);
    const auto& d = box.got->second.diagnostics();
    CHECK(d.speculative_executions == 2);
    REQUIRE(d.attempts.size() == 3);
    CHECK(d.attempts[0].execution == 0);
    CHECK(d.attempts[0].decision == retry_action::completed);
    CHECK(d.attempts[1].outcome == request_outcome::failed);    // written
    CHECK(d.attempts[2].outcome == request_outcome::not_sent);  // queued only
}

TEST_CASE("request handler: with every node out of stream ids, the request waits at the first for a free one") {
    harness h(2);
    outcome_box box;
    h.start(statement(read_query), box.handler());
    const auto first = h.first_node();
    auto a = h.nodes[first]->take();
    CHECK_FALSE(a.wait_for_id);  // the plan is tried as usual first
    a.sink->on_failure(client_errc::too_many_requests, false);
    h.poll();
    REQUIRE(h.nodes[1 - first]->waiting() == 1);
    auto b = h.nodes[1 - first]->take();
    CHECK_FALSE(b.wait_for_id);
    b.sink->on_failure(client_errc::too_many_requests, false);
    h.poll();
    // The plan is spent: instead of no_host_available, the first saturated node again, told to wait.
    CHECK_FALSE(box.got);
    REQUIRE(h.nodes[first]->waiting() == 1);
    auto c = h.nodes[first]->take();
    CHECK(c.wait_for_id);
    reply(c, void_answer());
    h.poll();
    REQUIRE(box.got);
    CHECK_FALSE(box.got->first);
    const auto& d = box.got->second.diagnostics();
    REQUIRE(d.attempts.size() == 3);
    CHECK(d.attempts[0].outcome == request_outcome::not_sent);
    CHECK_THAT(d.attempts[0].message, ContainsSubstring("stream id"));
    CHECK(d.attempts[2].host == h.name(first));
    CHECK(d.attempts[2].outcome == request_outcome::succeeded);

    // No id came free before the deadline: a timeout that says so, and that it was not sent.
    outcome_box timed_out;
    session_params p;
    p.request_timeout = 30ms;
    harness g(1, p);
    g.start(statement(read_query), timed_out.handler());
    g.nodes[0]->take().sink->on_failure(client_errc::too_many_requests, false);
    g.poll();
    auto w = g.nodes[0]->take();
    REQUIRE(w.wait_for_id);
    while (connection::clock::now() < w.deadline) std::this_thread::yield();
    w.sink->on_failure(client_errc::request_timeout, false);  // as the connection does at the deadline
    g.poll();
    REQUIRE(timed_out.got);
    CHECK(timed_out.got->first == client_errc::request_timeout);
    CHECK(timed_out.got->second.diagnostics().outcome == request_outcome::not_sent);
    CHECK_THAT(timed_out.got->second.diagnostics().attempts.back().message, ContainsSubstring("stream ids in use"));
}

TEST_CASE("request handler: an attempt timeout before the write moves on for free; after it, the policy judges") {
    session_params p;
    p.attempt_timeout = 50ms;
    const char* append = "UPDATE ks.t SET l = l + [1] WHERE k = 1";  // not idempotent
    struct case_t {
        const char* query;
        bool written;
        bool moves;
        request_outcome outcome;
    };
    for (const auto& c : {case_t{read_query, false, true, request_outcome::not_sent}, case_t{append, false, true, request_outcome::not_sent},
                          case_t{read_query, true, true, request_outcome::failed}, case_t{append, true, false, request_outcome::maybe_applied}}) {
        INFO(c.query << (c.written ? ", written" : ", still queued"));
        harness h(2, p);
        outcome_box box;
        const auto before = connection::clock::now();
        h.start(statement(c.query), box.handler());
        const auto first = h.first_node();
        auto a = h.nodes[first]->take();
        CHECK(a.deadline <= connection::clock::now() + 50ms);  // the connection enforces the attempt's share
        CHECK(a.deadline >= before + 50ms);
        if (c.written) a.sink->on_written();
        a.sink->on_failure(client_errc::request_timeout, c.written);  // as the connection does at that deadline
        h.poll();
        if (c.moves) {
            REQUIRE(h.nodes[1 - first]->waiting() == 1);
            reply(h.nodes[1 - first]->take(), void_answer());
            h.poll();
        }
        REQUIRE(box.got);
        const auto& d = box.got->second.diagnostics();
        REQUIRE_FALSE(d.attempts.empty());
        CHECK(d.attempts[0].outcome == c.outcome);
        if (c.moves) {
            CHECK_FALSE(box.got->first);
            CHECK(d.attempts[0].decision == retry_action::retry_next_node);
            CHECK(d.retries == (c.written ? 1u : 0u));  // a never-written attempt is not a retry
            if (!c.written) CHECK_THAT(d.attempts[0].message, ContainsSubstring("not written within the attempt timeout of 50 ms"));
        } else {
            CHECK(box.got->first == client_errc::request_timeout);
            CHECK(d.outcome == request_outcome::maybe_applied);
            CHECK(h.nodes[1 - first]->total == 0);
        }
    }
}

TEST_CASE("request handler: a retry the budget denies fails the request with its error and outcome") {
    session_params p;
    p.retry_budget = {.ratio = 0, .min_per_second = 0};
    harness h(2, p);
    outcome_box box;
    h.start(statement(read_query), box.handler());
    auto a = h.nodes[h.first_node()]->take();
    reply(a, error_answer(server_errc::overloaded));
    h.poll();
    REQUIRE(box.got);
    CHECK(box.got->first == server_errc::overloaded);
    const auto& d = box.got->second.diagnostics();
    CHECK(d.outcome == request_outcome::failed);
    REQUIRE(d.attempts.size() == 1);
    CHECK_THAT(d.attempts[0].message, ContainsSubstring("retry budget is spent"));
    CHECK(h.impl->counts.budget_denials.load() == 1);
    CHECK(h.nodes[0]->total + h.nodes[1]->total == 1);
}

TEST_CASE("request handler: a retry whose backoff would end past the deadline is not started") {
    session_params p;
    p.request_timeout = 50ms;
    p.retry = std::make_shared<default_retry_policy>(retry_backoff{.base = 10s, .cap = 10s});
    harness h(2, p);
    std::size_t retried = 0, refused = 0;
    for (int i = 0; i < 20; ++i) {  // the backoff is jittered in [0, 10 s]: nearly always past 50 ms
        outcome_box box;
        h.start(statement(read_query), box.handler());
        auto a = h.nodes[h.first_node()]->take();
        reply(a, error_answer(server_errc::overloaded));
        h.poll();
        if (!box.got) {  // a short backoff: the retry waits on its timer
            ++retried;
            h.io.run_for(100ms);
            h.io.restart();
            for (auto& n : h.nodes)
                while (n->waiting()) n->take().sink->on_failure(client_errc::request_timeout, false);
            h.poll();
            continue;
        }
        ++refused;
        CHECK(box.got->first == server_errc::overloaded);
        CHECK_THAT(box.got->second.diagnostics().attempts.back().message, ContainsSubstring("deadline would pass first"));
    }
    CHECK(refused > 15);
}

TEST_CASE("request handler: a hedge that would start past the deadline is not armed") {
    session_params p;
    p.request_timeout = 20ms;
    p.speculative_execution = std::make_shared<constant_speculative_execution>(1s);
    harness h(2, p);
    outcome_box box;
    h.start(statement(read_query), box.handler());
    const auto first = h.first_node();
    auto a = h.nodes[first]->take();
    a.sink->on_written();
    h.io.run();  // returns at once: an armed hedge would hold it for a second, then reach the other node
    h.io.restart();
    CHECK(h.nodes[1 - first]->total == 0);
    reply(a, void_answer());
    h.poll();
    REQUIRE(box.got);
    CHECK_FALSE(box.got->first);
    CHECK(box.got->second.diagnostics().speculative_executions == 0);
}

TEST_CASE("request handler: every request completes exactly once when answers, hedges and cancellations race on several threads", "[threads]") {
    session_params p;
    p.speculative_execution = std::make_shared<constant_speculative_execution>(0ms, 2);
    p.retry_budget = {.ratio = 10, .min_per_second = 1'000'000};
    // A request whose every live execution waits at the slow node (retries ran the plan down to it)
    // ends at its deadline, which the slow node enforces as a connection does; that races too.
    p.request_timeout = 3s;
    harness h(3, p);
    constexpr int total = 2000;
    std::vector<std::atomic<int>> calls(total);
    std::atomic<int> completed{0};
    std::promise<void> all_done;
    std::vector<asio::cancellation_signal> signals(total);
    std::vector<asio::strand<asio::io_context::executor_type>> strands;
    for (int i = 0; i < total; ++i) strands.push_back(asio::make_strand(h.io));
    auto work = asio::make_work_guard(h.io);
    std::vector<std::thread> io_threads;
    for (int t = 0; t < 2; ++t) io_threads.emplace_back([&] { h.io.run(); });
    // One answering thread per node: each settles every submit exactly once (an answer, or the
    // cancellation it was asked for), writing first when asked, as a connection does.
    std::atomic<bool> stop{false};
    std::vector<std::thread> answerers;
    for (auto& n : h.nodes)
        answerers.emplace_back([&, node = n.get()] {
            const auto ok = void_answer();
            const auto unavailable = error_answer(server_errc::unavailable, unavailable_error{consistency::one, 1, 0});
            std::size_t k = 0;
            // Written requests wait here a little before their answer, so hedges and cancellations
            // come in between.
            std::deque<fake_node::submitted> held;
            auto settle = [&](fake_node::submitted& s) {
                if (s.cancel_asked->load()) s.sink->on_failure(asio::error::operation_aborted, true);
                else if (++k % 7 == 0) reply(s, unavailable);
                else reply(s, ok);
            };
            while (!stop.load()) {
                fake_node::submitted s;
                bool got = false;
                {
                    std::unique_lock lock(node->m);
                    if (node->arrived.wait_for(lock, 1ms, [&] { return !node->queue.empty(); })) {
                        s = std::move(node->queue.front());
                        node->queue.pop_front();
                        got = true;
                    }
                }
                if (!got) {
                    // Idle: the fast nodes answer everything held. The slow node only lets go of what
                    // was cancelled (losers and the application's cancellations) or is past its
                    // deadline, so however the threads are scheduled, its requests are still waiting
                    // when their hedges fire.
                    if (node != h.nodes[0].get()) {
                        for (auto& x : held) settle(x);
                        held.clear();
                    } else {
                        const auto now = connection::clock::now();
                        std::erase_if(held, [&](fake_node::submitted& x) {
                            if (x.cancel_asked->load()) settle(x);
                            else if (x.deadline <= now) x.sink->on_failure(client_errc::request_timeout, true);
                            else return false;
                            return true;
                        });
                    }
                    continue;
                }
                if (s.cancel_asked->load() && k % 2) {
                    s.sink->on_failure(asio::error::operation_aborted, false);  // dropped before its write
                    continue;
                }
                if (s.notify_written) s.sink->on_written();
                held.push_back(std::move(s));
                if (held.size() > (node == h.nodes[0].get() ? 512u : 64u)) {  // the first node is the slow one
                    settle(held.front());
                    held.pop_front();
                }
            }
            for (auto& x : held) settle(x);
        });
    for (int i = 0; i < total; ++i) {
        auto done = [&, i](error_code, result) {
            if (calls[i].fetch_add(1) == 0 && completed.fetch_add(1) + 1 == total) all_done.set_value();
        };
        asio::post(strands[i], [&, i, done] {
            h.start(statement(read_query), asio::bind_executor(strands[i], asio::bind_cancellation_slot(signals[i].slot(), done)));
        });
        // The application's cancellation, on the handler's executor, racing with the answers.
        if (i % 3 == 0) asio::post(strands[i], [&, i] { signals[i].emit(asio::cancellation_type::terminal); });
    }
    const bool in_time = all_done.get_future().wait_for(60s) == std::future_status::ready;
    stop = true;
    for (auto& t : answerers) t.join();
    // Losers still queued at a node are settled, as their connections would, so every request object
    // gets back every callback it is owed; then the io_context runs out of work by itself.
    for (auto& n : h.nodes)
        while (n->waiting()) n->take().sink->on_failure(asio::error::operation_aborted, false);
    work.reset();
    if (!in_time) h.io.stop();
    for (auto& t : io_threads) t.join();
    REQUIRE(in_time);
    CHECK(completed.load() == total);
    for (int i = 0; i < total; ++i) CHECK(calls[i].load() == 1);
    UNSCOPED_INFO("hedges " << h.impl->counts.speculative.load() << ", won " << h.impl->counts.speculative_wins.load() << ", denied "
                            << h.impl->counts.speculative_denials.load() << ", submits " << h.nodes[0]->total << "/" << h.nodes[1]->total
                            << "/" << h.nodes[2]->total << ", retries " << h.impl->counts.retries.load());
    CHECK(h.impl->counts.speculative.load() > 0);
    WARN("hedges " << h.impl->counts.speculative.load() << " (won " << h.impl->counts.speculative_wins.load() << ")");
}
