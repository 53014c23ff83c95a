// The built-in part of the chain, as the Java driver's CqlRequestHandler and scylla-rust-driver's
// execution layer cut it:
//   - a request: the deadline, the query plan cursor shared by its executions, the attempt log, and a
//     once-only completion;
//   - executions: the first, and speculative ones started by the speculative execution policy, each with
//     its own retry state;
//   - attempts: one node, one connection, one cancellation signal (the execution's, re-armed per attempt).
// The policies (load balancing, retry, speculative execution, the retry budget) are objects it consults;
// none of them adds a coroutine frame or an allocation on the happy path.
//
// Threads: the executions' callbacks come from their connections' strands, the timers' from the session's
// executor, cancellation from wherever the application emits it. A request is one critical section: each
// entry point takes its (recursive) mutex, uncontended unless executions race. The application's handler
// is never called with the mutex held: a completion is staged, and the outermost entry delivers it after
// unlocking. The object goes back to its session's recycler once the request has completed and every
// callback it is owed (connections, timers) has come, so a late loser never touches a reused request.
#include "policy/error_class.hpp"
#include "policy/request_handler.hpp"
#include "policy/recycler.hpp"

#include "policy/idempotence.hpp"
#include "policy/routing_key.hpp"
#include "cluster/column_reader.hpp"
#include "cluster/metadata_access.hpp"
#include "session/request_log.hpp"
#include "session/result_builder.hpp"
#include "session/stats.hpp"
#include "session/session_impl.hpp"

#include <cqlcoro/speculative_execution.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/container/small_vector.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <mutex>
#include "../namespaces.hpp"

namespace cqlcoro::detail {

using connection::clock;

namespace {

struct request_op;

// One execution: its attempts run one after another, each on one node.
struct execution final : connection::request_sink {
    request_op* op = nullptr;
    std::size_t index = 0;
    bool active = false;       // has an attempt at a connection, or a backoff pending
    bool at_connection = false;  // an attempt's callback is owed
    bool written = false;      // the current attempt's frame went to the socket (tracked when hedging)
    const host_conns* host = nullptr;
    connection::request_target* conn = nullptr;
    bool same_host = false;
    // Stream ids: the first node of the plan whose connection had none free, and whether this execution
    // now waits there for one (every node of the plan was saturated).
    const host_conns* saturated = nullptr;
    bool wait_for_id = false;
    std::size_t tries = 0;     // attempts that reached a node
    std::unique_ptr<retry_state> retry;
    std::unique_ptr<asio::steady_timer> backoff;
    asio::cancellation_signal signal;  // this attempt's cancellation at its connection
    protocol::byte_buffer own;         // this execution's frame, when the request's does not fit it
    std::uint8_t own_version = 0;      // own's version (0: none)
    bool downgraded = false;           // encodes at the consistency its retry policy chose
    protocol::byte_buffer* current = nullptr;  // the frame its attempts send: the request's, or own
    protocol::byte_buffer aux;         // a PREPARE sent again after UNPREPARED
    const prepared_data* repreparing_stmt = nullptr;  // the statement that PREPARE is for
    bool repreparing = false, reprepared = false;
    clock::time_point started{};
    // With middlewares after `retry`, each attempt runs through them as a coroutine; its innermost `next`
    // sends the request and waits here for the connection's answer.
    asio::any_completion_handler<void(outcome)> waiter;
    asio::any_io_executor waiter_ex;
    bool layer_written = false;  // the layered attempt's frame may have reached the node

    void reset(request_op* o, std::size_t i) {
        op = o;
        index = i;
        active = at_connection = written = same_host = wait_for_id = false;
        host = nullptr;
        saturated = nullptr;
        conn = nullptr;
        tries = 0;
        retry.reset();
        backoff.reset();
        own_version = 0;
        downgraded = repreparing = reprepared = layer_written = false;
        repreparing_stmt = nullptr;
        waiter = {};
    }

    void on_frame(const protocol::frame_header& h, protocol::bytes_view body) override;
    void on_failure(error_code ec, bool was_written) override;
    void on_written() override;
};

constexpr std::size_t max_executions = 4;  // the first and up to three speculative ones

struct request_op final : hedge_timer::entry, admission::waiter {
    std::shared_ptr<request_op> keep;  // set while running: the pool's reference, handed back at the end
    std::shared_ptr<session_impl> impl;
    std::shared_ptr<const routing_view> view;  // the hosts and connections this request may use
    const resolved_profile* prof = nullptr;    // its execution profile, in view->profiles
    std::optional<request> req;
    erased_handler handler;
    protocol::byte_buffer frame;  // encoded once, by the first attempt; never changed while in use
    std::uint8_t frame_version = 0;

    std::recursive_mutex mutex;
    int depth = 0;                // entry points on this thread's stack
    bool done = false;            // completed (staged or delivered)
    std::size_t owed = 0;         // callbacks still to come: connections, timers
    bool initiating = false;      // a completion during launch is posted, never run inline
    // The staged completion, delivered by the outermost entry point after unlocking.
    bool staged = false;
    erased_handler out_handler;
    error_code out_ec;
    std::optional<result> out_result;
    bool out_inline = false;

    asio::cancellation_slot user_slot;  // the application's: cleared on its executor, just before its handler runs
    std::uint64_t generation = 0;       // which use of this pooled object the application's slot handler is for
    bool cancelled = false;
    clock::time_point deadline;
    clock::time_point started_at;  // execute(), for the metrics' latency
    std::chrono::milliseconds timeout{0};
    query_plan plan;
    bool pinned = false;
    bool plan_ended = false;
    std::uint64_t cached_generation = 0;  // route()'s last lookup: the map (by generation, never by
    std::string cached_keyspace;          // address, which a new map may reuse), the keyspace, its table
    const token_map::replica_table* cached_table = nullptr;

    std::array<execution, max_executions> execs;
    std::size_t exec_count = 0;
    // Speculative execution: on for this request (idempotent, and the policy hedges); armed: this
    // request waits in the session's hedge timer (which then owes it a call of due()).
    bool hedging = false;
    bool hedge_armed = false;
    latency_histogram* first_latencies = nullptr;  // the prepared statement's, when recorded

    // Admission (policy/admission.hpp): the request holds one of the session's permits from its start
    // until its completion, and gives it back exactly once, in complete(). Before it starts it may wait:
    // for the rate limit (a timer to the reserved start) or in the queue (the gate owes an admitted()
    // call, unless withdraw() takes the request out; the timer then is its deadline).
    enum class admission_wait : std::uint8_t { none, rate, queue };
    admission_wait waiting = admission_wait::none;
    bool holds_permit = false;
    std::unique_ptr<asio::steady_timer> admission_timer;

    std::optional<std::int64_t> write_timestamp;  // fixed once, so every attempt carries the same
    error_code last_error;                         // the last retried failure, and its server error:
    std::optional<protocol::error_response> last_server;  // the request's error if the plan runs out

