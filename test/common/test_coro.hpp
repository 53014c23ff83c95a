// Runs a test body written as a coroutine to completion on a fresh io_context.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <string>
#include <type_traits>
#include <stdexcept>

namespace cqlcoro::test {

/// f(executor) returns asio::awaitable<void>; whatever it throws is rethrown here. A failed body stops the
/// io_context, so what it left running (an open session, say) cannot hang the test.
template <class F>
void run_coroutine(F f) {
    boost::asio::io_context io;
    std::exception_ptr failure;
    boost::asio::co_spawn(io, f(io.get_executor()), [&](std::exception_ptr e) {
        failure = e;
        if (e) io.stop();
    });
    io.run();
    if (failure) std::rethrow_exception(failure);
}

/// Yields to the io_context until `done()` holds, for a condition that other handlers make true (a write
/// begun, a counter reached); throws after `limit` turns rather than hang, with what `state()` says of
/// the state it waited on.
template <class Done, class State>
    requires std::is_invocable_r_v<std::string, State>
boost::asio::awaitable<void> yield_until(Done done, State state, int limit = 1'000'000) {
    for (int i = 0; !done(); ++i) {
        if (i == limit) throw std::runtime_error("yield_until: the awaited condition never held; the state: " + state());
        co_await boost::asio::post(co_await boost::asio::this_coro::executor, boost::asio::use_awaitable);
    }
}

template <class Done>
boost::asio::awaitable<void> yield_until(Done done, int limit = 1'000'000) {
    return yield_until(std::move(done), [] { return std::string("(not described)"); }, limit);
}

}  // namespace cqlcoro::test
