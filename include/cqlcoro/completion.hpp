// Completion tokens: how every asynchronous operation of cqlcoro reports its end.
//
// Each operation takes an Asio completion token as its last argument and completes with
// void(error_code, T) (void(error_code) for close()). The default token, default_token, is
// with_diagnostics(asio::use_awaitable): `co_await` it and it returns T or throws cqlcoro::error
// with the whole story (the host, the server's message, what to do). Any other token gets the code:
//
//   auto rs = co_await session.execute(stmt);                                     // throws
//   auto [ec, rs] = co_await session.execute(stmt, asio::as_tuple(asio::use_awaitable));
//   session.prepare(q, [](cqlcoro::error_code ec, cqlcoro::prepared_statement p) { ... });
//   auto fut = session.close(10s, asio::use_future);
//   co_await session.execute(stmt, cqlcoro::cancel_after(150ms));              // cancelled if late
//
// Requests (execute, pager::next_page) carry their diagnostics in the result (result::diagnostics())
// also on failure; the other operations keep the text for the default token's exception.
#pragma once

#include <cqlcoro/error.hpp>
#include <cqlcoro/result.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

namespace cqlcoro {

namespace detail {

/// The exception for a failed request: its code, a message naming the host and the server's text.
std::exception_ptr make_request_exception(error_code ec, const result& r);

/// The error code an exception stands for (cqlcoro::error's, a system_error's, else asio::error::fault).
error_code code_of(const std::exception_ptr& e) noexcept;

// Adapts a request's void(error_code, R) completion into void(exception_ptr, R) for the inner token.
template <class Handler>
struct throwing_handler {
    Handler inner;

    using executor_type = boost::asio::associated_executor_t<Handler>;
    executor_type get_executor() const noexcept { return boost::asio::get_associated_executor(inner); }
    using cancellation_slot_type = boost::asio::associated_cancellation_slot_t<Handler>;
    cancellation_slot_type get_cancellation_slot() const noexcept { return boost::asio::get_associated_cancellation_slot(inner); }

    template <class R>  // a result, or a stream_page (its exception is found by ADL)
    void operator()(error_code ec, R r) {
        std::move(inner)(ec ? make_request_exception(ec, r) : std::exception_ptr(), std::move(r));
    }
};

// The same for an operation run as a coroutine (connect, prepare, ...): the exception it failed with is
// kept beside the code, so the default token rethrows it whole.
template <class Handler>
struct rethrowing_handler {
    Handler inner;
    std::shared_ptr<std::exception_ptr> failure;

    using executor_type = boost::asio::associated_executor_t<Handler>;
    executor_type get_executor() const noexcept { return boost::asio::get_associated_executor(inner); }
    using cancellation_slot_type = boost::asio::associated_cancellation_slot_t<Handler>;
    cancellation_slot_type get_cancellation_slot() const noexcept { return boost::asio::get_associated_cancellation_slot(inner); }

    template <class... R>
    void operator()(error_code ec, R&&... r) {
        std::exception_ptr e;
        if (ec) e = *failure ? *failure : std::make_exception_ptr(error(ec));
        std::move(inner)(e, std::forward<R>(r)...);
    }
};

template <class T>
struct signature_of {
    using type = void(error_code, T);
};
template <>
struct signature_of<void> {
    using type = void(error_code);
};

// co_spawn's void(exception_ptr[, T]) turned into void(error_code[, T]); the handler keeps its
// executor (the operation's by default) and its cancellation slot, which reaches into the coroutine.
template <class T, class Handler>
struct coroutine_handler {
    Handler inner;
    std::shared_ptr<std::exception_ptr> failure;
    boost::asio::any_io_executor ex;

    using executor_type = boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor>;
    executor_type get_executor() const noexcept { return boost::asio::get_associated_executor(inner, ex); }
    using cancellation_slot_type = boost::asio::associated_cancellation_slot_t<Handler>;
    cancellation_slot_type get_cancellation_slot() const noexcept { return boost::asio::get_associated_cancellation_slot(inner); }

