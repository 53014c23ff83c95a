// What a simulated node answers: negotiation, authentication, primes, system tables and defaults.
#include "sim_internal.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace cqlcoro::sim {
namespace {

using namespace protocol;

std::optional<consistency> consistency_of(const request& r) {
    if (auto q = std::get_if<query_request>(&r)) return q->params.cl;
    if (auto e = std::get_if<execute_request>(&r)) return e->params.cl;
    if (auto b = std::get_if<batch_request>(&r)) return b->cl;
    return std::nullopt;
}

std::vector<std::optional<byte_buffer>> values_of(std::span<const value_view> values) {
    std::vector<std::optional<byte_buffer>> out;
    for (const auto& v : values) {
        if (v.st == value_view::state::set)
            out.emplace_back(byte_buffer(v.bytes.begin(), v.bytes.end()));
        else
            out.emplace_back();
    }
    return out;
}

std::string lower_trimmed(std::string_view q) {
    std::string out;
    for (char c : q) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (!out.empty() && (out.back() == ';' || std::isspace(static_cast<unsigned char>(out.back())))) out.pop_back();
    auto start = out.find_first_not_of(" \t\n");
    return start == std::string::npos ? std::string() : out.substr(start);
}

// Markers of an unprimed PREPARE: one blob per '?', named m0, m1, ...
std::vector<column_spec> default_markers(std::string_view query) {
    std::vector<column_spec> out;
    for (char c : query)
        if (c == '?') out.push_back(column(fmt::format("m{}", out.size()), cql_type::of(type_kind::blob)));
    return out;
}

}  // namespace

void request_handler::error(const frame_header& h, server_error code, std::string message) {
    response r;
    r.body = error_response{static_cast<std::int32_t>(code), std::move(message), {}};
    conn.respond(h.stream, r);
}

void request_handler::refuse_version(std::uint8_t requested, std::int16_t stream) {
    const auto& cfg = conn.owner().sim.config;
    response r;
    byte_buffer out;
    if (cfg.cassandra21_refusals) {
        // Cassandra 2.1: a server error in a v3 frame on stream 0.
        r.body = error_response{static_cast<std::int32_t>(server_error::server_error),
                                fmt::format("io.netty.handler.codec.DecoderException: org.apache.cassandra.transport."
                                            "ProtocolException: Invalid or unsupported protocol version: {}", requested),
                                {}};
        (void)encode_response(3, 0, r, out);
    } else {
        r.body = error_response{static_cast<std::int32_t>(server_error::protocol_error),
                                fmt::format("Invalid or unsupported protocol version ({}); highest supported version is {}",
                                            requested, cfg.max_version),
                                {}};
        (void)encode_response(cfg.max_version, stream, r, out);
    }
    conn.send(std::move(out));
}

void request_handler::record(const frame_header& h, const request& req) {
    auto& n = conn.owner();
    auto& sim = n.sim;
    recorded_request rec;
    rec.node = n.index;
    rec.connection = conn.id();
    rec.stream = h.stream;
    rec.version = h.version;
    rec.op = h.op;
    rec.cl = consistency_of(req);
    auto options_of = [&rec](const query_params& qp) {
        for (const auto& v : qp.values) rec.unset.push_back(v.st == value_view::state::unset);
        rec.keyspace = std::string(qp.keyspace);
        rec.now_in_seconds = qp.now_in_seconds;
        rec.timestamp = qp.default_timestamp;
    };
    if (auto q = std::get_if<query_request>(&req)) {
        options_of(q->params);
        rec.query = std::string(q->query);
        rec.values = values_of(q->params.values);
        rec.page_size = q->params.page_size;
        rec.has_paging_state = q->params.paging_state.has_value();
    } else if (auto p = std::get_if<prepare_request>(&req)) {
        rec.query = std::string(p->query);
        rec.keyspace = std::string(p->keyspace);
    } else if (auto b = std::get_if<batch_request>(&req)) {
        rec.keyspace = std::string(b->keyspace);
        rec.now_in_seconds = b->now_in_seconds;
        rec.timestamp = b->default_timestamp;
    } else if (auto e = std::get_if<execute_request>(&req)) {
        options_of(e->params);
        rec.prepared_id.assign(e->id.begin(), e->id.end());
        if (auto it = n.prepared.find(rec.prepared_id); it != n.prepared.end()) rec.query = it->second.query;
        rec.values = values_of(e->params.values);
        rec.page_size = e->params.page_size;
        rec.has_paging_state = e->params.paging_state.has_value();
    }
    {
        std::lock_guard lock(sim.log_mutex);
        sim.log.push_back(std::move(rec));
    }
    sim.log_changed.notify_all();
}

