#include <cqlcoro/error.hpp>
#include <cqlcoro/tls.hpp>

#include "connection/tls_context.hpp"

#include <fmt/format.h>

namespace cqlcoro {
namespace {

namespace ssl = boost::asio::ssl;

// One setting of the context; false (and `f` filled in) when it fails.
template <class F>
bool step(F&& f, std::string_view what, detail::failure& out) {
    error_code ec;
    f(ec);
    if (!ec) return true;
    out = {client_errc::invalid_configuration, fmt::format("TLS: {}: {}", what, ec.message())};
    return false;
}

}  // namespace

std::shared_ptr<ssl::context> make_tls_context(const tls_options& o) { return detail::tls_context_for(o).value(); }

detail::fallible<std::shared_ptr<ssl::context>> detail::tls_context_for(const tls_options& o) {
    if (o.context) return o.context;
    failure f;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (!o.ca_file.empty() &&
        !step([&](error_code& ec) { ctx->load_verify_file(o.ca_file, ec); }, fmt::format("cannot load CA file '{}'", o.ca_file), f))
        return f;
    if (!o.ca_pem.empty() &&
        !step([&](error_code& ec) { ctx->add_certificate_authority(boost::asio::buffer(o.ca_pem), ec); }, "cannot load ca_pem", f))
        return f;
    if (o.ca_file.empty() && o.ca_pem.empty() &&
        !step([&](error_code& ec) { ctx->set_default_verify_paths(ec); }, "cannot load the system's CA certificates", f))
        return f;
    if (!o.cert_file.empty() && !step([&](error_code& ec) { ctx->use_certificate_chain_file(o.cert_file, ec); },
                                      fmt::format("cannot load client certificate file '{}'", o.cert_file), f))
        return f;
    if (!o.cert_pem.empty() &&
        !step([&](error_code& ec) { ctx->use_certificate_chain(boost::asio::buffer(o.cert_pem), ec); }, "cannot load cert_pem", f))
        return f;
    if (!o.key_file.empty() && !step([&](error_code& ec) { ctx->use_private_key_file(o.key_file, ssl::context::pem, ec); },
                                     fmt::format("cannot load client key file '{}'", o.key_file), f))
        return f;
    if (!o.key_pem.empty() &&
        !step([&](error_code& ec) { ctx->use_private_key(boost::asio::buffer(o.key_pem), ssl::context::pem, ec); }, "cannot load key_pem", f))
        return f;
    const bool has_cert = !o.cert_file.empty() || !o.cert_pem.empty();
    const bool has_key = !o.key_file.empty() || !o.key_pem.empty();
    if (has_cert != has_key)
        return failure{client_errc::invalid_configuration, "TLS: a client certificate needs its private key, and a key its certificate"};
    ctx->set_verify_mode(o.verify_peer ? ssl::verify_peer : ssl::verify_none);
    return ctx;
}

}  // namespace cqlcoro
