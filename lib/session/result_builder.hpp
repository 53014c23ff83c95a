// Builds results from answers (a friend of result): shared by the request path and the session.
#pragma once

#include <cqlcoro/result.hpp>
#include <cqlcoro/statement.hpp>

#include "protocol/responses.hpp"

#include <boost/container/small_vector.hpp>

#include <cstring>
#include <memory>
#include <optional>

namespace cqlcoro {

/// The result's parts from a response (the builder is a friend of result).
struct result_builder {
    // A received answer, decoded in place, and the index of its rows: one allocation, never moved (the
    // message and the index point into `body`). A small body lives inline.
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
    };

    static result from(std::shared_ptr<owned_response> f, const prepared_data* prepared, diagnostics d) {
        result r;
        r.diagnostics_ = std::move(d);
        r.warnings_ = std::move(f->message.warnings);
        if (f->message.tracing_id) {
            uuid u;
            std::memcpy(u.data, f->message.tracing_id->data(), 16);
            r.tracing_id_ = u;
        }
        auto& body = std::get<protocol::result_response>(f->message.body).body;
        if (auto* rows = std::get_if<protocol::rows_result>(&body)) {
            if (rows->metadata.paging_state) r.paging_state_ = *rows->metadata.paging_state;
            // With skip_metadata the columns come from PREPARE (indexed once, shared); otherwise they move
            // out of the frame we own.
            const auto count = static_cast<std::size_t>(rows->row_count);
            auto set = rows->metadata.columns.empty() && prepared && !prepared->result_columns().empty()
                           ? prepared->result_set
                           : std::make_shared<const detail::column_set>(std::move(rows->metadata.columns));
            // The page's index lives in the same allocation as the frame it points into.
            f->page.emplace(std::move(set), count);
            r.page_.emplace(std::shared_ptr<detail::page_data>(f, &*f->page), rows->content);
            r.memory_ = sizeof(owned_response) + f->body.capacity() + f->page->cells.capacity() * sizeof(detail::cell);
        } else if (const auto* sc = std::get_if<protocol::schema_change_result>(&body)) {
            r.schema_change_ = schema_change_info{sc->change.change_type, sc->change.target, sc->change.keyspace, sc->change.name,
                                                  sc->change.arg_types};
        } else if (const auto* ks = std::get_if<protocol::set_keyspace_result>(&body)) {
            r.keyspace_set_ = ks->keyspace;
        }
        return r;
    }
    static void agreed(result& r, bool agreement) { r.schema_agreement_ = agreement; }
    static result failed(diagnostics d) {
        result r;
        r.diagnostics_ = std::move(d);
        return r;
    }
};

}  // namespace cqlcoro
