// Partitioner tokens against values computed by an independent implementation: the DataStax Python
// driver's (python3-cassandra, Murmur3Token.hash_fn and MD5Token.hash_fn), for keys whose tails cover
// every length mod 16 and bytes with the high bit set (Cassandra's sign-extension quirk).
#include "cluster/token.hpp"

#include <catch2/catch_test_macros.hpp>

#include <limits>
#include <string>
#include <vector>

using namespace cqlcoro::cluster;

namespace {

std::vector<std::uint8_t> from_hex(std::string_view hex) {
    auto b = parse_byte_ordered_token(hex);
    REQUIRE(b.has_value());
    return *b;
}

struct expected {
    const char* key_hex;
    std::int64_t murmur3;
    const char* md5;
};

// /usr/bin/python3: Murmur3Token.hash_fn(key), MD5Token.hash_fn(key)
const expected cases[] = {
    {"61", -8839064797231613815LL, "16955237001963240173058271559858726497"},
    {"68656c6c6f", -3758069500696749310LL, "123957004363873451094272536567338222994"},
    {"00", 5048724184180415669LL, "143927757573010354572009627285182898319"},
    {"ff", -4442228696663692417LL, "463733602705843015805947089201357461"},
    {"808182", 4805209697930042770LL, "101657586029428425759737670356161101450"},
    {"000102030405060708090a0b0c0d0e", 5125964547706398185LL, "117926437932412549287477643883025677460"},
    {"000102030405060708090a0b0c0d0e0f", 4920504430128807728LL, "35566888831469867896589741071285600936"},
    {"000102030405060708090a0b0c0d0e0f10", 6662781046685680142LL, "37037762735766197524361679113307109010"},
    {"c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
     4032995824025522200LL, "15443064221104787922265562357280356826"},
    {"0000002a", -7160136740246525330LL, "120848004881451414043265846020249486727"},
    {"ffffffff", 7297452126230313552LL, "120549550962197124826514825591841393591"},
    {"63716c636f726f20706172746974696f6e206b6579", -8523715064175513475LL, "41959673340861351594846182451670094096"},
    {"f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0", 8528969361095688002LL, "20226188161735934824733135974777431055"},
};

}  // namespace

TEST_CASE("murmur3 and random partitioner tokens match an independent implementation") {
    for (const auto& c : cases) {
        INFO("key " << c.key_hex);
        const auto key = from_hex(c.key_hex);
        CHECK(murmur3_token(key) == c.murmur3);
        const auto md5 = random_token(key);
        REQUIRE(md5.has_value());
        CHECK(to_string(*md5) == c.md5);
        CHECK(parse_random_token(c.md5) == md5);
        CHECK(parse_murmur3_token(std::to_string(c.murmur3)) == c.murmur3);
    }
}

TEST_CASE("an empty partition key gets the partitioner's minimum token") {
    CHECK(murmur3_token({}) == std::numeric_limits<std::int64_t>::min());
    CHECK_FALSE(random_token({}).has_value());
}

TEST_CASE("token text as system.local lists it: decimal, or hex for ByteOrdered; anything else is refused") {
    CHECK(parse_murmur3_token("-9223372036854775808") == std::numeric_limits<std::int64_t>::min());
    CHECK(parse_murmur3_token("9223372036854775807") == std::numeric_limits<std::int64_t>::max());
    CHECK_FALSE(parse_murmur3_token("9223372036854775808"));  // out of range
    CHECK_FALSE(parse_murmur3_token("12a"));
    CHECK_FALSE(parse_murmur3_token(""));
    CHECK(to_string(*parse_random_token("170141183460469231731687303715884105728")) == "170141183460469231731687303715884105728");  // 2^127
    CHECK_FALSE(parse_random_token("170141183460469231731687303715884105729"));  // above 2^127
    CHECK_FALSE(parse_random_token("-1"));
    CHECK(to_string(*parse_random_token("0")) == "0");
    CHECK(parse_byte_ordered_token("00ff7f") == std::vector<std::uint8_t>{0x00, 0xff, 0x7f});
    CHECK_FALSE(parse_byte_ordered_token("0"));
    CHECK_FALSE(parse_byte_ordered_token("zz"));
}
