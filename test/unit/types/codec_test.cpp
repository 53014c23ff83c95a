// Value codecs: byte vectors from the spec (section 6 of native_protocol_v4/v5) and round trips with
// edge values.
#include <cqlcoro/codec.hpp>
#include <cqlcoro/list_view.hpp>

#include "test_bytes.hpp"

#include <catch2/catch_test_macros.hpp>

#include <boost/uuid/string_generator.hpp>

using namespace cqlcoro;
using namespace std::chrono_literals;
using cqlcoro::test::hex;
using cqlcoro::test::to_hex;

namespace {

template <class T>
std::string enc(const T& v, const cql_type& t) {
    byte_buffer out;
    auto ec = codec<T>::encode(v, t, out);
    INFO(ec.message());
    REQUIRE_FALSE(ec);
    return to_hex(out);
}

template <class T>
error_code enc_error(const T& v, const cql_type& t) {
    byte_buffer out;
    return codec<T>::encode(v, t, out);
}

template <class T>
T dec(std::string_view hexbytes, const cql_type& t, decode_options o = {}) {
    auto b = hex(hexbytes);
    REQUIRE(codec<T>::accepts(t));
    T out{};
    auto ec = decode_cell(std::optional<bytes_view>(b), t, o, out);
    INFO(ec.message());
    REQUIRE_FALSE(ec);
    return out;
}

template <class T>
error_code dec_error(std::string_view hexbytes, const cql_type& t, decode_options o = {}) {
    auto b = hex(hexbytes);
    T out{};
    return decode_cell(std::optional<bytes_view>(b), t, o, out);
}

template <class T>
void round_trip(const T& v, const cql_type& t) {
    byte_buffer out;
    REQUIRE_FALSE(codec<T>::encode(v, t, out));
    T back{};
    REQUIRE_FALSE(codec<T>::decode(out, t, {}, back));
    CHECK(back == v);
}

const auto t_int = cql_type::of(type_kind::int_);
const auto t_bigint = cql_type::of(type_kind::bigint);
const auto t_text = cql_type::of(type_kind::varchar);

}  // namespace

TEST_CASE("codec: integers are big-endian two's complement of their type's width") {
    CHECK(enc<std::int32_t>(1, t_int) == "00000001");
    CHECK(enc<std::int32_t>(-2, t_int) == "fffffffe");
    CHECK(enc<std::int64_t>(-1, t_bigint) == "ffffffffffffffff");
    CHECK(enc<std::int16_t>(-32768, cql_type::of(type_kind::smallint)) == "8000");
    CHECK(enc<int>(127, cql_type::of(type_kind::tinyint)) == "7f");
    CHECK(dec<std::int64_t>("8000000000000000", t_bigint) == std::numeric_limits<std::int64_t>::min());
    CHECK(dec<std::int32_t>("7fffffff", t_int) == 2147483647);
    CHECK(dec<std::int64_t>("ff", cql_type::of(type_kind::tinyint)) == -1);  // widening read
}

TEST_CASE("codec: binding checks the value's range against the column, and reading the column's range against T") {
    CHECK(enc_error<int>(300, cql_type::of(type_kind::tinyint)) == type_errc::value_out_of_range);
    CHECK(enc_error<std::int64_t>(1LL << 40, t_int) == type_errc::value_out_of_range);
    CHECK(enc_error<std::uint64_t>(~0ULL, t_bigint) == type_errc::value_out_of_range);
    CHECK(enc<std::uint64_t>(~0ULL, cql_type::of(type_kind::varint)) == "00ffffffffffffffff");
    CHECK_FALSE(codec<std::int32_t>::accepts(t_bigint));  // a bigint does not fit: a type error, once per page
    CHECK_FALSE(codec<std::int32_t>::accepts(t_text));
    CHECK(enc_error<int>(1, t_text) == type_errc::type_mismatch);
    CHECK(dec_error<std::int32_t>("000001", t_int) == type_errc::bad_cell_size);
}

