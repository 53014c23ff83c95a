// TLS settings for connections to the cluster (OpenSSL through asio::ssl).
//
// Peer verification and host name (or IP address) verification are on by default. Trust comes from
// ca_file / ca_pem, or from the system's default CA paths when neither is set. A client certificate and
// key enable mutual TLS. SNI carries server_name (or the host connected to, unless it is an IP address).
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

namespace cqlcoro {

struct tls_options {
    std::string ca_file;        ///< PEM file of trusted CA certificates
    std::string ca_pem;         ///< the same, in memory
    bool verify_peer = true;    ///< verify the server's certificate chain
    bool verify_hostname = true;///< check the certificate names the host (DNS name or IP address SAN)
    std::string server_name;    ///< name to verify and send as SNI; empty: the host connected to
    std::string cert_file;      ///< client certificate chain (PEM), for mutual TLS
    std::string cert_pem;
    std::string key_file;       ///< client private key (PEM)
    std::string key_pem;
    /// A ready-made context; when set, the CA, certificate and key fields above are not read.
    std::shared_ptr<boost::asio::ssl::context> context;
};

/// Builds the OpenSSL context the options describe (TLS 1.2 or later). Throws cqlcoro::error
/// (client_errc::invalid_configuration) naming the file or setting that failed.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const tls_options& options);

}  // namespace cqlcoro