    // ---- entry points: each holds the mutex for its whole run
    struct entry {
        request_op& op;
        std::unique_lock<std::recursive_mutex> lock;
        explicit entry(request_op& o) : op(o), lock(o.mutex) { ++op.depth; }
        ~entry() { op.leave(lock); }
        entry(const entry&) = delete;
        entry& operator=(const entry&) = delete;
    };

    void leave(std::unique_lock<std::recursive_mutex>& lock) {
        if (--depth > 0) return;
        const bool deliver = staged;
        erased_handler h;
        error_code ec;
        std::optional<result> r;
        bool inline_ok = false;
        // The session stays with the object until it goes back to the session's recycler (callbacks of
        // a speculative execution that lost may still come after the application's handler ran).
        const bool finished = done && owed == 0 && keep;
        std::shared_ptr<session_impl> s;
        if (deliver) {
            staged = false;
            h = std::move(out_handler);
            ec = out_ec;
            r = std::move(out_result);
            out_result.reset();
            inline_ok = out_inline;
            s = finished ? std::move(impl) : impl;
        }
        const auto dl = deadline;
        std::shared_ptr<request_op> back;
        std::shared_ptr<session_impl> home;
        if (finished) {
            // Nothing is owed any more: timers go now (a pooled object must not outlive its io_context's
            // timers), the rest is reused.
            for (std::size_t i = 0; i < exec_count; ++i) {
                execs[i].backoff.reset();
                execs[i].retry.reset();
            }
            admission_timer.reset();
            back = std::move(keep);
            if (!deliver) home = std::move(impl);
        }
        lock.unlock();
        if (back) release(deliver ? *s : *home, std::move(back));  // first, so the handler's next request may reuse it warm
        if (deliver) {
            if (!ec && r->schema_change() && s->params.schema_agreement_timeout.count() > 0)
                return after_schema_change(std::move(s), std::move(h), std::move(*r), dl);
            h.complete(s->ex, inline_ok, ec, std::move(*r));
        }
    }

    // ---- start
    void begin(std::shared_ptr<session_impl> s, request r, erased_handler h) {
        entry e(*this);
        initiating = true;
        impl = std::move(s);
        view = impl->current();
        req.emplace(std::move(r));
        handler = std::move(h);
        frame_version = 0;
        done = staged = cancelled = pinned = plan_ended = false;
        owed = 0;
        exec_count = 0;
        hedge_armed = false;
        first_latencies = nullptr;
        prof = view->profiles->find(req->options().profile.view());
        const auto now = clock::now();
        started_at = now;
        impl->stats.started.fetch_add(1, std::memory_order_relaxed);
        if (!prof) [[unlikely]] {
            prof = &view->profiles->fallback;  // for what completing reads
            timeout = prof->timeout;
            deadline = now + timeout;
            refuse(client_errc::invalid_configuration, fmt::format("the statement names the execution profile \"{}\", which the session does not have (it has: {}): it was not sent",
                                                                   req->options().profile.view(), view->profiles->names()));
            initiating = false;
            return;
        }
        timeout = req->options().timeout.value_or(prof->timeout);
        deadline = req->deadline ? *req->deadline : now + timeout;
        impl->retries->deposit(now);
        last_error = {};
        last_server.reset();
        write_timestamp.reset();
        if (impl->params.client_timestamps && !req->options().timestamp) write_timestamp = impl->next_timestamp();
        plan.replicas.clear();
        plan.lwt = false;
        const auto cl = current_consistency();
        plan.local_consistency = cl == consistency::local_one || cl == consistency::local_quorum || cl == consistency::local_serial;
        plan.rotation = impl->plan_start();
        plan.stage = plan.pos = 0;
        if (const auto& hint = req->options().routing; hint && !hint->node.empty()) pin(hint->node);
        else {
            if (prof->token_aware && view->tokens) route();
            prof->lb->start(*view, plan);
        }
        hedging = false;
        if (prof->hedging && is_idempotent()) {
            const auto* bound = std::get_if<bound_statement>(&req->what);
            first_latencies = bound ? &bound->prepared().first_attempts : nullptr;
            hedging = prof->speculative->delay(1, first_latencies).has_value();
        }
        ++generation;
        user_slot = handler.cancellation_slot();
        // The slot may fire after the request completed, until the handler's executor clears it, and the
        // session's recycler may have let this object go by then: the slot holds it weakly.
        if (user_slot.is_connected())
            user_slot.assign([self = std::weak_ptr<request_op>(keep), g = generation](asio::cancellation_type t) {
                if (auto op = self.lock()) op->on_cancel(g, t);
            });
        if (impl->gate) {
            if (impl->gate->try_enter()) holds_permit = true;  // the usual case: a free permit, nobody waiting
            else if (!admit(now)) {
                initiating = false;
                return;
            }
        }
        start(now);
        initiating = false;  // (the staged completion, if any, was marked not inline)
    }

    // The first execution.
    void start(clock::time_point now) {
        auto& x = execs[exec_count++];
        x.reset(this, 0);
        x.started = now;
        attempt(x);
    }

    // ---- admission
    // True when the request may start now; otherwise it waits (or was refused, and is complete). Out of
    // line: the request path's usual case is try_enter().
    [[gnu::noinline]] bool admit(clock::time_point now) {
        auto& gate = *impl->gate;
        if (gate.rate_limited()) {
            const auto at = gate.reserve(now, deadline);
            if (!at) {
                refuse(client_errc::admission_rate_limited,
                       fmt::format("the rate limit of {}/s would start the request only after its deadline ({} ms from now): it was not sent",
                                   impl->params.admission.max_per_second,
                                   std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()));
                return false;
            }
            if (*at > now) {
                wait_admission(admission_wait::rate, *at);
                return false;
            }
        }
        return enter_gate();
    }

    bool enter_gate() {
        const auto now = clock::now();
        clock::duration expected{};
        switch (impl->gate->enter(*this, req->options().admission_class.value_or(prof->admission_class), now, deadline, &expected)) {
        case admission::verdict::admitted: holds_permit = true; return true;
        case admission::verdict::queued:
            ++owed;  // the gate's admitted()
            wait_admission(admission_wait::queue, deadline);
            return false;
        case admission::verdict::queue_full: {
            const auto m = impl->gate->metrics();
            refuse(client_errc::admission_queue_full,
                   fmt::format("{} requests run and {} wait for admission, the queue's limit (admission.max_queue {}): it was not sent",
                               m.running, m.waiting, impl->params.admission.max_queue));
            return false;
        }
        case admission::verdict::would_miss_deadline: {
            const auto m = impl->gate->metrics();
            refuse(client_errc::admission_deadline,
                   fmt::format("{} requests wait for admission ahead of it ({} running): at the rate permits came free lately it would "
                               "wait about {} ms, and it has {} ms left: it was not sent",
                               m.waiting, m.running, std::chrono::duration_cast<std::chrono::milliseconds>(expected).count(),
                               std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()));
            return false;
        }
        }
        return false;
    }

