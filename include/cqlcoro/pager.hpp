// Streaming large results page by page, with bounded memory.
//
//   auto pager = session.stream(cqlcoro::statement("SELECT id, name FROM ks.users").page_size(5000));
//   while (auto row = co_await pager.next())                 // one row; the next page is already coming
//       use(row->get<cqlcoro::uuid>(0), row->get<std::string_view>(1));
//
//   while (auto user = co_await pager.next_as<user_row>())   // typed rows (struct or tuple), checked per page
//   while (auto page = co_await pager.next_page())           // whole pages: rows_view, coordinator, warnings
//
// While the application reads one page, the pager fetches the next ones (stream_options::prefetch, one
// by default), so a fast reader does not wait a round trip at each page boundary, and a slow one never
// has more than prefetch + 1 pages in memory. Streams of a session share a memory budget in bytes
// (session_params::stream_memory_budget, or their own): a stream waits for room rather than buffer.
//
// Each page is a request of its own through the session's chain (middlewares, timeout, query plan), so
// it may go to another coordinator, unless stream_options::pin_coordinator keeps the first page's.
// An error ends the stream at the next_page()/next() that needs the failed page, naming the page, the
// host and the server's error; pages before it are delivered. paging_state() (bytes, or a URL-safe
// string) resumes the same statement later in a new stream, e.g. one page per REST request.
//
// Destroying the pager, cancel(), or cancelling a waiting next() (Asio cancellation) stops fetching and
// releases its pages; other requests of the session are unaffected. A pager is used by one reader at a
// time (like an iterator); its stats() may be read from anywhere.
#pragma once

#include <cqlcoro/completion.hpp>
#include <cqlcoro/result.hpp>
#include <cqlcoro/rows.hpp>
#include <cqlcoro/statement.hpp>
#include <cqlcoro/stream_options.hpp>

#include <boost/asio/any_completion_handler.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace cqlcoro {

namespace detail {
struct pager_state;
}

/// One page of a stream: its rows (views over the received frame), and the result they came in. The
/// page's memory counts against the stream's budget until the page is destroyed.
class stream_page {
public:
    stream_page() = default;
    /// False at the end of the stream (and for a failed page).
    explicit operator bool() const noexcept { return ok_; }
    rows_view rows() const noexcept { return result_.rows(); }
    std::size_t size() const noexcept { return result_.size(); }
    bool empty() const noexcept { return result_.empty(); }
    const std::vector<column_spec>& columns() const noexcept { return result_.columns(); }
    /// The coordinator, warnings, diagnostics and paging state of this page.
    const cqlcoro::result& result() const noexcept { return result_; }
    /// 1-based position of the page in the stream (the failed page's, on error).
    std::size_t number() const noexcept { return number_; }

    /// The exception the default token throws for a failed page: the page's number, the host, the
    /// server's error, and the diagnostics.
    friend std::exception_ptr make_request_exception(error_code ec, const stream_page& p);

private:
    friend struct detail::pager_state;
    friend class pager;
    cqlcoro::result result_;
    std::shared_ptr<void> lease_;  // the page's room in the budget, given back on destruction
    std::size_t number_ = 0;
    bool ok_ = false;
};

class pager {
public:
    pager() = default;
    pager(pager&&) noexcept = default;
    pager& operator=(pager&& other) noexcept;
    pager(const pager&) = delete;
    pager& operator=(const pager&) = delete;
    /// Stops fetching and releases every page the stream holds (pages handed out stay valid).
    ~pager();

    /// The next page; at the end of the stream, an empty stream_page (false). Rows of the current page
    /// not yet read by next() are skipped.
    ///
    /// - Completion: void(error_code, stream_page); the failed page's result carries its diagnostics.
    ///   The default token throws cqlcoro::error naming the failed page and its host.
    /// - Lifetimes: the pager may be destroyed while a next_page() waits (it then completes with
    ///   operation_aborted); the page handed out stays valid after the pager is gone.
    /// - Executor: the handler runs on its associated executor (the session's when it has none), never
    ///   inline from next_page() itself.
    /// - Cancellation: terminal cancellation of a waiting next_page() stops the stream (as cancel()).
    /// - Thread safety: one reader at a time, as an iterator; stats() from anywhere.
    /// - Errors: the page request's (server errors, request_timeout, no_host_available, ...),
    ///   memory_budget_exhausted, empty_handle for an empty pager.
    template <class Token = default_token>
    auto next_page(Token&& token = {}) {
        return boost::asio::async_initiate<Token, void(error_code, stream_page)>(page_initiation{state_}, token);
    }

