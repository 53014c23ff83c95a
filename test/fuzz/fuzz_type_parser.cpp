// libFuzzer target: type strings, in CQL syntax or as marshal class names. Whatever parses must print
// and parse back to the same type.
#include <cqlcoro/cql_type.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto t = cqlcoro::parse_cql_type(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!t) return 0;
    auto printed = cqlcoro::to_cql_string(*t);
    auto again = cqlcoro::parse_cql_type(printed);
    // UDT fields and custom parameters are not part of the CQL spelling; everything else must survive.
    if (!again) __builtin_trap();
    if (cqlcoro::to_cql_string(*again) != printed) __builtin_trap();
    return 0;
}
