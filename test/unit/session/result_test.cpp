// A result is a handle on one shared, immutable answer: copies and moves share it, an empty one
// answers with empty values, and its page keeps the answer's memory alive on its own.
#include "session/result_builder.hpp"
#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

#include <optional>

using namespace cqlcoro;
using cqlcoro::test::hex;

namespace {

// A v4 rows result: global spec ks.t, columns (k int, v text), 2 rows (1,'a') and (2,null), a paging state.
const auto rows_v4 = hex(
    "00000002 | 00000003 00000002 | 00000002 0102"
    "| 0002 'ks' 0001 't' | 0001 'k' 0009 | 0001 'v' 000d"
    "| 00000002 | 00000004 00000001 00000001 'a' | 00000004 00000002 ffffffff");

std::shared_ptr<result_builder::owned_response> answer(const protocol::byte_buffer& body) {
    const protocol::frame_header h{4, true, 0, 0, protocol::opcode::result, static_cast<std::uint32_t>(body.size())};
    return std::make_shared<result_builder::owned_response>(h, protocol::bytes_view(body.data(), body.size()));
}

}  // namespace

TEST_CASE("result: an empty result answers with empty values") {
    const result r;
    CHECK(r.empty());
    CHECK(r.size() == 0);
    CHECK(r.rows().size() == 0);
    CHECK(r.columns().empty());
    CHECK_FALSE(r.page());
    CHECK_FALSE(r.has_more_pages());
    CHECK(r.warnings().empty());
    CHECK_FALSE(r.tracing_id());
    CHECK_FALSE(r.schema_change());
    CHECK(r.keyspace_set().empty());
    CHECK(r.coordinator().empty());
    CHECK(r.diagnostics().attempts.empty());
    CHECK_FALSE(r.schema_in_agreement());
    CHECK(r.memory_bytes() == 0);
    CHECK_THROWS_AS(r.one(), cqlcoro::error);
}

TEST_CASE("result: rows, paging state and diagnostics come from the answer; copies share it") {
    diagnostics d;
    d.host = "10.0.0.1:9042";
    d.attempts.push_back({"10.0.0.1:9042", {}, {}, request_outcome::succeeded, retry_action::completed});
    std::optional<result> r = result_builder::from(answer(rows_v4), nullptr, std::move(d)).value();
    REQUIRE(r->size() == 2);
    CHECK(r->columns().at(1).name == "v");
    CHECK(r->rows()[0].get<std::int32_t>(0) == 1);
    CHECK(r->rows()[0].get<std::string>(1) == "a");
    CHECK_FALSE(r->rows()[1].get<std::optional<std::string>>(1));
    CHECK(std::vector<std::uint8_t>(r->paging_state().begin(), r->paging_state().end()) == hex("0102"));
    CHECK(r->coordinator() == "10.0.0.1:9042");
    REQUIRE(r->diagnostics().attempts.size() == 1);
    CHECK(r->diagnostics().attempts[0].decision == retry_action::completed);
    CHECK(r->memory_bytes() > 0);

    const result copy = *r;  // one pointer: the same rows, not a second index of them
    CHECK(&copy.diagnostics() == &r->diagnostics());
    CHECK(copy.rows()[0].get<std::string>(1) == "a");
    result moved = std::move(*r);
    CHECK(moved.size() == 2);
    CHECK(r->empty());  // a moved-from result is empty, and safe to use

    // The page alone keeps the answer alive: the rows stay readable after every result is gone.
    auto page = moved.page();
    REQUIRE(page);
    r.reset();
    moved = result();
    CHECK(copy.size() == 2);
    const auto keep = std::move(page);
    CHECK(keep->size() == 2);
    CHECK(keep->rows()[0].get<std::string>(1) == "a");
    CHECK(keep->column("v") == 1);
}

TEST_CASE("result: a failed result carries its diagnostics and nothing else") {
    const auto r = result_builder::failed({.host = "10.0.0.2:9042", .outcome = request_outcome::maybe_applied});
    CHECK(r.empty());
    CHECK(r.coordinator() == "10.0.0.2:9042");
    CHECK(r.diagnostics().outcome == request_outcome::maybe_applied);
    CHECK_FALSE(r.page());
}