    /// The next row, or nullopt at the end. The view is valid until the next call of next()/next_as()
    /// (and while the pager lives). Within a page this completes at once; at its end it waits for the
    /// next page as next_page() does, with its errors and cancellation. The pager must outlive the call.
    boost::asio::awaitable<std::optional<row_view>> next();
    /// The same with any completion token: void(error_code, std::optional<row_view>).
    template <class Token>
    auto next(Token&& token) {
        return detail::run_as_operation<std::optional<row_view>>(
            executor(), [this] { return next(); }, std::forward<Token>(token));
    }

    /// The next row as T (a std::tuple, or a struct by position or field_names<T>); the C++ type is
    /// checked against the columns once per page (a mismatch fails with type_errc::type_mismatch).
    template <class T>
    boost::asio::awaitable<std::optional<T>> next_as() {
        std::optional<row_view> row = co_await next();
        if (!row) co_return std::nullopt;
        co_return row->template as<T>();
    }
    /// The same with any completion token: void(error_code, std::optional<T>).
    template <class T, class Token>
    auto next_as(Token&& token) {
        return detail::run_as_operation<std::optional<T>>(
            executor(), [this] { return next_as<T>(); }, std::forward<Token>(token));
    }

    /// The state that resumes the statement after the current page (the last one handed out): a new
    /// stream of the statement with .paging_state(it) goes on from there. Empty when the stream is at its end. Page granularity: rows of
    /// the current page that next() has not returned yet are not fetched again.
    std::vector<std::uint8_t> paging_state() const;
    /// The same as a URL-safe string (base64url) that also identifies the statement and its values,
    /// so resuming another statement with it fails with invalid_paging_state instead of reading
    /// something else. Empty at the end.
    std::string paging_state_string() const;
    /// True once the last page has been handed out (or the stream failed or was cancelled).
    bool done() const noexcept;

    stream_stats stats() const;

    /// A pager is not a range: its rows arrive asynchronously, so `for (auto row : pager)` cannot
    /// wait for them. These exist only to say so at compile time.
    template <class P = pager>
    auto begin() const {
        static_assert(sizeof(P) == 0, "a cqlcoro::pager is not a range, its rows arrive asynchronously: write "
                                      "`while (auto row = co_await pager.next()) { ... }` (or next_as<T>(), or next_page())");
    }
    template <class P = pager>
    auto end() const {
        static_assert(sizeof(P) == 0, "a cqlcoro::pager is not a range: write `while (auto row = co_await pager.next())`");
    }
    /// Stops fetching and releases the pages not yet handed out; a waiting next_page() completes
    /// with operation_aborted, and so does every later one.
    void cancel();

private:
    friend class session;
    explicit pager(std::shared_ptr<detail::pager_state> s) : state_(std::move(s)) {}

    struct page_initiation {
        std::shared_ptr<detail::pager_state> state;
        template <class Handler>
        void operator()(Handler&& handler) const {
            start_next_page(state, page_handler(std::forward<Handler>(handler)));
        }
    };
    using page_handler = boost::asio::any_completion_handler<void(error_code, stream_page)>;
    static void start_next_page(const std::shared_ptr<detail::pager_state>& s, page_handler h);
    /// The session's executor (the system executor for an empty pager).
    boost::asio::any_io_executor executor() const noexcept;

    std::shared_ptr<detail::pager_state> state_;
    stream_page current_;
    std::size_t pos_ = 0;
};

/// Decodes paging_state_string() for `s`, checking that it was made for this statement and values:
///   session.stream(stmt.paging_state(cqlcoro::decode_paging_state(stmt, text)))
/// Throws cqlcoro::error (invalid_paging_state) otherwise.
std::vector<std::uint8_t> decode_paging_state(const statement& s, std::string_view text);
std::vector<std::uint8_t> decode_paging_state(const bound_statement& s, std::string_view text);

}  // namespace cqlcoro
