// Options of a stream (session.stream(); see cqlcoro/pager.hpp) and the memory budget streams share.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <vector>

namespace cqlcoro {

namespace detail {
struct pager_state;
}

/// Room for pages, in bytes, shared by the streams that use it. A stream reserves room before it
/// fetches a page (as much as its largest page so far), sets the reservation to the page's real size
/// when it arrives, and gives it back when the page is released. A page larger than the whole budget
/// is let in when nothing else holds room, so a stream always makes progress. Thread-safe.
class memory_budget {
public:
    /// `bytes` == 0: no limit (the figures are still kept).
    static std::shared_ptr<memory_budget> create(std::size_t bytes);

    std::size_t limit() const noexcept { return limit_; }
    std::size_t in_use() const noexcept;
    /// The most bytes held at once so far.
    std::size_t peak() const noexcept;
    /// Streams waiting for room now.
    std::size_t waiting() const noexcept;
    /// The largest page seen by any stream of this budget: what a stream's first fetch reserves.
    std::size_t largest_page() const noexcept;

    explicit memory_budget(std::size_t bytes) : limit_(bytes) {}

private:
    friend struct detail::pager_state;  // streams reserve and give back room; applications read the figures
    /// A stream waiting for room.
    struct waiter {
        std::function<void(std::size_t granted)> wake;
    };
    /// Reserves `bytes` now and returns true; or queues `w` and returns false, and later reserves the
    /// bytes for it and calls w->wake(bytes) (outside the budget's lock). `priority`: a reader is waiting
    /// for this page, so it goes before fetches ahead. First come, first served otherwise.
    bool try_reserve(std::size_t bytes, const std::shared_ptr<waiter>& w, bool priority);
    /// A reservation changes size (its page arrived); it may go over the limit, never waits.
    void adjust(std::size_t from, std::size_t to);
    void release(std::size_t bytes);
    /// Takes `w` out of the queue; false when it was already granted (its wake() runs or ran).
    bool forget(const std::shared_ptr<waiter>& w);

    const std::size_t limit_;
    mutable std::mutex mutex_;
    std::size_t in_use_ = 0, peak_ = 0, largest_ = 0;
    struct entry {
        std::shared_ptr<waiter> w;
        std::size_t bytes;
        bool priority;
    };
    std::vector<entry> waiting_;  // priority first, then in order of arrival
    bool fits_locked(std::size_t bytes) const noexcept;
    void grant_locked(std::vector<entry>& out);
    void wake(std::vector<entry>& granted);
};

struct stream_options {
    /// Pages fetched ahead of the one being read (0: each page is fetched when it is asked for).
    std::size_t prefetch = 1;
    /// Every page from the coordinator of the first (e.g. to read one node's local data); otherwise
    /// each page follows the query plan like any request.
    bool pin_coordinator = false;
    /// The budget this stream's pages count against; none: the session's.
    std::shared_ptr<memory_budget> budget;
    /// Each page's request timeout (its retries included); none: the statement's timeout, or the
    /// session's request_timeout.
    std::optional<std::chrono::milliseconds> page_timeout;
    /// The whole stream's time, counted from the first next()/next_page(): each page's timeout is cut
    /// to what is left, and a page due after it fails with request_timeout instead of being asked for.
    /// None: no limit.
    std::optional<std::chrono::milliseconds> stream_timeout;
};

/// What a stream has done so far (read without stopping it; each figure exact on its own).
struct stream_stats {
    std::size_t pages = 0;            ///< pages received
    std::size_t rows = 0;             ///< rows received
    std::size_t ready_pages = 0;      ///< next_page() calls answered at once by a page fetched ahead
    std::size_t waited_pages = 0;     ///< next_page() calls that had to wait for their page to arrive
    std::size_t fetched_ahead = 0;    ///< fetches started before the reader asked for their page
    std::chrono::nanoseconds waited{0};  ///< time readers spent waiting in next_page() for pages
    std::size_t budget_waits = 0;     ///< fetches delayed for room in the memory budget
    std::size_t peak_pages = 0;       ///< most pages held at once: fetched ahead, in flight, or being read
    std::size_t peak_bytes = 0;       ///< most bytes of pages held at once
};

}  // namespace cqlcoro
