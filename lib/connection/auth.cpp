#include <cqlcoro/auth.hpp>

#include <stdexcept>

namespace cqlcoro {
namespace {

class plain_text_authenticator final : public authenticator {
public:
    plain_text_authenticator(const std::string& user, const std::string& password) {
        // SASL PLAIN: authorization id (empty), NUL, user, NUL, password.
        token_.push_back(0);
        token_.insert(token_.end(), user.begin(), user.end());
        token_.push_back(0);
        token_.insert(token_.end(), password.begin(), password.end());
    }
    std::vector<std::uint8_t> initial_response() override { return token_; }
    std::vector<std::uint8_t> evaluate_challenge(std::span<const std::uint8_t>) override {
        throw std::runtime_error("the server sent a SASL challenge, which PLAIN authentication does not expect");
    }

private:
    std::vector<std::uint8_t> token_;
};

}  // namespace

std::unique_ptr<authenticator> plain_text_auth_provider::new_authenticator(std::string_view, std::string_view) {
    return std::make_unique<plain_text_authenticator>(user_, password_);
}

}  // namespace cqlcoro
