// A prepared statement's result metadata, which follows the server's schema: readers take the current
// version with one acquire load; a writer (rare: once per schema change of the table) adds a version
// under a mutex. Old versions stay until the prepared_data goes, so no reader ever holds a freed one.
#include <cqlcoro/statement.hpp>

namespace cqlcoro {

const prepared_result_metadata prepared_data::empty_result_{};

void prepared_data::update_result(std::vector<std::uint8_t> id, std::vector<column_spec> columns) const {
    std::lock_guard lock(versions_mutex_);
    const auto& now = *current_.load(std::memory_order_relaxed);
    const auto held = now.columns();
    if (now.id == id && std::equal(held.begin(), held.end(), columns.begin(), columns.end())) return;
    auto set = columns.empty() ? nullptr : std::make_shared<const detail::column_set>(std::move(columns));
    versions_.push_front(prepared_result_metadata{std::move(id), std::move(set)});
    current_.store(&versions_.front(), std::memory_order_release);
}

std::size_t prepared_data::result_updates() const {
    std::lock_guard lock(versions_mutex_);
    const auto n = static_cast<std::size_t>(std::distance(versions_.begin(), versions_.end()));
    return n == 0 ? 0 : n - 1;  // the first version is PREPARE's own
}

}  // namespace cqlcoro
