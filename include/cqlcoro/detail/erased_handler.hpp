// A completion handler for void(error_code, result), type-erased without allocating: handlers up to
// `capacity` bytes (use_awaitable's, a lambda with a few captures, any of them wrapped by
// bind_cancellation_slot, cancel_after or with_diagnostics) live inside the object; larger ones on the
// heap. Unlike asio::any_completion_handler it costs no allocation per operation, which matters on the
// request path.
#pragma once

#include <cqlcoro/error.hpp>
#include <cqlcoro/result.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace cqlcoro::detail {

class erased_handler {
public:
    static constexpr std::size_t capacity = 96;

    erased_handler() = default;

    template <class Handler, class = std::enable_if_t<!std::is_same_v<std::decay_t<Handler>, erased_handler>>>
    explicit erased_handler(Handler&& h) {
        using H = std::decay_t<Handler>;
        if constexpr (fits<H>) {
            ::new (static_cast<void*>(storage_)) H(std::forward<Handler>(h));
            vt_ = &inline_table<H>;
        } else {
            *reinterpret_cast<H**>(storage_) = new H(std::forward<Handler>(h));
            vt_ = &heap_table<H>;
        }
    }

    erased_handler(erased_handler&& o) noexcept : vt_(o.vt_) {
        if (vt_) vt_->relocate(o.storage_, storage_);
        o.vt_ = nullptr;
    }
    erased_handler& operator=(erased_handler&& o) noexcept {
        if (this != &o) {
            reset();
            vt_ = o.vt_;
            if (vt_) vt_->relocate(o.storage_, storage_);
            o.vt_ = nullptr;
        }
        return *this;
    }
    erased_handler(const erased_handler&) = delete;
    erased_handler& operator=(const erased_handler&) = delete;
    ~erased_handler() { reset(); }

    explicit operator bool() const noexcept { return vt_ != nullptr; }

    void reset() noexcept {
        if (vt_) vt_->destroy(storage_);
        vt_ = nullptr;
    }

    boost::asio::cancellation_slot cancellation_slot() const noexcept {
        return vt_ ? vt_->slot(storage_) : boost::asio::cancellation_slot();
    }

    /// Completes on the handler's associated executor (`fallback` when it has none): right here if the
    /// caller already runs there and `may_run_inline`, otherwise through a post. Empties this object.
    void complete(const boost::asio::any_io_executor& fallback, bool may_run_inline, error_code ec, result r) {
        auto vt = vt_;
        vt_ = nullptr;
        vt->complete(storage_, fallback, may_run_inline, ec, std::move(r));
    }

private:
    struct table {
        void (*relocate)(unsigned char* from, unsigned char* to) noexcept;
        void (*destroy)(unsigned char* at) noexcept;
        boost::asio::cancellation_slot (*slot)(const unsigned char* at) noexcept;
        void (*complete)(unsigned char* at, const boost::asio::any_io_executor& fallback, bool may_run_inline, error_code ec, result r);
    };

    template <class H>
    static constexpr bool fits = sizeof(H) <= capacity && alignof(H) <= alignof(std::max_align_t) &&
                                 std::is_nothrow_move_constructible_v<H>;

    template <class H>
    static H* inline_at(unsigned char* at) noexcept { return std::launder(reinterpret_cast<H*>(at)); }
    template <class H>
    static const H* inline_at(const unsigned char* at) noexcept { return std::launder(reinterpret_cast<const H*>(at)); }
    template <class H>
    static H* heap_at(const unsigned char* at) noexcept { return *reinterpret_cast<H* const*>(at); }

    // The handler leaves the storage before it runs, so the operation's memory can be reused by it.
    template <class H>
    static void run(H h, const boost::asio::any_io_executor& fallback, bool may_run_inline, error_code ec, result r) {
        auto ex = boost::asio::get_associated_executor(h, fallback);
        auto call = [h = std::move(h), ec, r = std::move(r)]() mutable {
            boost::asio::get_associated_cancellation_slot(h).clear();
            std::move(h)(ec, std::move(r));
        };
        if (may_run_inline) boost::asio::dispatch(ex, std::move(call));
        else boost::asio::post(ex, std::move(call));
    }

    template <class H>
    static constexpr table inline_table{
        [](unsigned char* from, unsigned char* to) noexcept {
            ::new (static_cast<void*>(to)) H(std::move(*inline_at<H>(from)));
            inline_at<H>(from)->~H();
        },
        [](unsigned char* at) noexcept { inline_at<H>(at)->~H(); },
        [](const unsigned char* at) noexcept -> boost::asio::cancellation_slot {
            return boost::asio::get_associated_cancellation_slot(*inline_at<H>(at));
        },
        [](unsigned char* at, const boost::asio::any_io_executor& fallback, bool may_run_inline, error_code ec, result r) {
            H h(std::move(*inline_at<H>(at)));
            inline_at<H>(at)->~H();
            run(std::move(h), fallback, may_run_inline, ec, std::move(r));
        },
    };

    template <class H>
    static constexpr table heap_table{
        [](unsigned char* from, unsigned char* to) noexcept { *reinterpret_cast<H**>(to) = heap_at<H>(from); },
        [](unsigned char* at) noexcept { delete heap_at<H>(at); },
        [](const unsigned char* at) noexcept -> boost::asio::cancellation_slot {
            return boost::asio::get_associated_cancellation_slot(*heap_at<H>(at));
        },
        [](unsigned char* at, const boost::asio::any_io_executor& fallback, bool may_run_inline, error_code ec, result r) {
            H* p = heap_at<H>(at);
            H h(std::move(*p));
            delete p;
            run(std::move(h), fallback, may_run_inline, ec, std::move(r));
        },
    };

    alignas(std::max_align_t) unsigned char storage_[capacity];
    const table* vt_ = nullptr;
};

}  // namespace cqlcoro::detail