    template <class... R>
    void operator()(std::exception_ptr e, R&&... r) {
        error_code ec;
        if (e) {
            ec = code_of(e);
            *failure = std::move(e);
        }
        std::move(inner)(ec, std::forward<R>(r)...);
    }
};

/// The initiation of an operation written as a coroutine: `op()` makes the awaitable, run on the
/// handler's executor (the operation's own, `ex`, when the handler has none).
template <class T, class Op>
struct coroutine_initiation {
    boost::asio::any_io_executor ex;
    Op op;
    std::shared_ptr<std::exception_ptr> failure = std::make_shared<std::exception_ptr>();

    using executor_type = boost::asio::any_io_executor;
    executor_type get_executor() const noexcept { return ex; }

    template <class Handler>
    void operator()(Handler&& handler) {
        boost::asio::any_io_executor run_on = boost::asio::get_associated_executor(handler, ex);
        boost::asio::co_spawn(run_on, std::move(op)(),
                              coroutine_handler<T, std::decay_t<Handler>>{std::forward<Handler>(handler), failure, ex});
    }
};

/// Starts the coroutine `op()` (an asio::awaitable<T>) as an operation completing into `token` with
/// void(error_code, T).
template <class T, class Token, class Op>
auto run_as_operation(boost::asio::any_io_executor ex, Op op, Token&& token) {
    return boost::asio::async_initiate<Token, typename signature_of<T>::type>(
        coroutine_initiation<T, Op>{std::move(ex), std::move(op)}, token);
}

}  // namespace detail

/// A token adapter: the operation completes into `token` with void(std::exception_ptr, T), the
/// exception a cqlcoro::error saying what failed and, for requests, with their diagnostics. The default
/// token of every operation is with_diagnostics(asio::use_awaitable).
template <class Token>
struct with_diagnostics_t {
    Token token;
};
template <class Token>
with_diagnostics_t<std::decay_t<Token>> with_diagnostics(Token&& t) {
    return {std::forward<Token>(t)};
}
using default_token = with_diagnostics_t<boost::asio::use_awaitable_t<>>;

namespace detail {

// Everything that touches the signal runs on one strand: the operation's completion (so the slot is
// cleared there, just before the handler runs), the timer's emit, and the forward of the caller's own
// cancellation. On an io_context run by several threads they would otherwise race, and an emit that
// came before the operation had connected its slot would be lost.
struct cancel_after_state {
    explicit cancel_after_state(const boost::asio::any_io_executor& handler_ex)
        : strand(boost::asio::make_strand(handler_ex)), timer(strand) {}
    boost::asio::strand<boost::asio::any_io_executor> strand;
    boost::asio::steady_timer timer;
    boost::asio::cancellation_signal signal;
    bool done = false;  // on the strand: the operation completed, so nothing is to be emitted

    // On the strand, after the operation was initiated (and had connected its slot).
    static void arm(std::shared_ptr<cancel_after_state> self, std::chrono::steady_clock::duration timeout, boost::asio::cancellation_type type) {
        auto& st = *self;
        boost::asio::dispatch(st.strand, [self = std::move(self), timeout, type]() mutable {
            if (self->done) return;
            self->timer.expires_after(timeout);
            self->timer.async_wait([s = std::weak_ptr(self), type](error_code ec) {
                if (auto st = s.lock(); st && !ec && !st->done) st->signal.emit(type);
            });
        });
    }
};

// The inner handler, seen by the operation with our signal's slot and our strand as its executor; its
// outer slot forwards into ours.
template <class Handler>
struct cancel_after_handler {
    Handler inner;
    std::shared_ptr<cancel_after_state> state;

    using executor_type = boost::asio::strand<boost::asio::any_io_executor>;
    executor_type get_executor() const noexcept { return state->strand; }
    using cancellation_slot_type = boost::asio::cancellation_slot;
    cancellation_slot_type get_cancellation_slot() const noexcept { return state->signal.slot(); }