void request_handler::handle(const frame_header& h, bytes_view body) {
    auto& n = conn.owner();
    auto& sim = n.sim;
    const auto& cfg = sim.config;

    if (h.version > cfg.max_version || (conn.version_ != 0 && h.version != conn.version_)) {
        refuse_version(h.version, h.stream);
        return;
    }
    auto decoded = decode_request(h, body);
    if (!decoded) {
        error(h, server_error::protocol_error, "cannot decode request: " + decoded.error().message());
        return;
    }
    const request& req = decoded->message;

    if (cfg.record_requests) record(h, req);

    if (auto s = std::get_if<startup_request>(&req)) return handle_startup(h, *s);
    if (std::holds_alternative<options_request>(req)) {
        response r;
        supported_response sup;
        sup.options.push_back({"CQL_VERSION", {"3.4.5"}});
        sup.options.push_back({"COMPRESSION", h.version >= 5 ? std::vector<std::string>{"lz4"} : std::vector<std::string>{"lz4", "snappy"}});
        std::vector<std::string> versions;
        for (int v = 3; v <= cfg.max_version; ++v) versions.push_back(fmt::format("{}/v{}", v, v));
        sup.options.push_back({"PROTOCOL_VERSIONS", versions});
        r.body = std::move(sup);
        // Before STARTUP the answer goes out in the client's version, unframed.
        const auto saved = conn.version_;
        conn.version_ = h.version;
        conn.respond(h.stream, r);
        conn.version_ = saved;
        return;
    }
    if (auto a = std::get_if<auth_response_request>(&req)) {
        if (!conn.awaiting_auth_) return error(h, server_error::protocol_error, "unexpected AUTH_RESPONSE");
        // SASL PLAIN: authzid \0 user \0 password
        std::string token = a->token ? std::string(as_string_view(*a->token)) : std::string();
        auto p1 = token.find('\0');
        auto p2 = p1 == std::string::npos ? p1 : token.find('\0', p1 + 1);
        std::string user = p2 == std::string::npos ? "" : token.substr(p1 + 1, p2 - p1 - 1);
        std::string pass = p2 == std::string::npos ? "" : token.substr(p2 + 1);
        if (!cfg.credentials || user != cfg.credentials->first || pass != cfg.credentials->second)
            return error(h, server_error::bad_credentials,
                         fmt::format("Provided username {} and/or password are incorrect", user));
        conn.awaiting_auth_ = false;
        conn.ready_ = true;
        response r;
        r.body = auth_success_response{};
        conn.respond(h.stream, r);
        return;
    }
    if (!conn.ready_) return error(h, server_error::protocol_error, "Unexpected message, expecting STARTUP or OPTIONS");

    if (auto reg = std::get_if<register_request>(&req)) {
        for (auto e : reg->events) conn.events_.insert(std::string(e));
        response r;
        r.body = ready_response{};
        conn.respond(h.stream, r);
        return;
    }
    if (auto q = std::get_if<query_request>(&req)) return handle_statement(h, q->query, q->params, nullptr);
    if (auto p = std::get_if<prepare_request>(&req)) return handle_prepare(h, *p);
    if (auto e = std::get_if<execute_request>(&req)) {
        auto it = n.prepared.find(byte_buffer(e->id.begin(), e->id.end()));
        if (it == n.prepared.end()) {
            response r;
            r.body = error_response{static_cast<std::int32_t>(server_error::unprepared),
                                    "Prepared query with ID not found (either the query was not prepared on this host "
                                    "(maybe the host has been restarted?) or you have prepared too many queries and it "
                                    "has been evicted from the internal cache)",
                                    unprepared_error{byte_buffer(e->id.begin(), e->id.end())}};
            conn.respond(h.stream, r);
            return;
        }
        return handle_statement(h, it->second.query, e->params, &it->second);
    }
    if (auto b = std::get_if<batch_request>(&req)) {
        // Applied at once; answered after the delay primed for its first statement's query, if any.
        std::chrono::milliseconds delay{0};
        if (!b->statements.empty()) {
            std::string query;
            const auto& first = b->statements.front().query_or_id;
            if (const auto* text = std::get_if<std::string_view>(&first)) {
                query = *text;
            } else {
                const auto& id = std::get<bytes_view>(first);
                if (auto it = n.prepared.find(byte_buffer(id.begin(), id.end())); it != n.prepared.end()) query = it->second.query;
            }
            if (const auto* prime = n.sim.find_prime(n.index, query, b->cl)) delay = prime->then.delay;
        }
        response r;
        r.body = result_response{void_result{}};
        conn.respond(h.stream, r, delay);
        return;
    }
}