TEST_CASE("codec: varint is minimal two's complement, arbitrarily long") {
    const auto t = cql_type::of(type_kind::varint);
    CHECK(enc<std::int64_t>(0, t) == "00");
    CHECK(enc<std::int64_t>(127, t) == "7f");
    CHECK(enc<std::int64_t>(128, t) == "0080");
    CHECK(enc<std::int64_t>(-128, t) == "80");
    CHECK(enc<std::int64_t>(-129, t) == "ff7f");
    varint big("-123456789012345678901234567890");
    round_trip(big, t);
    round_trip(varint("340282366920938463463374607431768211456"), t);  // 2^128
    for (std::int64_t v : std::initializer_list<std::int64_t>{0, 1, -1, 255, -256, std::int64_t{1} << 62, std::numeric_limits<std::int64_t>::min()}) {
        round_trip(varint(v), t);
        round_trip(v, t);
    }
    CHECK(dec<varint>("ff7f", t) == -129);
    CHECK(dec_error<std::int64_t>("010000000000000000", t) == type_errc::value_out_of_range);
    CHECK(dec_error<std::int64_t>("00ffffffffffffffff", t) == type_errc::value_out_of_range);  // 2^64-1
    CHECK(dec<std::int64_t>("ffffffffffffffffff", t) == -1);  // redundant sign bytes are fine
}

TEST_CASE("codec: floating point keeps NaN, infinities and signed zero") {
    const auto tf = cql_type::of(type_kind::float_);
    const auto td = cql_type::of(type_kind::double_);
    CHECK(enc<float>(1.0f, tf) == "3f800000");
    CHECK(enc<double>(-2.0, td) == "c000000000000000");
    CHECK(std::isnan(dec<double>("7ff8000000000000", td)));
    CHECK(dec<float>("7f800000", tf) == std::numeric_limits<float>::infinity());
    CHECK(std::signbit(dec<double>("8000000000000000", td)));
    CHECK(dec<double>("3f800000", tf) == 1.0);                           // float column read as double
    CHECK(enc_error<double>(0.1, tf) == type_errc::inexact_float);        // in range, but 0.1 is not a float
    CHECK(enc_error<double>(1e300, tf) == type_errc::value_out_of_range);  // beyond any float
    CHECK(enc<double>(0.5, tf) == "3f000000");
    round_trip(std::numeric_limits<double>::max(), td);
    round_trip(std::numeric_limits<float>::lowest(), tf);
}

TEST_CASE("codec: text and ascii, as views or owned, with UTF-8 checks") {
    const auto ta = cql_type::of(type_kind::ascii);
    CHECK(enc<std::string_view>("h\xc3\xa9", t_text) == "68c3a9");
    CHECK(enc<std::string>("", t_text).empty());
    CHECK(enc_error<std::string_view>("\xc3\xa9", ta) == type_errc::invalid_ascii);
    CHECK(enc_error<std::string_view>("\xff", t_text) == type_errc::invalid_utf8);
    CHECK(enc_error<std::string_view>("\xc0\x80", t_text) == type_errc::invalid_utf8);        // overlong
    CHECK(enc_error<std::string_view>("\xed\xa0\x80", t_text) == type_errc::invalid_utf8);   // surrogate
    CHECK(enc_error<std::string_view>("\xe2\x82", t_text) == type_errc::invalid_utf8);        // truncated
    CHECK(enc<std::string_view>("\xf0\x9f\x98\x80", t_text) == "f09f9880");                // 4 bytes
    auto b = hex("'abc'");
    std::string_view view;
    REQUIRE_FALSE(codec<std::string_view>::decode(b, t_text, {}, view));
    CHECK(view.data() == reinterpret_cast<const char*>(b.data()));  // no copy
    CHECK(dec_error<std::string>("ff", t_text, {.validate_utf8 = true}) == type_errc::invalid_utf8);
    CHECK(dec<std::string>("ff", t_text) == "\xff");  // validation is opt-in on reads
}

