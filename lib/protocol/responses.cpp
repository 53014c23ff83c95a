#include "protocol/responses.hpp"

#include <fmt/format.h>

namespace cqlcoro::protocol {
namespace {

constexpr int max_type_depth = 64;

byte_buffer own(bytes_view b) { return {b.begin(), b.end()}; }

std::optional<byte_buffer> own(std::optional<bytes_view> b) {
    if (!b) return std::nullopt;
    return own(*b);
}

inet read_inetaddr(reader& r) {
    inet a;
    auto b = r.inetaddr();
    a.size = static_cast<std::uint8_t>(b.size());
    std::copy(b.begin(), b.end(), a.bytes.begin());
    return a;
}

inet read_inet(reader& r) {
    inet a = read_inetaddr(r);
    a.port = r.i32();
    return a;
}

consistency read_consistency(reader& r) { return static_cast<consistency>(r.u16()); }

std::vector<failure_reason> read_reason_map(reader& r) {
    // Each entry is at least a 1-byte size, 4 address bytes and a 2-byte code.
    std::vector<failure_reason> out(r.count(r.i32(), 7));
    for (auto& f : out) {
        f.endpoint = read_inetaddr(r);
        f.code = r.u16();
    }
    return out;
}

// The fields that open the timeout and failure bodies: consistency, replicas that answered, replicas needed.
template <class E>
void read_acks(reader& r, E& d) {
    d.cl = read_consistency(r);
    d.received = r.i32();
    d.block_for = r.i32();
}

// v4 sends a count of failed replicas; v5 a map of replica to reason.
template <class E>
void read_failures(reader& r, std::uint8_t version, E& d) {
    if (version >= 5) {
        d.reasons = read_reason_map(r);
        d.num_failures = static_cast<std::int32_t>(d.reasons.size());
    } else {
        d.num_failures = r.i32();
    }
}

error_code read_columns(reader& r, std::uint32_t flags, std::int32_t count, std::vector<column_spec>& out) {
    std::string ks, table;
    const bool global = flags & metadata_flag::global_tables_spec;
    if (global) {
        ks = r.string();
        table = r.string();
    }
    // Each column spec is at least a 2-byte name length and a 2-byte type id.
    out.resize(r.count(count, 4));
    for (auto& c : out) {
        if (global) {
            c.keyspace = ks;
            c.table = table;
        } else {
            c.keyspace = r.string();
            c.table = r.string();
        }
        c.name = r.string();
        if (auto ec = read_type(r, c.type)) return ec;
        if (!r.ok()) break;
    }
    return r.error();
}

error_code read_rows_metadata(reader& r, std::uint8_t version, rows_metadata& m) {
    m.flags = static_cast<std::uint32_t>(r.i32());
    m.column_count = r.i32();
    if (r.ok() && m.column_count < 0) return protocol_errc::bad_metadata;
    if (m.flags & metadata_flag::has_more_pages) {
        m.paging_state = own(r.bytes());
        if (!m.paging_state) m.flags &= ~metadata_flag::has_more_pages;  // a null state means no more pages
    }
    if (version >= 5 && (m.flags & metadata_flag::metadata_changed)) m.new_metadata_id = own(r.short_bytes());
    if (!(m.flags & metadata_flag::no_metadata)) {
        if (auto ec = read_columns(r, m.flags, m.column_count, m.columns)) return ec;
    }
    return r.error();
}

error_code read_prepared_metadata(reader& r, std::uint8_t version, prepared_metadata& m) {
    m.flags = static_cast<std::uint32_t>(r.i32());
    auto count = r.i32();
    if (r.ok() && count < 0) return protocol_errc::bad_metadata;
    if (version >= 4) {
        m.pk_indexes.resize(r.count(r.i32(), 2));
        for (auto& i : m.pk_indexes) {
            i = r.u16();
            if (r.ok() && i >= count) return protocol_errc::bad_metadata;
        }
    }
    return read_columns(r, m.flags, count, m.columns);
}

error_code read_rows(reader& r, std::uint8_t version, rows_result& rows) {
    if (auto ec = read_rows_metadata(r, version, rows.metadata)) return ec;
    rows.row_count = r.i32();
    if (!r.ok()) return r.error();
    if (rows.row_count < 0) return protocol_errc::bad_rows;
    const auto* begin = r.position();
    const std::uint64_t cols = static_cast<std::uint64_t>(rows.metadata.column_count);
    // Rows without columns take no bytes: 2^31 of them would be a loop of 2^31 steps for whoever reads
    // them. No CQL query selects nothing, so no server sends them.
    if (cols == 0 && rows.row_count > 0) return protocol_errc::bad_rows;
    if (cols != 0) {
        // Every cell is at least its 4-byte length: bound the walk by the bytes that are there.
        const std::uint64_t cells = static_cast<std::uint64_t>(rows.row_count) * cols;
        if (cells > r.remaining() / 4) return protocol_errc::bad_rows;
        for (std::uint64_t i = 0; i < cells; ++i) {
            auto n = r.i32();
            if (n > 0) r.raw(static_cast<std::size_t>(n));
            if (!r.ok()) return protocol_errc::bad_rows;
        }
    }
    rows.content = bytes_view(begin, static_cast<std::size_t>(r.position() - begin));
    return {};
}

error_code read_schema_change(reader& r, schema_change& c) {
    c.change_type = r.string();
    c.target = r.string();
    if (!r.ok()) return r.error();
    if (c.target == "KEYSPACE") {
        c.keyspace = r.string();
    } else if (c.target == "TABLE" || c.target == "TYPE") {
        c.keyspace = r.string();
        c.name = r.string();
    } else if (c.target == "FUNCTION" || c.target == "AGGREGATE") {
        c.keyspace = r.string();
        c.name = r.string();
        c.arg_types = r.string_list();
    } else {
        return protocol_errc::bad_schema_change;
    }
    return r.error();
}

error_code read_error(reader& r, std::uint8_t version, error_response& e) {
    e.code = r.i32();
    e.message = r.string();
    if (!r.ok()) return r.error();
    switch (static_cast<server_error>(e.code)) {
    case server_error::unavailable: {
        unavailable_error d;
        d.cl = read_consistency(r);
        d.required = r.i32();
        d.alive = r.i32();
        e.detail = d;
        break;
    }
    case server_error::write_timeout: {
        write_timeout_error d;
        read_acks(r, d);
        d.write_type = r.string();
        if (version >= 5 && d.write_type == "CAS" && r.remaining() >= 2) d.contentions = r.i16();
        e.detail = std::move(d);
        break;
    }
    case server_error::read_timeout: {
        read_timeout_error d;
        read_acks(r, d);
        d.data_present = r.u8() != 0;
        e.detail = d;
        break;
    }
    case server_error::read_failure: {
        read_failure_error d;
        read_acks(r, d);
        read_failures(r, version, d);
        d.data_present = r.u8() != 0;
        e.detail = std::move(d);
        break;
    }
    case server_error::write_failure: {
        write_failure_error d;
        read_acks(r, d);
        read_failures(r, version, d);
        d.write_type = r.string();
        e.detail = std::move(d);
        break;
    }
    case server_error::function_failure: {
        function_failure_error d;
        d.keyspace = r.string();
        d.function = r.string();
        d.arg_types = r.string_list();
        e.detail = std::move(d);
        break;
    }
    case server_error::already_exists: {
        already_exists_error d;
        d.keyspace = r.string();
        d.table = r.string();
        e.detail = std::move(d);
        break;
    }
    case server_error::unprepared: e.detail = unprepared_error{own(r.short_bytes())}; break;
    case server_error::cas_write_unknown: {
        cas_write_unknown_error d;
        read_acks(r, d);
        e.detail = d;
        break;
    }
    default: break;  // the message is all there is
    }
    return r.error();
}

error_code read_result(reader& r, std::uint8_t version, result_response& out) {
    switch (r.i32()) {
    case 0x0001: out.body = void_result{}; break;
    case 0x0002: {
        auto& rows = out.body.emplace<rows_result>();
        return read_rows(r, version, rows);
    }
    case 0x0003: out.body = set_keyspace_result{std::string(r.string())}; break;
    case 0x0004: {
        auto& p = out.body.emplace<prepared_result>();
        p.id = own(r.short_bytes());
        if (version >= 5) p.result_metadata_id = own(r.short_bytes());
        if (auto ec = read_prepared_metadata(r, version, p.variables)) return ec;
        return read_rows_metadata(r, version, p.result);
    }
    case 0x0005: {
        auto& s = out.body.emplace<schema_change_result>();
        return read_schema_change(r, s.change);
    }
    default:
        if (r.ok()) return protocol_errc::unknown_result_kind;
    }
    return r.error();
}

error_code read_event(reader& r, event_response& out) {
    auto type = r.string();
    if (!r.ok()) return r.error();
    if (type == "TOPOLOGY_CHANGE") {
        topology_change_event e;
        e.change = r.string();
        e.address = read_inet(r);
        out.event = std::move(e);
    } else if (type == "STATUS_CHANGE") {
        status_change_event e;
        e.change = r.string();
        e.address = read_inet(r);
        out.event = std::move(e);
    } else if (type == "SCHEMA_CHANGE") {
        schema_change_event e;
        if (auto ec = read_schema_change(r, e.change)) return ec;
        out.event = std::move(e);
    } else {
        return protocol_errc::unknown_event;
    }
    return r.error();
}

}  // namespace

error_code read_type(reader& r, cql_type& out, int depth) {
    if (depth > max_type_depth) {
        r.fail(protocol_errc::type_nesting_too_deep);
        return r.error();
    }
    const auto id = r.u16();
    if (!r.ok()) return r.error();
    out.kind = static_cast<type_kind>(id);
    switch (out.kind) {
    case type_kind::custom: {
        out.custom_class = r.string();
        // Vectors travel as their marshal class in every version, and types newer than the connection's
        // protocol version do too, in the same bytes as their own id would: smallint, tinyint, date and
        // time in v3 (ids since v4), duration in v3 and v4 (since v5). The type parser knows the names;
        // other classes (a real custom type, 2.1's DateType) stay custom.
        if (out.custom_class.starts_with("org.apache.cassandra.db.marshal.")) {
            auto t = parse_cql_type(out.custom_class);
            if (t && (t->kind == type_kind::vector || t->kind == type_kind::smallint || t->kind == type_kind::tinyint ||
                      t->kind == type_kind::date || t->kind == type_kind::time || t->kind == type_kind::duration))
                out = std::move(*t);
        }
        break;
    }
    case type_kind::ascii:
    case type_kind::bigint:
    case type_kind::blob:
    case type_kind::boolean:
    case type_kind::counter:
    case type_kind::decimal:
    case type_kind::double_:
    case type_kind::float_:
    case type_kind::int_:
    case type_kind::timestamp:
    case type_kind::uuid:
    case type_kind::varchar:
    case type_kind::varint:
    case type_kind::timeuuid:
    case type_kind::inet:
    case type_kind::date:
    case type_kind::time:
    case type_kind::smallint:
    case type_kind::tinyint:
    case type_kind::duration: break;
    case type_kind::list:
    case type_kind::set:
        out.params.resize(1);
        return read_type(r, out.params[0], depth + 1);
    case type_kind::map:
        out.params.resize(2);
        if (auto ec = read_type(r, out.params[0], depth + 1)) return ec;
        return read_type(r, out.params[1], depth + 1);
    case type_kind::udt: {
        out.keyspace = r.string();
        out.name = r.string();
        const auto n = r.count(r.u16(), 4);  // a field: 2-byte name length + 2-byte type id at least
        out.field_names.resize(n);
        out.params.resize(n);
        for (std::size_t i = 0; i < n && r.ok(); ++i) {
            out.field_names[i] = r.string();
            if (auto ec = read_type(r, out.params[i], depth + 1)) return ec;
        }
        break;
    }
    case type_kind::tuple: {
        out.params.resize(r.count(r.u16(), 2));
        for (auto& p : out.params) {
            if (auto ec = read_type(r, p, depth + 1)) return ec;
        }
        break;
    }
    default: r.fail(protocol_errc::unknown_type); break;
    }
    return r.error();
}

bool rejects_protocol_version(const frame_header& h, const error_response& e, std::uint8_t requested) {
    const auto code = static_cast<server_error>(e.code);
    if (code != server_error::protocol_error && code != server_error::server_error) return false;
    if (h.version < requested) return true;  // the server answered in the highest version it has
    return e.message.find("protocol version") != std::string::npos ||
           e.message.find("Beta version of the protocol") != std::string::npos;
}

boost::system::result<bytes_view> frame_body(const frame_header& h, bytes_view body, compression c,
                                             std::size_t max_size, byte_buffer& scratch) {
    if (h.version >= 5 || !(h.flags & frame_flag::compression)) return body;
    scratch.clear();
    if (auto ec = decompress_body(c, body, max_size, scratch)) return ec;
    return bytes_view(scratch);
}

boost::system::result<response> decode_response(const frame_header& h, bytes_view body) {
    if (!h.response) return error_code(protocol_errc::not_a_response);
    if (!is_response_opcode(h.op)) return error_code(protocol_errc::unexpected_opcode);
    reader r(body);
    response out;
    if (h.flags & frame_flag::tracing) out.tracing_id = r.uuid();
    if (h.flags & frame_flag::warning) out.warnings = r.string_list();
    if (h.flags & frame_flag::custom_payload) out.custom_payload = r.bytes_map();
    if (!r.ok()) return r.error();

    error_code ec;
    switch (h.op) {
    case opcode::error: ec = read_error(r, h.version, out.body.emplace<error_response>()); break;
    case opcode::ready: out.body = ready_response{}; break;
    case opcode::authenticate: out.body = authenticate_response{std::string(r.string())}; break;
    case opcode::supported: out.body = supported_response{r.string_multimap()}; break;
    case opcode::result: ec = read_result(r, h.version, out.body.emplace<result_response>()); break;
    case opcode::event: ec = read_event(r, out.body.emplace<event_response>()); break;
    case opcode::auth_challenge: out.body = auth_challenge_response{own(r.bytes())}; break;
    case opcode::auth_success: out.body = auth_success_response{own(r.bytes())}; break;
    default: return error_code(protocol_errc::unexpected_opcode);
    }
    if (ec) return ec;
    if (!r.ok()) return r.error();
    return out;  // trailing bytes are allowed: the spec reserves them for extensions
}

}  // namespace cqlcoro::protocol
