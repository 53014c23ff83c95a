// libFuzzer target: a configuration file (JSON with comments and trailing commas) read into
// session_params. Anything may be refused, always with cqlcoro::error (invalid_configuration); any other
// exception, a crash or a hang is a finding.
// Input: the file's text.
#include <cqlcoro/config.hpp>
#include <cqlcoro/error.hpp>
#include <cqlcoro/session.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        auto params = cqlcoro::parse_config(text, {}, "fuzz.json");
        (void)params;
    } catch (const cqlcoro::error& e) {
        if (e.boost_code() != cqlcoro::client_errc::invalid_configuration) __builtin_trap();
    }
    return 0;
}
