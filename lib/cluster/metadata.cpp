#include <cqlcoro/metadata.hpp>

#include "cluster/token_map.hpp"

#include <algorithm>
#include <cmath>

namespace cqlcoro {

std::string_view to_string(node_state s) noexcept {
    switch (s) {
    case node_state::unknown: return "unknown";
    case node_state::up: return "up";
    case node_state::down: return "down";
    }
    return "?";
}

std::string_view to_string(node_distance d) noexcept {
    switch (d) {
    case node_distance::local: return "local";
    case node_distance::remote: return "remote";
    case node_distance::ignored: return "ignored";
    }
    return "?";
}

std::string_view to_string(column_kind k) noexcept {
    switch (k) {
    case column_kind::partition_key: return "partition_key";
    case column_kind::clustering: return "clustering";
    case column_kind::regular: return "regular";
    case column_kind::static_: return "static";
    case column_kind::compact_value: return "compact_value";
    }
    return "?";
}

std::string_view to_string(node_event_kind k) noexcept {
    switch (k) {
    case node_event_kind::added: return "added";
    case node_event_kind::removed: return "removed";
    case node_event_kind::up: return "up";
    case node_event_kind::down: return "down";
    }
    return "?";
}

const column_metadata* table_metadata::column(std::string_view name) const noexcept {
    auto it = std::find_if(columns.begin(), columns.end(), [&](const column_metadata& c) { return c.name == name; });
    return it == columns.end() ? nullptr : &*it;
}

const keyspace_metadata* cluster_metadata::keyspace(std::string_view name) const noexcept {
    auto it = keyspaces_.find(std::string(name));
    return it == keyspaces_.end() ? nullptr : &it->second;
}

std::vector<std::shared_ptr<const node>> cluster_metadata::replicas(std::string_view keyspace, std::span<const std::uint8_t> key) const {
    std::vector<std::shared_ptr<const node>> out;
    if (!tokens_) return out;
    for (auto i : tokens_->replicas(keyspace, key))
        if (i < nodes_.size()) out.push_back(nodes_[i]);
    return out;
}

std::string cluster_metadata::token_of(std::span<const std::uint8_t> key) const {
    if (!tokens_) return {};
    auto t = cluster::token_of(tokens_->kind(), key);
    return std::visit(
        [](const auto& v) -> std::string {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::int64_t>) return std::to_string(v);
            else if constexpr (std::is_same_v<T, cluster::uint128>) return cluster::to_string(v);
            else {
                static const char* hex = "0123456789abcdef";
                std::string s;
                for (auto b : v) {
                    s += hex[b >> 4];
                    s += hex[b & 15];
                }
                return s;
            }
        },
        t);
}

std::vector<std::uint8_t> composite_routing_key(std::span<const std::span<const std::uint8_t>> components) {
    std::vector<std::uint8_t> out;
    if (components.size() == 1) return {components[0].begin(), components[0].end()};
    for (const auto& c : components) {
        out.push_back(static_cast<std::uint8_t>(c.size() >> 8));
        out.push_back(static_cast<std::uint8_t>(c.size()));
        out.insert(out.end(), c.begin(), c.end());
        out.push_back(0);
    }
    return out;
}

std::chrono::milliseconds reconnection_policy::delay(std::size_t attempt, double unit) const noexcept {
    if (how == kind::constant) return base;
    const double b = static_cast<double>(base.count()), cap = static_cast<double>(max.count());
    double d = b * std::pow(2.0, static_cast<double>(std::min<std::size_t>(attempt, 62)));
    d = std::min(d, cap);
    d += d * jitter * (2 * unit - 1);  // ±jitter
    d = std::clamp(d, std::min(b, cap), cap);
    return std::chrono::milliseconds(static_cast<std::int64_t>(d));
}

}  // namespace cqlcoro