void request_handler::handle_startup(const frame_header& h, const startup_request& s) {
    const auto& cfg = conn.owner().sim.config;
    compression comp = compression::none;
    for (auto [k, v] : s.options) {
        if (k != "COMPRESSION") continue;
        if (v == "lz4")
            comp = compression::lz4;
        else if (v == "snappy" && h.version < 5)
            comp = compression::snappy;
        else
            return error(h, server_error::protocol_error, fmt::format("Unknown compression algorithm: {}", v));
    }
    conn.version_ = h.version;
    response r;
    if (cfg.credentials) {
        conn.awaiting_auth_ = true;
        r.body = authenticate_response{"org.apache.cassandra.auth.PasswordAuthenticator"};
    } else {
        conn.ready_ = true;
        r.body = ready_response{};
    }
    // The answer to STARTUP is neither compressed nor framed; framing (v5) and compression begin after it.
    conn.respond(h.stream, r);
    conn.compression_ = comp;
    if (h.version >= 5) conn.start_framing(comp == compression::lz4);
}

void request_handler::handle_prepare(const frame_header& h, const prepare_request& p) {
    auto& n = conn.owner();
    prepared_entry entry{std::string(p.query), default_markers(p.query), {}};
    prepared_result result;
    if (const auto* prime = n.sim.find_prime(n.index, p.query, std::nullopt)) {
        if (!prime->then.markers.empty() || !prime->then.pk_indexes.empty()) {
            entry.markers = prime->then.markers;
            entry.pk_indexes = prime->then.pk_indexes;
        }
        if (auto rows = std::get_if<rows_answer>(&prime->then.answer)) result.result.columns = rows->columns;
        if (auto err = std::get_if<error_response>(&prime->then.answer)) {
            response r;
            r.body = *err;
            conn.respond(h.stream, r, prime->then.delay);
            return;
        }
    }
    // Ids are the MD5 of the query text, as Cassandra makes them: the same query always gets the same id.
    result.id = md5(p.query);
    if (h.version >= 5) result.result_metadata_id = md5(fmt::format("{}#result", p.query));
    result.variables.columns = entry.markers;
    result.variables.pk_indexes = entry.pk_indexes;
    result.result.column_count = static_cast<std::int32_t>(result.result.columns.size());
    n.prepared[result.id] = std::move(entry);
    response r;
    r.body = result_response{std::move(result)};
    conn.respond(h.stream, r);
}