TEST_CASE("codec: blobs as views or vectors; any cell can be read raw") {
    const auto tb = cql_type::of(type_kind::blob);
    CHECK(enc<std::vector<std::uint8_t>>({1, 2, 3}, tb) == "010203");
    CHECK(dec<std::vector<std::uint8_t>>("cafe", tb) == std::vector<std::uint8_t>{0xca, 0xfe});
    CHECK(dec<bytes_view>("00000001", t_int).size() == 4);
    CHECK(enc_error<bytes_view>(bytes_view{}, t_int) == type_errc::type_mismatch);
}

TEST_CASE("codec: null only reads into optional; an empty fixed-size cell reads as null") {
    std::int32_t i = 0;
    CHECK(decode_cell(std::optional<bytes_view>{}, t_int, {}, i) == type_errc::unexpected_null);
    std::optional<std::int32_t> oi = 5;
    REQUIRE_FALSE(decode_cell(std::optional<bytes_view>{}, t_int, {}, oi));
    CHECK_FALSE(oi.has_value());
    REQUIRE_FALSE(decode_cell(std::optional<bytes_view>(bytes_view{}), t_int, {}, oi));
    CHECK_FALSE(oi.has_value());
    std::string s = "x";
    REQUIRE_FALSE(decode_cell(std::optional<bytes_view>(bytes_view{}), t_text, {}, s));  // empty text is a value
    CHECK(s.empty());
    CHECK(decode_cell(std::optional<bytes_view>{}, t_text, {}, s) == type_errc::unexpected_null);
    byte_buffer out;
    REQUIRE_FALSE(detail::encode_value(std::optional<int>{}, t_int, out));
    CHECK(to_hex(out) == "ffffffff");
}

TEST_CASE("codec: a null list, set or map reads as an empty container (Cassandra stores empty ones as null)") {
    std::vector<std::int32_t> l{1};
    REQUIRE_FALSE(decode_cell(std::optional<bytes_view>{}, cql_type::list_of(t_int), {}, l));
    CHECK(l.empty());
    std::set<std::string> st{"x"};
    REQUIRE_FALSE(decode_cell(std::optional<bytes_view>{}, cql_type::set_of(t_text), {}, st));
    CHECK(st.empty());
    std::map<std::string, std::int32_t> m{{"x", 1}};
    REQUIRE_FALSE(decode_cell(std::optional<bytes_view>{}, cql_type::map_of(t_text, t_int), {}, m));
    CHECK(m.empty());
    // A vector<float, 3> has a fixed size: null does not fit a std::array, nor a std::vector.
    std::array<float, 3> a{};
    CHECK(decode_cell(std::optional<bytes_view>{}, cql_type::vector_of(cql_type::of(type_kind::float_), 3), {}, a) ==
          type_errc::unexpected_null);
    std::vector<float> v;
    CHECK(decode_cell(std::optional<bytes_view>{}, cql_type::vector_of(cql_type::of(type_kind::float_), 3), {}, v) ==
          type_errc::unexpected_null);
}

