// A bound statement's partition key as the token map hashes it, computed from its partition-key
// values: the request path's routing and the replica-grouped fan-out share it.
#pragma once

#include <cqlcoro/statement.hpp>

#include <boost/container/small_vector.hpp>

#include <cstdint>
#include <string_view>

namespace cqlcoro::policy {

using key_buffer = boost::container::small_vector<std::uint8_t, 64>;

/// Sets `key` (a view into the statement's values, or into `composite` for a key of several columns)
/// and, when still empty, `keyspace` (the partition key's marker's); false when the statement has no
/// complete partition key (no pk indexes, or one of them null or unset).
inline bool partition_key_of(const bound_statement& b, key_buffer& composite, bytes_view& key, std::string_view& keyspace) {
    const auto& p = b.prepared();
    const auto& pk = p.pk_indexes;
    const auto& values = b.values();
    if (pk.empty()) return false;
    for (auto i : pk)
        if (i >= values.size() || values.is_null(i) || values.is_unset(i)) return false;
    if (pk.size() == 1) {
        key = values.value(pk[0]);
    } else {
        for (auto i : pk) {
            auto v = values.value(i);
            composite.push_back(static_cast<std::uint8_t>(v.size() >> 8));
            composite.push_back(static_cast<std::uint8_t>(v.size()));
            composite.insert(composite.end(), v.begin(), v.end());
            composite.push_back(0);
        }
        key = bytes_view(composite.data(), composite.size());
    }
    if (keyspace.empty() && pk[0] < p.markers.size()) keyspace = p.markers[pk[0]].keyspace;
    return true;
}

/// The routing key of a request: the statement's explicit routing hint (routing_key(),
/// routing_keyspace()) if it has one, else `bound`'s partition key (when not null); false when neither.
inline bool routing_key_of(const statement_options& o, const bound_statement* bound, key_buffer& composite, bytes_view& key,
                           std::string_view& keyspace) {
    if (o.routing) {
        keyspace = o.routing->keyspace;
        key = bytes_view(o.routing->key.data(), o.routing->key.size());
    }
    if (key.empty() && bound && !partition_key_of(*bound, composite, key, keyspace)) return false;
    return !key.empty();
}

}  // namespace cqlcoro::policy
