// The streaming pager: pages fetched ahead of the reader, bounded by a prefetch depth and a memory
// budget shared by streams. The state is shared by the pager, its fetch in flight and the pages it
// handed out; one mutex guards it (page granularity: a few lock operations per page, none per row).
// Nothing is destroyed or called back while that mutex is held: pages, handlers and budget wake-ups
// are moved out first.
#include <cqlcoro/pager.hpp>

#include "session/session_impl.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/detail/base64.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include "../namespaces.hpp"

namespace cqlcoro {

// ---------------------------------------------------------------- memory budget

std::shared_ptr<memory_budget> memory_budget::create(std::size_t bytes) {
    return std::make_shared<memory_budget>(bytes);
}

std::size_t memory_budget::in_use() const noexcept {
    std::lock_guard lk(mutex_);
    return in_use_;
}
std::size_t memory_budget::peak() const noexcept {
    std::lock_guard lk(mutex_);
    return peak_;
}
std::size_t memory_budget::waiting() const noexcept {
    std::lock_guard lk(mutex_);
    return waiting_.size();
}
std::size_t memory_budget::largest_page() const noexcept {
    std::lock_guard lk(mutex_);
    return largest_;
}

// Room for `bytes`; a page larger than the whole budget gets in when nothing else holds room.
bool memory_budget::fits_locked(std::size_t bytes) const noexcept {
    return limit_ == 0 || in_use_ == 0 || in_use_ + bytes <= limit_;
}

bool memory_budget::try_reserve(std::size_t bytes, const std::shared_ptr<waiter>& w, bool priority) {
    std::lock_guard lk(mutex_);
    const bool ahead = priority ? std::any_of(waiting_.begin(), waiting_.end(), [](const entry& e) { return e.priority; })
                                : !waiting_.empty();
    if (!ahead && fits_locked(bytes)) {
        in_use_ += bytes;
        peak_ = std::max(peak_, in_use_);
        return true;
    }
    auto at = priority ? std::find_if(waiting_.begin(), waiting_.end(), [](const entry& e) { return !e.priority; }) : waiting_.end();
    waiting_.insert(at, entry{w, bytes, priority});
    return false;
}

void memory_budget::grant_locked(std::vector<entry>& out) {
    while (!waiting_.empty() && fits_locked(waiting_.front().bytes)) {
        in_use_ += waiting_.front().bytes;
        peak_ = std::max(peak_, in_use_);
        out.push_back(std::move(waiting_.front()));
        waiting_.erase(waiting_.begin());
    }
}

void memory_budget::wake(std::vector<entry>& granted) {
    for (auto& e : granted) e.w->wake(e.bytes);
}

void memory_budget::adjust(std::size_t from, std::size_t to) {
    std::vector<entry> granted;
    {
        std::lock_guard lk(mutex_);
        in_use_ = in_use_ - std::min(in_use_, from) + to;
        peak_ = std::max(peak_, in_use_);
        largest_ = std::max(largest_, to);
        if (to < from) grant_locked(granted);
    }
    wake(granted);
}

void memory_budget::release(std::size_t bytes) {
    std::vector<entry> granted;
    {
        std::lock_guard lk(mutex_);
        in_use_ -= std::min(in_use_, bytes);
        grant_locked(granted);
    }
    wake(granted);
}

bool memory_budget::forget(const std::shared_ptr<waiter>& w) {
    std::vector<entry> granted;
    bool found = false;
    {
        std::lock_guard lk(mutex_);
        auto it = std::find_if(waiting_.begin(), waiting_.end(), [&](const entry& e) { return e.w == w; });
        if (it != waiting_.end()) {
            waiting_.erase(it);
            found = true;
            grant_locked(granted);  // those behind it may fit now
        }
    }
    wake(granted);
    return found;
}

// ---------------------------------------------------------------- paging state strings

namespace {

constexpr std::uint8_t state_format = 1;

// FNV-1a over the statement's text and values: what a paging state string is checked against.
struct fnv {
    std::uint64_t h = 0xcbf29ce484222325ull;
    void add(const void* p, std::size_t n) {
        const auto* b = static_cast<const std::uint8_t*>(p);
        for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
    }
    void add_i32(std::int32_t v) {
        const std::uint8_t b[4] = {std::uint8_t(v >> 24), std::uint8_t(v >> 16), std::uint8_t(v >> 8), std::uint8_t(v)};
        add(b, 4);
    }
};

std::uint64_t identity_of(std::string_view query, const bound_values& values) {
    fnv f;
    f.add_i32(static_cast<std::int32_t>(query.size()));
    f.add(query.data(), query.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (values.is_null(i)) f.add_i32(-1);
        else if (values.is_unset(i)) f.add_i32(-2);
        else {
            const auto v = values.value(i);
            f.add_i32(static_cast<std::int32_t>(v.size()));
            f.add(v.data(), v.size());
        }
    }
    return f.h;
}

std::uint64_t identity_of(const statement& s) {
    return identity_of(s.query(), s.values());
}
std::uint64_t identity_of(const bound_statement& s) {
    return identity_of(s.prepared().query, s.values());
}

std::string encode_state(std::uint64_t identity, std::span<const std::uint8_t> raw) {
    namespace b64 = boost::beast::detail::base64;
    std::vector<std::uint8_t> bin;
    bin.reserve(9 + raw.size());
    bin.push_back(state_format);
    for (int i = 7; i >= 0; --i) bin.push_back(static_cast<std::uint8_t>(identity >> (8 * i)));
    bin.insert(bin.end(), raw.begin(), raw.end());
    std::string out(b64::encoded_size(bin.size()), '\0');
    out.resize(b64::encode(out.data(), bin.data(), bin.size()));
    while (!out.empty() && out.back() == '=') out.pop_back();
    for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return out;
}

std::vector<std::uint8_t> decode_state(std::uint64_t identity, std::string_view text) {
    namespace b64 = boost::beast::detail::base64;
    auto bad = [&](const char* why) {
        return error(client_errc::invalid_paging_state, fmt::format("paging state string: {}", why));
    };
    std::string s(text);
    for (auto& c : s) {
        if (c == '-') c = '+';
        else if (c == '_') c = '/';
        else if (!std::isalnum(static_cast<unsigned char>(c))) throw bad("not base64url text");
    }
    if (s.size() % 4 == 1) throw bad("truncated");
    std::vector<std::uint8_t> bin(s.size() * 3 / 4 + 3);
    const auto [written, read] = b64::decode(bin.data(), s.data(), s.size());
    bin.resize(written);
    if (read != s.size() || bin.size() < 9 || bin[0] != state_format) throw bad("not a paging state made by cqlcoro");
    std::uint64_t id = 0;
    for (int i = 1; i <= 8; ++i) id = (id << 8) | bin[static_cast<std::size_t>(i)];
    if (id != identity) throw bad("made for another statement or other values");
    return {bin.begin() + 9, bin.end()};
}

}  // namespace

std::vector<std::uint8_t> decode_paging_state(const statement& s, std::string_view text) {
    return decode_state(identity_of(s), text);
}
std::vector<std::uint8_t> decode_paging_state(const bound_statement& s, std::string_view text) {
    return decode_state(identity_of(s), text);
}

std::exception_ptr make_request_exception(error_code ec, const stream_page& p) {
    const auto& d = p.result().diagnostics();
    auto what = detail::describe_request_failure(ec, d);
    if (p.number() > 0) what = fmt::format("page {} of the stream failed: {}", p.number(), what);
    return std::make_exception_ptr(error(ec, what, d));
}

// ---------------------------------------------------------------- the stream

namespace detail {

using page_handler = asio::any_completion_handler<void(error_code, stream_page)>;

struct pager_state : std::enable_shared_from_this<pager_state> {
    pager_state(session s, asio::any_io_executor e, std::variant<statement, bound_statement> st, stream_options o,
                std::shared_ptr<memory_budget> b)
        : sess(std::move(s)), ex(std::move(e)), stmt(std::move(st)), opts(std::move(o)), budget(std::move(b)),
          budget_timer(ex) {
        std::visit([&](const auto& x) { next_state = x.options().paging_state; }, stmt);
        resume = next_state;
        identity = std::visit([](const auto& x) { return identity_of(x); }, stmt);
        timeout = opts.page_timeout.value_or(
            std::visit([&](const auto& x) { return x.options().timeout.value_or(sess.params().request_timeout); }, stmt));
    }

