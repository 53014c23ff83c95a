#include "session/encode.hpp"

#include <boost/container/small_vector.hpp>

#include <fmt/format.h>

namespace cqlcoro {
namespace detail {

void throw_simple_value_error(error_code ec, std::size_t i, const std::string& cpp_type) {
    throw error(ec, fmt::format("value {} of the statement (a {}): {}", i, cpp_type, ec.message()));
}

}  // namespace detail

namespace session_detail {
namespace {

using protocol::value_view;

// The bound values as the codec's views: null, unset or bytes.
using value_views = boost::container::small_vector<value_view, 16>;  // no allocation for 16 values or fewer

value_views views_of(const bound_values& v) {
    value_views out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v.is_null(i)) out.push_back(value_view::null());
        else if (v.is_unset(i)) out.push_back(value_view::unset());
        else out.push_back({v.value(i)});
    }
    return out;
}

// Options that every kind shares; the caller owns `payload` while the frame is encoded.
struct common {
    protocol::frame_options frame;
    std::vector<std::pair<std::string_view, protocol::bytes_view>> payload;
};

common frame_options_of(const encode_context& ctx, const statement_options& o) {
    common c;
    c.frame.tracing = o.tracing;
    c.frame.compression = ctx.compression;
    for (const auto& [k, v] : o.custom_payload) c.payload.emplace_back(k, protocol::bytes_view(v));
    return c;
}

protocol::query_params params_of(const encode_context& ctx, const statement_options& o, std::span<const value_view> values) {
    protocol::query_params p;
    p.cl = o.cl.value_or(ctx.default_cl);
    p.values = values;
    p.page_size = o.page_size ? o.page_size : ctx.default_page_size;
    if (!o.paging_state.empty()) p.paging_state = protocol::bytes_view(o.paging_state);
    p.serial_consistency = o.serial_cl ? o.serial_cl : ctx.default_serial_cl;
    p.default_timestamp = o.timestamp ? o.timestamp : ctx.default_timestamp;
    p.keyspace = o.keyspace;
    p.now_in_seconds = o.now_in_seconds;
    return p;
}

}  // namespace

error_code encode_statement(const encode_context& ctx, const statement& s, protocol::byte_buffer& out) {
    const auto values = views_of(s.values());
    std::vector<std::string_view> names(s.names().begin(), s.names().end());
    auto c = frame_options_of(ctx, s.options());
    c.frame.custom_payload = c.payload;
    protocol::query_request q{s.query(), params_of(ctx, s.options(), values)};
    q.params.names = names;
    return protocol::encode_request(ctx.version, q, c.frame, out);
}

error_code encode_statement(const encode_context& ctx, const bound_statement& s, protocol::byte_buffer& out) {
    const auto values = views_of(s.values());
    auto c = frame_options_of(ctx, s.options());
    c.frame.custom_payload = c.payload;
    const auto& p = s.prepared();
    const auto& rm = p.result();
    protocol::execute_request e{p.id, rm.id, params_of(ctx, s.options(), values)};
    // The rows metadata is known from PREPARE: ask the server not to repeat it. v5 checks it by id and
    // sends the columns again when they changed; earlier versions drop the statement on a schema change
    // (UNPREPARED), and the PREPARE sent again brings the new columns.
    e.params.skip_metadata = rm.set != nullptr;
    return protocol::encode_request(ctx.version, e, c.frame, out);
}

error_code encode_statement(const encode_context& ctx, const batch& b, protocol::byte_buffer& out) {
    std::vector<value_views> values;
    values.reserve(b.entries().size());
    std::vector<protocol::batch_statement> entries;
    entries.reserve(b.entries().size());
    for (const auto& entry : b.entries()) {
        if (const auto* s = std::get_if<statement>(&entry)) {
            if (!s->names().empty()) return client_errc::invalid_statement;  // Cassandra refuses named values in batches
            values.push_back(views_of(s->values()));
            entries.push_back({std::string_view(s->query()), values.back()});
        } else {
            const auto& bs = std::get<bound_statement>(entry);
            values.push_back(views_of(bs.values()));
            entries.push_back({protocol::bytes_view(bs.prepared().id), values.back()});
        }
    }
    const auto& o = b.options();
    auto c = frame_options_of(ctx, o);
    c.frame.custom_payload = c.payload;
    protocol::batch_request r;
    r.type = static_cast<protocol::batch_type>(b.kind());
    r.statements = entries;
    r.cl = o.cl.value_or(ctx.default_cl);
    r.serial_consistency = o.serial_cl ? o.serial_cl : ctx.default_serial_cl;
    r.default_timestamp = o.timestamp ? o.timestamp : ctx.default_timestamp;
    r.keyspace = o.keyspace;
    r.now_in_seconds = o.now_in_seconds;
    return protocol::encode_request(ctx.version, r, c.frame, out);
}

error_code encode_prepare(const encode_context& ctx, std::string_view query, std::string_view keyspace, protocol::byte_buffer& out) {
    protocol::frame_options f;
    f.compression = ctx.compression;
    return protocol::encode_request(ctx.version, protocol::prepare_request{query, keyspace}, f, out);
}

}  // namespace session_detail
}  // namespace cqlcoro
