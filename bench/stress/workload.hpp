// cqlcoro-stress workloads: statements with value generators, picked by weight.
//
// A workload file (--workload FILE):
//
//   # comments and blank lines are ignored
//   schema: CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}
//   schema: CREATE TABLE IF NOT EXISTS ks.t (k bigint PRIMARY KEY, v text)
//   op read 3: SELECT v FROM ks.t WHERE k = {key}
//   op write 1: INSERT INTO ks.t (k, v) VALUES ({key}, {text:100})
//
// "schema:" statements run in order with --create-schema. "op NAME WEIGHT:" is an operation, picked in
// proportion to its weight. Each {generator} becomes a bind marker; the value it makes is encoded for the
// marker's CQL type, as the prepared statement says:
//
//   {key}             a key from --keys and --distribution (uniform, zipf:S, seq)
//   {seq}             0, 1, 2, ... across the run
//   {uniform:N}       a uniform integer in [0, N)
//   {zipf:N:S}        a Zipfian integer in [0, N) with exponent S (larger S: hotter head)
//   {int:MIN:MAX}     a uniform integer in [MIN, MAX]
//   {text:SIZE}       SIZE characters (a key's digits, padded)
//   {blob:SIZE}       SIZE bytes
//   {uuid}            a random UUID
//
// Integers fit int, bigint, smallint, tinyint, varint, counter, timestamp, text (as digits), blob (8
// bytes), uuid (from the number); sizes fit text, ascii and blob.
#pragma once

#include <cqlcoro/statement.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace stress {

/// A distribution of integer keys in [0, n).
struct key_distribution {
    enum class kind { uniform, zipf, seq } k = kind::uniform;
    std::uint64_t n = 1'000'000;
    double s = 1.1;  ///< zipf exponent
    /// Parses "uniform", "seq" or "zipf:S" (n from elsewhere); throws std::invalid_argument saying what is expected.
    static key_distribution parse(const std::string& text, std::uint64_t n);
    std::string describe() const;
};

/// One generator of a statement's bind marker.
struct generator {
    enum class kind { key, seq, uniform, zipf, int_range, text, blob, uuid } k = kind::key;
    key_distribution dist;          ///< key, uniform, zipf
    std::int64_t min = 0, max = 0;  ///< int_range
    std::size_t size = 0;           ///< text, blob
};

struct operation {
    std::string name;
    unsigned weight = 1;
    std::string cql;                 ///< with each {generator} replaced by ?
    std::vector<generator> values;   ///< one per marker, in order
    cqlcoro::prepared_statement prepared;  ///< filled by prepare()
};

struct workload {
    std::string name;
    std::vector<std::string> schema;
    std::vector<operation> ops;
    unsigned total_weight() const;
};

/// Parses a workload file's text; throws std::invalid_argument naming the line and what is wrong.
workload parse_workload(const std::string& text, const std::string& name, const key_distribution& keys);

/// The built-in workloads on KEYSPACE.stress (k bigint PRIMARY KEY, v blob): "read", "write", or
/// "mixed" (reads:writes as `ratio`, "3:1").
workload builtin_workload(const std::string& kind, const std::string& keyspace, const std::string& ratio,
                          std::size_t value_size, const key_distribution& keys, unsigned replication_factor);

/// Per-worker state for drawing values: a random engine and the run's shared sequence.
struct value_source {
    std::mt19937_64 rng;
    std::uint64_t* seq;  ///< shared, advanced atomically by draw()
    std::uint64_t draw_key(const key_distribution& d);
};

/// Binds one execution of `op`. Throws cqlcoro::error when a generator's value does not fit its marker.
cqlcoro::bound_statement bind(const operation& op, value_source& src);

/// Checks every marker of a prepared operation against its generator before the run, so that a
/// mismatch is one clear error at start rather than one per request. Throws std::invalid_argument.
void check_markers(const operation& op);

}  // namespace stress
