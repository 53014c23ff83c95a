// The request chain: the application's middlewares and the built-in layers, in one configured order.
//
//   session_params p;
//   p.chain = {audit,                                 // before the deadline: its time is not the request's
//              cqlcoro::built_in_layer::deadline,     // arms the request's one deadline
//              metrics,                               // once per request, within the deadline
//              cqlcoro::built_in_layer::speculative_execution,
//              cqlcoro::built_in_layer::retry,
//              trace_each_attempt};                   // once per attempt, at one node
//
// A member is a middleware (a coroutine that may look at or change the request, call `next` (or not, or
// several times) and look at or change the outcome) or the place of a built-in layer. The built-in
// layers keep their relative order (deadline, then speculative_execution, then retry) and each appears
// once; where the application's middlewares go among them decides what each sees:
//   - before `deadline`: the whole request, outside its timeout. Each call of `next` gets a fresh
//     deadline (a middleware here may wait for admission, or try the whole request again).
//   - between `deadline` and `speculative_execution`: the whole request once, within its deadline;
//     every call of `next` shares it.
//   - after `retry`: every attempt, on the node the query plan chose (request::diagnostics().host), with
//     the attempts so far in request::diagnostics and the attempt's own deadline. `next` sends the
//     request, as the middleware passes it, to that node; what the middleware returns is the attempt's
//     answer, which the retry policy then judges (an error it returns without calling `next` is a
//     failure of that node that was never sent).
// Speculative execution and retry are one layer in the request path (as in the Java driver: executions
// and their retries share one query plan), so nothing goes between them.
//
// A layer that does nothing on the happy path costs nothing there: with no middleware in the chain a
// request is one hand-written operation, with no coroutine frame.
#pragma once

#include <cqlcoro/error.hpp>
#include <cqlcoro/result.hpp>
#include <cqlcoro/statement.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

namespace cqlcoro {

/// A request as it travels through the chain.
struct request {
    std::variant<statement, bound_statement, batch> what;
    cqlcoro::diagnostics diagnostics;  ///< attempts so far (after `retry`: `host` is this attempt's node)
    /// The request's one deadline, armed by the `deadline` layer (from the statement's timeout, else the
    /// session's request_timeout): every call of `next` after it shares it, with its retries, backoffs,
    /// speculative executions and the wait for schema agreement. Empty before the `deadline` layer;
    /// after `retry`, the attempt's own (attempt_timeout, within the request's).
    std::optional<std::chrono::steady_clock::time_point> deadline;

    const statement_options& options() const noexcept {
        return std::visit([](const auto& s) -> const statement_options& { return s.options(); }, what);
    }
    statement_options& options() noexcept {
        return std::visit([](auto& s) -> statement_options& { return s.options(); }, what);
    }
    /// The CQL text (the first statement's for a batch), for logs.
    std::string_view text() const noexcept;
};

/// What a request comes to: an error code (and the result, which carries diagnostics either way).
struct outcome {
    error_code ec;
    cqlcoro::result result;
};

using next_layer = std::function<boost::asio::awaitable<outcome>(request&)>;
/// A middleware: may look at or change the request, call `next` (or not, or several times), and look
/// at or change the outcome. Errors travel as values; an exception it throws fails the request (or,
/// after `retry`, the attempt) with the exception's text, and boost::asio::error::fault as its code (a
/// cqlcoro::error thrown before `retry` keeps its own).
using middleware = std::function<boost::asio::awaitable<outcome>(request&, next_layer next)>;

/// The places of the built-in layers in session_params::chain.
enum class built_in_layer {
    deadline,               ///< arms the request's deadline (session_params::request_timeout)
    speculative_execution,  ///< hedges idempotent requests (session_params::speculative_execution)
    retry,                  ///< the query plan, retries (session_params::retry) and each attempt at a node
};

/// A member of the chain: the application's middleware, or a built-in layer's place.
using chain_member = std::variant<built_in_layer, middleware>;

/// The default chain: the built-in layers alone.
inline std::vector<chain_member> default_chain() {
    return {built_in_layer::deadline, built_in_layer::speculative_execution, built_in_layer::retry};
}

}  // namespace cqlcoro
