// What a user's file does with the public API, compiled by check_headers.sh with -Wall -Wextra
// -Wpedantic -Werror: the inline functions and templates are instantiated here, where their warnings
// would show.
#include <cqlcoro/session.hpp>
#include <cqlcoro/value.hpp>

#include <boost/asio/as_tuple.hpp>

#include <fmt/format.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace asio = boost::asio;

struct user {
    std::int32_t id;
    std::string name;
    std::optional<std::vector<std::int32_t>> scores;
};

asio::awaitable<void> use(cqlcoro::session& s) {
    using cqlcoro::cql_type;
    using cqlcoro::type_kind;
    const auto t = cql_type::map_of(cql_type::of(type_kind::varchar), cql_type::list_of(cql_type::of(type_kind::int_)));
    const auto u = cql_type::tuple_of({cql_type::set_of(cql_type::of(type_kind::uuid)), cql_type::vector_of(cql_type::of(type_kind::float_), 3)});
    fmt::print("{} {}\n", cqlcoro::to_cql_string(t), cqlcoro::to_cql_string(u));

    cqlcoro::statement st("INSERT INTO ks.t (k, l, s, m, tu) VALUES (?, ?, ?, ?, ?)", 1, std::vector<std::int32_t>{1, 2},
                          std::set<std::string>{"a"}, std::map<std::string, double>{{"x", 1.5}}, std::tuple<int, std::string>{1, "b"});
    st.consistency(cqlcoro::consistency::local_quorum).page_size(100).timeout(std::chrono::seconds(1));
    co_await s.execute(st);

    auto p = co_await s.prepare("SELECT id, name, scores FROM ks.users WHERE id = ?");
    auto r = co_await s.execute(p.bind(1));
    for (auto row : r.rows()) {
        auto x = row.as<user>();
        auto [id, name] = row.as<std::tuple<std::int32_t, std::string_view>>();
        fmt::print("{} {} {} {} {}\n", x.id, x.name, id, name, row.get<cqlcoro::value>(2));
    }
    auto [ec, r2] = co_await s.execute(cqlcoro::batch(cqlcoro::batch_kind::unlogged).add(p.bind(2)), asio::as_tuple(asio::use_awaitable));
    if (ec) fmt::print("{} {}\n", ec.message(), r2.diagnostics().attempts.size());

    cqlcoro::stream_options o;
    o.prefetch = 2;
    auto pager = s.stream(cqlcoro::statement("SELECT id, name, scores FROM ks.users"), o);
    while (auto row = co_await pager.next_as<user>()) fmt::print("{}\n", row->name);
    co_await s.close();
}

int main() {}
