#include <cqlcoro/session.hpp>

#include "session/result_builder.hpp"
#include "session/session_impl.hpp"
#include "session/config_keys.hpp"
#include "cluster/metadata_access.hpp"

#include "policy/request_handler.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/container/small_vector.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <random>
#include "../namespaces.hpp"

namespace cqlcoro {

using connection::clock;
using detail::erased_handler;

namespace detail {

result failed_result(diagnostics d) {
    return result_builder::failed(std::move(d));
}

fallible<result> result_from_frame(const connection::response_frame& f) {
    auto owned = std::make_shared<result_builder::owned_response>(f.header, protocol::bytes_view(f.body.data(), f.body.size()));
    if (owned->failure) return failure{owned->failure, "malformed answer: " + owned->failure.message()};
    if (!std::holds_alternative<protocol::result_response>(owned->message.body))
        return failure{protocol_errc::unexpected_opcode, "the answer is not a RESULT"};
    return result_builder::from(std::move(owned), nullptr, {});
}

// "...: maybe applied": what the failed request may have done, said once at the end of its message.
std::string with_outcome(std::string what, const diagnostics& d) {
    if (d.attempts.empty()) return what;
    switch (d.outcome) {
    case request_outcome::not_sent: return what + " [not sent: it was not executed]";
    case request_outcome::rejected: return what + " [rejected: nothing was executed]";
    case request_outcome::failed: return what + " [failed: nothing was applied]";
    case request_outcome::maybe_applied: return what + " [maybe applied: the write may or may not have been executed]";
    case request_outcome::succeeded: return what;  // never a failed request's outcome
    }
    return what;
}

std::string describe_request_failure(error_code ec, const diagnostics& d) {
    auto with_host = [](std::string_view host, std::string_view text) {
        if (host.empty() || text.starts_with(host)) return std::string(text);
        return fmt::format("{}: {}", host, text);
    };
    if (d.server) return with_outcome(describe_server_error(*d.server, d.host), d);
    if (ec == client_errc::no_host_available && !d.attempts.empty()) {
        // Every host of the plan, each with its own reason, once.
        std::string what = "no host could take the request: ";
        for (std::size_t i = 0; i < d.attempts.size(); ++i) {
            const auto& a = d.attempts[i];
            what += (i ? "; " : "") + with_host(a.host, a.message.empty() ? a.ec.message() : a.message);
        }
        return with_outcome(what, d);
    }
    std::string what;
    if (!d.attempts.empty() && !d.attempts.back().message.empty()) what = with_host(d.host, d.attempts.back().message);
    else what = d.host.empty() ? ec.message() : with_host(d.host, ec.message());
    if (d.attempts.size() > 1) what += fmt::format(" (after {} attempts)", d.attempts.size());
    return with_outcome(what, d);
}


std::exception_ptr make_request_exception(error_code ec, const result& r) {
    return std::make_exception_ptr(error(ec, describe_request_failure(ec, r.diagnostics()), r.diagnostics()));
}

}  // namespace detail

namespace {

// A failed result naming what the application did with an empty or closed session.
result misuse(error_code ec, std::string what) {
    return detail::failed_result({.attempts = {{"", ec, std::move(what)}}});
}

const std::string empty_session_text =
    "this session handle is empty (default-constructed or moved-from): assign it from session::connect() first";

}  // namespace

namespace detail {

void session_impl::log(log_level level, std::string_view message) const noexcept {
    if (!logs(level)) return;
    try {
        params.logger(level, message);
    } catch (...) {  // a sink's failure is its own
    }
}

std::string session_impl::closed_reason() const {
    return abandoned.load(std::memory_order_relaxed) ? "the session was shut down (its last handle was destroyed without close())"
                                                     : "the session was closed (close() was called)";
}

void session_impl::shutdown() {
    if (closing.exchange(true)) return;  // close() came first
    abandoned = true;
    if (gate) gate->close();  // waiting requests go on, to fail as the session is closed
    asio::post(strand, [self = shared_from_this()] {

        self->readiness.cancel();
        if (self->control) self->control->stop();
        for (auto& p : self->pools)
            for (auto& c : p->stop()) c->abort();  // requests in flight complete with an error now
        self->log(log_level::info, "session shut down: its last handle was destroyed without close()");
        self->publish();
    });
}

}  // namespace detail

const std::shared_ptr<detail::session_impl>& session::impl_or_null() const noexcept {
    static const std::shared_ptr<detail::session_impl> none;
    return handle_ ? handle_->impl : none;
}

detail::session_impl& session::impl() const {
    if (!handle_) throw error(client_errc::empty_handle, empty_session_text);
    return *handle_->impl;
}

asio::awaitable<session> session::connect_op(asio::any_io_executor ex, session_params params) {
    if (params.contact_points.empty()) throw error(client_errc::invalid_configuration, "session_params.contact_points is empty");
    if (params.connections_per_host == 0) throw error(client_errc::invalid_configuration, "connections_per_host must be at least 1");
    if (params.connections_per_remote_host == 0)
        throw error(client_errc::invalid_configuration, "connections_per_remote_host must be at least 1 (remote_hosts_per_dc = 0 uses no remote nodes)");
    if (params.protocol_version != 0 && (params.protocol_version < 3 || params.protocol_version > 5))
        throw error(client_errc::invalid_configuration, fmt::format("protocol_version {}: use 3, 4, 5, or 0 to negotiate", params.protocol_version));
    if (params.max_requests_per_connection == 0 || params.max_requests_per_connection > 32768)
        throw error(client_errc::invalid_configuration,
                    fmt::format("max_requests_per_connection {}: use 1 to 32768 (the protocol's stream ids)", params.max_requests_per_connection));
    if (params.max_frame_size < 4096 || params.max_frame_size > 0x7fffffffu)
        throw error(client_errc::invalid_configuration,
                    fmt::format("max_frame_size {}: use 4096 to 2147483647 bytes (the default is 268435456, 256 MiB)", params.max_frame_size));
    if (params.event_max_batch == 0) throw error(client_errc::invalid_configuration, "event_max_batch must be at least 1");
    if (!params.retry)
        throw error(client_errc::invalid_configuration, "session_params.retry is null: use fallthrough_retry_policy to never retry");
    if (!params.speculative_execution)
        throw error(client_errc::invalid_configuration,
                    "session_params.speculative_execution is null: use no_speculative_execution to never hedge");
    if (params.max_attempts == 0) throw error(client_errc::invalid_configuration, "max_attempts must be at least 1 (1: no retries)");
    if (params.retry_budget.ratio < 0 || params.retry_budget.ttl.count() < 1 || params.retry_budget.ttl.count() > 60)
        throw error(client_errc::invalid_configuration, "retry_budget: the ratio must not be negative, the ttl 1 to 60 s");
    if (params.attempt_timeout.count() < 0) throw error(client_errc::invalid_configuration, "attempt_timeout must not be negative");
    if (const auto& a = params.admission; a.enabled && (a.max_concurrent == 0 || a.interactive_weight == 0 || a.background_weight == 0 ||
                                                         !(a.max_per_second >= 0) || a.burst.count() < 0))
        throw error(client_errc::invalid_configuration,
                    "admission: max_concurrent and the class weights must be at least 1, max_per_second and burst not negative "
                    "(enabled = false turns admission off)");
    if (params.reconnection.base.count() <= 0 || params.reconnection.max < params.reconnection.base)
        throw error(client_errc::invalid_configuration, "reconnection: the base delay must be positive and not above the maximum");
    auto impl = std::make_shared<detail::session_impl>(ex);
    impl->set_chain(params.chain);
    if (params.tls) params.tls->context = make_tls_context(*params.tls);  // read the files once, share the context
    impl->params = std::move(params);
    impl->stream_budget = memory_budget::create(impl->params.stream_memory_budget);
    {
        const auto& p = impl->params;
        const bool slow_log = p.logger && p.slow_requests.level >= p.min_log_level &&
                              (p.slow_requests.threshold.count() > 0 || p.slow_requests.log_failures);
        impl->observing = p.tracker != nullptr || slow_log;
        impl->warnings_logged = p.log_server_warnings && impl->logs(log_level::warn);
    }
    impl->retries = std::make_unique<retry_budget>(impl->params.retry_budget);
    if (impl->params.admission.enabled) impl->gate = std::make_unique<detail::admission>(impl->params.admission);
    impl->lb = impl->params.load_balancing ? impl->params.load_balancing
                                           : std::make_shared<default_load_balancing_policy>(default_policy_options{
                                                 .remote_hosts_per_dc = impl->params.remote_hosts_per_dc,
                                                 .shuffle_replicas = impl->params.shuffle_replicas,
                                                 .local_rack = impl->params.local_rack,
                                                 .preferred_remote_dcs = impl->params.preferred_remote_dcs,
                                                 .allow_remote_for_local_consistency = impl->params.allow_remote_for_local_consistency,
                                                 .allow = impl->params.allow_nodes,
                                                 .deny = impl->params.deny_nodes,
                                                 .health = impl->params.health});
    if (impl->params.latency_aware_enabled) impl->lb = std::make_shared<latency_aware_policy>(impl->lb, impl->params.latency_aware);
    impl->profiles = detail::resolve_profiles(impl->params, impl->params.profiles, impl->lb);  // before any view is published
    impl->profiles_given = impl->params.profiles;
    auto started = co_await asio::co_spawn(impl->strand, impl->start(), asio::use_awaitable);
    if (!started) throw detail::to_error(started.error());  // the edge: the operation's own error
    session s;
    s.handle_ = std::make_shared<detail::session_handle>(std::move(impl));
    co_return s;
}

void session::launch(const std::shared_ptr<detail::session_impl>& impl, request r, handler_t handler) {
    if (!impl) {
        handler.complete(asio::any_io_executor(asio::system_executor()), false, client_errc::empty_handle,
                         misuse(client_errc::empty_handle, "execute() on an empty session: " + empty_session_text));
        return;
    }
    if (impl->closing.load(std::memory_order_relaxed)) {
        handler.complete(impl->ex, false, client_errc::session_closed, misuse(client_errc::session_closed, impl->closed_reason()));
        return;
    }
    if (impl->request_layers.empty()) {
        detail::launch_request(impl, std::move(r), std::move(handler));
        return;
    }
    // The application's middlewares are coroutines: the request runs through them in one.
    auto slot = handler.cancellation_slot();
    auto req = std::make_shared<request>(std::move(r));
    asio::co_spawn(
        impl->ex, impl->run(*req, 0),  // impl and req live on in the completion handler below
        asio::bind_cancellation_slot(slot, [h = std::make_shared<handler_t>(std::move(handler)), req, impl](std::exception_ptr e, outcome o) mutable {
            if (e) {
                // What the request did before the exception stays in its diagnostics: a middleware that threw
                // after `next` does not make a write that went out "not sent".
                auto [ec, what, diag] = detail::failure_of(e, "a middleware");
                auto d = std::move(req->diagnostics);
                auto worst = request_outcome::not_sent;
                for (const auto& a : d.attempts)
                    if (a.outcome != request_outcome::succeeded) worst = std::max(worst, a.outcome);
                d.attempts.push_back({"", ec, std::move(what), worst, retry_action::rethrow});
                d.outcome = worst;
                o = {ec, detail::failed_result(std::move(d))};
            }
            h->complete(impl->ex, false, o.ec, std::move(o.result));
        }));
}

asio::awaitable<prepared_statement> session::prepare_op(std::shared_ptr<detail::session_impl> s, std::string query) {
    if (!s) throw error(client_errc::empty_handle, "prepare() on an empty session: " + empty_session_text);
    if (s->closing) throw error(client_errc::session_closed, fmt::format("prepare(\"{}\"): {}", query, s->closed_reason()));
    auto prepared = co_await asio::co_spawn(s->strand, s->prepare_on_strand(std::move(query)), asio::use_awaitable);
    if (!prepared) throw detail::to_error(prepared.error());  // the edge: the operation's own error
    co_return std::move(*prepared);
}

namespace {

asio::awaitable<void> close_on_strand(std::shared_ptr<detail::session_impl> impl, std::chrono::milliseconds timeout) {
    impl->closing = true;
    if (impl->gate) impl->gate->close();  // waiting requests go on, to fail as the session is closed
    impl->readiness.cancel();
    if (impl->control) impl->control->stop();
    std::vector<std::shared_ptr<conn_t>> all;
    for (auto& p : impl->pools) {
        auto mine = p->stop();
        all.insert(all.end(), mine.begin(), mine.end());
    }
    for (auto& c : all) co_await c->close(timeout);
    impl->publish();
}

}  // namespace

asio::awaitable<void> session::close_op(std::shared_ptr<detail::session_impl> impl, std::chrono::milliseconds timeout) {
    if (!impl) co_return;  // nothing to close, as for a socket that is not open
    co_await asio::co_spawn(impl->strand, close_on_strand(impl, timeout), asio::use_awaitable);
}


cqlcoro::admission_metrics session::admission_metrics() const {
    if (!handle_ || !handle_->impl->gate) return {};
    return handle_->impl->gate->metrics();
}

std::shared_ptr<const cluster_metadata> session::metadata() const { return impl().current()->md; }

void session::set_profiles(execution_profiles profiles) {
    auto& s = impl();
    auto set = detail::resolve_profiles(s.params, profiles, s.lb);
    std::lock_guard lock(s.profiles_given_mutex);
    s.set_profiles(std::move(set));
    s.profiles_given = std::move(profiles);
}

std::vector<std::string> session::reload_config() {
    auto& s = impl();
    if (!s.params.config)
        throw error(client_errc::invalid_configuration,
                    "reload_config(): this session's parameters were not made by load_config(), so there is no file to read again");
    auto fresh = load_config(*s.params.config);
    auto set = detail::resolve_profiles(fresh, fresh.profiles, s.lb);
    std::vector<std::string> restart_only;
    const auto before = detail::state_of(s.params), after = detail::state_of(fresh);
    for (const auto& e : detail::config_keys())
        if (!e.reloadable && e.write(before) != e.write(after)) restart_only.push_back(e.key);
    {
        std::lock_guard lock(s.profiles_given_mutex);
        s.set_profiles(std::move(set));
        s.profiles_given = fresh.profiles;
    }
    std::string keys;
    for (const auto& k : restart_only) keys += (keys.empty() ? "" : ", ") + k;
    s.log(log_level::info, fmt::format("configuration reloaded from {}: profiles and request defaults applied{}", s.params.config->file.string(),
                                       keys.empty() ? std::string() : "; changed but applied only at the next connect: " + keys));
    return restart_only;
}

execution_profiles session::profiles() const {
    auto& s = impl();
    std::lock_guard lock(s.profiles_given_mutex);
    return s.profiles_given;
}

asio::awaitable<bool> session::schema_agreement_op(std::shared_ptr<detail::session_impl> impl, std::chrono::milliseconds timeout) {
    if (!impl) throw error(client_errc::empty_handle, "check_schema_agreement() on an empty session: " + empty_session_text);
    if (impl->closing) throw error(client_errc::session_closed, "check_schema_agreement(): " + impl->closed_reason());
    auto work = [](std::shared_ptr<detail::session_impl> s, std::chrono::milliseconds t) -> asio::awaitable<bool> {
        co_return co_await s->control->wait_schema_agreement(t);
    };
    co_return co_await asio::co_spawn(impl->strand, work(impl, timeout), asio::use_awaitable);
}

std::uint8_t session::protocol_version() const noexcept { return handle_ ? handle_->impl->version : 0; }
asio::any_io_executor session::executor_or_system() const noexcept {
    return handle_ ? handle_->impl->ex : asio::any_io_executor(asio::system_executor());
}
asio::any_io_executor session::initiation::get_executor() const noexcept {
    return impl ? impl->ex : asio::any_io_executor(asio::system_executor());
}
const session_params& session::params() const { return impl().params; }

}  // namespace cqlcoro
