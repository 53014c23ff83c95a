// The token map over the six-host ring of replicas_test.cpp (tokens 0, 10, ..., 50; dc1/dc2, racks):
// tables per strategy, shared between keyspaces with the same replication, lookups by routing key,
// and the public pieces around it (composite routing keys, reconnection delays).
#include "cluster/metadata_access.hpp"
#include "cluster/token_map.hpp"

#include <cqlcoro/metadata.hpp>

#include <catch2/catch_test_macros.hpp>

using namespace cqlcoro;
using v = std::vector<std::uint32_t>;

namespace {

std::vector<std::shared_ptr<const node>> six_nodes() {
    const std::pair<const char*, const char*> where[] = {{"dc1", "r1"}, {"dc1", "r1"}, {"dc1", "r2"}, {"dc2", "r1"}, {"dc1", "r2"}, {"dc2", "r2"}};
    std::vector<std::shared_ptr<const node>> out;
    for (int i = 0; i < 6; ++i) {
        auto n = std::make_shared<node>();
        n->datacenter = where[i].first;
        n->rack = where[i].second;
        n->tokens = {std::to_string(i * 10)};
        n->endpoint = "10.0.0." + std::to_string(i + 1) + ":9042";
        out.push_back(std::move(n));
    }
    return out;
}

keyspace_metadata ks(std::string name, std::string strategy, std::map<std::string, std::string> options) {
    keyspace_metadata k;
    k.name = std::move(name);
    k.replication.strategy_class = "org.apache.cassandra.locator." + strategy;
    k.replication.options = std::move(options);
    return k;
}

v at(const token_map& m, std::string_view keyspace, std::int64_t token) {
    const auto* t = m.table(keyspace);
    REQUIRE(t);
    auto s = m.replicas(*t, cluster::token(token));
    return {s.begin(), s.end()};
}

}  // namespace

TEST_CASE("token map: a table per strategy, shared by keyspaces with the same replication") {
    std::map<std::string, keyspace_metadata> keyspaces;
    keyspaces["simple"] = ks("simple", "SimpleStrategy", {{"replication_factor", "3"}});
    keyspaces["simple_too"] = ks("simple_too", "SimpleStrategy", {{"replication_factor", "3"}});
    keyspaces["nts"] = ks("nts", "NetworkTopologyStrategy", {{"dc1", "3"}});
    keyspaces["system"] = ks("system", "LocalStrategy", {});
    keyspaces["everywhere"] = ks("everywhere", "EverywhereStrategy", {});
    keyspaces["custom"] = ks("custom", "SomeoneElsesStrategy", {});
    auto m = token_map::build(cluster::partitioner::murmur3, six_nodes(), keyspaces);
    CHECK(m->ring().size() == 6);
    CHECK(m->table_count() == 4);  // simple and simple_too share; custom has none
    CHECK(m->table("simple") == m->table("simple_too"));
    CHECK(m->table("custom") == nullptr);
    CHECK(m->table("missing") == nullptr);
    CHECK(at(*m, "simple", 5) == v{1, 2, 3});
    CHECK(at(*m, "simple", 55) == v{0, 1, 2});  // wraps
    CHECK(at(*m, "nts", -5) == v{0, 2, 1});     // the hand-computed NTS case of replicas_test.cpp
    CHECK(at(*m, "nts", 5) == v{1, 2, 4});
    CHECK(at(*m, "system", 25) == v{3});        // LocalStrategy: the token's owner
    CHECK(at(*m, "everywhere", 25) == v{3, 4, 5, 0, 1, 2});
    CHECK(m->memory_bytes() > 0);

    // A schema change with the same ring reuses the tables it can.
    keyspaces["nts2"] = ks("nts2", "NetworkTopologyStrategy", {{"dc1", "3"}});
    auto next = token_map::build(cluster::partitioner::murmur3, six_nodes(), keyspaces, m.get());
    CHECK(next->table("nts") == m->table("nts"));
    CHECK(next->table("nts2") == m->table("nts"));
    CHECK(next->generation() != m->generation());
}

