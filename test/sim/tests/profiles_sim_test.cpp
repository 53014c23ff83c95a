// Execution profiles through a session against a simulated node: what a profile sets reaches the wire,
// the statement's own options win, an unknown name fails unsent, a bad set is refused at connect and at
// set_profiles(), and a set swapped at run time changes the next requests while one in flight keeps its;
// reload_config() does the same from the file.
#include "sim.hpp"
#include "sim_session.hpp"

#include <cqlcoro/session.hpp>

#include <boost/asio/as_tuple.hpp>

#include "test_coro.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <unistd.h>

using namespace cqlcoro;
namespace asio = boost::asio;
using Catch::Matchers::ContainsSubstring;
using cqlcoro::test::seen;
using cqlcoro::test::yield_until;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t port = 19152;
constexpr int slow_turns = 50'000'000;

sim::recorded_request last_of(const sim::cluster& c, std::string_view query) {
    std::optional<sim::recorded_request> last;
    for (const auto& r : c.requests())
        if (r.query == query) last = r;
    REQUIRE(last);
    return *last;
}

}  // namespace

TEST_CASE("profiles: a statement's profile decides what it does not set itself") {
    sim::cluster c({.nodes = 1, .port = port});
    c.prime({.query = "q"}, sim::one_int_row());
    sim::prime_then slow{sim::one_int_row()};
    slow.delay = 300ms;
    c.prime({.query = "slow"}, slow);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = cqlcoro::test::sim_session_params(c);
        p.profiles["default"] = {.consistency = consistency::quorum};
        p.profiles["bulk"] = {.consistency = consistency::local_one, .page_size = 77};
        p.profiles["oltp"] = {.request_timeout = 60ms};
        auto s = co_await session::connect(ex, p);

        co_await s.execute(statement("q"));
        CHECK(last_of(c, "q").cl == consistency::quorum);  // profiles["default"] over session_params
        CHECK(last_of(c, "q").page_size == 5000);
        co_await s.execute(statement("q").profile("bulk"));
        CHECK(last_of(c, "q").cl == consistency::local_one);
        CHECK(last_of(c, "q").page_size == 77);
        co_await s.execute(statement("q").profile("bulk").consistency(consistency::all));
        CHECK(last_of(c, "q").cl == consistency::all);  // the statement's own option wins

        auto [ec, r] = co_await s.execute(statement("slow").profile("oltp"), asio::as_tuple(asio::use_awaitable));
        CHECK(ec == client_errc::request_timeout);
        CHECK_THAT(r.diagnostics().attempts.back().message, ContainsSubstring("60 ms"));

        const auto before = c.requests().size();
        auto [unknown, ur] = co_await s.execute(statement("q").profile("olpt"), asio::as_tuple(asio::use_awaitable));
        CHECK(unknown == client_errc::invalid_configuration);
        CHECK(ur.diagnostics().outcome == request_outcome::not_sent);
        CHECK_THAT(ur.diagnostics().attempts.back().message,
                   ContainsSubstring("\"olpt\", which the session does not have (it has: default, bulk, oltp)"));
        CHECK(c.requests().size() == before);

        // A stream's pages take their timeout from the profile too.
        auto pages = s.stream(statement("slow").profile("oltp"));
        auto [pec, page] = co_await pages.next(asio::as_tuple(asio::use_awaitable));
        CHECK(pec == client_errc::request_timeout);
        co_await s.close(100ms);
    });
}

