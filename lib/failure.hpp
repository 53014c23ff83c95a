// The library's inside error model: a cold-path operation that can fail returns fallible<T>, a value or a
// failure (a code and the text that says what happened and what to do), and its caller decides. Nothing
// inside the library throws to itself; an exception is made only at the edge, where an operation completes
// through the default completion token (to_error()), and a failure's text travels to it unchanged.
#pragma once

#include <cqlcoro/error.hpp>

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <optional>
#include <string>

namespace cqlcoro::detail {

struct failure {
    error_code code;
    std::string text;  // what happened, where, and what to do (the code's own message is added to it)
    std::optional<cqlcoro::diagnostics> diag{};  // a request's diagnostics (the server's error), when there are any

    /// The text with the code's message, as the exception at the edge says it.
    std::string message() const { return error_message(code, text); }
};

/// The exception a failure becomes at the edge.
inline error to_error(const failure& f) { return f.diag ? error(f.code, f.text, *f.diag) : error(f.code, f.text); }

/// boost::system::result<T, failure>::value() on a failure throws to_error().
[[noreturn]] inline void throw_exception_from_error(const failure& f, const boost::source_location&) { throw to_error(f); }

template <class T>
using fallible = boost::system::result<T, failure>;

/// What an exception from outside the library (an application's middleware, say) becomes: a
/// cqlcoro::error or a system_error keeps its code and text; anything else is asio::error::fault with
/// "<who> threw: ...".
failure failure_of(const std::exception_ptr& e, std::string_view who);

}  // namespace cqlcoro::detail
