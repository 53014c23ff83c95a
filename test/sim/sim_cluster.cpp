// The simulated cluster's API: everything runs on the sim thread; calls wait until it is applied.
#include "sim_internal.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/nil_generator.hpp>

#include <fmt/format.h>

#include <stdexcept>
#include <utility>

#include <time.h>

namespace cqlcoro::sim {

const compiled_prime* cluster::impl::find_prime(std::size_t node, std::string_view query, std::optional<consistency> cl,
                                                std::optional<std::size_t> page) const {
    for (auto it = primes.rbegin(); it != primes.rend(); ++it) {
        const auto& w = it->when;
        if (w.node && *w.node != node) continue;
        if (w.page && (!page || *w.page != *page)) continue;
        if (w.cl && cl && *w.cl != *cl) continue;
        const bool match = it->pattern ? boost::regex_match(query.begin(), query.end(), *it->pattern) : w.query == query;
        if (match) return &*it;
    }
    return nullptr;
}

node& cluster::impl::at(std::size_t n) {
    if (n == 0 || n > nodes.size()) throw std::out_of_range(fmt::format("sim: no node {} (nodes are 1..{})", n, nodes.size()));
    return *nodes[n - 1];
}

cluster::cluster(cluster_config config) : impl_(std::make_unique<impl>()) {
    auto& s = *impl_;
    s.config = std::move(config);
    if (s.config.max_version < 3 || s.config.max_version > 5) throw std::invalid_argument("sim: max_version must be 3, 4 or 5");
    std::vector<std::size_t> dcs = s.config.datacenters.empty() ? std::vector<std::size_t>{s.config.nodes} : s.config.datacenters;
    std::size_t total = 0;
    for (auto d : dcs) total += d;
    s.config.nodes = total;
    if (total == 0 || total > 250) throw std::invalid_argument("sim: between 1 and 250 nodes");

    boost::uuids::name_generator_sha1 names(boost::uuids::nil_uuid());
    s.schema_version = names(s.config.cluster_name + "/schema");
    // Evenly spread Murmur3 tokens: node i owns tokens i, i + N, i + 2N, ... of N * T equal slices.
    const std::size_t per = std::max<std::size_t>(1, s.config.tokens_per_node);
    const std::uint64_t step = ~std::uint64_t{0} / (total * per);
    std::size_t i = 0;
    for (std::size_t dc = 0; dc < dcs.size(); ++dc) {
        for (std::size_t k = 0; k < dcs[dc]; ++k, ++i) {
            auto n = std::make_unique<node>(s, i + 1);
            const auto addr = s.config.distinct_ports ? boost::asio::ip::make_address("127.0.0.1")
                                                      : boost::asio::ip::make_address(fmt::format("127.0.0.{}", i + 1));
            const auto port = static_cast<std::uint16_t>(s.config.port + (s.config.distinct_ports ? i : 0));
            n->endpoint = tcp::endpoint(addr, port);
            n->datacenter = fmt::format("dc{}", dc + 1);
            n->rack = fmt::format("rack{}", k % std::max<std::size_t>(1, s.config.racks) + 1);
            n->host_id = names(fmt::format("{}/host/{}", s.config.cluster_name, i + 1));
            for (std::size_t j = 0; j < per; ++j) {
                const std::uint64_t pos = static_cast<std::uint64_t>(j * total + i) * step;
                const auto token = static_cast<std::int64_t>(pos - (std::uint64_t{1} << 63));
                n->tokens.push_back(std::to_string(token));
            }
            s.nodes.push_back(std::move(n));
        }
    }
    if (s.config.tls) {
        s.tls.emplace(asio::ssl::context::tls_server);
        s.tls->use_certificate_chain_file(s.config.tls->certificate_chain);
        s.tls->use_private_key_file(s.config.tls->private_key, asio::ssl::context::pem);
        if (!s.config.tls->client_ca.empty()) {
            s.tls->load_verify_file(s.config.tls->client_ca);
            s.tls->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
        }
    }
    for (auto& n : s.nodes) n->start();  // listening before the constructor returns: clients can connect at once
    s.thread = std::thread([&s] {
        auto guard = asio::make_work_guard(s.io);
        s.io.run();
    });
    s.thread_id = s.thread.get_id();
}

cluster::~cluster() {
    auto& s = *impl_;
    s.sync([&] {
        for (auto& n : s.nodes) n->stop();
    });
    s.io.stop();
    s.thread.join();
}

const cluster_config& cluster::config() const noexcept { return impl_->config; }
std::size_t cluster::size() const noexcept { return impl_->nodes.size(); }
std::string cluster::address(std::size_t node) const { return impl_->at(node).endpoint.address().to_string(); }
std::uint16_t cluster::port(std::size_t node) const { return impl_->at(node).endpoint.port(); }

void cluster::prime(prime_when when, prime_then then) {
    compiled_prime p{std::move(when), std::nullopt, std::move(then)};
    if (p.when.regex) p.pattern.emplace(p.when.query, boost::regex::ECMAScript);
    impl_->sync([&] { impl_->primes.push_back(std::move(p)); });
}

void cluster::clear_primes() {
    impl_->sync([&] { impl_->primes.clear(); });
}

std::vector<recorded_request> cluster::requests() const {
    std::lock_guard lock(impl_->log_mutex);
    return impl_->log;
}

std::vector<recorded_request> cluster::wait_for_requests(std::size_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(impl_->log_mutex);
    if (!impl_->log_changed.wait_for(lock, timeout, [&] { return impl_->log.size() >= count; }))
        throw std::runtime_error(fmt::format("sim: {} requests expected, {} arrived within {} ms", count, impl_->log.size(), timeout.count()));
    return impl_->log;
}

std::vector<recorded_request> cluster::take_requests() {
    std::lock_guard lock(impl_->log_mutex);
    return std::exchange(impl_->log, {});
}

void cluster::clear_requests() {
    std::lock_guard lock(impl_->log_mutex);
    impl_->log.clear();
}

void cluster::stop(std::size_t n) {
    impl_->sync([&] { impl_->at(n).stop(); });
}
void cluster::start(std::size_t n) {
    impl_->sync([&] { impl_->at(n).start(); });
}
void cluster::pause(std::size_t n) {
    impl_->sync([&] { impl_->at(n).paused = true; });
}
void cluster::resume(std::size_t n) {
    impl_->sync([&] {
        auto& nd = impl_->at(n);
        nd.paused = false;
        for (auto& c : nd.connections) c->resume_reading();
    });
}
void cluster::drop_connections(std::size_t n) {
    impl_->sync([&] {
        auto all = impl_->at(n).connections;
        for (auto& c : all) c->close();
    });
}
void cluster::set_schema_version(std::size_t n, std::optional<uuid> v) {
    impl_->sync([&] { impl_->at(n).schema_version = v; });
}
void cluster::forget_prepared(std::size_t n) {
    impl_->sync([&] { impl_->at(n).prepared.clear(); });
}
std::size_t cluster::connection_count(std::size_t n) const {
    return impl_->sync([&] { return impl_->at(n).connections.size(); });
}

std::chrono::nanoseconds cluster::cpu_time() const {
    return impl_->sync([] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
    });
}

