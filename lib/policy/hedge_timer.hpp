// One timer for all of a session's speculative executions. Arming a hedge per request with its own
// Asio timer cost two allocations and several lock round trips in the reactor per request, even when
// the hedge never fires (the usual case); here a request links an intrusive entry into a list kept
// in due order, under one mutex, and unlinks it when it completes first. The one Asio timer is set
// to the list's head and only re-armed when that moves earlier, so nothing is allocated per request.
// Java 4's driver shares one wheel timer across requests for the same reason.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <mutex>

namespace cqlcoro::detail {

class hedge_timer {
public:
    using clock = std::chrono::steady_clock;

    /// What a request embeds. `due()` is called once for each arm() that cancel() did not undo, on the
    /// timer's executor, without the timer's lock held.
    class entry {
    public:
        virtual void due() = 0;

    protected:
        ~entry() = default;

    private:
        friend class hedge_timer;
        clock::time_point at_{};
        entry* prev_ = nullptr;
        entry* next_ = nullptr;
        bool linked_ = false;
    };

    explicit hedge_timer(boost::asio::any_io_executor ex);
    ~hedge_timer();
    hedge_timer(const hedge_timer&) = delete;
    hedge_timer& operator=(const hedge_timer&) = delete;

    /// Calls e.due() at `at` (or soon after) unless cancel(e) comes first. `e` must not be armed.
    void arm(entry& e, clock::time_point at);
    /// True: `e` was still waiting and its due() will not be called. False: due() runs, or has run.
    bool cancel(entry& e) noexcept;
    /// How many entries wait (for tests).
    std::size_t waiting() const;

private:
    struct core;
    static void wait(const std::shared_ptr<core>& c, clock::time_point at);
    static void fire(const std::shared_ptr<core>& c);
    std::shared_ptr<core> core_;
};

}  // namespace cqlcoro::detail
