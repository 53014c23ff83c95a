// What the session tests against simulated nodes share: parameters and primed tables.
#pragma once

#include "sim.hpp"

#include <cqlcoro/session.hpp>

#include <fmt/format.h>

#include <chrono>

namespace cqlcoro::test {

/// A session on `c` through its first node, with no heartbeats (a test's timing stays its own).
inline session_params sim_session_params(const sim::cluster& c) {
    session_params p;
    p.contact_points = {c.address(1)};
    p.port = c.port(1);
    p.heartbeat_interval = std::chrono::milliseconds(0);
    return p;
}

/// `n` rows of (id int, name text): id 0..n-1, name "row<id>".
inline sim::rows_answer id_name_table(int n) {
    auto r = sim::rows({sim::column("id", cql_type::of(type_kind::int_)), sim::column("name", cql_type::of(type_kind::varchar))});
    for (int i = 0; i < n; ++i) r.row(i, fmt::format("row{}", i));
    return r;
}

/// How many requests with this query text the cluster has received.
inline std::size_t seen(const sim::cluster& c, std::string_view query) {
    std::size_t n = 0;
    for (const auto& r : c.requests())
        if (r.query == query) ++n;
    return n;
}

}  // namespace cqlcoro::test