    void wait_admission(admission_wait kind, clock::time_point until) {
        waiting = kind;
        if (!admission_timer) admission_timer = std::make_unique<asio::steady_timer>(impl->ex);
        admission_timer->expires_at(until);
        ++owed;
        admission_timer->async_wait([this](error_code ec) {
            entry e(*this);
            --owed;
            on_admission_timer(ec);
        });
    }

    void on_admission_timer(error_code ec) {
        if (done) return;
        if (waiting == admission_wait::rate) {  // the reserved start (or a cancellation)
            waiting = admission_wait::none;
            if (cancelled) return refuse(asio::error::operation_aborted, "cancelled by the application while the rate limit held it");
            if (enter_gate()) start(clock::now());
            return;
        }
        if (waiting != admission_wait::queue || ec) return;  // admitted meanwhile, or cancelled
        if (!leave_queue()) return;  // the permit is on its way: on_admitted() follows
        impl->gate->count_timed_out();
        const auto m = impl->gate->metrics();
        refuse(client_errc::request_timeout, fmt::format("the deadline passed while the request waited for admission ({} running, {} waiting): "
                                                         "it was not sent",
                                                         m.running, m.waiting));
    }

    // Out of the gate's queue, if the request is still in it: then no admitted() will come.
    bool leave_queue() {
        if (!impl->gate->withdraw(*this)) return false;
        waiting = admission_wait::none;
        --owed;
        return true;
    }

    // From the gate, on whichever thread gave a permit back: the request continues on the session's executor.
    void admitted() override {
        asio::post(impl->ex, [this] { on_admitted(); });
    }

    void on_admitted() {
        entry e(*this);
        --owed;
        waiting = admission_wait::none;
        holds_permit = true;
        if (admission_timer) admission_timer->cancel();
        if (done) return;
        if (cancelled) return refuse(asio::error::operation_aborted, "cancelled by the application while it waited for admission");
        const auto now = clock::now();
        if (now >= deadline) return refuse(client_errc::request_timeout, "the deadline passed while the request waited for admission: it was not sent");
        start(now);
    }

    // The request ends before its first attempt: refused by admission, or given up while it waited.
    void refuse(error_code ec, std::string why) {
        req->diagnostics.attempts.push_back({"", ec, std::move(why), request_outcome::not_sent, retry_action::rethrow});
        finish(ec, nullptr);
    }

    // A statement for one node: the plan is that node, if it has connections, and nothing else.
    void pin(const std::string& endpoint) {
        pinned = true;
        const auto& v = *view;
        for (std::uint32_t i = 0; i < v.hosts.size(); ++i)
            if (v.hosts[i] && v.hosts[i]->name() == endpoint) {
                plan.replicas.push_back(i);
                return;
            }
        req->diagnostics.attempts.push_back({endpoint, client_errc::no_host_available,
                                             "the statement is pinned to " + endpoint + ", which the session has no connections to"});
    }

    // The replicas of the request's partition that are local and usable, in ring order.
    void route() {
        const auto& o = req->options();
        const bound_statement* bound = std::get_if<bound_statement>(&req->what);
        if (!bound)
            if (const auto* b = std::get_if<batch>(&req->what))  // a batch routes as its first bound statement
                for (const auto& e : b->entries())
                    if ((bound = std::get_if<bound_statement>(&e)) && !bound->prepared().pk_indexes.empty()) break;
        plan.lwt = is_lwt(bound);
        std::string_view keyspace;
        bytes_view key;
        policy::key_buffer composite;
        if (!policy::routing_key_of(o, bound, composite, key, keyspace)) return;
        if (keyspace.empty()) keyspace = o.keyspace.empty() ? std::string_view(impl->params.keyspace) : std::string_view(o.keyspace);
        // The keyspace's table, remembered by this (pooled) operation: a request usually routes in the
        // keyspace its predecessor did.
        if (view->tokens->generation() != cached_generation || keyspace != cached_keyspace) {
            cached_generation = view->tokens->generation();
            cached_keyspace.assign(keyspace);
            cached_table = view->tokens->table(keyspace);
        }
        const auto* table = cached_table;
        if (!table) return;
        for (auto i : view->tokens->replicas(*table, cluster::token_of(view->tokens->kind(), key))) {
            if (i >= view->hosts.size()) continue;
            if (std::find(view->local.begin(), view->local.end(), i) == view->local.end()) continue;
            plan.replicas.push_back(i);
        }
    }

    // A conditional statement, or one at a serial consistency (a Paxos read).
    bool is_lwt(const bound_statement* bound) const {
        const auto cl = current_consistency();
        if (cl == consistency::serial || cl == consistency::local_serial) return true;
        if (bound) return bound->prepared().conditional;
        if (const auto* s = std::get_if<statement>(&req->what)) return policy::is_conditional(s->query());
        return false;
    }

    // The next node of the shared plan: each node at most once per request, whichever execution asks.
    const host_conns* next_host() noexcept {
        if (plan_ended) return nullptr;
        std::uint32_t i = query_plan::end;
        if (pinned) i = plan.pos < plan.replicas.size() ? plan.replicas[plan.pos++] : query_plan::end;
        else i = prof->lb->next(*view, plan);
        if (i == query_plan::end || i >= view->hosts.size() || !view->hosts[i]) {
            plan_ended = true;
            return nullptr;
        }
        return view->hosts[i].get();
    }

    // ---- attempts
    void attempt(execution& x) {
        auto& d = req->diagnostics;
        if (impl->closing.load(std::memory_order_relaxed)) return fail(x, client_errc::session_closed, impl->closed_reason());
        const std::size_t recorded = d.attempts.size();
        for (;;) {
            const host_conns* h = x.same_host ? x.host : next_host();
            x.same_host = false;
            if (!h && x.saturated && !x.wait_for_id && x.index == 0) {
                // Every node the plan offered was out of stream ids (or down): rather than fail, wait at
                // the first saturated one for its first free id, within the deadline.
                h = x.saturated;
                x.wait_for_id = true;
            }
            if (!h) break;
            x.host = h;
            d.host = h->name();
            auto* c = h->pick_target();
            if (!c) {
                not_sent(x, client_errc::connection_closed_unsent, "no open connection to the host");
                continue;
            }
            if (cancelled) return fail(x, asio::error::operation_aborted, "cancelled by the application");
            if (!impl->attempt_layers.empty()) {
                x.conn = c;
                x.active = true;
                return run_layers(x);
            }
            protocol::byte_buffer* f = &frame;
            if (frame_version == 0 && !x.downgraded) {
                if (auto ec = encode(frame, *c)) return fail(x, ec, fmt::format("cannot encode the request: {}", ec.message()));
                frame_version = c->version();
            } else if (frame_version != c->version() || x.downgraded) {
                // Another version (a mixed cluster), or another consistency: this execution's own frame.
                if (x.own_version != c->version() || x.downgraded) {
                    if (auto ec = encode(x.own, *c)) return fail(x, ec, fmt::format("cannot encode the request: {}", ec.message()));
                    x.own_version = c->version();
                }
                f = &x.own;
            }
            x.conn = c;
            x.active = true;
            x.current = f;
            submit(x, *f);
            return;
        }
        // The plan has no node left for this execution.
        if (x.index > 0 && x.tries == 0 && d.attempts.size() == recorded) {
            x.active = false;  // a speculative execution that found no node: it never began
            return;
        }
        if (last_error) {
            // A retry found no other node: the execution fails with the error that asked for the retry.
            d.attempts.back().message += " (no other node to retry on)";
            d.host = d.attempts.back().host;
            return end_execution(x, last_error, last_server ? &*last_server : nullptr);
        }
        if (d.attempts.empty())
            d.attempts.push_back({d.host, client_errc::no_host_available,
                                  "no node is up in the query plan (local datacenter: " + impl->local_dc + ")"});
        end_execution(x, client_errc::no_host_available, nullptr);
    }

