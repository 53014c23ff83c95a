#include "protocol/requests.hpp"

#include <cqlcoro/protocol_version.hpp>

#include <limits>

namespace cqlcoro::protocol {
namespace {

constexpr std::size_t max_short = std::numeric_limits<std::uint16_t>::max();
constexpr std::size_t max_int = static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());

error_code check_values(std::uint8_t version, std::span<const value_view> values, std::span<const std::string_view> names) {
    if (values.size() > max_short) return protocol_errc::too_many_values;
    if (!names.empty() && names.size() != values.size()) return protocol_errc::names_mismatch;
    for (const auto& v : values) {
        if (v.st == value_view::state::unset && version < 4) return protocol_errc::value_unset_not_supported;
        if (v.bytes.size() > max_int) return protocol_errc::value_too_large;
    }
    for (auto n : names)
        if (n.size() > max_short) return protocol_errc::bad_string;
    return {};
}

error_code check_params(std::uint8_t version, const query_params& p) {
    if (!p.keyspace.empty() && version < 5) return protocol_errc::keyspace_not_supported;
    if (p.keyspace.size() > max_short) return protocol_errc::bad_string;
    if (p.now_in_seconds && version < 5) return protocol_errc::now_in_seconds_not_supported;
    if (p.paging_state && p.paging_state->size() > max_int) return protocol_errc::value_too_large;
    return check_values(version, p.values, p.names);
}

void write_values(writer& w, std::span<const value_view> values, std::span<const std::string_view> names) {
    w.u16(static_cast<std::uint16_t>(values.size()));
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (!names.empty()) w.string(names[i]);
        switch (values[i].st) {
        case value_view::state::set: w.bytes(values[i].bytes); break;
        case value_view::state::null: w.i32(-1); break;
        case value_view::state::unset: w.i32(-2); break;
        }
    }
}

void write_flags(writer& w, std::uint8_t version, std::uint32_t flags) {
    if (version >= 5)
        w.i32(static_cast<std::int32_t>(flags));
    else
        w.u8(static_cast<std::uint8_t>(flags));
}

void write_params(writer& w, std::uint8_t version, const query_params& p) {
    std::uint32_t flags = 0;
    if (!p.values.empty()) flags |= query_flag::values;
    if (!p.values.empty() && !p.names.empty()) flags |= query_flag::names_for_values;
    if (p.skip_metadata) flags |= query_flag::skip_metadata;
    if (p.page_size) flags |= query_flag::page_size;
    if (p.paging_state) flags |= query_flag::paging_state;
    if (p.serial_consistency) flags |= query_flag::serial_consistency;
    if (p.default_timestamp) flags |= query_flag::default_timestamp;
    if (!p.keyspace.empty()) flags |= query_flag::keyspace;
    if (p.now_in_seconds) flags |= query_flag::now_in_seconds;

    w.u16(static_cast<std::uint16_t>(p.cl));
    write_flags(w, version, flags);
    if (flags & query_flag::values) write_values(w, p.values, p.names);
    if (p.page_size) w.i32(*p.page_size);
    if (p.paging_state) w.bytes(*p.paging_state);
    if (p.serial_consistency) w.u16(static_cast<std::uint16_t>(*p.serial_consistency));
    if (p.default_timestamp) w.i64(*p.default_timestamp);
    if (!p.keyspace.empty()) w.string(p.keyspace);
    if (p.now_in_seconds) w.i32(*p.now_in_seconds);
}

struct body_encoder {
    std::uint8_t version;
    writer& w;

    error_code operator()(const startup_request& r) const {
        w.u16(static_cast<std::uint16_t>(r.options.size()));
        for (auto [k, v] : r.options) {
            w.string(k);
            w.string(v);
        }
        return {};
    }
    error_code operator()(const auth_response_request& r) const {
        if (r.token)
            w.bytes(*r.token);
        else
            w.null_bytes();
        return {};
    }
    error_code operator()(const options_request&) const { return {}; }
    error_code operator()(const query_request& r) const {
        w.long_string(r.query);
        write_params(w, version, r.params);
        return {};
    }
    error_code operator()(const prepare_request& r) const {
        w.long_string(r.query);
        if (version >= 5) {
            w.i32(r.keyspace.empty() ? 0 : 0x01);
            if (!r.keyspace.empty()) w.string(r.keyspace);
        }
        return {};
    }
    error_code operator()(const execute_request& r) const {
        w.short_bytes(r.id);
        if (version >= 5) w.short_bytes(r.result_metadata_id);
        write_params(w, version, r.params);
        return {};
    }
    error_code operator()(const batch_request& r) const {
        w.u8(static_cast<std::uint8_t>(r.type));
        w.u16(static_cast<std::uint16_t>(r.statements.size()));
        for (const auto& s : r.statements) {
            if (auto q = std::get_if<std::string_view>(&s.query_or_id)) {
                w.u8(0);
                w.long_string(*q);
            } else {
                w.u8(1);
                w.short_bytes(std::get<bytes_view>(s.query_or_id));
            }
            write_values(w, s.values, {});
        }
        std::uint32_t flags = 0;
        if (r.serial_consistency) flags |= query_flag::serial_consistency;
        if (r.default_timestamp) flags |= query_flag::default_timestamp;
        if (!r.keyspace.empty()) flags |= query_flag::keyspace;
        if (r.now_in_seconds) flags |= query_flag::now_in_seconds;
        w.u16(static_cast<std::uint16_t>(r.cl));
        write_flags(w, version, flags);
        if (r.serial_consistency) w.u16(static_cast<std::uint16_t>(*r.serial_consistency));
        if (r.default_timestamp) w.i64(*r.default_timestamp);
        if (!r.keyspace.empty()) w.string(r.keyspace);
        if (r.now_in_seconds) w.i32(*r.now_in_seconds);
        return {};
    }
    error_code operator()(const register_request& r) const {
        w.string_list(r.events);
        return {};
    }
};