TEST_CASE("codec: timestamps, dates and times, before 1970 and at the end of the day") {
    const auto ts = cql_type::of(type_kind::timestamp);
    CHECK(enc(timestamp(1500ms), ts) == "00000000000005dc");
    CHECK(dec<timestamp>("fffffffffffffc18", ts) == timestamp(-1000ms));
    auto precise = std::chrono::system_clock::time_point(std::chrono::microseconds(1'234'567));
    CHECK(enc(precise, ts) == enc(timestamp(1234ms), ts));  // floored to milliseconds
    round_trip(timestamp(-62'135'596'800'000ms), ts);      // year 1
    // Beyond system_clock's +-292 years, a nanosecond time_point cannot hold it: an error, not overflow.
    std::chrono::system_clock::time_point far;
    CHECK(decode_cell(std::optional<bytes_view>(hex("000affffffffffff")), ts, {}, far) == type_errc::value_out_of_range);
    CHECK(dec<timestamp>("000affffffffffff", ts).time_since_epoch().count() == 0x000affffffffffff);

    const auto td = cql_type::of(type_kind::date);
    CHECK(enc(date(std::chrono::days(0)), td) == "80000000");
    CHECK(enc(date(std::chrono::days(-1)), td) == "7fffffff");
    CHECK(dec<std::chrono::year_month_day>("7fffffff", td) == std::chrono::year_month_day(std::chrono::year(1969), std::chrono::December, std::chrono::day(31)));
    round_trip(date(std::chrono::days(-(1 << 30))), td);

    const auto tt = cql_type::of(type_kind::time);
    CHECK(enc(time_of_day(86'399'999'999'999), tt) == "00004e94914effff");
    CHECK(enc_error(time_of_day(86'400'000'000'000), tt) == type_errc::value_out_of_range);
    CHECK(enc_error(time_of_day(-1), tt) == type_errc::value_out_of_range);
    CHECK(dec_error<time_of_day>("ffffffffffffffff", tt) == type_errc::value_out_of_range);
}

TEST_CASE("codec: duration is three zig-zag vints with one sign") {
    const auto t = cql_type::of(type_kind::duration);
    CHECK(enc(cql_duration{1, 2, 3}, t) == "020406");
    CHECK(enc(cql_duration{-1, 0, -1000000000}, t) == "0100f0773593ff");
    round_trip(cql_duration{std::numeric_limits<std::int32_t>::max(), 365, std::numeric_limits<std::int64_t>::max()}, t);
    round_trip(cql_duration{std::numeric_limits<std::int32_t>::min(), 0, std::numeric_limits<std::int64_t>::min()}, t);
    CHECK(enc_error(cql_duration{1, -1, 0}, t) == type_errc::value_out_of_range);
    CHECK(dec_error<cql_duration>("0204", t) == type_errc::bad_cell_size);
}

