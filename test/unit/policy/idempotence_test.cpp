#include "policy/idempotence.hpp"

#include <catch2/catch_test_macros.hpp>

using cqlcoro::policy::infer_idempotence;

TEST_CASE("idempotence: reads and plain writes are idempotent") {
    CHECK(infer_idempotence("SELECT * FROM ks.t WHERE k = ?"));
    CHECK(infer_idempotence("  select now() from system.local"));  // a read with now() reads twice harmlessly
    CHECK(infer_idempotence("INSERT INTO ks.t (k, v) VALUES (?, ?)"));
    CHECK(infer_idempotence("INSERT INTO ks.t (k, v) VALUES (1, 'if') USING TTL 10"));  // IF inside a string
    CHECK(infer_idempotence("UPDATE ks.t SET v = ? WHERE k = ?"));
    CHECK(infer_idempotence("UPDATE ks.t SET l[2] = 'x' WHERE k = 1"));  // a list element by index, set
    CHECK(infer_idempotence("DELETE FROM ks.t WHERE k = ?"));
    CHECK(infer_idempotence("DELETE v FROM ks.t WHERE k = ?"));
    CHECK(infer_idempotence("DELETE m['key'] FROM ks.t WHERE k = ?"));  // a map entry
    CHECK(infer_idempotence("/* note: IF */ INSERT INTO ks.t (k) VALUES (1) -- IF NOT EXISTS"));
}

TEST_CASE("idempotence: set and map additions and removals are idempotent; list removals too") {
    CHECK(infer_idempotence("UPDATE ks.t SET s = s + {'a'} WHERE k = 1"));
    CHECK(infer_idempotence("UPDATE ks.t SET m = m + {'a': 1} WHERE k = 1"));
    CHECK(infer_idempotence("UPDATE ks.t SET s = s - {'a'} WHERE k = 1"));
    CHECK(infer_idempotence("UPDATE ks.t SET l = l - [1] WHERE k = 1"));
}

TEST_CASE("idempotence: conditions, counters, list appends, index deletes and volatile functions are not") {
    CHECK_FALSE(infer_idempotence("INSERT INTO ks.t (k, v) VALUES (?, ?) IF NOT EXISTS"));
    CHECK_FALSE(infer_idempotence("UPDATE ks.t SET v = ? WHERE k = ? IF v = ?"));
    CHECK_FALSE(infer_idempotence("UPDATE ks.t SET v = ? WHERE k = ? if exists"));
    CHECK_FALSE(infer_idempotence("DELETE FROM ks.t WHERE k = ? IF EXISTS"));
    CHECK_FALSE(infer_idempotence("UPDATE ks.hits SET n = n + 1 WHERE page = ?"));
    CHECK_FALSE(infer_idempotence("UPDATE ks.hits SET n = n - ? WHERE page = ?"));
    CHECK_FALSE(infer_idempotence("UPDATE ks.t SET \"N\" = \"N\" + 1 WHERE k = 1"));
    CHECK_FALSE(infer_idempotence("UPDATE ks.t SET s = s + ? WHERE k = 1"));  // a set or a counter: cannot tell
    CHECK_FALSE(infer_idempotence("UPDATE ks.t SET l = l + [1, 2] WHERE k = 1"));
    CHECK_FALSE(infer_idempotence("UPDATE ks.t SET l = [0] + l WHERE k = 1"));
    CHECK_FALSE(infer_idempotence("DELETE l[0] FROM ks.t WHERE k = 1"));
    CHECK_FALSE(infer_idempotence("DELETE l[?] FROM ks.t WHERE k = 1"));
    CHECK_FALSE(infer_idempotence("INSERT INTO ks.t (k, at) VALUES (?, now())"));
    CHECK_FALSE(infer_idempotence("INSERT INTO ks.t (k, id) VALUES (?, uuid())"));
    CHECK_FALSE(infer_idempotence("UPDATE ks.t SET at = currentTimestamp() WHERE k = 1"));
}

TEST_CASE("idempotence: a batch is idempotent when every statement is; DDL and the rest are not") {
    CHECK(infer_idempotence("BEGIN BATCH INSERT INTO ks.t (k) VALUES (1); UPDATE ks.t SET v = 2 WHERE k = 1; APPLY BATCH"));
    CHECK(infer_idempotence("BEGIN UNLOGGED BATCH INSERT INTO ks.t (k) VALUES (1) APPLY BATCH"));
    CHECK_FALSE(infer_idempotence("BEGIN BATCH INSERT INTO ks.t (k) VALUES (1); UPDATE ks.t SET v = 2 WHERE k = 1 IF v = 1; APPLY BATCH"));
    CHECK_FALSE(infer_idempotence("BEGIN BATCH INSERT INTO ks.t (k) VALUES (1); UPDATE ks.t SET l = l + [1] WHERE k = 1; APPLY BATCH"));
    CHECK_FALSE(infer_idempotence("BEGIN COUNTER BATCH UPDATE ks.c SET n = n + 1 WHERE k = 1 APPLY BATCH"));
    CHECK_FALSE(infer_idempotence("CREATE TABLE ks.t (k int PRIMARY KEY)"));
    CHECK_FALSE(infer_idempotence("TRUNCATE ks.t"));
    CHECK_FALSE(infer_idempotence("USE ks"));
    CHECK_FALSE(infer_idempotence(""));
    CHECK_FALSE(infer_idempotence("'unterminated"));
}

TEST_CASE("idempotence: a read is a SELECT, whatever its case and leading space") {
    using cqlcoro::policy::is_read_statement;
    CHECK(is_read_statement("SELECT 1"));
    CHECK(is_read_statement("  select * from t"));
    CHECK_FALSE(is_read_statement("SELECTED"));
    CHECK_FALSE(is_read_statement("INSERT INTO t (k) VALUES (1)"));
    CHECK_FALSE(is_read_statement("sel"));
}

TEST_CASE("idempotence: a lightweight transaction is a write with a condition") {
    using cqlcoro::policy::is_conditional;
    CHECK(is_conditional("INSERT INTO t (k) VALUES (1) IF NOT EXISTS"));
    CHECK(is_conditional("UPDATE t SET v = 1 WHERE k = 1 IF v = 0"));
    CHECK(is_conditional("DELETE FROM t WHERE k = 1 IF EXISTS"));
    CHECK_FALSE(is_conditional("INSERT INTO t (k, v) VALUES (1, 'IF')"));
    CHECK_FALSE(is_conditional("SELECT * FROM t"));
    CHECK_FALSE(is_conditional("CREATE TABLE IF NOT EXISTS t (k int PRIMARY KEY)"));
}