    error_code encode(protocol::byte_buffer& out, const connection::request_target& c) { return encode(out, c, req->what); }
    error_code encode(protocol::byte_buffer& out, const connection::request_target& c, const decltype(request::what)& what) {
        out.clear();
        auto ctx = impl->encoding(*prof);
        ctx.version = c.version();
        ctx.compression = c.frame_compression();
        ctx.default_timestamp = write_timestamp;
        return std::visit([&](const auto& s) { return session_detail::encode_statement(ctx, s, out); }, what);
    }

    // ---- attempts through the application's middlewares after `retry`
    // This attempt's node and connection are chosen; the middlewares see a copy of the request (its
    // attempts so far, this node in diagnostics.host, the attempt's deadline) and their outcome is the
    // attempt's answer. layered_attempt is one trip through them: the request they see, and what their
    // `next` needs; it lives until the trip's completion has run.
    struct layered_attempt {
        request q;
        std::shared_ptr<session_impl> s;
        request_op* op;
        execution* x;
    };

    void run_layers(execution& x) {
        auto a = std::make_shared<layered_attempt>(layered_attempt{request{req->what, req->diagnostics, attempt_until()}, impl, this, &x});
        ++owed;
        x.layer_written = false;
        auto work = layer_call(a.get(), 0, a->q);
        asio::co_spawn(impl->ex, std::move(work), [this, &x, a](std::exception_ptr e, outcome o) { after_layers(x, e, std::move(o)); });
    }

    // Middleware i, its `next` bound to middleware i + 1; the last one's `next` sends. Not a coroutine,
    // so a layer adds no frame beyond the middleware's own, and `next` (two words) allocates nothing.
    static asio::awaitable<outcome> layer_call(layered_attempt* a, std::size_t i, request& r) {
        const auto& layers = a->s->attempt_layers;
        if (i == layers.size()) return send_awaitable(a->op, a->x, r, a->s->ex);
        next_layer next = [a, i](request& q) { return layer_call(a, i + 1, q); };
        return layers[i](r, std::move(next));
    }

    // Not a coroutine: GCC 12 destroys a capturing lambda temporary inside a co_await expression twice.
    static asio::awaitable<outcome> send_awaitable(request_op* op, execution* x, request& q, asio::any_io_executor ex) {
        return asio::async_initiate<const asio::use_awaitable_t<>, void(outcome)>(
            [op, x, &q, ex](auto handler) { op->send_from_layers(*x, q, asio::any_completion_handler<void(outcome)>(std::move(handler)), ex); },
            asio::use_awaitable);
    }

    // The innermost `next` after `retry`: the request as the middlewares pass it, to this attempt's node.
    void send_from_layers(execution& x, request& q, asio::any_completion_handler<void(outcome)> h, asio::any_io_executor ex) {
        entry e(*this);
        if (done || x.waiter || x.at_connection) {
            const error_code ec = done ? error_code(asio::error::operation_aborted) : error_code(asio::error::operation_not_supported);
            diagnostics d;
            d.attempts.push_back({x.host ? x.host->name() : std::string(), ec,
                                  done ? "the request is over (another execution answered, or it was cancelled or timed out)"
                                       : "next was called again before its first call for this attempt returned"});
            asio::post(ex, [h = std::move(h), ec, d = std::move(d)]() mutable { std::move(h)(outcome{ec, result_builder::failed(std::move(d))}); });
            return;
        }
        x.waiter = std::move(h);
        x.waiter_ex = std::move(ex);
        if (cancelled) return answer_layers(x, asio::error::operation_aborted, "cancelled by the application");
        if (auto ec = encode(x.own, *x.conn, q.what)) return answer_layers(x, ec, fmt::format("cannot encode the request: {}", ec.message()));
        x.own_version = x.conn->version();
        x.current = &x.own;
        submit(x, x.own, q.deadline);
    }

    // Hands the layered attempt its answer (posted: the middlewares never run under the request's mutex).
    void resume_layers(execution& x, outcome o) {
        auto h = std::move(x.waiter);
        x.waiter = {};
        asio::post(x.waiter_ex, [h = std::move(h), o = std::move(o)]() mutable { std::move(h)(std::move(o)); });
    }
    void answer_layers(execution& x, error_code ec, std::string why, const protocol::error_response* server = nullptr) {
        diagnostics d;
        d.host = x.host ? x.host->name() : std::string();
        d.attempts.push_back({d.host, ec, std::move(why)});
        if (server) d.server = *server;
        resume_layers(x, outcome{ec, result_builder::failed(std::move(d))});
    }

    // An answer from the node, for the layered attempt: the result, or the error as an outcome. UNPREPARED
    // is handled here, below the middlewares, as it is for any attempt.
    void answer_layers(execution& x, const protocol::frame_header& h, protocol::bytes_view body) {
        x.layer_written = true;
        if (done) return answer_layers(x, asio::error::operation_aborted, "another execution answered first");
        auto f = std::make_shared<result_builder::owned_response>(h, body);
        if (f->failure) return answer_layers(x, f->failure, fmt::format("malformed answer: {}", f->failure.message()));
        if (auto* er = std::get_if<protocol::error_response>(&f->message.body)) {
            if (x.repreparing) {
                x.repreparing = false;
                return answer_layers(x, er->code_as_error(), "preparing again after UNPREPARED: " + er->message, er);
            }
            if (er->code == static_cast<std::int32_t>(server_errc::unprepared) && reprepare(x, *er)) return;
            return answer_layers(x, er->code_as_error(), er->message, er);
        }
        if (x.repreparing) {
            x.repreparing = false;
            took_reprepared(x, *f);
            return submit(x, *x.current);
        }
        if (!std::holds_alternative<protocol::result_response>(f->message.body))
            return answer_layers(x, protocol_errc::unexpected_opcode, "the answer is not a RESULT");
        const prepared_data* prepared = nullptr;
        if (const auto* b = std::get_if<bound_statement>(&req->what)) prepared = &b->prepared();
        diagnostics d;
        d.host = x.host->name();
        std::string_view malformed;
        auto r = result_builder::build(std::move(f), prepared, std::move(d), malformed);
        if (!malformed.empty()) return answer_layers(x, type_errc::bad_collection, error_message(type_errc::bad_collection, malformed));  // rows that do not match their metadata
        resume_layers(x, outcome{{}, std::move(r)});
    }

