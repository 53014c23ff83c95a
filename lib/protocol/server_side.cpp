#include "protocol/server_side.hpp"

#include <cqlcoro/protocol_version.hpp>

namespace cqlcoro::protocol {
namespace {

// ------------------------------------------------------------------ request decoding

value_view read_value(reader& r, std::uint8_t version) {
    const auto n = r.i32();
    if (n >= 0) return value_view{r.raw(static_cast<std::size_t>(n))};
    if (n == -1) return value_view::null();
    if (n == -2 && version >= 4) return value_view::unset();
    r.fail(protocol_errc::bad_value_length);
    return {};
}

struct value_range {
    std::size_t offset = 0;
    std::size_t count = 0;
    bool named = false;
};

// Values go to the shared storage first; spans into it are taken once all reading is done.
value_range read_values(reader& r, std::uint8_t version, bool named, decoded_request& d) {
    value_range out{d.values.size(), r.count(r.u16(), 4), named};
    for (std::size_t i = 0; i < out.count && r.ok(); ++i) {
        if (named) d.names.push_back(r.string());
        d.values.push_back(read_value(r, version));
    }
    return out;
}

void bind_values(const value_range& v, const decoded_request& d, std::span<const value_view>& values,
          std::span<const std::string_view>& names) {
    values = std::span(d.values).subspan(v.offset, v.count);
    if (v.named) names = std::span(d.names).subspan(v.offset, v.count);
}

std::uint32_t read_flags(reader& r, std::uint8_t version) {
    return version >= 5 ? static_cast<std::uint32_t>(r.i32()) : r.u8();
}

value_range read_params(reader& r, std::uint8_t version, query_params& p, decoded_request& d) {
    value_range v;
    p.cl = static_cast<consistency>(r.u16());
    const auto flags = read_flags(r, version);
    if (flags & query_flag::values) v = read_values(r, version, flags & query_flag::names_for_values, d);
    p.skip_metadata = flags & query_flag::skip_metadata;
    if (flags & query_flag::page_size) p.page_size = r.i32();
    if (flags & query_flag::paging_state) {
        if (auto b = r.bytes()) p.paging_state = *b;
    }
    if (flags & query_flag::serial_consistency) p.serial_consistency = static_cast<consistency>(r.u16());
    if (flags & query_flag::default_timestamp) p.default_timestamp = r.i64();
    if (version >= 5 && (flags & query_flag::keyspace)) p.keyspace = r.string();
    if (version >= 5 && (flags & query_flag::now_in_seconds)) p.now_in_seconds = r.i32();
    return v;
}

error_code read_request(reader& r, std::uint8_t version, opcode op, decoded_request& d) {
    switch (op) {
    case opcode::startup: {
        d.options.resize(r.count(r.u16(), 4));
        for (auto& [k, v] : d.options) {
            k = r.string();
            v = r.string();
        }
        d.message = startup_request{d.options};
        break;
    }
    case opcode::auth_response: d.message = auth_response_request{r.bytes()}; break;
    case opcode::options: d.message = options_request{}; break;
    case opcode::query: {
        query_request q;
        q.query = r.long_string();
        auto v = read_params(r, version, q.params, d);
        if (!r.ok()) return r.error();
        bind_values(v, d, q.params.values, q.params.names);
        d.message = q;
        break;
    }
    case opcode::prepare: {
        prepare_request p;
        p.query = r.long_string();
        if (version >= 5 && (r.i32() & 0x01)) p.keyspace = r.string();
        d.message = p;
        break;
    }
    case opcode::execute: {
        execute_request e;
        e.id = r.short_bytes();
        if (version >= 5) e.result_metadata_id = r.short_bytes();
        auto v = read_params(r, version, e.params, d);
        if (!r.ok()) return r.error();
        bind_values(v, d, e.params.values, e.params.names);
        d.message = e;
        break;
    }
    case opcode::batch: {
        batch_request b;
        b.type = static_cast<batch_type>(r.u8());
        if (r.ok() && static_cast<std::uint8_t>(b.type) > 2) return protocol_errc::bad_metadata;
        std::vector<value_range> ranges(r.count(r.u16(), 3));  // kind + [short] id length + [short] count
        d.statements.resize(ranges.size());
        for (std::size_t i = 0; i < ranges.size() && r.ok(); ++i) {
            if (r.u8() == 0)
                d.statements[i].query_or_id = r.long_string();
            else
                d.statements[i].query_or_id = r.short_bytes();
            ranges[i] = read_values(r, version, false, d);
        }
        b.cl = static_cast<consistency>(r.u16());
        const auto flags = read_flags(r, version);
        if (r.ok() && (flags & query_flag::names_for_values)) return protocol_errc::names_mismatch;
        if (flags & query_flag::serial_consistency) b.serial_consistency = static_cast<consistency>(r.u16());
        if (flags & query_flag::default_timestamp) b.default_timestamp = r.i64();
        if (version >= 5 && (flags & query_flag::keyspace)) b.keyspace = r.string();
        if (version >= 5 && (flags & query_flag::now_in_seconds)) b.now_in_seconds = r.i32();
        if (!r.ok()) return r.error();
        for (std::size_t i = 0; i < ranges.size(); ++i)
            d.statements[i].values = std::span(d.values).subspan(ranges[i].offset, ranges[i].count);
        b.statements = d.statements;
        d.message = b;
        break;
    }
    case opcode::register_: {
        d.events.resize(r.count(r.u16(), 2));
        for (auto& e : d.events) e = r.string();
        d.message = register_request{d.events};
        break;
    }
    default: return protocol_errc::unexpected_opcode;
    }
    return r.error();
}

// ------------------------------------------------------------------ response encoding

void write_inetaddr(writer& w, const inet& a) {
    w.u8(a.size);
    w.raw(bytes_view(a.bytes).first(a.size));
}

void write_type(writer& w, const cql_type& t) {
    w.u16(static_cast<std::uint16_t>(t.kind));
    switch (t.kind) {
    case type_kind::custom: w.string(t.custom_class); break;
    case type_kind::list:
    case type_kind::set:
    case type_kind::map:
        for (const auto& p : t.params) write_type(w, p);
        break;
    case type_kind::udt:
        w.string(t.keyspace);
        w.string(t.name);
        w.u16(static_cast<std::uint16_t>(t.params.size()));
        for (std::size_t i = 0; i < t.params.size(); ++i) {
            w.string(i < t.field_names.size() ? std::string_view(t.field_names[i]) : std::string_view());
            write_type(w, t.params[i]);
        }
        break;
    case type_kind::tuple:
        w.u16(static_cast<std::uint16_t>(t.params.size()));
        for (const auto& p : t.params) write_type(w, p);
        break;
    default: break;
    }
}

bool one_table(const std::vector<column_spec>& cols) {
    for (const auto& c : cols)
        if (c.keyspace != cols.front().keyspace || c.table != cols.front().table) return false;
    return !cols.empty();
}

// The column specs; `flags` says whether the global table spec is used.
void write_columns(writer& w, std::uint32_t flags, const std::vector<column_spec>& cols) {
    const bool global = flags & metadata_flag::global_tables_spec;
    if (global) {
        w.string(cols.front().keyspace);
        w.string(cols.front().table);
    }
    for (const auto& c : cols) {
        if (!global) {
            w.string(c.keyspace);
            w.string(c.table);
        }
        w.string(c.name);
        write_type(w, c.type);
    }
}

std::uint32_t column_flags(std::uint32_t flags, const std::vector<column_spec>& cols) {
    flags &= ~metadata_flag::global_tables_spec;
    return one_table(cols) ? flags | metadata_flag::global_tables_spec : flags;
}

void write_rows_metadata(writer& w, std::uint8_t version, const rows_metadata& m) {
    std::uint32_t flags = column_flags(m.flags, m.columns) & ~(metadata_flag::has_more_pages | metadata_flag::metadata_changed);
    if (m.paging_state) flags |= metadata_flag::has_more_pages;
    if (m.new_metadata_id && version >= 5) flags |= metadata_flag::metadata_changed;
    if (m.columns.empty()) flags |= metadata_flag::no_metadata;
    w.i32(static_cast<std::int32_t>(flags));
    w.i32(m.columns.empty() ? m.column_count : static_cast<std::int32_t>(m.columns.size()));
    if (m.paging_state) w.bytes(*m.paging_state);
    if (flags & metadata_flag::metadata_changed) w.short_bytes(*m.new_metadata_id);
    if (!(flags & metadata_flag::no_metadata)) write_columns(w, flags, m.columns);
}

void write_schema_change(writer& w, const schema_change& c) {
    w.string(c.change_type);
    w.string(c.target);
    w.string(c.keyspace);
    if (c.target != "KEYSPACE") w.string(c.name);
    if (c.target == "FUNCTION" || c.target == "AGGREGATE") {
        w.u16(static_cast<std::uint16_t>(c.arg_types.size()));
        for (const auto& a : c.arg_types) w.string(a);
    }
}

void write_optional_bytes(writer& w, const std::optional<byte_buffer>& b) {
    if (b)
        w.bytes(*b);
    else
        w.null_bytes();
}

void write_reasons(writer& w, std::uint8_t version, std::int32_t num_failures, const std::vector<failure_reason>& reasons) {
    if (version < 5) {
        w.i32(num_failures);
        return;
    }
    w.i32(static_cast<std::int32_t>(reasons.size()));
    for (const auto& f : reasons) {
        write_inetaddr(w, f.endpoint);
        w.u16(f.code);
    }
}

template <class E>
void write_acks(writer& w, const E& d) {
    w.u16(static_cast<std::uint16_t>(d.cl));
    w.i32(d.received);
    w.i32(d.block_for);
}

struct body_writer {
    std::uint8_t version;
    writer& w;

