// Authentication: a pluggable SASL exchange, with PLAIN (user name and password) provided.
//
// When a server answers STARTUP with AUTHENTICATE, the connection asks its auth_provider for a new
// authenticator and runs the exchange: initial_response() goes out as the first AUTH_RESPONSE, every
// AUTH_CHALLENGE is answered with evaluate_challenge(), and AUTH_SUCCESS ends it. A provider is shared by
// every connection of a session; an authenticator serves one connection's handshake.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cqlcoro {

class authenticator {
public:
    virtual ~authenticator() = default;
    /// The first token sent to the server.
    virtual std::vector<std::uint8_t> initial_response() = 0;
    /// The answer to a challenge from the server. Throw to abandon the exchange (the message is reported).
    virtual std::vector<std::uint8_t> evaluate_challenge(std::span<const std::uint8_t> challenge) = 0;
    /// The server accepted; `token` is its final token (often empty).
    virtual void on_success(std::span<const std::uint8_t> token) { (void)token; }
};

class auth_provider {
public:
    virtual ~auth_provider() = default;
    /// A new exchange for a connection to `host`, whose server announced `server_authenticator`
    /// (a class name such as org.apache.cassandra.auth.PasswordAuthenticator).
    virtual std::unique_ptr<authenticator> new_authenticator(std::string_view host, std::string_view server_authenticator) = 0;
};

/// SASL PLAIN with a user name and password: Cassandra's PasswordAuthenticator (and compatible ones).
class plain_text_auth_provider final : public auth_provider {
public:
    plain_text_auth_provider(std::string user, std::string password) : user_(std::move(user)), password_(std::move(password)) {}
    std::unique_ptr<authenticator> new_authenticator(std::string_view host, std::string_view server_authenticator) override;

private:
    std::string user_;
    std::string password_;
};

/// Shorthand: `params.auth = cqlcoro::plain_text("cassandra", "cassandra");`
inline std::shared_ptr<auth_provider> plain_text(std::string user, std::string password) {
    return std::make_shared<plain_text_auth_provider>(std::move(user), std::move(password));
}

}  // namespace cqlcoro
