// Independent clients beside cqlcoro against real Cassandra 5.0: the DataStax Python driver from PyPI
// (test/interop/python_driver.py, in the venv scripts/setup makes in /opt/cqlcoro/python-driver;
// CQLCORO_TEST_PYTHON names another interpreter) and the Java driver 4.x from Maven Central
// (test/interop/JavaDriverCheck.java, with the jars setup puts in /opt/cqlcoro/java-driver/lib) each
// write a row of every type with edge values, and cqlcoro reads them; cqlcoro writes the same row, and
// they read it. Each checks against its own statement of the values, and the
// server's own JSON of the two rows (SELECT JSON) must be identical: the canonical form.
// Tagged [cassandra-4+]: the 2.1 run leaves it out.
#include "everything.hpp"
#include "target.hpp"

#include <cqlcoro/session.hpp>

#include "test_coro.hpp"

#include <boost/uuid/string_generator.hpp>

#include <catch2/catch_test_macros.hpp>

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

using namespace cqlcoro;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using cqlcoro::test::address;

namespace {

// The columns of python_driver.py's table, in its order (k first); keep the two in step.
struct interop_row {
    std::int32_t k;
    std::string a;
    std::int64_t b;
    std::vector<std::uint8_t> c;
    bool d;
    decimal e;
    double f;
    float g;
    boost::asio::ip::address h;
    std::int32_t i;
    std::string j;
    timestamp l;
    uuid m;
    uuid n;
    varint o;
    std::int16_t si;
    std::int8_t ti;
    date dt;
    time_of_day tm;
    cql_duration du;
    std::vector<std::int32_t> p;
    std::set<std::string> q;
    std::map<std::string, std::int64_t> r;
    std::tuple<std::int32_t, std::string, std::optional<double>> s;
    address t;
    std::vector<std::map<std::string, std::int32_t>> lm;
    std::vector<std::vector<std::int32_t>> nested;
    std::array<float, 3> ve;
};

constexpr const char* columns = "a, b, c, d, e, f, g, h, i, j, l, m, n, o, si, ti, dt, tm, du, p, q, r, s, t, lm, nested, ve";

interop_row expected(std::int32_t key) {
    boost::uuids::string_generator uuid_of;
    return {
        key,
        "ascii only",
        std::numeric_limits<std::int64_t>::min(),
        {0x00, 0xff, 0x10},
        true,
        decimal{varint("-123456789012345678901234567890"), 20},
        std::numeric_limits<double>::denorm_min(),
        -0.0f,
        boost::asio::ip::make_address("2001:db8::1"),
        std::numeric_limits<std::int32_t>::max(),
        "h\xc3\xa9llo \xe2\x9c\x93",
        timestamp(-86'400'123ms),
        uuid_of("8f2d7c5e-1b3a-4c6d-9e8f-0a1b2c3d4e5f"),
        uuid_of("e3e3b1a0-8d2b-11ee-b9d1-0242ac120002"),
        varint("-98765432109876543210987654321098765432109876543210"),
        std::numeric_limits<std::int16_t>::min(),
        std::numeric_limits<std::int8_t>::min(),
        date(std::chrono::days(std::numeric_limits<std::int32_t>::min())),
        time_of_day(86'399'999'999'999),
        cql_duration{-14, -3, -1},
        {3, 1, 2},
        {"x", "y"},
        {{"one", 1}, {"min", std::numeric_limits<std::int64_t>::min()}},
        {7, "seven", std::nullopt},
        address{"Main St", 12345},
        {{{"a", 1}, {"b", -2}}, {}, {{"\xc3\xa9", std::numeric_limits<std::int32_t>::max()}}},
        {{1}, {}, {2, 3}},
        {-0.0f, std::numeric_limits<float>::infinity(), 1.5f},
    };
}

void check_same(const interop_row& got, const interop_row& want) {
    CHECK(got.k == want.k);
    CHECK(got.a == want.a);
    CHECK(got.b == want.b);
    CHECK(got.c == want.c);
    CHECK(got.d == want.d);
    CHECK(got.e == want.e);
    CHECK(got.f == want.f);
    CHECK(got.g == want.g);
    CHECK(std::signbit(got.g));
    CHECK(got.h == want.h);
    CHECK(got.i == want.i);
    CHECK(got.j == want.j);
    CHECK(got.l == want.l);
    CHECK(got.m == want.m);
    CHECK(got.n == want.n);
    CHECK(got.o == want.o);
    CHECK(got.si == want.si);
    CHECK(got.ti == want.ti);
    CHECK(got.dt == want.dt);
    CHECK(got.tm == want.tm);
    CHECK(got.du == want.du);
    CHECK(got.p == want.p);
    CHECK(got.q == want.q);
    CHECK(got.r == want.r);
    CHECK(got.s == want.s);
    CHECK(got.t == want.t);
    CHECK(got.lm == want.lm);
    CHECK(got.nested == want.nested);
    CHECK(got.ve == want.ve);
    CHECK(std::signbit(got.ve[0]));
}

// What a program printed, and its exit status.
int run_program(const std::string& cmd) {
    std::string said;
    FILE* out = popen((cmd + " 2>&1").c_str(), "r");
    if (!out) throw std::runtime_error("cannot run " + cmd);
    std::array<char, 512> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), out)) said += buf.data();
    const int status = pclose(out);
    UNSCOPED_INFO(cmd << "\n" << said);
    return status;
}