    opcode operator()(const error_response& e) const {
        w.i32(e.code);
        w.string(e.message);
        std::visit([&](const auto& d) { detail(d); }, e.detail);
        return opcode::error;
    }
    void detail(std::monostate) const {}
    void detail(const unavailable_error& d) const {
        w.u16(static_cast<std::uint16_t>(d.cl));
        w.i32(d.required);
        w.i32(d.alive);
    }
    void detail(const write_timeout_error& d) const {
        write_acks(w, d);
        w.string(d.write_type);
        if (version >= 5 && d.write_type == "CAS") w.i16(d.contentions.value_or(0));
    }
    void detail(const read_timeout_error& d) const {
        write_acks(w, d);
        w.u8(d.data_present ? 1 : 0);
    }
    void detail(const read_failure_error& d) const {
        write_acks(w, d);
        write_reasons(w, version, d.num_failures, d.reasons);
        w.u8(d.data_present ? 1 : 0);
    }
    void detail(const write_failure_error& d) const {
        write_acks(w, d);
        write_reasons(w, version, d.num_failures, d.reasons);
        w.string(d.write_type);
    }
    void detail(const function_failure_error& d) const {
        w.string(d.keyspace);
        w.string(d.function);
        w.u16(static_cast<std::uint16_t>(d.arg_types.size()));
        for (const auto& a : d.arg_types) w.string(a);
    }
    void detail(const already_exists_error& d) const {
        w.string(d.keyspace);
        w.string(d.table);
    }
    void detail(const unprepared_error& d) const { w.short_bytes(d.id); }
    void detail(const cas_write_unknown_error& d) const {
        write_acks(w, d);
    }