void request_handler::handle_statement(const frame_header& h, std::string_view query, const query_params& p,
                                       const prepared_entry*) {
    auto& n = conn.owner();
    auto& sim = n.sim;
    response r;
    std::size_t page = 1;  // the paging state is the offset of the next row
    if (p.paging_state && p.paging_state->size() == 8 && p.page_size && *p.page_size > 0) {
        reader pr(*p.paging_state);
        page = static_cast<std::size_t>(pr.i64()) / static_cast<std::size_t>(*p.page_size) + 1;
    }
    if (const auto* prime = sim.find_prime(n.index, query, p.cl, page)) {
        const auto& then = prime->then;
        if (std::holds_alternative<hang>(then.answer)) return;
        if (std::holds_alternative<close_connection>(then.answer)) {
            conn.close();
            return;
        }
        if (std::holds_alternative<half_close>(then.answer)) {
            conn.shutdown_send();
            return;
        }
        if (auto raw = std::get_if<raw_envelopes>(&then.answer)) {
            for (auto& e : raw->make(h.stream, h.version)) conn.send(std::move(e));
            return;
        }
        if (std::holds_alternative<undecodable>(then.answer)) {
            frame_header out{.version = h.version, .response = true, .flags = 0, .stream = h.stream, .op = opcode::result, .length = 4};
            byte_buffer envelope(protocol::header_size + 4, 0);
            protocol::encode_header(out, envelope.data());
            envelope[protocol::header_size + 2] = 0x77;  // result kind 0x7777: no such kind
            envelope[protocol::header_size + 3] = 0x77;
            conn.send(std::move(envelope));
            return;
        }
        if (auto rows = std::get_if<rows_answer>(&then.answer))
            r.body = rows_result(*rows, p, h.version);
        else if (auto err = std::get_if<error_response>(&then.answer))
            r.body = *err;
        else if (auto change = std::get_if<protocol::schema_change>(&then.answer))
            r.body = result_response{protocol::schema_change_result{*change}};
        else
            r.body = result_response{void_result{}};
        if (h.version >= 4) r.warnings = then.warnings;
        conn.respond(h.stream, r, then.delay);
        return;
    }
    if (auto rows = system_table(sim, n, query)) {
        r.body = rows_result(*rows, p, h.version);
        conn.respond(h.stream, r);
        return;
    }
    const auto q = lower_trimmed(query);
    if (q.starts_with("use ")) {
        auto ks = q.substr(4);
        ks.erase(std::remove(ks.begin(), ks.end(), '"'), ks.end());
        r.body = result_response{set_keyspace_result{ks}};
    } else if (q.starts_with("select ")) {
        // Tables this node's release does not have are refused as a real node refuses them.
        const bool v2 = sim.config.release_version.starts_with("2.");
        const bool missing = q.find("from system.peers_v2") != std::string::npos ||
                             q.find("from system_virtual_schema.") != std::string::npos ||
                             (v2 && q.find("from system_schema.") != std::string::npos) ||
                             (!v2 && q.find("from system.schema_") != std::string::npos);
        if (missing) return error(h, server_error::invalid, "unconfigured table " + q.substr(q.find("from ") + 5));
        r.body = rows_result(rows_answer{}, p, h.version);  // unprimed: no rows
    } else {
        r.body = result_response{void_result{}};
    }
    conn.respond(h.stream, r);
}

protocol::result_response rows_result(const rows_answer& rows, const query_params& p, std::uint8_t) {
    protocol::rows_result out;
    out.metadata.columns = rows.columns;
    out.metadata.column_count = static_cast<std::int32_t>(rows.columns.size());
    if (p.skip_metadata) {
        out.metadata.flags |= metadata_flag::no_metadata;
        out.metadata.columns.clear();
    }
    // The paging state is the offset of the next row.
    std::size_t first = 0;
    if (p.paging_state && p.paging_state->size() == 8) {
        reader r(*p.paging_state);
        first = static_cast<std::size_t>(r.i64());
    }
    first = std::min(first, rows.data.size());
    std::size_t count = rows.data.size() - first;
    if (p.page_size && *p.page_size > 0) count = std::min<std::size_t>(count, static_cast<std::size_t>(*p.page_size));
    if (first + count < rows.data.size()) {
        byte_buffer state;
        writer(state).i64(static_cast<std::int64_t>(first + count));
        out.metadata.paging_state = std::move(state);
    }
    out.row_count = static_cast<std::int32_t>(count);
    // The content must outlive the response's encoding only: it is kept in a thread-local buffer.
    thread_local byte_buffer content;
    content.clear();
    writer w(content);
    for (std::size_t i = first; i < first + count; ++i)
        for (const auto& cell : rows.data[i]) {
            if (cell)
                w.bytes(*cell);
            else
                w.null_bytes();
        }
    out.content = content;
    return protocol::result_response{std::move(out)};
}

}  // namespace cqlcoro::sim
