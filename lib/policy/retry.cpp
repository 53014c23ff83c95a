// The built-in retry policies and the outcome of a failed attempt.
#include <cqlcoro/retry_policy.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>
#include <random>

namespace cqlcoro {

std::string_view to_string(request_outcome o) noexcept {
    switch (o) {
    case request_outcome::not_sent: return "not sent";
    case request_outcome::rejected: return "rejected";
    case request_outcome::failed: return "failed";
    case request_outcome::maybe_applied: return "maybe applied";
    case request_outcome::succeeded: return "succeeded";
    }
    return "unknown";
}

std::string_view to_string(retry_action a) noexcept {
    switch (a) {
    case retry_decision::action::rethrow: return "rethrow";
    case retry_decision::action::retry_same_node: return "retry on the same node";
    case retry_decision::action::retry_next_node: return "retry on the next node";
    case retry_decision::action::ignore: return "ignore";
    case retry_decision::action::completed: return "completed";
    case retry_decision::action::abandoned: return "abandoned";
    }
    return "unknown";
}

namespace {

bool is(const failed_attempt& f, server_errc e) { return f.ec == e; }

bool is_serial(consistency c) { return c == consistency::serial || c == consistency::local_serial; }

// A connection lost, an attempt timed out or abandoned after its write: the node may or may not have
// executed it.
bool lost_after_write(const failed_attempt& f) {
    return &f.ec.category() != &server_category() && f.outcome != request_outcome::not_sent &&
           f.ec != boost::asio::error::operation_aborted;  // the application's own cancellation: final
}

std::chrono::milliseconds jittered(const retry_backoff& b, std::size_t retries) {
    const auto ceiling = std::min<std::int64_t>(b.cap.count(), b.base.count() << std::min<std::size_t>(retries, 20));
    if (ceiling <= 0) return std::chrono::milliseconds(0);
    thread_local std::minstd_rand rng{std::random_device{}()};
    return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, ceiling)(rng));
}

// The rules both policies share; nullopt where the downgrading policy has rules of its own.
retry_decision common_rules(const failed_attempt& f, const retry_backoff& backoff) {
    if (is(f, server_errc::unavailable)) return f.retries == 0 ? retry_decision::next_node() : retry_decision::rethrow();
    if (is(f, server_errc::is_bootstrapping)) return retry_decision::next_node();
    if (is(f, server_errc::read_timeout)) {
        const auto* r = f.server ? std::get_if<read_timeout_error>(&f.server->detail) : nullptr;
        // Enough replicas answered, but the one asked for the data did not: it likely will now.
        if (r && f.retries == 0 && r->received >= r->block_for && !r->data_present) return retry_decision::same_node();
        return retry_decision::rethrow();
    }
    if (is(f, server_errc::write_timeout)) {
        const auto* w = f.server ? std::get_if<write_timeout_error>(&f.server->detail) : nullptr;
        // Only the batchlog write timed out: the batch was not applied yet, and the batchlog makes it whole.
        if (w && f.idempotent && f.retries == 0 && w->write_type == "BATCH_LOG") return retry_decision::same_node();
        return retry_decision::rethrow();
    }
    if (is(f, server_errc::overloaded) || is(f, server_errc::server_error) || is(f, server_errc::truncate_error))
        return f.idempotent ? retry_decision::next_node(jittered(backoff, f.retries)) : retry_decision::rethrow();
    if (lost_after_write(f)) return f.idempotent ? retry_decision::next_node() : retry_decision::rethrow();
    return retry_decision::rethrow();
}

class default_state final : public retry_state {
public:
    explicit default_state(retry_backoff b) : backoff_(b) {}
    retry_decision decide(const failed_attempt& f) override { return common_rules(f, backoff_); }

private:
    retry_backoff backoff_;
};

class fallthrough_state final : public retry_state {
public:
    retry_decision decide(const failed_attempt&) override { return retry_decision::rethrow(); }
};

// The consistency that `n` live or answering replicas can meet, if any.
std::optional<consistency> downgrade(std::int32_t n, consistency was) {
    if (n >= 3) return consistency::three;
    if (n == 2) return consistency::two;
    if (n == 1 || (n == 0 && was == consistency::each_quorum)) return consistency::one;
    return std::nullopt;
}

class downgrading_state final : public retry_state {
public:
    explicit downgrading_state(retry_backoff b) : backoff_(b) {}
    retry_decision decide(const failed_attempt& f) override {
        if (f.retries > 0) return common_rules(f, backoff_);
        if (is(f, server_errc::read_timeout)) {
            const auto* r = f.server ? std::get_if<read_timeout_error>(&f.server->detail) : nullptr;
            if (!r || is_serial(r->cl)) return retry_decision::rethrow();
            if (r->received < r->block_for) {
                auto cl = downgrade(r->received, r->cl);
                return cl ? retry_decision::same_node(cl) : retry_decision::rethrow();
            }
            return r->data_present ? retry_decision::rethrow() : retry_decision::same_node();
        }
        if (is(f, server_errc::write_timeout)) {
            const auto* w = f.server ? std::get_if<write_timeout_error>(&f.server->detail) : nullptr;
            if (!w || !f.idempotent) return retry_decision::rethrow();
            if (w->write_type == "SIMPLE" || w->write_type == "BATCH")
                return w->received > 0 ? retry_decision{retry_decision::action::ignore, {}, {}} : retry_decision::rethrow();
            if (w->write_type == "UNLOGGED_BATCH") {
                auto cl = downgrade(w->received, w->cl);
                return cl ? retry_decision::same_node(cl) : retry_decision::rethrow();
            }
            if (w->write_type == "BATCH_LOG") return retry_decision::same_node();
            return retry_decision::rethrow();
        }
        if (is(f, server_errc::unavailable)) {
            const auto* u = f.server ? std::get_if<unavailable_error>(&f.server->detail) : nullptr;
            if (!u || is_serial(u->cl)) return retry_decision::next_node();
            auto cl = downgrade(u->alive, u->cl);
            return cl ? retry_decision::same_node(cl) : retry_decision::rethrow();
        }
        return common_rules(f, backoff_);
    }

private:
    retry_backoff backoff_;
};

}  // namespace

std::unique_ptr<retry_state> default_retry_policy::new_state() const { return std::make_unique<default_state>(backoff_); }
std::unique_ptr<retry_state> fallthrough_retry_policy::new_state() const { return std::make_unique<fallthrough_state>(); }
std::unique_ptr<retry_state> downgrading_consistency_retry_policy::new_state() const {
    return std::make_unique<downgrading_state>(backoff_);
}

}  // namespace cqlcoro