    // A page's room in the budget and in the stream's counts, given back when the last copy goes.
    struct lease {
        lease(std::weak_ptr<pager_state> o, std::shared_ptr<memory_budget> b, std::size_t n)
            : owner(std::move(o)), budget(std::move(b)), bytes(n) {}
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        std::weak_ptr<pager_state> owner;
        std::shared_ptr<memory_budget> budget;
        std::size_t bytes = 0;
        ~lease() {
            if (auto o = owner.lock()) o->released(bytes);
            budget->release(bytes);
        }
    };

    struct completion {
        page_handler h;
        error_code ec;
        stream_page page;
    };

    session sess;
    asio::any_io_executor ex;
    std::variant<statement, bound_statement> stmt;
    stream_options opts;
    std::shared_ptr<memory_budget> budget;
    std::uint64_t identity = 0;
    std::chrono::milliseconds timeout{0};        // each page's (stream_options::page_timeout, or the statement's)
    std::optional<std::chrono::steady_clock::time_point> ends;  // stream_options::stream_timeout, from the first fetch
    bool out_of_time = false;                    // the next fetch is past `ends`: it fails instead

    mutable std::mutex m;
    std::deque<stream_page> ready;       // fetched ahead, not handed out yet
    std::optional<stream_page> failure;  // the failed page (its result has the diagnostics)
    error_code failure_ec;
    bool fetching = false, exhausted = false, closed = false;
    std::vector<std::uint8_t> next_state;  // for the next fetch
    std::vector<std::uint8_t> resume;      // after the last page handed out
    std::size_t fetched = 0;               // pages asked for so far (numbers the pages)
    std::size_t reserved = 0;              // the reservation of the fetch in flight (or granted)
    std::size_t estimate = 0;              // the largest page so far: what the next fetch reserves
    std::string pinned;
    std::optional<page_handler> waiter;    // a next_page() waiting
    std::chrono::steady_clock::time_point wait_start;
    std::shared_ptr<memory_budget::waiter> budget_waiter;
    bool waiting_budget = false, waiting_priority = false, granted = false;
    asio::steady_timer budget_timer;       // bounds a reader's wait for room
    std::size_t held_pages = 0, held_bytes = 0;
    stream_stats stats;

