// The protocol layer's names for the shared byte reader and writer.
#pragma once

#include <cqlcoro/detail/wire.hpp>

namespace cqlcoro::protocol {
using detail::as_bytes;
using detail::as_string_view;
using detail::byte_buffer;
using detail::bytes_view;
using detail::reader;
using detail::writer;
}  // namespace cqlcoro::protocol