TEST_CASE("codec: uuid and timeuuid, with time extraction and generation") {
    const auto tu = cql_type::of(type_kind::timeuuid);
    auto u = boost::uuids::string_generator()("01234567-89ab-cdef-0123-456789abcdef");
    CHECK(enc(u, cql_type::of(type_kind::uuid)) == "0123456789abcdef0123456789abcdef");
    CHECK(enc_error(u, tu) == type_errc::value_out_of_range);  // not a version 1 uuid
    auto when = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
    auto t1 = make_timeuuid(when);
    auto t2 = make_timeuuid(when);
    CHECK(t1 != t2);
    CHECK(t1.version() == uuid::version_time_based);
    CHECK(std::chrono::floor<std::chrono::milliseconds>(timeuuid_time(t1)) == when);
    round_trip(t1, tu);
    // Cassandra's own minTimeuuid('2013-01-01 00:00:00+0000')
    auto epoch_2013 = std::chrono::sys_days(std::chrono::year(2013) / 1 / 1);
    CHECK(enc(min_timeuuid(epoch_2013), tu) == "2f6ec00053a611e28080808080808080");
    CHECK(timeuuid_time(max_timeuuid(epoch_2013)) == epoch_2013 + std::chrono::nanoseconds(999'900));  // last 100 ns tick of the ms
}

TEST_CASE("codec: inet is 4 or 16 address bytes") {
    const auto t = cql_type::of(type_kind::inet);
    CHECK(enc(boost::asio::ip::make_address("127.0.0.1"), t) == "7f000001");
    CHECK(enc(boost::asio::ip::make_address("::1"), t) == "00000000000000000000000000000001");
    CHECK(dec<boost::asio::ip::address>("fe800000000000000000000000000001", t).to_string() == "fe80::1");
    CHECK(dec_error<boost::asio::ip::address>("7f0000", t) == type_errc::bad_cell_size);
}

TEST_CASE("codec: decimal is an exact scale and unscaled varint") {
    const auto t = cql_type::of(type_kind::decimal);
    CHECK(enc(decimal{varint(12345), 2}, t) == "000000023039");
    CHECK(dec<decimal>("000000023039", t).to_string() == "123.45");
    CHECK(dec<decimal>("00000005ff", t).to_string() == "-0.00001");
    CHECK(dec<decimal>("fffffffd01", t).to_string() == "1E+3");
    CHECK(dec<decimal>("0000000701", t).to_string() == "1E-7");          // adjusted exponent below -6
    CHECK(dec<decimal>("000000080c", t).to_string() == "1.2E-7");
    CHECK(dec<decimal>("2d2d2d0001", t).to_string() == "1E-757935360");  // no 700 MB of zeros
    decimal precise{varint("123456789012345678901234567890123456789"), 38};
    round_trip(precise, t);
    CHECK(precise.to_string() == "1.23456789012345678901234567890123456789");
    CHECK(dec_error<decimal>("00000002", t) == type_errc::bad_cell_size);
}

TEST_CASE("codec: lists and sets hold [int]-sized elements; maps hold key-value pairs") {
    const auto li = cql_type::list_of(t_int);
    CHECK(enc(std::vector<int>{1, 2}, li) == "00000002" "0000000400000001" "0000000400000002");
    CHECK(enc(std::vector<int>{}, li) == "00000000");
    CHECK(enc(std::set<std::string>{"b", "a"}, cql_type::set_of(t_text)) == "00000002" "0000000161" "0000000162");
    CHECK(dec<std::unordered_set<int>>("00000001 0000000400000007", cql_type::set_of(t_int)) == std::unordered_set<int>{7});
    const auto m = cql_type::map_of(t_text, cql_type::list_of(t_int));
    std::map<std::string, std::vector<int>> mv{{"k", {1}}};
    CHECK(enc(mv, m) == "00000001" "000000016b" "0000000c" "00000001" "0000000400000001");
    round_trip(mv, m);
    round_trip(std::unordered_map<std::string, std::vector<int>>{{"a", {}}, {"b", {1, 2, 3}}}, m);
    std::vector<std::optional<int>> with_null;
    REQUIRE_FALSE(codec<decltype(with_null)>::decode(hex("00000002 ffffffff 0000000400000003"), li, {}, with_null));
    CHECK(with_null == std::vector<std::optional<int>>{std::nullopt, 3});
}

TEST_CASE("codec: malformed collections are errors: truncated, negative or inflated counts") {
    const auto li = cql_type::list_of(t_int);
    CHECK(dec_error<std::vector<int>>("00000002 0000000400000001", li) == type_errc::bad_collection);
    CHECK(dec_error<std::vector<int>>("ffffffff", li) == type_errc::bad_collection);
    CHECK(dec_error<std::vector<int>>("7fffffff", li) == type_errc::bad_collection);  // 2^31 elements in 0 bytes
    CHECK(dec_error<std::vector<int>>("00000001 00000008 0000000100000002", li) == type_errc::bad_cell_size);
    CHECK(dec_error<std::vector<int>>("00000001 0000000400000001 ff", li) == type_errc::bad_collection);  // trailing
    CHECK(dec_error<std::vector<int>>("00000001 ffffffff", li) == type_errc::unexpected_null);
}

TEST_CASE("codec: tuples map to std::tuple, element by element, nulls allowed") {
    const auto t = cql_type::tuple_of({t_int, t_text});
    CHECK(enc(std::tuple<int, std::string>{1, "a"}, t) == "0000000400000001" "0000000161");
    CHECK(enc(std::tuple<int, std::optional<std::string>>{1, std::nullopt}, t) == "0000000400000001" "ffffffff");
    round_trip(std::tuple<int, std::string>{-7, "xyz"}, t);
    CHECK_FALSE(codec<std::tuple<int>>::accepts(t));  // arity differs
    CHECK_FALSE(codec<std::tuple<std::string, int>>::accepts(t));
}

namespace {
struct address {
    std::string city;
    std::optional<int> zip;
    friend bool operator==(const address&, const address&) = default;
};
struct address_by_name {
    std::optional<int> zip;
    std::string city;
    friend bool operator==(const address_by_name&, const address_by_name&) = default;
};
cql_type address_type() {
    cql_type t = cql_type::of(type_kind::udt);
    t.keyspace = "ks";
    t.name = "address";
    t.field_names = {"city", "zip"};
    t.params = {t_text, t_int};
    return t;
}
}  // namespace

template <>
struct cqlcoro::field_names<address_by_name> {
    static constexpr std::array names{"zip", "city"};
};

TEST_CASE("codec: user-defined types map to structs by field order, or by name when mapped") {
    const auto t = address_type();
    CHECK(enc(address{"Paris", 75001}, t) == "00000005" "5061726973" "00000004000124f9");
    round_trip(address{"Oslo", std::nullopt}, t);
    CHECK(dec<address>("000000015a", t) == address{"Z", std::nullopt});  // a short value: missing fields are null
    CHECK(enc(address_by_name{1, "a"}, t) == enc(address{"a", 1}, t));
    round_trip(address_by_name{std::nullopt, "b"}, t);
    CHECK_FALSE(codec<std::tuple<std::string, int>>::accepts(t));
    auto wrong = t;
    wrong.params[1] = t_text;
    CHECK_FALSE(codec<address>::accepts(wrong));
}

TEST_CASE("codec: Cassandra 5 vectors pack fixed-size elements back to back") {
    const auto vf = cql_type::vector_of(cql_type::of(type_kind::float_), 3);
    CHECK(enc(std::array<float, 3>{1.0f, 0.0f, -2.0f}, vf) == "3f80000000000000c0000000");
    CHECK(enc(std::vector<float>{1.0f, 0.0f, -2.0f}, vf) == "3f80000000000000c0000000");
    CHECK(enc_error(std::vector<float>{1.0f}, vf) == type_errc::value_out_of_range);
    CHECK_FALSE(codec<std::array<float, 2>>::accepts(vf));
    CHECK(dec<std::array<float, 3>>("3f80000000000000c0000000", vf)[2] == -2.0f);
    CHECK(dec_error<std::vector<float>>("3f800000", vf) == type_errc::bad_collection);
    // Variable-size elements carry an unsigned vint length each.
    const auto vt = cql_type::vector_of(t_text, 2);
    CHECK(enc(std::vector<std::string>{"a", "bc"}, vt) == "0161" "026263");
    round_trip(std::vector<std::string>{"", "xyz"}, vt);
}

TEST_CASE("codec: list_view reads a list without allocating, element by element") {
    const auto li = cql_type::list_of(t_int);
    auto b = hex("00000003 0000000400000001 ffffffff 0000000400000003");
    list_view<std::optional<int>> v;
    REQUIRE_FALSE(codec<list_view<std::optional<int>>>::decode(b, li, {}, v));
    CHECK(v.size() == 3);
    std::vector<std::optional<int>> got(v.begin(), v.end());
    CHECK(got == std::vector<std::optional<int>>{1, std::nullopt, 3});
    list_view<int> strict;
    REQUIRE_FALSE(codec<list_view<int>>::decode(b, li, {}, strict));
    auto it = strict.begin();
    CHECK(*it == 1);
    CHECK_THROWS_AS(*++it, cqlcoro::error);  // the null element cannot be an int
    CHECK(dec_error<list_view<int>>("00000001 0000000300000001", li) == type_errc::bad_cell_size);
    CHECK(dec_error<list_view<int>>("00000002 0000000400000001", li) == type_errc::bad_collection);
}