    void released(std::size_t bytes) {
        std::lock_guard lk(m);
        --held_pages;
        held_bytes -= std::min(held_bytes, bytes);
    }

    void hold(std::size_t bytes) {
        ++held_pages;
        held_bytes += bytes;
        stats.peak_pages = std::max(stats.peak_pages, held_pages);
        stats.peak_bytes = std::max(stats.peak_bytes, held_bytes);
    }

    // Under the lock: whether a fetch should start now. Returns the statement to send when it should
    // (the caller sends it after unlocking).
    std::optional<std::variant<statement, bound_statement>> want_fetch() {
        const bool demand = waiter.has_value() && ready.empty();
        if (waiting_budget && demand && !waiting_priority && budget->forget(budget_waiter))
            waiting_budget = false;  // a fetch ahead became the reader's: ask again, ahead of other fetches ahead
        if (closed || exhausted || fetching || failure || waiting_budget) return std::nullopt;
        if (!demand && ready.size() >= opts.prefetch) return std::nullopt;
        if (!granted) {
            estimate = std::max(estimate, budget->largest_page());
            if (!budget_waiter) {
                budget_waiter = std::make_shared<memory_budget::waiter>();
                // Posted: the budget may wake this stream from inside another stream's lock.
                budget_waiter->wake = [w = weak_from_this(), e = ex, b = budget](std::size_t bytes) {
                    asio::post(e, [w, b, bytes] {
                        if (auto s = w.lock()) s->on_granted(bytes);
                        else b->release(bytes);  // the stream is gone: the room goes back
                    });
                };
            }
            if (!budget->try_reserve(estimate, budget_waiter, demand)) {
                waiting_budget = true;
                waiting_priority = demand;
                ++stats.budget_waits;
                if (demand) arm_budget_timer();
                return std::nullopt;
            }
            reserved = estimate;
        }
        granted = false;
        fetching = true;
        if (!demand) ++stats.fetched_ahead;
        hold(reserved);
        ++fetched;
        // The page's time: its own timeout, cut to what the stream has left.
        auto page_time = timeout;
        if (opts.stream_timeout) {
            const auto now = std::chrono::steady_clock::now();
            if (!ends) ends = now + *opts.stream_timeout;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*ends - now);
            out_of_time = left.count() <= 0;
            page_time = std::min(page_time, left);
        }
        auto st = stmt;
        std::visit(
            [&](auto& x) {
                x.options().paging_state = next_state;
                x.options().timeout = page_time;
                if (!pinned.empty()) x.node_endpoint(pinned);
            },
            st);
        return st;
    }

    void arm_budget_timer() {
        budget_timer.expires_after(timeout);
        budget_timer.async_wait([w = weak_from_this()](error_code ec) {
            if (ec) return;
            if (auto s = w.lock()) s->budget_timed_out();
        });
    }

