// Runs a test body written as a coroutine to completion on a fresh io_context.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>

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

}  // namespace cqlcoro::test
