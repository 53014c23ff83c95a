#include <cqlcoro/error.hpp>
#include <cqlcoro/server_error.hpp>

#include <fmt/format.h>

namespace cqlcoro {
namespace {

class server_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "cqlcoro.server"; }

    std::string message(int ev) const override {
        switch (static_cast<server_errc>(ev)) {
        case server_errc::server_error: return "server error: the coordinator failed unexpectedly (see its log)";
        case server_errc::protocol_error: return "protocol error: the server could not understand the request";
        case server_errc::bad_credentials: return "bad credentials: check the user name and password";
        case server_errc::unavailable:
            return "unavailable: not enough replicas are alive for the consistency level (lower it, or bring nodes back)";
        case server_errc::overloaded: return "overloaded: the coordinator is shedding load; retry on another node later";
        case server_errc::is_bootstrapping: return "the coordinator is bootstrapping and cannot serve requests; use another node";
        case server_errc::truncate_error: return "truncate failed";
        case server_errc::write_timeout:
            return "write timeout: not enough replicas acknowledged in time (the write may still be applied)";
        case server_errc::read_timeout: return "read timeout: not enough replicas answered in time";
        case server_errc::read_failure: return "read failure: replicas failed the read (too many tombstones?)";
        case server_errc::function_failure: return "a user-defined function failed";
        case server_errc::write_failure: return "write failure: replicas failed the write";
        case server_errc::cdc_write_failure: return "CDC write failure: the CDC log is full";
        case server_errc::cas_write_unknown: return "the outcome of a lightweight transaction is unknown";
        case server_errc::syntax_error: return "syntax error in the CQL statement";
        case server_errc::unauthorized: return "unauthorized: the user lacks the permission for this statement";
        case server_errc::invalid: return "invalid request";
        case server_errc::config_error: return "configuration error on the server";
        case server_errc::already_exists: return "the keyspace or table already exists (use IF NOT EXISTS)";
        case server_errc::unprepared: return "the node does not know the prepared statement: prepare it again";
        }
        return fmt::format("server error code 0x{:04x}", static_cast<unsigned>(ev));
    }
};

}  // namespace

const boost::system::error_category& server_category() noexcept {
    static const server_category_impl instance;
    return instance;
}

std::string describe_server_error(const server_error_info& info, std::string_view host) {
    auto what = fmt::format("{}: {}", host, info.message);
    if (const auto* u = std::get_if<unavailable_error>(&info.detail))
        what += fmt::format(" ({} of {} required replicas alive)", u->alive, u->required);
    else if (const auto* w = std::get_if<write_timeout_error>(&info.detail))
        what += fmt::format(" ({} of {} acknowledged, write type {})", w->received, w->block_for, w->write_type);
    else if (const auto* r = std::get_if<read_timeout_error>(&info.detail))
        what += fmt::format(" ({} of {} responded, data {}present)", r->received, r->block_for, r->data_present ? "" : "not ");
    return what;
}

error make_server_error(server_error_info info, std::string host) {
    const auto ec = info.code_as_error();
    auto what = describe_server_error(info, host);
    diagnostics d;
    d.host = host;
    d.attempts.push_back({host, ec, info.message});
    d.server = std::move(info);
    return error(ec, what, std::move(d));
}

std::string inet_address::address_string() const {
    if (size == 4) return fmt::format("{}.{}.{}.{}", bytes[0], bytes[1], bytes[2], bytes[3]);
    if (size != 16) return "?";
    std::string s;
    for (int i = 0; i < 16; i += 2) {
        if (i) s += ':';
        s += fmt::format("{:x}", (bytes[static_cast<std::size_t>(i)] << 8) | bytes[static_cast<std::size_t>(i) + 1]);
    }
    return s;
}

}  // namespace cqlcoro
