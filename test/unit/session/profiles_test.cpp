// Execution profiles resolved over the session's options: inheritance, precedence, and every way a set
// can be wrong, each refused with the profile and the option named.
#include "session/profiles.hpp"

#include <cqlcoro/error.hpp>
#include <cqlcoro/load_balancing.hpp>
#include <cqlcoro/retry_policy.hpp>
#include <cqlcoro/session.hpp>
#include <cqlcoro/speculative_execution.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace cqlcoro;
using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;

namespace {

auto lb() { return std::make_shared<default_load_balancing_policy>(); }

std::string refusal(const execution_profiles& profiles) {
    try {
        (void)detail::resolve_profiles(session_params{}, profiles, lb());
    } catch (const error& e) {
        CHECK(e.code() == client_errc::invalid_configuration);
        return e.what();
    }
    FAIL("the profiles were accepted");
    return {};
}

}  // namespace

TEST_CASE("profiles: the default profile is session_params, changed by profiles[\"default\"]") {
    session_params p;
    p.default_consistency = consistency::quorum;
    p.request_timeout = 7s;
    p.default_page_size = 100;
    auto set = detail::resolve_profiles(p, {}, lb());
    const auto* d = set->find("");
    REQUIRE(d == &set->fallback);
    CHECK(d->cl == consistency::quorum);
    CHECK(d->timeout == 7s);
    CHECK(d->page_size == 100);
    CHECK(d->max_attempts == 3);
    CHECK_FALSE(d->hedging);
    CHECK_FALSE(d->serial_cl);
    CHECK(set->find("oltp") == nullptr);

    execution_profiles profiles;
    profiles["default"] = {.consistency = consistency::local_quorum, .serial_consistency = consistency::local_serial};
    set = detail::resolve_profiles(p, profiles, lb());
    CHECK(set->find("")->cl == consistency::local_quorum);
    CHECK(set->find("")->serial_cl == consistency::local_serial);
    CHECK(set->find("")->timeout == 7s);  // not set there: session_params'
    CHECK(set->find("default") == &set->fallback);
}

TEST_CASE("profiles: a profile inherits from its parent, the parent from default; its own options win") {
    session_params p;
    execution_profiles profiles;
    auto hedge = std::make_shared<constant_speculative_execution>(50ms, 2);
    profiles["default"] = {.consistency = consistency::local_quorum};
    profiles["oltp"] = {.request_timeout = 2s, .speculative_execution = hedge, .idempotent = true};
    profiles["oltp-strict"] = {.inherits = "oltp", .consistency = consistency::each_quorum, .max_attempts = 1};
    profiles["bulk"] = {.request_timeout = 60s, .page_size = 10000, .admission_class = request_class::background};
    auto set = detail::resolve_profiles(p, profiles, lb());
    const auto& oltp = *set->find("oltp");
    CHECK(oltp.name == "oltp");
    CHECK(oltp.cl == consistency::local_quorum);  // from default
    CHECK(oltp.timeout == 2s);
    CHECK(oltp.hedging);
    CHECK(oltp.idempotent == true);
    const auto& strict = *set->find("oltp-strict");
    CHECK(strict.cl == consistency::each_quorum);
    CHECK(strict.timeout == 2s);  // from oltp
    CHECK(strict.hedging);
    CHECK(strict.max_attempts == 1);
    const auto& bulk = *set->find("bulk");
    CHECK(bulk.page_size == 10000);
    CHECK(bulk.admission_class == request_class::background);
    CHECK_FALSE(bulk.hedging);
    CHECK(bulk.cl == consistency::local_quorum);
    CHECK(set->names() == "default, bulk, oltp, oltp-strict");
}

TEST_CASE("profiles: a wrong set is refused, naming the profile and what is wrong") {
    CHECK_THAT(refusal({{"a", {.inherits = "nope"}}}), ContainsSubstring("\"a\": it inherits from \"nope\", which is not a profile"));
    CHECK_THAT(refusal({{"a", {.inherits = "b"}}, {"b", {.inherits = "a"}}}), ContainsSubstring("inherits from itself"));
    CHECK_THAT(refusal({{"a", {.request_timeout = 0ms}}}), ContainsSubstring("\"a\": request_timeout must be positive"));
    CHECK_THAT(refusal({{"a", {.attempt_timeout = -1ms}}}), ContainsSubstring("attempt_timeout must not be negative"));
    CHECK_THAT(refusal({{"a", {.page_size = 0}}}), ContainsSubstring("page_size must be positive"));
    CHECK_THAT(refusal({{"a", {.max_attempts = 0}}}), ContainsSubstring("max_attempts must be at least 1"));
    CHECK_THAT(refusal({{"a", {.serial_consistency = consistency::quorum}}}), ContainsSubstring("SERIAL or LOCAL_SERIAL"));
    CHECK_THAT(refusal({{"default", {.inherits = "a"}}, {"a", {}}}), ContainsSubstring("the default profile cannot inherit"));
    CHECK_THAT(refusal({{"", {}}}), ContainsSubstring("a profile needs a name"));
}

TEST_CASE("profiles: a statement holds its profile's name as an interned number") {
    const profile_name a("oltp"), b("oltp"), c("bulk"), none;
    CHECK(a.view() == "oltp");
    CHECK(a.view().data() == b.view().data());  // one copy of the name
    CHECK(c.view() == "bulk");
    CHECK(none.empty());
    CHECK(none.view().empty());
    CHECK(profile_name("").empty());
    CHECK(sizeof(profile_name) == 4);  // fits in the options' padding
    auto s = statement("SELECT 1").profile("oltp");
    CHECK(s.options().profile.view() == "oltp");
}