TEST_CASE("token map: lookups by routing key use the partitioner's token") {
    std::map<std::string, keyspace_metadata> keyspaces{{"k", ks("k", "SimpleStrategy", {{"replication_factor", "1"}})}};
    auto m = token_map::build(cluster::partitioner::murmur3, six_nodes(), keyspaces);
    // Murmur3 of int 1 (00 00 00 01) is -4069959284402364209: before every ring token, so host 0 owns it.
    const std::uint8_t one[] = {0, 0, 0, 1};
    CHECK(cluster::murmur3_token(one) == -4069959284402364209LL);
    auto r = m->replicas("k", one);
    REQUIRE(r.size() == 1);
    CHECK(r[0] == 0);
    CHECK(m->replicas("nope", one).empty());

    auto md = detail::metadata_access::make("", "", six_nodes(), keyspaces, m, {});
    auto nodes = md->replicas("k", one);
    REQUIRE(nodes.size() == 1);
    CHECK(nodes[0]->endpoint == "10.0.0.1:9042");
    CHECK(md->token_of(one) == "-4069959284402364209");
}

TEST_CASE("token map: Random and ByteOrdered rings place tokens of their kind") {
    auto nodes = six_nodes();
    std::vector<std::shared_ptr<const node>> random_nodes, bop_nodes;
    for (int i = 0; i < 6; ++i) {
        auto r = std::make_shared<node>(*nodes[static_cast<std::size_t>(i)]);
        r->tokens = {cluster::to_string(cluster::uint128(i) << 120)};  // spread over 0 .. 2^127
        random_nodes.push_back(r);
        auto b = std::make_shared<node>(*nodes[static_cast<std::size_t>(i)]);
        b->tokens = {std::string(1, "0123456789ab"[i * 2]) + "0"};  // 00, 20, 40, 60, 80, a0
        bop_nodes.push_back(b);
    }
    std::map<std::string, keyspace_metadata> keyspaces{{"k", ks("k", "SimpleStrategy", {{"replication_factor", "1"}})}};
    auto random = token_map::build(cluster::partitioner::random, random_nodes, keyspaces);
    CHECK(random->ring().size() == 6);
    const std::uint8_t key[] = {'k', 'e', 'y'};
    auto owner = random->replicas("k", key);
    REQUIRE(owner.size() == 1);
    // |MD5("key")| >> 120 picks the host: the first ring token at or after it.
    const auto t = *cluster::random_token(key);
    const auto ceiling = (t >> 120) + ((t & ((cluster::uint128(1) << 120) - 1)) != 0 ? 1 : 0);
    const auto expected = static_cast<std::uint32_t>(ceiling <= 5 ? ceiling : 0);  // past the last token: wraps
    CHECK(owner[0] == expected);

    auto bop = token_map::build(cluster::partitioner::byte_ordered, bop_nodes, keyspaces);
    const std::uint8_t k30[] = {0x30};
    const std::uint8_t kb0[] = {0xb0};
    CHECK(bop->replicas("k", k30)[0] == 2);  // first token >= 0x30 is 0x40
    CHECK(bop->replicas("k", kb0)[0] == 0);  // past 0xa0: wraps
}

TEST_CASE("routing keys and reconnection delays") {
    const std::uint8_t a[] = {0, 0, 0, 1};
    const std::uint8_t b[] = {'x', 'y'};
    std::vector<std::span<const std::uint8_t>> one{a}, two{a, b};
    CHECK(composite_routing_key(one) == std::vector<std::uint8_t>{0, 0, 0, 1});
    CHECK(composite_routing_key(two) == std::vector<std::uint8_t>{0, 4, 0, 0, 0, 1, 0, 0, 2, 'x', 'y', 0});

    using namespace std::chrono_literals;
    auto exp = reconnection_policy::exponential(100ms, 1000ms, 0.0);
    CHECK(exp.delay(0, 0.5) == 100ms);
    CHECK(exp.delay(1, 0.5) == 200ms);
    CHECK(exp.delay(3, 0.5) == 800ms);
    CHECK(exp.delay(4, 0.5) == 1000ms);   // capped
    CHECK(exp.delay(500, 0.5) == 1000ms); // no overflow
    auto jittered = reconnection_policy::exponential(100ms, 10s, 0.2);
    CHECK(jittered.delay(2, 0.0) == 320ms);  // 400 - 20%
    CHECK(jittered.delay(2, 0.999) >= 479ms);
    CHECK(jittered.delay(0, 0.0) == 100ms);  // never below the base
    CHECK(reconnection_policy::constant(250ms).delay(7, 0.9) == 250ms);
}