    template <class... Args>
    void operator()(Args&&... args) {
        state->done = true;
        state->timer.cancel();
        auto outer = boost::asio::get_associated_cancellation_slot(inner);
        if (outer.is_connected()) outer.clear();
        std::move(inner)(std::forward<Args>(args)...);
    }
};

}  // namespace detail

/// A token adapter: cancels the operation (`type`, terminal by default) if it has not completed after
/// `timeout`. For a session request, a cancellation before the write means it is never sent; after it,
/// the request completes with operation_aborted. (Boost 1.86 has asio::cancel_after; this is ours for 1.83.)
template <class Token>
struct cancel_after_t {
    std::chrono::steady_clock::duration timeout;
    boost::asio::cancellation_type type;
    Token token;
};
template <class Token = default_token>
cancel_after_t<std::decay_t<Token>> cancel_after(std::chrono::steady_clock::duration timeout, Token&& token = {},
                                                 boost::asio::cancellation_type type = boost::asio::cancellation_type::terminal) {
    return {timeout, type, std::forward<Token>(token)};
}

}  // namespace cqlcoro

/// @cond INTERNAL (the completion-token adapters' async_result specializations)
template <class Token, class... Signatures>
struct boost::asio::async_result<cqlcoro::cancel_after_t<Token>, Signatures...> {
    template <class Initiation, class RawToken, class... Args>
    static auto initiate(Initiation&& init, RawToken&& token, Args&&... args) {
        auto ex = init.get_executor();
        return boost::asio::async_initiate<Token, Signatures...>(
            [init = std::forward<Initiation>(init), ex, timeout = token.timeout, type = token.type](auto handler, auto&&... a) mutable {
                auto state = std::make_shared<cqlcoro::detail::cancel_after_state>(
                    boost::asio::any_io_executor(boost::asio::get_associated_executor(handler, ex)));
                // The caller's own cancellation still works: its slot forwards into ours, on our strand.
                auto outer = boost::asio::get_associated_cancellation_slot(handler);
                if (outer.is_connected())
                    outer.assign([s = std::weak_ptr(state)](boost::asio::cancellation_type t) {
                        if (auto st = s.lock())
                            boost::asio::post(st->strand, [s, t] {
                                if (auto st = s.lock(); st && !st->done) st->signal.emit(t);
                            });
                    });
                auto keep = state;
                std::move(init)(cqlcoro::detail::cancel_after_handler<decltype(handler)>{std::move(handler), std::move(state)},
                                std::forward<decltype(a)>(a)...);
                // Armed once the operation has connected its slot (it did so in init), so no emit comes before.
                cqlcoro::detail::cancel_after_state::arm(std::move(keep), timeout, type);
            },
            token.token, std::forward<Args>(args)...);
    }
};

template <class Token, class... R>
struct boost::asio::async_result<cqlcoro::with_diagnostics_t<Token>, void(cqlcoro::error_code, R...)> {
    template <class Initiation, class RawToken, class... Args>
    static auto initiate(Initiation&& init, RawToken&& token, Args&&... args) {
        if constexpr (requires { init.failure; }) {  // an operation run as a coroutine: its exception, whole
            auto failure = init.failure;
            return boost::asio::async_initiate<Token, void(std::exception_ptr, R...)>(
                [init = std::forward<Initiation>(init), failure](auto handler, auto&&... a) mutable {
                    std::move(init)(cqlcoro::detail::rethrowing_handler<decltype(handler)>{std::move(handler), failure},
                                    std::forward<decltype(a)>(a)...);
                },
                token.token, std::forward<Args>(args)...);
        } else {
            return boost::asio::async_initiate<Token, void(std::exception_ptr, R...)>(
                [init = std::forward<Initiation>(init)](auto handler, auto&&... a) mutable {
                    std::move(init)(cqlcoro::detail::throwing_handler<decltype(handler)>{std::move(handler)},
                                    std::forward<decltype(a)>(a)...);
                },
                token.token, std::forward<Args>(args)...);
        }
    }
};
/// @endcond
