// Builds results from answers (a friend of result): shared by the request path and the session.
#pragma once

#include <cqlcoro/result.hpp>
#include <cqlcoro/statement.hpp>

#include "failure.hpp"
#include "protocol/responses.hpp"

#include <boost/container/small_vector.hpp>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cqlcoro {

namespace connection {
struct response_frame;
}

namespace detail {

// What a result holds. For an answer it lives inside the answer's own allocation (owned_response),
// beside the frame its rows and paging state point into; a failed result has one of its own.
struct result_state {
    const page_data* page = nullptr;  // the rows' index, when the answer carried rows
    std::vector<std::uint8_t> paging_state;
    std::vector<std::string> warnings;
    std::optional<uuid> tracing_id;
    std::optional<schema_change_info> schema_change;
    std::string keyspace_set;
    std::optional<bool> schema_agreement;
    std::size_t memory = 0;
    cqlcoro::diagnostics diagnostics;
};

}  // namespace detail

/// The result's parts from a response (the builder is a friend of result).
struct result_builder {
    // A received answer, decoded in place, the index of its rows and the result's state: one
    // allocation, never moved (the message and the index point into `body`). A small body lives inline.
    struct owned_response {
        owned_response(const protocol::frame_header& h, protocol::bytes_view raw) : body(raw.begin(), raw.end()) {
            auto m = protocol::decode_response(h, protocol::bytes_view(body.data(), body.size()));
            if (m) message = std::move(*m);
            else failure = m.error();
        }
        owned_response(const owned_response&) = delete;
        owned_response& operator=(const owned_response&) = delete;

        boost::container::small_vector<std::uint8_t, 256> body;
        protocol::response message;
        error_code failure;  // the body did not decode
        std::optional<detail::page_data> page;
        detail::result_state state;
    };

    /// The result of an answer whose body decoded as a RESULT; a failure when its rows do not match
    /// their metadata.
    static detail::fallible<result> from(std::shared_ptr<owned_response> f, const prepared_data* prepared, diagnostics d) {
        std::string_view malformed;
        auto r = build(std::move(f), prepared, std::move(d), malformed);
        if (!malformed.empty()) return detail::failure{type_errc::bad_collection, std::string(malformed)};
        return r;
    }
    /// The same for the request path, without the value-or-failure wrapper: `malformed` says why the
    /// rows do not match their metadata (the result is then not to be used).
    static result build(std::shared_ptr<owned_response> f, const prepared_data* prepared, diagnostics d, std::string_view& malformed) {
        auto& st = f->state;
        st.diagnostics = std::move(d);
        st.warnings = std::move(f->message.warnings);
        if (f->message.tracing_id) {
            uuid u;
            std::memcpy(u.data, f->message.tracing_id->data(), 16);
            st.tracing_id = u;
        }
        auto& body = std::get<protocol::result_response>(f->message.body).body;
        if (auto* rows = std::get_if<protocol::rows_result>(&body)) {
            if (rows->metadata.paging_state) st.paging_state = std::move(*rows->metadata.paging_state);
            // With skip_metadata the columns come from PREPARE (indexed once, shared); otherwise they move
            // out of the frame we own.
            const auto count = static_cast<std::size_t>(rows->row_count);
            std::shared_ptr<const detail::column_set> set;
            if (rows->metadata.new_metadata_id && prepared) {
                // v5: the table changed since PREPARE; later executions send the new id and skip these again.
                prepared->update_result(std::move(*rows->metadata.new_metadata_id), rows->metadata.columns);
                set = prepared->result().set;
            } else if (rows->metadata.columns.empty() && prepared && prepared->result().set) {
                set = prepared->result().set;
            } else {
                set = std::make_shared<const detail::column_set>(std::move(rows->metadata.columns));
            }
            // The page's index lives in the same allocation as the frame it points into.
            f->page.emplace(std::move(set), count);
            malformed = detail::index_cells(*f->page, rows->content);
            if (!malformed.empty()) return result();
            st.page = &*f->page;
            st.memory = sizeof(owned_response) + f->body.capacity() + f->page->cells.capacity() * sizeof(detail::cell);
        } else if (const auto* sc = std::get_if<protocol::schema_change_result>(&body)) {
            st.schema_change = schema_change_info{sc->change.change_type, sc->change.target, sc->change.keyspace, sc->change.name,
                                                  sc->change.arg_types};
        } else if (const auto* ks = std::get_if<protocol::set_keyspace_result>(&body)) {
            st.keyspace_set = ks->keyspace;
        }
        result r;
        r.state_ = std::shared_ptr<detail::result_state>(std::move(f), &st);
        return r;
    }
    // A result a middleware returned: it carries the request's diagnostics. A result that is not the
    // request's own (shared with another holder) keeps its own, as it may be read elsewhere.
    static void set_diagnostics(result& r, diagnostics d) {
        if (!r.state_) r = failed(std::move(d));
        else if (r.state_.use_count() == 1) r.state_->diagnostics = std::move(d);
    }
    static void agreed(result& r, bool agreement) {
        if (r.state_) r.state_->schema_agreement = agreement;
    }
    static result failed(diagnostics d) {
        result r;
        r.state_ = std::make_shared<detail::result_state>();
        r.state_->diagnostics = std::move(d);
        return r;
    }
};

namespace detail {
/// A whole answer frame as a result (the control connection's and the session's own queries).
fallible<result> result_from_frame(const connection::response_frame& f);
}  // namespace detail

}  // namespace cqlcoro
