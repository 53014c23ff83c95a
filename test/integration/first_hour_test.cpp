// What a new user meets first against a real Cassandra node: errors for the common mistakes must
// name the cause once, with the code code-based handling expects.
#include "raw_connection.hpp"

#include <cqlcoro/session.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;
using cqlcoro::test::test_host;
using cqlcoro::test::test_server;

namespace {

// How often `part` occurs in `text`.
std::size_t occurrences(std::string_view text, std::string_view part) {
    std::size_t n = 0;
    for (auto at = text.find(part); at != std::string_view::npos; at = text.find(part, at + part.size())) ++n;
    return n;
}

// What connect() with `p` throws.
cqlcoro::error connect_failure(const session_params& p) {
    std::optional<cqlcoro::error> failure;
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        try {
            auto s = co_await session::connect(ex, p);
            co_await s.close();
        } catch (const cqlcoro::error& e) {
            failure = e;
        }
    });
    if (!failure) FAIL("connect succeeded");
    return *failure;
}

session_params base() {
    auto p = cqlcoro::test::target_params();
    p.connect_timeout = std::chrono::seconds(3);
    return p;
}

}  // namespace

TEST_CASE("real node, first hour: a keyspace that does not exist fails connect with the server's invalid-request code") {
    auto p = base();
    p.keyspace = "no_such_keyspace";
    const auto e = connect_failure(p);
    CHECK(e.boost_code() == server_errc::invalid);
    const std::string what = e.what();
    INFO(what);
    CHECK_THAT(what, ContainsSubstring("Keyspace 'no_such_keyspace' does not exist"));
    CHECK(occurrences(what, test_host() + ":9042") == 1);
    CHECK(occurrences(what, "invalid request") <= 1);
}

TEST_CASE("real node, first hour: a protocol version forced is spoken exactly, or connect fails naming the highest the server has") {
    const auto highest = test_server().max_protocol();
    for (std::uint8_t v = 3; v <= 5; ++v) {
        auto p = base();
        p.protocol_version = v;
        INFO("forced v" << int(v) << " against Cassandra " << test_server().text);
        if (v <= highest) {
            cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
                auto s = co_await session::connect(ex, p);
                CHECK(s.protocol_version() == v);
                co_await s.close();
            });
            continue;
        }
        const auto e = connect_failure(p);
        CHECK(e.boost_code() == protocol_errc::unsupported_version);
        CHECK_THAT(std::string(e.what()), ContainsSubstring(fmt::format("protocol v{} was asked for", v)));
        CHECK_THAT(std::string(e.what()), ContainsSubstring(fmt::format("speaks v{} at most", highest)));
    }
}

TEST_CASE("real node, first hour: the internode port instead of the CQL port is named as the likely cause") {
    auto p = base();
    p.port = 7000;
    p.connect_timeout = std::chrono::seconds(2);
    const auto e = connect_failure(p);
    const std::string what = e.what();
    INFO(what);
    CHECK_THAT(what, ContainsSubstring("is 7000 the server's CQL native port"));
    CHECK_THAT(what, ContainsSubstring("7000 is the internode port"));
}

TEST_CASE("real node, first hour: a port nothing listens on says connection refused once") {
    auto p = base();
    p.port = 9;  // discard: nothing listens on loopback
    const auto e = connect_failure(p);
    CHECK(e.boost_code() == client_errc::no_host_available);
    const std::string what = e.what();
    INFO(what);
    CHECK(occurrences(what, "Connection refused") == 1);
    CHECK_THAT(what, ContainsSubstring(test_host() + ":9: TCP connect failed"));
}