struct request_checker {
    std::uint8_t version;

    error_code operator()(const startup_request& r) const {
        if (r.options.size() > max_short) return protocol_errc::too_many_values;
        for (auto [k, v] : r.options)
            if (k.size() > max_short || v.size() > max_short) return protocol_errc::bad_string;
        return {};
    }
    error_code operator()(const auth_response_request& r) const {
        return r.token && r.token->size() > max_int ? protocol_errc::value_too_large : error_code{};
    }
    error_code operator()(const options_request&) const { return {}; }
    error_code operator()(const query_request& r) const {
        if (r.query.size() > max_int) return protocol_errc::value_too_large;
        return check_params(version, r.params);
    }
    error_code operator()(const prepare_request& r) const {
        if (r.query.size() > max_int) return protocol_errc::value_too_large;
        if (!r.keyspace.empty() && version < 5) return protocol_errc::keyspace_not_supported;
        return r.keyspace.size() > max_short ? protocol_errc::bad_string : error_code{};
    }
    error_code operator()(const execute_request& r) const {
        if (r.id.size() > max_short || r.result_metadata_id.size() > max_short) return protocol_errc::bad_string;
        return check_params(version, r.params);
    }
    error_code operator()(const batch_request& r) const {
        if (r.statements.size() > max_short) return protocol_errc::too_many_values;
        if (!r.keyspace.empty() && version < 5) return protocol_errc::keyspace_not_supported;
        if (r.keyspace.size() > max_short) return protocol_errc::bad_string;
        if (r.now_in_seconds && version < 5) return protocol_errc::now_in_seconds_not_supported;
        for (const auto& s : r.statements) {
            if (auto q = std::get_if<std::string_view>(&s.query_or_id); q && q->size() > max_int)
                return protocol_errc::value_too_large;
            if (auto id = std::get_if<bytes_view>(&s.query_or_id); id && id->size() > max_short)
                return protocol_errc::bad_string;
            if (auto ec = check_values(version, s.values, {})) return ec;
        }
        return {};
    }
    error_code operator()(const register_request& r) const {
        if (r.events.size() > max_short) return protocol_errc::too_many_values;
        for (auto e : r.events)
            if (e.size() > max_short) return protocol_errc::bad_string;
        return {};
    }
};

opcode opcode_of(const request& r) noexcept {
    static constexpr opcode ops[] = {opcode::startup, opcode::auth_response, opcode::options, opcode::query,
                                     opcode::prepare, opcode::execute,       opcode::batch,   opcode::register_};
    return ops[r.index()];
}

bool carries_payload(opcode op) noexcept {
    return op == opcode::query || op == opcode::prepare || op == opcode::execute || op == opcode::batch;
}

}  // namespace

error_code encode_request(std::uint8_t version, const request& req, const frame_options& opts, byte_buffer& out) {
    if (!is_supported(version)) return protocol_errc::unsupported_version;
    if (auto ec = std::visit(request_checker{version}, req)) return ec;
    const opcode op = opcode_of(req);
    const bool with_payload = !opts.custom_payload.empty() && carries_payload(op) && version >= 4;
    if (with_payload) {
        if (opts.custom_payload.size() > max_short) return protocol_errc::too_many_values;
        for (auto [k, v] : opts.custom_payload)
            if (k.size() > max_short || v.size() > max_int) return protocol_errc::bad_string;
    }

    frame_header h;
    h.version = version;
    h.stream = opts.stream;
    h.op = op;
    if (opts.tracing) h.flags |= frame_flag::tracing;
    if (opts.use_beta) h.flags |= frame_flag::use_beta;
    if (with_payload) h.flags |= frame_flag::custom_payload;

    const std::size_t start = out.size();
    out.resize(start + header_size);
    writer w(out);
    if (with_payload) {
        w.u16(static_cast<std::uint16_t>(opts.custom_payload.size()));
        for (auto [k, v] : opts.custom_payload) {
            w.string(k);
            w.bytes(v);
        }
    }
    std::visit(body_encoder{version, w}, req);

    const bool compress = version < 5 && op != opcode::startup && op != opcode::options;
    return seal_frame(h, start, compress ? opts.compression : compression::none, out);
}

error_code seal_frame(frame_header h, std::size_t start, compression c, byte_buffer& out) {
    if (c != compression::none) {
        byte_buffer body(out.begin() + static_cast<std::ptrdiff_t>(start + header_size), out.end());
        out.resize(start + header_size);
        compress_body(c, body, out);
        h.flags |= frame_flag::compression;
    }
    const std::size_t body_len = out.size() - start - header_size;
    if (body_len > protocol_max_body) {
        out.resize(start);
        return protocol_errc::frame_too_large;
    }
    h.length = static_cast<std::uint32_t>(body_len);
    encode_header(h, out.data() + start);
    return {};
}

}  // namespace cqlcoro::protocol