TEST_CASE("profiles: swapped at run time, the next requests use the new set; one in flight keeps its profile") {
    sim::cluster c({.nodes = 1, .port = port});
    sim::prime_then slow{sim::one_int_row()};
    slow.delay = 300ms;
    c.prime({.query = "slow"}, slow);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = cqlcoro::test::sim_session_params(c);
        p.profiles["p"] = {.request_timeout = 5s};
        auto s = co_await session::connect(ex, p);
        std::optional<error_code> in_flight;
        s.execute(statement("slow").profile("p"), [&](error_code ec, result) { in_flight = ec; });
        co_await yield_until([&] { return seen(c, "slow") == 1; }, slow_turns);

        s.set_profiles({{"p", {.request_timeout = 50ms}}});
        CHECK(s.profiles().at("p").request_timeout == 50ms);
        auto [ec, r] = co_await s.execute(statement("slow").profile("p"), asio::as_tuple(asio::use_awaitable));
        CHECK(ec == client_errc::request_timeout);  // the new set
        co_await yield_until([&] { return in_flight.has_value(); }, slow_turns);
        CHECK_FALSE(*in_flight);  // the old one kept its 5 s

        // A bad set is refused whole, and the one in use stays.
        CHECK_THROWS_WITH(s.set_profiles({{"q", {.inherits = "p"}}}), ContainsSubstring("\"q\": it inherits from \"p\", which is not a profile"));
        CHECK(s.profiles().at("p").request_timeout == 50ms);
        auto [again, ar] = co_await s.execute(statement("slow").profile("p"), asio::as_tuple(asio::use_awaitable));
        CHECK(again == client_errc::request_timeout);
        co_await s.close(100ms);
    });
}

TEST_CASE("profiles: connect refuses a bad set, naming the profile") {
    sim::cluster c({.nodes = 1, .port = port});
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto p = cqlcoro::test::sim_session_params(c);
        p.profiles["x"] = {.page_size = -1};
        auto [ec, s] = co_await session::connect(ex, p, asio::as_tuple(asio::use_awaitable));
        CHECK(ec == client_errc::invalid_configuration);
        co_return;
    });
}

TEST_CASE("config: reload_config() applies the file's new profiles and request defaults, and names what waits for a restart") {
    sim::cluster c({.nodes = 1, .port = port});
    sim::prime_then slow{sim::one_int_row()};
    slow.delay = 300ms;
    c.prime({.query = "slow"}, slow);
    c.prime({.query = "q"}, sim::one_int_row());
    const auto file = std::filesystem::temp_directory_path() / ("cqlcoro-reload-" + std::to_string(::getpid()) + ".json");
    auto write = [&](std::string_view text) {
        std::ofstream out(file, std::ios::trunc);
        out << text;
    };
    write(R"({"default_consistency": "QUORUM", "admission": {"max_concurrent": 100},
              "profiles": {"p": {"request_timeout": "5s"}}})");
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto params = load_config({.file = file, .environment = false, .code = [&](session_params& p) {
                                       const auto sim_params = cqlcoro::test::sim_session_params(c);
                                       p.contact_points = sim_params.contact_points;
                                       p.port = sim_params.port;
                                       p.heartbeat_interval = sim_params.heartbeat_interval;
                                   }});
        auto s = co_await session::connect(ex, params);
        co_await s.execute(statement("q"));
        CHECK(last_of(c, "q").cl == consistency::quorum);
        co_await s.execute(statement("slow").profile("p"));  // 300 ms within 5 s

        write(R"({"default_consistency": "ONE", "admission": {"max_concurrent": 200},
                  "profiles": {"p": {"request_timeout": "50ms"}}})");
        const auto restart_only = s.reload_config();
        CHECK(restart_only == std::vector<std::string>{"admission.max_concurrent"});
        co_await s.execute(statement("q"));
        CHECK(last_of(c, "q").cl == consistency::one);
        auto [ec, r] = co_await s.execute(statement("slow").profile("p"), asio::as_tuple(asio::use_awaitable));
        CHECK(ec == client_errc::request_timeout);
        CHECK(s.admission_metrics().running <= 100);

        write(R"({"profiles": {"p": {"request_timeout": "soon"}}})");
        CHECK_THROWS_WITH(s.reload_config(), ContainsSubstring("profiles.p.request_timeout: expected a duration"));
        CHECK(s.profiles().at("p").request_timeout == 50ms);  // the set in use stays
        co_await s.close(100ms);

        auto from_code = co_await session::connect(ex, cqlcoro::test::sim_session_params(c));
        CHECK_THROWS_WITH(from_code.reload_config(), ContainsSubstring("not made by load_config()"));
        co_await from_code.close(100ms);
    });
    std::filesystem::remove(file);
}