    // The middlewares returned the attempt's outcome: it goes where a connection's answer would.
    void after_layers(execution& x, std::exception_ptr e, outcome o) {
        entry en(*this);
        --owed;
        if (done) return;
        if (e) {
            std::string what = "a middleware after retry threw something that is not a std::exception";
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                what = fmt::format("a middleware after retry threw: {}", ex.what());
            } catch (...) {
            }
            return fail(x, asio::error::fault, std::move(what), x.layer_written);
        }
        if (!o.ec) return succeed(x, std::move(o.result));
        const auto& od = o.result.diagnostics();
        std::string text = od.attempts.empty() || od.attempts.back().message.empty() ? o.ec.message() : od.attempts.back().message;
        if (od.server && &o.ec.category() == &server_category()) {
            auto server = *od.server;
            return handle_failure(x, o.ec, &server, true, text.empty() ? server.message : std::move(text));
        }
        node_failed(x, o.ec, x.layer_written, std::move(text));
    }

    // Only a cancellable (or hedged) request pays for cancellation at the connection. An attempt timeout
    // shortens this attempt's deadline, not the request's.
    void submit(execution& x, protocol::byte_buffer& f, std::optional<clock::time_point> cap = {}) {
        const auto slot = user_slot.is_connected() || hedging || x.waiter ? x.signal.slot() : asio::cancellation_slot();
        auto until = attempt_until();
        if (cap) until = std::min(until, *cap);
        x.at_connection = true;
        x.written = false;
        ++owed;
        x.conn->submit(connection::shared_frame(keep, &f), &x, slot, until, hedging, x.wait_for_id);
    }

    clock::time_point attempt_until() const {
        if (const auto a = prof->attempt_timeout; a.count() > 0) return std::min(deadline, clock::now() + a);
        return deadline;
    }

    // A node that never got the request: recorded, and the next node is free to take it.
    void not_sent(execution& x, error_code ec, std::string why) {
        auto& a = req->diagnostics.attempts.emplace_back(attempt_info{x.host ? x.host->name() : std::string(), ec, std::move(why),
                                                                      request_outcome::not_sent, retry_action::retry_next_node});
        stamp(a, x);
        impl->counts.not_sent_moves.fetch_add(1, std::memory_order_relaxed);
    }

    void stamp(attempt_info& a, execution& x) {
        a.execution = x.index;
        a.start = x.started;
        a.end = clock::now();
        x.started = a.end;  // the next attempt of this execution starts now
        if (x.host)
            if (auto* st = metadata_access::stats_of(*x.host->info)) {
                // Latency of what the node answered, an ERROR included; the failures by kind.
                if (!a.ec || &a.ec.category() == &server_category()) st->latency.record(a.end - a.start);
                if (a.ec) st->errors.add(a.ec);
            }
        if (x.host && a.outcome != request_outcome::not_sent) prof->lb->on_attempt(*x.host->info, a.end - a.start, a.ec);
        if (impl->params.tracker) [[unlikely]] impl->params.tracker->on_attempt(*req, a);
    }

    // What the statement is, for the outcome and the retry policy (read from its text only on failure).
    bool is_read() const {
        if (const auto* b = std::get_if<bound_statement>(&req->what)) return b->prepared().is_read;
        if (const auto* s = std::get_if<statement>(&req->what)) return policy::is_read_statement(s->query());
        return false;
    }
    bool is_idempotent() const {
        if (const auto& flag = req->options().idempotent) return *flag;
        if (prof->idempotent) return *prof->idempotent;
        if (const auto* b = std::get_if<bound_statement>(&req->what)) return b->prepared().idempotent;
        if (const auto* s = std::get_if<statement>(&req->what)) return policy::infer_idempotence(s->query());
        const auto& b = std::get<batch>(req->what);
        if (b.kind() == batch_kind::counter) return false;
        return std::all_of(b.entries().begin(), b.entries().end(), [](const auto& e) {
            return std::visit([](const auto& s) -> bool {
                if (const auto& flag = s.options().idempotent) return *flag;
                if constexpr (std::is_same_v<std::decay_t<decltype(s)>, statement>) return policy::infer_idempotence(s.query());
                else return s.prepared().idempotent;
            }, e);
        });
    }
    consistency current_consistency() const { return req->options().cl.value_or(prof->cl); }

    // An attempt that reached a node (or may have) failed: the retry policy decides what comes next.
    void handle_failure(execution& x, error_code ec, protocol::error_response* server, bool was_written, std::string why) {
        auto& d = req->diagnostics;
        const auto outcome = classify_failure(ec, server, was_written, !is_read());
        auto& a = d.attempts.emplace_back(attempt_info{x.host ? x.host->name() : d.host, ec, std::move(why), outcome, retry_action::rethrow});
        stamp(a, x);
        ++x.tries;
        if (!x.retry) x.retry = prof->retry->new_state();
        failed_attempt f;
        f.ec = ec;
        f.server = server;
        f.outcome = outcome;
        f.idempotent = is_idempotent();
        f.cl = current_consistency();
        f.retries = d.retries;
        const auto decision = x.retry->decide(f);
        if (decision.what == retry_action::rethrow) return end_execution(x, ec, server);
        if (decision.what == retry_action::ignore) {
            a.decision = retry_action::ignore;
            impl->counts.ignored.fetch_add(1, std::memory_order_relaxed);
            return complete({}, result_builder::failed(std::move(d)));
        }
        const auto now = clock::now();
        if (x.tries >= prof->max_attempts) {
            impl->counts.attempts_exhausted.fetch_add(1, std::memory_order_relaxed);
            a.message += fmt::format(" (not retried: max_attempts {} reached)", prof->max_attempts);
            return end_execution(x, ec, server);
        }
        if (cancelled) return end_execution(x, ec, server);
        if (now + decision.delay >= deadline) {
            a.message += " (not retried: the request's deadline would pass first)";
            return end_execution(x, ec, server);
        }
        if (!impl->retries->try_withdraw(now)) {
            impl->counts.budget_denials.fetch_add(1, std::memory_order_relaxed);
            a.message += " (not retried: the session's retry budget is spent)";
            return end_execution(x, ec, server);
        }
        a.decision = decision.what;
        ++d.retries;
        count_retry(ec, was_written);
        if (x.host)
            if (auto* st = metadata_access::stats_of(*x.host->info)) st->retries.fetch_add(1, std::memory_order_relaxed);
        last_error = ec;
        if (server) last_server = std::move(*server);
        else last_server.reset();
        if (decision.cl && *decision.cl != current_consistency()) {
            std::visit([&](auto& st) { st.options().cl = *decision.cl; }, req->what);
            d.downgraded_to = *decision.cl;
            x.downgraded = true;  // encoded again, into its own frame, at the new consistency (and the same timestamp)
        }
        x.same_host = decision.what == retry_action::retry_same_node;
        if (decision.delay.count() <= 0) return attempt(x);
        x.backoff = std::make_unique<asio::steady_timer>(impl->ex, decision.delay);
        ++owed;
        x.backoff->async_wait([this, &x](error_code tec) {
            entry e(*this);
            --owed;
            if (done) return;
            if (tec || cancelled) return fail(x, asio::error::operation_aborted, "cancelled by the application during a retry's backoff");
            x.started = clock::now();
            attempt(x);
        });
    }