std::string arguments(const std::string& verb, int key) {
    return fmt::format("{} {} {} {}", cqlcoro::test::test_host(), int(cqlcoro::test::test_protocol()), verb, key);
}

// Runs python_driver.py with `verb` and `key`.
int python_driver(const std::string& verb, int key) {
    const char* env = std::getenv("CQLCORO_TEST_PYTHON");
    const std::string python = env && *env ? env : "/opt/cqlcoro/python-driver/bin/python";
    return run_program(fmt::format("{} {}/python_driver.py {}", python, CQLCORO_INTEROP_DIR, arguments(verb, key)));
}

// Runs JavaDriverCheck.java (a single-file program) with `verb` and `key`.
int java_driver(const std::string& verb, int key) {
    const char* env = std::getenv("CQLCORO_TEST_JAVA_DRIVER_LIB");
    const std::string lib = env && *env ? env : "/opt/cqlcoro/java-driver/lib";
    return run_program(fmt::format("java -cp '{}/*' {}/JavaDriverCheck.java {}", lib, CQLCORO_INTEROP_DIR, arguments(verb, key)));
}

// The server's own JSON of a row, with the key left out.
asio::awaitable<std::string> server_json(session& s, int key) {
    auto rows = co_await s.execute(statement(fmt::format("SELECT JSON {} FROM cqlcoro_interop.values_ WHERE k = ?", columns), key));
    REQUIRE(rows.size() == 1);
    co_return rows.one().get<std::string>(0);
}

}  // namespace

TEST_CASE("real node 4.0+, interop: the Python and Java drivers and cqlcoro read each other's rows of every type alike", "[cassandra-4+]") {
    // Keys apart per protocol run, so runs do not read each other's rows.
    const int py_key = 100 + cqlcoro::test::test_protocol() * 4, java_key = py_key + 1, our_key = py_key + 2;
    REQUIRE(python_driver("write", py_key) == 0);  // creates the keyspace, the type and the table too
    // The Java driver 4.x reads smallint, tinyint, date and time as raw bytes in v3 (custom types there)
    // and cannot bind them: it takes part from v4 on.
    const bool with_java = cqlcoro::test::test_protocol() >= 4;
    if (with_java) REQUIRE(java_driver("write", java_key) == 0);
    cqlcoro::test::run_coroutine([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = co_await session::connect(ex, cqlcoro::test::target_params());
        const auto want = expected(our_key);
        auto insert = co_await s.prepare(fmt::format("INSERT INTO cqlcoro_interop.values_ (k, {}) VALUES "
                                                     "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                                     columns));
        co_await s.execute(insert.bind(want.k, want.a, want.b, want.c, want.d, want.e, want.f, want.g, want.h, want.i, want.j, want.l,
                                       want.m, want.n, want.o, want.si, want.ti, want.dt, want.tm, want.du, want.p, want.q, want.r,
                                       want.s, want.t, want.lm, want.nested, want.ve));
        // What the other drivers wrote, read by cqlcoro; and the rows as the server stores them: identical.
        auto select = co_await s.prepare(fmt::format("SELECT k, {} FROM cqlcoro_interop.values_ WHERE k = ?", columns));
        const auto our_json = co_await server_json(s, our_key);
        for (int key : {py_key, java_key}) {
            if (key == java_key && !with_java) continue;
            INFO("the row of the " << (key == py_key ? "Python" : "Java") << " driver");
            auto theirs = co_await s.execute(select.bind(key));
            REQUIRE(theirs.size() == 1);
            check_same(theirs.one().as<interop_row>(), expected(key));
            const auto their_json = co_await server_json(s, key);
            INFO("theirs: " << their_json << "\ncqlcoro's: " << our_json);
            CHECK(their_json == our_json);
        }
        // The server's JSON shows infinity as null: that one the drivers' own checks vouch for.
        CHECK(our_json.find("\"ve\": [-0.0, null, 1.5]") != std::string::npos);
        co_await s.close();
    });
    // What cqlcoro wrote, read by the other drivers.
    CHECK(python_driver("check", our_key) == 0);
    if (with_java) CHECK(java_driver("check", our_key) == 0);
}
