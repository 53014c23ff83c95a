// libFuzzer target: a column type ([option], as in result metadata) followed by a cell, decoded into a
// dynamic value; a value that decodes must encode back to the same bytes.
#include "protocol/responses.hpp"

#include <cqlcoro/value.hpp>

#include <cstddef>
#include <cstdint>

using namespace cqlcoro;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    protocol::reader r(protocol::bytes_view(data, size));
    cql_type t;
    if (protocol::read_type(r, t)) return 0;
    protocol::bytes_view cell(r.position(), r.remaining());
    value v;
    if (codec<value>::decode(cell, t, {.validate_utf8 = true}, v)) return 0;
    (void)to_cql_literal(v);
    byte_buffer out;
    if (codec<value>::encode(v, t, out)) return 0;  // e.g. a float column's NaN payload is still encodable
    // Decoding what was encoded gives the same value.
    value back;
    if (codec<value>::decode(out, t, {.validate_utf8 = true}, back)) __builtin_trap();
    if (to_cql_literal(back) != to_cql_literal(v)) __builtin_trap();
    return 0;
}