    void budget_timed_out() {
        std::optional<completion> done;
        {
            std::lock_guard lk(m);
            if (!waiting_budget || !waiter) return;
            diagnostics d;
            d.attempts.push_back({"", client_errc::memory_budget_exhausted,
                                  fmt::format("waited {} ms for room for page {} in a budget of {} bytes ({} in use, {} streams waiting)",
                                              timeout.count(), fetched + 1, budget->limit(), budget->in_use(), budget->waiting())});
            stream_page p;
            p.result_ = failed_result(std::move(d));
            p.number_ = fetched + 1;
            done = completion{std::move(*waiter), client_errc::memory_budget_exhausted, std::move(p)};
            waiter.reset();
        }
        deliver(std::move(*done));
    }

    void on_granted(std::size_t bytes) {
        std::unique_lock lk(m);
        waiting_budget = false;
        budget_timer.cancel();
        if (closed) {
            lk.unlock();
            budget->release(bytes);
            return;
        }
        granted = true;
        reserved = bytes;
        pump(lk);
    }

    // Starts a fetch if one is due. Called with the lock held; returns with it released.
    void pump(std::unique_lock<std::mutex>& lk) {
        auto st = want_fetch();
        const bool late = st && out_of_time;
        lk.unlock();
        if (!st) return;
        if (late) {  // the stream's time is up: the page fails without a request
            diagnostics d;
            d.attempts.push_back({"", client_errc::request_timeout,
                                  fmt::format("the stream's timeout of {} ms passed before this page was asked for", opts.stream_timeout->count())});
            on_fetched(client_errc::request_timeout, failed_result(std::move(d)));
            return;
        }
        auto self = shared_from_this();
        std::visit([&](auto& x) {
            sess.execute(std::move(x), [self](error_code ec, result r) { self->on_fetched(ec, std::move(r)); });
        }, *st);
    }

    void on_fetched(error_code ec, result r) {
        std::unique_lock lk(m);
        fetching = false;
        const auto number = fetched;
        const auto got = ec ? reserved : std::max<std::size_t>(r.memory_bytes(), 1);
        if (got != reserved) {
            budget->adjust(reserved, got);  // never waits, never calls back into this stream
            held_bytes = held_bytes - std::min(held_bytes, reserved) + got;
            stats.peak_bytes = std::max(stats.peak_bytes, held_bytes);
        }
        stream_page page;
        page.number_ = number;
        page.lease_ = std::make_shared<lease>(weak_from_this(), budget, got);
        if (closed) {  // cancelled meanwhile: the page goes at once (its lease, after the unlock)
            lk.unlock();
            return;
        }
        if (ec) {
            page.result_ = std::move(r);
            failure = std::move(page);
            failure_ec = ec;
            exhausted = true;
        } else {
            estimate = std::max(estimate, got);
            ++stats.pages;
            stats.rows += r.size();
            if (opts.pin_coordinator && pinned.empty()) pinned = r.coordinator();
            next_state.assign(r.paging_state().begin(), r.paging_state().end());
            if (next_state.empty()) exhausted = true;
            page.result_ = std::move(r);
            page.ok_ = true;
            ready.push_back(std::move(page));
        }
        std::optional<completion> done;
        if (waiter) done = take_next();
        pump(lk);
        if (done) deliver(std::move(*done));
    }

    // Under the lock, with a waiter: what it gets now, if anything.
    std::optional<completion> take_next() {
        if (wait_start != std::chrono::steady_clock::time_point{}) {  // the reader waited: until now
            stats.waited += std::chrono::steady_clock::now() - wait_start;
            wait_start = {};
        }
        auto give = [&](error_code ec, stream_page p) {
            completion c{std::move(*waiter), ec, std::move(p)};
            waiter.reset();
            return c;
        };
        if (!ready.empty()) {
            auto p = std::move(ready.front());
            ready.pop_front();
            resume.assign(p.result().paging_state().begin(), p.result().paging_state().end());
            return give({}, std::move(p));
        }
        if (failure) return give(failure_ec, *failure);
        if (closed) return give(asio::error::operation_aborted, {});
        if (exhausted && !fetching) return give({}, {});  // the end
        return std::nullopt;
    }

    // Completes a next_page() on its own executor, never inside the call that started it.
    void deliver(completion c) {
        auto hex = asio::get_associated_executor(c.h, ex);
        asio::post(ex, asio::bind_executor(hex, [c = std::move(c)]() mutable {
            auto slot = asio::get_associated_cancellation_slot(c.h);
            if (slot.is_connected()) slot.clear();
            std::move(c.h)(c.ec, std::move(c.page));
        }));
    }

