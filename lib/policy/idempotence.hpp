// Whether a statement may be executed twice with the same effect as once, read from its CQL text: the
// policy chain retries and hedges only such statements unless the application says otherwise.
//
// Idempotent: SELECT; INSERT, UPDATE and DELETE unless they
//   - are conditional (IF, IF EXISTS, IF NOT EXISTS: a lightweight transaction),
//   - update a counter (c = c + 1) or append or prepend to a list (l = l + [..], l = [..] + l),
//   - delete a list element by index (DELETE l[0] ...),
//   - call a function whose result changes from one call to the next (now(), uuid(), ...);
// a BATCH when every statement in it is (a counter batch never is). DDL, USE, GRANT and anything not
// recognised are not: a wrong "no" costs a retry, a wrong "yes" can apply a write twice.
//
// Where the text cannot tell a counter from a set (s = s + ?), the answer is no.
#pragma once

#include <string_view>

namespace cqlcoro::policy {

bool infer_idempotence(std::string_view cql) noexcept;
/// A lightweight transaction: a write with a condition (IF, IF EXISTS, IF NOT EXISTS).
bool is_conditional(std::string_view cql) noexcept;
/// A SELECT: a failure of it can have applied nothing.
bool is_read_statement(std::string_view cql) noexcept;

}  // namespace cqlcoro::policy