    void count_retry(error_code ec, bool was_written) {
        auto& c = impl->counts;
        c.retries.fetch_add(1, std::memory_order_relaxed);
        auto* which = ec == server_errc::read_timeout    ? &c.read_timeout
                      : ec == server_errc::write_timeout ? &c.write_timeout
                      : ec == server_errc::unavailable   ? &c.unavailable
                      : &ec.category() == &server_category() ? &c.overloaded
                      : was_written                      ? &c.connection_lost
                                                         : nullptr;
        if (which) which->fetch_add(1, std::memory_order_relaxed);
    }

    // Fails this execution at once with this attempt's error (no retry): `was_written` says whether the
    // node may have executed it.
    void fail(execution& x, error_code ec, std::string why, bool was_written = false) {
        const auto outcome = was_written ? classify_failure(ec, nullptr, true, !is_read()) : request_outcome::not_sent;
        auto& a = req->diagnostics.attempts.emplace_back(
            attempt_info{x.host ? x.host->name() : req->diagnostics.host, ec, std::move(why), outcome, retry_action::rethrow});
        stamp(a, x);
        // The application's cancellation and the deadline end the request, whatever else runs.
        if (ends_request(ec)) return finish(ec, nullptr);
        end_execution(x, ec, nullptr);
    }

    // An execution is over without an answer. The request fails when no other execution runs on.
    void end_execution(execution& x, error_code ec, protocol::error_response* server) {
        x.active = false;
        for (std::size_t i = 0; i < exec_count; ++i)
            if (execs[i].active) return;  // the request waits for the others
        finish(ec, server);
    }

    // Fails the request: the worst outcome of its attempts, the server's error if it was one.
    void finish(error_code ec, protocol::error_response* server) {
        if (done) return;
        auto& d = req->diagnostics;
        d.outcome = request_outcome::not_sent;
        for (const auto& a : d.attempts)
            if (a.outcome != request_outcome::succeeded) d.outcome = std::max(d.outcome, a.outcome);
        if (server) d.server = std::move(*server);
        impl->counts.failed_by_outcome[static_cast<std::size_t>(d.outcome)].fetch_add(1, std::memory_order_relaxed);
        complete(ec, result_builder::failed(std::move(d)));
    }

    // ---- callbacks
    void on_frame(execution& x, const protocol::frame_header& h, protocol::bytes_view body) {
        entry e(*this);
        --owed;
        x.at_connection = false;
        if (x.waiter) return answer_layers(x, h, body);
        if (done) return;  // a loser's answer: dropped
        auto& d = req->diagnostics;
        auto f = std::make_shared<result_builder::owned_response>(h, body);
        if (f->failure) return fail(x, f->failure, fmt::format("malformed answer: {}", f->failure.message()), true);
        if (x.repreparing) {
            x.repreparing = false;
            if (auto* er = std::get_if<protocol::error_response>(&f->message.body)) {
                auto& a = d.attempts.emplace_back(attempt_info{x.host->name(), er->code_as_error(), "preparing again after UNPREPARED: " + er->message,
                                                               request_outcome::rejected, retry_action::rethrow});
                stamp(a, x);
                return end_execution(x, er->code_as_error(), er);
            }
            took_reprepared(x, *f);
            return submit(x, *x.current);
        }
        if (auto* er = std::get_if<protocol::error_response>(&f->message.body)) {
            if (er->code == static_cast<std::int32_t>(server_errc::unprepared) && reprepare(x, *er)) return;
            const auto code = er->code_as_error();
            auto message = er->message;
            return handle_failure(x, code, er, true, std::move(message));
        }
        if (!std::holds_alternative<protocol::result_response>(f->message.body))
            return fail(x, protocol_errc::unexpected_opcode, "the answer is not a RESULT", true);
        const prepared_data* prepared = nullptr;
        if (const auto* b = std::get_if<bound_statement>(&req->what)) prepared = &b->prepared();
        record_answer(x);
        std::string_view malformed;
        auto r = result_builder::build(std::move(f), prepared, std::move(d), malformed);
        if (!malformed.empty()) return fail(x, type_errc::bad_collection, error_message(type_errc::bad_collection, malformed), true);  // rows that do not match their metadata
        complete({}, std::move(r));
    }

    // The layered attempt's answer, as its middlewares returned it.
    void succeed(execution& x, result r) {
        record_answer(x);
        result_builder::set_diagnostics(r, std::move(req->diagnostics));
        complete({}, std::move(r));
    }

    // The answer's attempt, and the executions it beat.
    void record_answer(execution& x) {
        auto& d = req->diagnostics;
        auto& a = d.attempts.emplace_back(attempt_info{x.host->name(), {}, {}, request_outcome::succeeded, retry_action::completed});
        stamp(a, x);
        d.host = a.host;
        const auto answered = a.end;  // `a` moves when the losers are recorded below
        // The first execution's first attempt, unhedged: what adaptive speculation learns from.
        if (first_latencies && x.index == 0 && exec_count == 1 && x.tries == 0) first_latencies->record(a.end - a.start);
        if (x.index > 0) impl->counts.speculative_wins.fetch_add(1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < exec_count; ++i) {  // the executions this answer beat
            const auto& o = execs[i];
            if (&o == &x || !o.at_connection) continue;
            auto& lost = d.attempts.emplace_back(attempt_info{o.host ? o.host->name() : std::string(), asio::error::operation_aborted,
                                                              "another execution answered first",
                                                              o.written ? (is_read() ? request_outcome::failed : request_outcome::maybe_applied)
                                                                        : request_outcome::not_sent,
                                                              retry_action::abandoned});
            lost.execution = o.index;
            lost.start = o.started;
            lost.end = answered;
        }
    }

    void on_failure(execution& x, error_code ec, bool was_written) {
        entry e(*this);
        --owed;
        x.at_connection = false;
        x.repreparing = false;
        if (x.waiter) {
            x.layer_written = x.layer_written || was_written;
            auto text = done ? std::string() : x.conn->failure().second;
            return answer_layers(x, ec, text.empty() ? ec.message() : std::move(text));
        }
        if (done) return;  // a loser, cancelled
        node_failed(x, ec, was_written, {});
    }

