// The request chain: the application's middlewares and the built-in layers, cut from
// session_params::chain when the session connects and run as steps for each request.
#include <cqlcoro/session.hpp>

#include "policy/request_handler.hpp"
#include "session/result_builder.hpp"
#include "session/session_impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>

#include <fmt/format.h>
#include "../namespaces.hpp"

namespace cqlcoro {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

std::string_view request::text() const noexcept {
    if (const auto* s = std::get_if<statement>(&what)) return s->query();
    if (const auto* b = std::get_if<bound_statement>(&what)) return b->prepared().query;
    const auto& e = std::get<batch>(what).entries();
    if (e.empty()) return "BATCH";
    return std::visit([](const auto& s) -> std::string_view {
        if constexpr (std::is_same_v<std::decay_t<decltype(s)>, statement>) return s.query();
        else return s.prepared().query;
    }, e.front());
}



namespace detail {

// The request's layers as steps: the middlewares before the deadline, the deadline, the middlewares
// after it, then the built-in operation.
asio::awaitable<outcome> session_impl::run(request& r, std::size_t step) {
    if (step == deadline_at) {
        // The deadline layer: a fresh deadline each time a request passes (a middleware before it may call
        // `next` again), never later than one an earlier layer set; the earlier layer gets its own back.
        const auto before = r.deadline;
        auto until = std::chrono::steady_clock::now() + timeout_for(r.options());
        if (before && *before < until) until = *before;
        r.deadline = until;
        auto o = co_await run(r, step + 1);
        r.deadline = before;
        co_return o;
    }
    const std::size_t i = step < deadline_at ? step : step - 1;
    if (i < request_layers.size()) {
        auto self = shared_from_this();
        next_layer next = [self, step](request& q) { return self->run(q, step + 1); };
        auto layer = request_layers[i](r, std::move(next));  // named: GCC 12 mishandles temporaries in co_await
        co_return co_await std::move(layer);
    }
    co_return co_await built_in(r);
}

namespace {

std::string_view layer_name(built_in_layer b) {
    switch (b) {
    case built_in_layer::deadline: return "deadline";
    case built_in_layer::speculative_execution: return "speculative_execution";
    case built_in_layer::retry: return "retry";
    }
    return "?";
}

}  // namespace

void session_impl::set_chain(const std::vector<chain_member>& chain) {
    request_layers.clear();
    attempt_layers.clear();
    deadline_at = 0;
    std::array<std::optional<std::size_t>, 3> at;  // where each built-in layer is
    std::optional<built_in_layer> last;
    for (std::size_t i = 0; i < chain.size(); ++i) {
        if (const auto* b = std::get_if<built_in_layer>(&chain[i])) {
            auto& where = at[static_cast<std::size_t>(*b)];
            if (where)
                throw error(client_errc::invalid_configuration,
                            fmt::format("session_params.chain: {} is there twice (chain[{}] and chain[{}]); each built-in layer appears once",
                                        layer_name(*b), *where, i));
            if (last && *b < *last)
                throw error(client_errc::invalid_configuration,
                            fmt::format("session_params.chain: {} (chain[{}]) comes after {}; the built-in layers keep the order deadline, "
                                        "speculative_execution, retry (put your middlewares among them)",
                                        layer_name(*b), i, layer_name(*last)));
            where = i;
            last = *b;
            continue;
        }
        const auto& m = std::get<middleware>(chain[i]);
        if (!m) throw error(client_errc::invalid_configuration, fmt::format("session_params.chain[{}] is an empty middleware", i));
        if (last == built_in_layer::speculative_execution)
            throw error(client_errc::invalid_configuration,
                        fmt::format("session_params.chain[{}]: a middleware between speculative_execution and retry; these two are one "
                                    "layer (executions and their retries share one query plan): put it before speculative_execution to "
                                    "see each request once, or after retry to see each attempt",
                                    i));
        if (last == built_in_layer::retry) attempt_layers.push_back(m);
        else {
            if (!last) ++deadline_at;
            request_layers.push_back(m);
        }
    }
    for (std::size_t k = 0; k < at.size(); ++k)
        if (!at[k])
            throw error(client_errc::invalid_configuration,
                        fmt::format("session_params.chain has no {} layer: it holds deadline, speculative_execution and retry once each, "
                                    "in that order (see default_chain()); to never retry or hedge, use fallthrough_retry_policy or "
                                    "no_speculative_execution",
                                    layer_name(static_cast<built_in_layer>(k))));
}

// Not a coroutine: GCC 12 destroys a capturing lambda temporary inside a co_await expression twice.
auto session_impl::start_built_in(request q) {
    return asio::async_initiate<decltype(use_tuple), void(error_code, result)>(
        [self = shared_from_this()](auto handler, request r) { launch_request(self, std::move(r), erased_handler(std::move(handler))); },
        use_tuple, std::move(q));
}

asio::awaitable<outcome> session_impl::built_in(request& r) {
    request copy{r.what, r.diagnostics, r.deadline};  // a named local: GCC 12 mishandles aggregate temporaries in co_await
    auto [ec, res] = co_await start_built_in(std::move(copy));
    r.diagnostics = res.diagnostics();
    co_return outcome{ec, std::move(res)};
}

}  // namespace detail

}  // namespace cqlcoro
