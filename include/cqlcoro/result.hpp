// What session.execute() returns: rows (views over the received frame), the paging state, column
// metadata, warnings, the tracing id, the coordinator, and schema-change or set-keyspace information.
#pragma once

#include <cqlcoro/error.hpp>
#include <cqlcoro/rows.hpp>
#include <cqlcoro/value_types.hpp>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cqlcoro {

/// A schema change reported by a DDL statement (or pushed as an event).
struct schema_change_info {
    std::string change_type;  ///< CREATED, UPDATED, DROPPED
    std::string target;       ///< KEYSPACE, TABLE, TYPE, FUNCTION, AGGREGATE
    std::string keyspace;
    std::string name;         ///< the table, type, function or aggregate
    std::vector<std::string> arg_types;
};

namespace detail {
struct result_state;
}

/// An answer: immutable, and shared by its copies. Moving or copying one moves or copies one pointer;
/// what it holds (the received frame, its rows' index, the diagnostics) lives in one allocation made
/// when the answer arrived. A default-constructed result is empty: no rows, no diagnostics.
class result {
public:
    result() = default;

    /// Rows of this page (empty for statements that return none).
    rows_view rows() const noexcept;
    std::size_t size() const noexcept;
    bool empty() const noexcept { return size() == 0; }
    /// The first row; throws cqlcoro::error (row_out_of_range) when there is none.
    row_view one() const;
    const std::vector<column_spec>& columns() const noexcept;
    /// The page's rows with their owner (the answer's memory): keep it to hold the rows beyond this
    /// result. None when the answer carried no rows.
    std::optional<result_page> page() const;

    /// The state to fetch the next page with (statement.paging_state(...)); empty on the last page.
    std::span<const std::uint8_t> paging_state() const noexcept;
    bool has_more_pages() const noexcept { return !paging_state().empty(); }

    const std::vector<std::string>& warnings() const noexcept;
    /// Set when the statement asked for tracing: the session id in system_traces.
    const std::optional<uuid>& tracing_id() const noexcept;
    /// The host that answered ("address:port").
    const std::string& coordinator() const noexcept { return diagnostics().host; }
    /// The schema change a DDL statement made.
    const std::optional<schema_change_info>& schema_change() const noexcept;
    /// The keyspace a USE statement switched to (empty otherwise).
    const std::string& keyspace_set() const noexcept;
    /// Every attempt the request made, and on failure the server's error.
    const cqlcoro::diagnostics& diagnostics() const noexcept;
    /// For a schema change: whether every up node reported the same schema version before the result
    /// was handed back (session_params::schema_agreement_timeout); none for other results.
    std::optional<bool> schema_in_agreement() const noexcept;
    /// The memory this result holds: the received frame and the index of its rows.
    std::size_t memory_bytes() const noexcept;

private:
    friend struct result_builder;
    std::shared_ptr<detail::result_state> state_;  // never changed once the result is handed out
};

}  // namespace cqlcoro