    // An attempt at a node failed before an answer (or its middlewares said so): `text` tells why.
    void node_failed(execution& x, error_code ec, bool was_written, std::string text) {
        if (impl->closing.load(std::memory_order_relaxed)) {
            if (ec == client_errc::connection_closed_sent)
                return fail(x, ec, impl->closed_reason() + " after the request was written: it may or may not have been executed", true);
            if (ec != asio::error::operation_aborted && ec != client_errc::request_timeout)
                return fail(x, client_errc::session_closed, impl->closed_reason() + " before the request was written: it was not executed");
        }
        if (never_sent(ec)) {
            if (ec == client_errc::too_many_requests && !x.saturated) x.saturated = x.host;
            not_sent(x, ec, ec == client_errc::too_many_requests ? "every stream id of its connections is in use" : ec.message());
            return attempt(x);  // not executed: the next host may take it
        }
        if (ec == asio::error::operation_aborted) return fail(x, ec, "cancelled by the application", was_written);
        if (ec == client_errc::request_timeout) {
            if (clock::now() >= deadline) {
                const auto why = x.wait_for_id && !was_written
                                     ? std::string("every node of the query plan had all its stream ids in use, and none came free before the deadline: it was not sent")
                                 : req->deadline ? std::string("the request's deadline passed before an answer came")
                                                 : fmt::format("no response within {} ms", timeout.count());
                return fail(x, ec, why, was_written);
            }
            // Only this attempt's time ran out (attempt_timeout). Still queued at its connection (a
            // congested or dying one): never executed, so the next node takes it, free, as for a
            // connection closed before the write. Written: a lost attempt, for the policy to judge.
            if (!was_written) {
                not_sent(x, ec, fmt::format("not written within the attempt timeout of {} ms", prof->attempt_timeout.count()));
                return attempt(x);
            }
            return handle_failure(x, ec, nullptr, was_written,
                                  fmt::format("no response within the attempt timeout of {} ms", prof->attempt_timeout.count()));
        }
        if (text.empty()) text = x.conn->failure().second;
        handle_failure(x, ec, nullptr, was_written, text.empty() ? ec.message() : std::move(text));
    }

    // The frame went out: the next speculative execution's delay counts from now.
    void on_written(execution& x) {
        entry e(*this);
        x.written = true;
        if (done || !hedging || hedge_armed || cancelled || x.index + 1 != exec_count || exec_count >= max_executions) return;
        const auto delay = prof->speculative->delay(exec_count, first_latencies);
        if (!delay || clock::now() + *delay >= deadline) return;
        hedge_armed = true;
        ++owed;
        impl->hedges.arm(*this, clock::now() + *delay);
    }

    // The session's hedge timer: this request's delay ran out.
    void due() override {
        entry e(*this);
        --owed;
        hedge_armed = false;
        if (done || cancelled) return;
        speculate();
    }