    opcode operator()(const ready_response&) const { return opcode::ready; }
    opcode operator()(const authenticate_response& a) const {
        w.string(a.authenticator);
        return opcode::authenticate;
    }
    opcode operator()(const supported_response& s) const {
        w.u16(static_cast<std::uint16_t>(s.options.size()));
        for (const auto& [k, vs] : s.options) {
            w.string(k);
            w.u16(static_cast<std::uint16_t>(vs.size()));
            for (const auto& v : vs) w.string(v);
        }
        return opcode::supported;
    }
    opcode operator()(const result_response& r) const {
        std::visit([&](const auto& b) { result(b); }, r.body);
        return opcode::result;
    }
    void result(const void_result&) const { w.i32(1); }
    void result(const rows_result& rows) const {
        w.i32(2);
        write_rows_metadata(w, version, rows.metadata);
        w.i32(rows.row_count);
        w.raw(rows.content);
    }
    void result(const set_keyspace_result& s) const {
        w.i32(3);
        w.string(s.keyspace);
    }
    void result(const prepared_result& p) const {
        w.i32(4);
        w.short_bytes(p.id);
        if (version >= 5) w.short_bytes(p.result_metadata_id);
        const auto flags = column_flags(p.variables.flags, p.variables.columns);
        w.i32(static_cast<std::int32_t>(flags));
        w.i32(static_cast<std::int32_t>(p.variables.columns.size()));
        if (version >= 4) {
            w.i32(static_cast<std::int32_t>(p.variables.pk_indexes.size()));
            for (auto i : p.variables.pk_indexes) w.u16(i);
        }
        write_columns(w, flags, p.variables.columns);
        write_rows_metadata(w, version, p.result);
    }
    void result(const schema_change_result& s) const {
        w.i32(5);
        write_schema_change(w, s.change);
    }
    opcode operator()(const event_response& e) const {
        if (auto t = std::get_if<topology_change_event>(&e.event)) {
            w.string("TOPOLOGY_CHANGE");
            w.string(t->change);
            write_inetaddr(w, t->address);
            w.i32(t->address.port);
        } else if (auto s = std::get_if<status_change_event>(&e.event)) {
            w.string("STATUS_CHANGE");
            w.string(s->change);
            write_inetaddr(w, s->address);
            w.i32(s->address.port);
        } else {
            w.string("SCHEMA_CHANGE");
            write_schema_change(w, std::get<schema_change_event>(e.event).change);
        }
        return opcode::event;
    }
    opcode operator()(const auth_challenge_response& a) const {
        write_optional_bytes(w, a.token);
        return opcode::auth_challenge;
    }
    opcode operator()(const auth_success_response& a) const {
        write_optional_bytes(w, a.token);
        return opcode::auth_success;
    }
};

}  // namespace

boost::system::result<decoded_request> decode_request(const frame_header& h, bytes_view body) {
    if (h.response) return error_code(protocol_errc::unexpected_opcode);
    if (!is_request_opcode(h.op)) return error_code(protocol_errc::unexpected_opcode);
    reader r(body);
    decoded_request d;
    if (h.flags & frame_flag::custom_payload) {
        d.custom_payload.resize(r.count(r.u16(), 6));
        for (auto& [k, v] : d.custom_payload) {
            k = r.string();
            v = r.bytes().value_or(bytes_view{});
        }
    }
    if (auto ec = read_request(r, h.version, h.op, d)) return ec;
    return d;
}

error_code encode_response(std::uint8_t version, std::int16_t stream, const response& r, byte_buffer& out, compression c) {
    if (!is_supported(version)) return protocol_errc::unsupported_version;
    frame_header h;
    h.version = version;
    h.response = true;
    h.stream = stream;
    const std::size_t start = out.size();
    out.resize(start + header_size);
    writer w(out);
    if (r.tracing_id) {
        h.flags |= frame_flag::tracing;
        w.raw(*r.tracing_id);
    }
    if (!r.warnings.empty() && version >= 4) {
        h.flags |= frame_flag::warning;
        w.u16(static_cast<std::uint16_t>(r.warnings.size()));
        for (const auto& s : r.warnings) w.string(s);
    }
    if (!r.custom_payload.empty() && version >= 4) {
        h.flags |= frame_flag::custom_payload;
        w.u16(static_cast<std::uint16_t>(r.custom_payload.size()));
        for (const auto& [k, v] : r.custom_payload) {
            w.string(k);
            write_optional_bytes(w, v);
        }
    }
    h.op = std::visit(body_writer{version, w}, r.body);
    return seal_frame(h, start, version < 5 ? c : compression::none, out);
}

}  // namespace cqlcoro::protocol
