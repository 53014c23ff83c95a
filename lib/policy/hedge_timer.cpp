// The shared hedge timer: an intrusive list in due order and one Asio timer set to its head.
#include "policy/hedge_timer.hpp"
#include "../namespaces.hpp"

namespace cqlcoro::detail {

namespace asio = boost::asio;

// Shared with the timer's pending wait, which holds it weakly: a wait that completes after the
// session is gone finds nothing and does nothing.
struct hedge_timer::core {
    explicit core(asio::any_io_executor ex) : timer(std::move(ex)) {}
    mutable std::mutex m;
    entry* head = nullptr;
    entry* tail = nullptr;
    std::size_t count = 0;
    asio::steady_timer timer;                        // touched only under m
    clock::time_point set_for = clock::time_point::max();  // what the timer waits for; max: nothing
};

hedge_timer::hedge_timer(asio::any_io_executor ex) : core_(std::make_shared<core>(std::move(ex))) {}

hedge_timer::~hedge_timer() {
    std::lock_guard lock(core_->m);
    core_->timer.cancel();
}

void hedge_timer::wait(const std::shared_ptr<core>& c, clock::time_point at) {
    c->set_for = at;
    c->timer.expires_at(at);  // cancels a wait for a later time: that one finds nothing to do
    c->timer.async_wait([w = std::weak_ptr<core>(c)](boost::system::error_code ec) {
        if (ec) return;
        if (auto s = w.lock()) fire(s);
    });
}

void hedge_timer::arm(entry& e, clock::time_point at) {
    auto& c = *core_;
    std::lock_guard lock(c.m);
    e.at_ = at;
    e.linked_ = true;
    // Most hedges share one delay, so a new entry nearly always goes last.
    entry* after = c.tail;
    while (after && after->at_ > at) after = after->prev_;
    e.prev_ = after;
    e.next_ = after ? after->next_ : c.head;
    if (e.next_) e.next_->prev_ = &e;
    else c.tail = &e;
    if (after) after->next_ = &e;
    else c.head = &e;
    ++c.count;
    if (at < c.set_for) wait(core_, at);
}

bool hedge_timer::cancel(entry& e) noexcept {
    auto& c = *core_;
    std::lock_guard lock(c.m);
    if (!e.linked_) return false;
    if (e.prev_) e.prev_->next_ = e.next_;
    else c.head = e.next_;
    if (e.next_) e.next_->prev_ = e.prev_;
    else c.tail = e.prev_;
    e.prev_ = e.next_ = nullptr;
    e.linked_ = false;
    --c.count;
    return true;  // the timer may still fire for it: it then finds the list's new head, or nothing
}

std::size_t hedge_timer::waiting() const {
    std::lock_guard lock(core_->m);
    return core_->count;
}

void hedge_timer::fire(const std::shared_ptr<core>& c) {
    entry* due = nullptr;  // the entries whose time came, chained through next_
    entry* last = nullptr;
    {
        std::lock_guard lock(c->m);
        c->set_for = clock::time_point::max();
        const auto now = clock::now();
        while (c->head && c->head->at_ <= now) {
            entry* e = c->head;
            c->head = e->next_;
            if (c->head) c->head->prev_ = nullptr;
            else c->tail = nullptr;
            e->linked_ = false;
            e->prev_ = e->next_ = nullptr;
            --c->count;
            (last ? last->next_ : due) = e;
            last = e;
        }
        if (c->head) wait(c, c->head->at_);
    }
    while (due) {
        entry* e = due;
        due = e->next_;  // read first: due() may arm the entry again
        e->next_ = nullptr;
        e->due();
    }
}

}  // namespace cqlcoro::detail