    // The hedge fired: the same request on the next node of the plan, if the budget allows.
    void speculate() {
        if (exec_count >= max_executions) return;
        const auto* h = next_host();
        if (!h) return;  // no node left to hedge on
        if (!impl->retries->try_withdraw(clock::now())) {
            impl->counts.speculative_denials.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        auto& x = execs[exec_count++];
        x.reset(this, exec_count - 1);
        x.host = h;
        x.same_host = true;  // its first attempt goes to the node just taken from the plan
        x.started = clock::now();
        ++req->diagnostics.speculative_executions;
        impl->counts.speculative.fetch_add(1, std::memory_order_relaxed);
        if (auto* st = metadata_access::stats_of(*h->info)) st->speculative.fetch_add(1, std::memory_order_relaxed);
        attempt(x);
    }

    void on_cancel(std::uint64_t g, asio::cancellation_type t) {
        entry e(*this);
        if (done || g != generation) return;  // too late: completed, or this object already serves another request
        cancelled = true;
        if (waiting == admission_wait::rate) {
            admission_timer->cancel();  // its callback ends the request
            return;
        }
        if (waiting == admission_wait::queue) {
            if (!leave_queue()) return;  // the permit is on its way: on_admitted() ends the request
            admission_timer->cancel();
            impl->gate->count_cancelled();
            return refuse(asio::error::operation_aborted, "cancelled by the application while it waited for admission");
        }
        // The connections answer with operation_aborted, and a cancelled backoff ends its execution;
        // with nothing in the air the request ends here.
        if (!stop_executions(t, false)) finish(asio::error::operation_aborted, nullptr);
    }

    // Stops the hedge timer and every execution: a queued or written attempt hears `t` at its
    // connection, a backoff is cancelled. `retire`: the executions end here (the request completed).
    // True when some callback is still to come.
    bool stop_executions(asio::cancellation_type t, bool retire) {
        if (hedge_armed && impl->hedges.cancel(*this)) {  // else due() is on its way, and finds the request over
            hedge_armed = false;
            --owed;
        }
        bool waiting = false;
        for (std::size_t i = 0; i < exec_count; ++i) {
            auto& x = execs[i];
            if (x.at_connection) {
                x.signal.emit(t);  // never written, or its answer dropped
                waiting = true;
            } else if (x.backoff && x.active) {
                x.backoff->cancel();
                waiting = true;
            }
            if (retire) x.active = false;
        }
        return waiting;
    }

    // UNPREPARED: the node lost the statement (it restarted, or never had it). PREPARE it there again
    // and send the request once more, on the same connection; the application sees nothing of it.
    bool reprepare(execution& x, const protocol::error_response& er) {
        if (x.reprepared || cancelled) return false;
        const auto* u = std::get_if<unprepared_error>(&er.detail);
        const auto* p = u ? prepared_with(u->id) : nullptr;
        if (!p) return false;
        x.aux.clear();
        auto ctx = impl->encoding();
        ctx.version = x.conn->version();
        ctx.compression = x.conn->frame_compression();
        if (session_detail::encode_prepare(ctx, p->query, "", x.aux)) return false;
        x.reprepared = x.repreparing = true;
        x.repreparing_stmt = p;
        submit(x, x.aux);
        return true;
    }

    // The answer to a PREPARE sent again: the node may describe the rows differently now (the table
    // changed, which is why it forgot the statement). Before v5 nothing else would tell us, and the
    // request, sent again with skip_metadata, would be read with the old columns.
    void took_reprepared(execution& x, const result_builder::owned_response& f) {
        const auto* res = std::get_if<protocol::result_response>(&f.message.body);
        const auto* p = res ? std::get_if<protocol::prepared_result>(&res->body) : nullptr;
        if (p && x.repreparing_stmt) x.repreparing_stmt->update_result(p->result_metadata_id, p->result.columns);
    }

    // The statement of the request that has this prepared id (a batch may hold several).
    const prepared_data* prepared_with(const std::vector<std::uint8_t>& id) const {
        if (const auto* b = std::get_if<bound_statement>(&req->what)) return b->prepared().id == id ? &b->prepared() : nullptr;
        if (const auto* b = std::get_if<batch>(&req->what))
            for (const auto& e : b->entries())
                if (const auto* s = std::get_if<bound_statement>(&e); s && s->prepared().id == id) return &s->prepared();
        return nullptr;
    }

    // ---- completion (under the mutex): stops the other executions and stages the handler's call
    void complete(error_code ec, result r) {
        if (done) return;
        done = true;
        const auto now = clock::now();
        if (holds_permit) {
            holds_permit = false;
            impl->gate->leave(now);  // the next waiter's admitted() only posts: nothing re-enters here
        }
        stop_executions(asio::cancellation_type::terminal, true);
        const auto took = now - started_at;
        impl->stats.requests.record(took);
        if (ec) [[unlikely]] impl->stats.errors.add(ec);
        if (impl->observing || (impl->warnings_logged && !r.warnings().empty())) [[unlikely]] observe(ec, r, took);
        // The application's slot is not cleared here, on a connection's strand: that would race with an
        // emit on the application's executor. erased_handler clears it there, just before the handler runs;
        // until then a late emit finds `done` (or another generation) and does nothing.
        user_slot = {};
        staged = true;
        out_handler = std::move(handler);
        out_ec = ec;
        out_result.emplace(std::move(r));
        out_inline = !initiating;
        view.reset();
        req.reset();
    }

    // The request tracker, the slow-request log and the server's warnings (out of line: off by default).
    [[gnu::noinline]] void observe(error_code ec, const result& r, clock::duration took) {
        const auto& p = impl->params;
        const auto& d = r.diagnostics();
        if (p.tracker) p.tracker->on_complete(*req, ec, d, took);
        const auto& slow = p.slow_requests;
        if (impl->logs(slow.level) && ((slow.threshold.count() > 0 && took > slow.threshold) || (ec && slow.log_failures))) {
            const auto text = ec ? describe_request_failure(ec, d) : std::string();
            impl->log(slow.level, describe_request(*req, ec, text, d, took, slow));
        }
        if (!ec && impl->warnings_logged)
            for (const auto& w : r.warnings()) impl->log(log_level::warn, describe_warning(*req, d.host, w, slow.max_query_length));
    }

    // A schema change through the session: the schema is read again and the nodes' agreement awaited
    // (within the request's deadline) before the application sees the result, as the Java driver does.
    static void after_schema_change(std::shared_ptr<session_impl> s, erased_handler h, result r, clock::time_point deadline);

    // The session's recycler (recycler.hpp). An object whose frame a connection still references (the
    // write that carried it has not completed yet, or it is queued behind a cancellation) stays there
    // until it is free.
    static recycler<request_op>& recycled(session_impl& s) { return *static_cast<recycler<request_op>*>(s.request_ops.get()); }
    static std::shared_ptr<request_op> take(session_impl& s) { return recycled(s).take(); }
    static void release(session_impl& s, std::shared_ptr<request_op> op) {
        // One with a frame grown by a large request is not kept: its memory goes back once the
        // connection lets go of the frame, instead of staying with the thread.
        constexpr std::size_t kept_frame = 256 * 1024;
        if (op->frame.capacity() > kept_frame) return;
        for (std::size_t i = 0; i < op->exec_count; ++i)
            if (op->execs[i].own.capacity() > kept_frame || op->execs[i].aux.capacity() > kept_frame) return;
        recycled(s).give(std::move(op));
    }
};

void execution::on_frame(const protocol::frame_header& h, protocol::bytes_view body) { op->on_frame(*this, h, body); }
void execution::on_failure(error_code ec, bool was_written) { op->on_failure(*this, ec, was_written); }
void execution::on_written() { op->on_written(*this); }

constexpr auto tuple_token = asio::as_tuple(asio::use_awaitable);

// The schema version `host` reports in its system.local, through the request path pinned to it.
// Not a coroutine: GCC 12 destroys a capturing lambda temporary inside a co_await expression twice.
auto read_schema_version(std::shared_ptr<session_impl> s, std::string host) {
    statement q("SELECT schema_version FROM system.local WHERE key='local'");
    q.node_endpoint(std::move(host));
    return asio::async_initiate<decltype(tuple_token), void(error_code, result)>(
        [s](auto handler, request r) { launch_request(s, std::move(r), erased_handler(std::move(handler))); }, tuple_token,
        request{std::move(q), {}, {}});
}

// The coordinator's schema version now, or none when it cannot be read.
asio::awaitable<std::optional<cqlcoro::uuid>> coordinator_version(std::shared_ptr<session_impl> s, std::string host) {
    auto read = read_schema_version(std::move(s), std::move(host));
    auto [ec, version] = co_await std::move(read);
    // By name: a server may answer more columns than were selected.
    if (ec || version.size() != 1) co_return std::nullopt;
    co_return cluster::column_reader(version).get<cqlcoro::uuid>(version.one(), "schema_version");
}

void request_op::after_schema_change(std::shared_ptr<session_impl> s, erased_handler h, result r, clock::time_point deadline) {
    auto handler = std::make_shared<erased_handler>(std::move(h));
    auto change = *r.schema_change();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    const auto wait = std::min(s->params.schema_agreement_timeout, std::max(left, std::chrono::milliseconds(0)));
    auto work = [](std::shared_ptr<session_impl> s, schema_change_info c, result r, std::chrono::milliseconds wait) -> asio::awaitable<result> {
        bool agreed = false;
        if (wait.count() > 0) {
            // The coordinator applied the change before it answered: its version is the one to agree
            // on. Without it the control node could see every node, itself included, still on the
            // old version (the change not yet pushed, its gossip not yet heard) and call that agreement.
            // Not readable there: agreement among the nodes alone.
            auto first = coordinator_version(s, r.coordinator());
            const auto expected = co_await std::move(first);
            // Concurrent changes move the coordinator's version on: it is read again when the nodes
            // agree on another one.
            control_connection::version_source again = [s, host = r.coordinator()] { return coordinator_version(s, host); };
            agreed = co_await s->control->wait_schema_agreement(wait, expected, std::move(again));
        }
        // A failed refresh: the control connection is being replaced, and the new one reads everything.
        protocol::schema_change changed{c.change_type, c.target, c.keyspace, c.name, c.arg_types};  // named: GCC 12
        auto refreshed = co_await s->control->refresh_schema_element(changed);
        if (!refreshed) s->log(log_level::debug, "schema refresh after a schema change: " + refreshed.error().message());
        result_builder::agreed(r, agreed);
        co_return r;
    };
    asio::co_spawn(s->strand, work(s, std::move(change), std::move(r), wait), [s, handler](std::exception_ptr, result out) {
        handler->complete(s->ex, false, {}, std::move(out));
    });
}

}  // namespace

std::shared_ptr<void> make_request_recycler() { return std::make_shared<recycler<request_op>>(); }

void launch_request(std::shared_ptr<session_impl> s, request r, erased_handler h) {
    auto op = request_op::take(*s);
    auto* raw = op.get();
    raw->keep = std::move(op);
    raw->begin(std::move(s), std::move(r), std::move(h));
}

}  // namespace cqlcoro::detail
