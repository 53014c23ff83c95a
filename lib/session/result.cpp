// A result's accessors: everything it holds is in its shared state (result_builder.hpp); an empty
// result answers with empty values.
#include <cqlcoro/result.hpp>

#include "session/result_builder.hpp"

namespace cqlcoro {

namespace {
const detail::result_state& none() {
    static const detail::result_state empty;
    return empty;
}
}  // namespace

rows_view result::rows() const noexcept {
    static const result_page empty(std::vector<column_spec>{}, 0, {}, nullptr);
    return state_ && state_->page ? rows_view(state_->page) : empty.rows();
}

std::size_t result::size() const noexcept { return state_ && state_->page ? state_->page->row_count : 0; }

row_view result::one() const { return rows()[0]; }

const std::vector<column_spec>& result::columns() const noexcept {
    static const std::vector<column_spec> no_columns;
    return state_ && state_->page ? state_->page->columns : no_columns;
}

std::optional<result_page> result::page() const {
    if (!state_ || !state_->page) return std::nullopt;
    return result_page(result_page::indexed_t{}, std::shared_ptr<const detail::page_data>(state_, state_->page));
}

std::span<const std::uint8_t> result::paging_state() const noexcept { return (state_ ? *state_ : none()).paging_state; }
const std::vector<std::string>& result::warnings() const noexcept { return (state_ ? *state_ : none()).warnings; }
const std::optional<uuid>& result::tracing_id() const noexcept { return (state_ ? *state_ : none()).tracing_id; }
const std::optional<schema_change_info>& result::schema_change() const noexcept { return (state_ ? *state_ : none()).schema_change; }
const std::string& result::keyspace_set() const noexcept { return (state_ ? *state_ : none()).keyspace_set; }
const cqlcoro::diagnostics& result::diagnostics() const noexcept { return (state_ ? *state_ : none()).diagnostics; }
std::optional<bool> result::schema_in_agreement() const noexcept { return state_ ? state_->schema_agreement : std::nullopt; }
std::size_t result::memory_bytes() const noexcept { return state_ ? state_->memory : 0; }

}  // namespace cqlcoro