namespace {
void push(cluster::impl& s, const std::string& type, const protocol::event_response& e, std::optional<std::size_t> via) {
    protocol::response r;
    r.body = e;
    for (auto& n : s.nodes) {
        if (via && n->index != *via) continue;
        for (auto& c : n->connections)
            if (c->registered_for(type)) c->respond(-1, r);
    }
}

protocol::inet inet_of(const node& n) {
    protocol::inet a;
    auto b = n.endpoint.address().to_v4().to_bytes();
    std::copy(b.begin(), b.end(), a.bytes.begin());
    a.size = 4;
    a.port = n.endpoint.port();
    return a;
}
}  // namespace

void cluster::push_status_change(std::size_t about, std::string change, std::optional<std::size_t> via) {
    impl_->sync([&] { push(*impl_, "STATUS_CHANGE", {protocol::status_change_event{change, inet_of(impl_->at(about))}}, via); });
}
void cluster::push_topology_change(std::size_t about, std::string change, std::optional<std::size_t> via) {
    impl_->sync([&] { push(*impl_, "TOPOLOGY_CHANGE", {protocol::topology_change_event{change, inet_of(impl_->at(about))}}, via); });
}
void cluster::push_schema_change(protocol::schema_change change, std::optional<std::size_t> via) {
    impl_->sync([&] { push(*impl_, "SCHEMA_CHANGE", {protocol::schema_change_event{std::move(change)}}, via); });
}

}  // namespace cqlcoro::sim