    void next_page(page_handler h) {
        std::unique_lock lk(m);
        if (waiter) {
            lk.unlock();
            deliver(completion{std::move(h), asio::error::in_progress, {}});
            return;
        }
        waiter.emplace(std::move(h));
        const bool at_once = !ready.empty();
        auto done = take_next();
        if (done) {
            if (at_once) ++stats.ready_pages;
            pump(lk);
            deliver(std::move(*done));
            return;
        }
        ++stats.waited_pages;
        wait_start = std::chrono::steady_clock::now();
        auto slot = asio::get_associated_cancellation_slot(*waiter);
        if (slot.is_connected())
            slot.assign([w = weak_from_this()](asio::cancellation_type) {
                if (auto s = w.lock()) s->cancel();
            });
        pump(lk);
    }

    void cancel() {
        std::deque<stream_page> dropped;
        std::optional<completion> done;
        bool forget = false;
        {
            std::lock_guard lk(m);
            if (closed) return;
            closed = true;
            dropped.swap(ready);
            if (failure) dropped.push_back(std::move(*failure));  // released after the unlock
            failure.reset();
            if (waiter) done = take_next();
            forget = waiting_budget;
            budget_timer.cancel();
            if (granted) {  // room granted for a fetch that will not start
                granted = false;
                hold(reserved);
                dropped.emplace_back().lease_ = std::make_shared<lease>(weak_from_this(), budget, reserved);
            }
        }
        if (forget && !budget->forget(budget_waiter)) {
            // granted concurrently: on_granted() sees `closed` and gives the room back
        }
        dropped.clear();
        if (done) deliver(std::move(*done));
    }
};

}  // namespace detail

// ---------------------------------------------------------------- pager

pager& pager::operator=(pager&& other) noexcept {
    if (this != &other) {
        if (state_) state_->cancel();
        state_ = std::move(other.state_);
        current_ = std::move(other.current_);
        pos_ = other.pos_;
    }
    return *this;
}

pager::~pager() {
    if (state_) state_->cancel();
}

void pager::start_next_page(const std::shared_ptr<detail::pager_state>& s, page_handler h) {
    if (!s) {  // a moved-from or default pager
        auto hex = asio::get_associated_executor(h, asio::system_executor());
        asio::post(asio::system_executor(), asio::bind_executor(hex, [h = std::move(h)]() mutable {
            stream_page empty;
            empty.result_ = detail::failed_result(
                {.attempts = {{"", client_errc::empty_handle,
                               "next_page() on an empty pager (default-constructed or moved-from): get one from session.stream()"}}});
            std::move(h)(client_errc::empty_handle, std::move(empty));
        }));
        return;
    }
    s->next_page(std::move(h));
}

asio::any_io_executor pager::executor() const noexcept {
    return state_ ? state_->ex : asio::any_io_executor(asio::system_executor());
}

asio::awaitable<std::optional<row_view>> pager::next() {
    for (;;) {
        if (pos_ < current_.size()) co_return current_.rows()[pos_++];
        current_ = stream_page{};  // its room goes back before the next page is awaited
        pos_ = 0;
        current_ = co_await next_page();
        if (!current_) co_return std::nullopt;
    }
}

std::vector<std::uint8_t> pager::paging_state() const {
    if (!state_) return {};
    std::lock_guard lk(state_->m);
    return state_->resume;
}

std::string pager::paging_state_string() const {
    if (!state_) return {};
    std::lock_guard lk(state_->m);
    if (state_->resume.empty()) return {};
    return encode_state(state_->identity, state_->resume);
}

bool pager::done() const noexcept {
    if (!state_) return true;
    std::lock_guard lk(state_->m);
    return state_->closed || state_->failure || (state_->exhausted && !state_->fetching && state_->ready.empty());
}

stream_stats pager::stats() const {
    if (!state_) return {};
    std::lock_guard lk(state_->m);
    return state_->stats;
}

void pager::cancel() {
    current_ = stream_page{};
    pos_ = 0;
    if (state_) state_->cancel();
}

// ---------------------------------------------------------------- session

pager session::stream(statement s, stream_options o) {
    auto& impl = this->impl();
    if (!o.page_timeout) o.page_timeout = impl.timeout_for(s.options());  // the statement's, else its profile's
    auto b = o.budget ? o.budget : impl.stream_budget;
    return pager(std::make_shared<detail::pager_state>(*this, impl.ex, std::move(s), std::move(o), std::move(b)));
}

pager session::stream(bound_statement s, stream_options o) {
    auto& impl = this->impl();
    if (!o.page_timeout) o.page_timeout = impl.timeout_for(s.options());
    auto b = o.budget ? o.budget : impl.stream_budget;
    return pager(std::make_shared<detail::pager_state>(*this, impl.ex, std::move(s), std::move(o), std::move(b)));
}

std::shared_ptr<memory_budget> session::stream_budget() const {
    return impl().stream_budget;
}

}  // namespace cqlcoro
