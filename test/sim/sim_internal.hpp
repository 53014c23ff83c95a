// Internals of the simulated cluster: one io_context thread owns every node and connection.
#pragma once

#include "sim.hpp"

#include "protocol/server_side.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <condition_variable>
#include <future>
#include <mutex>
#include <list>
#include <map>
#include <boost/regex.hpp>
#include <set>
#include <thread>

namespace cqlcoro::sim {

namespace asio = boost::asio;
using asio::ip::tcp;

struct node;

/// A client connection, whatever its stream (TCP or TLS).
class connection_base {
public:
    explicit connection_base(node& n, std::uint64_t id) : node_(n), id_(id) {}
    virtual ~connection_base() = default;

    virtual void close() = 0;
    virtual void shutdown_send() = 0;
    virtual void resume_reading() = 0;
    /// From the next envelope on, traffic is in v5 segments (LZ4 ones when negotiated).
    virtual void start_framing(bool lz4) = 0;

    /// Queues one response envelope (9-byte header + body); writes coalesce.
    void send(byte_buffer envelope);
    /// Encodes and queues a response on `stream`, after `delay`.
    void respond(std::int16_t stream, const protocol::response& r, std::chrono::milliseconds delay = {});

    node& owner() noexcept { return node_; }
    std::uint64_t id() const noexcept { return id_; }
    bool registered_for(std::string_view event) const { return events_.count(std::string(event)) != 0; }

protected:
    friend struct request_handler;
    virtual void start_writing() = 0;

    node& node_;
    std::uint64_t id_;
    std::uint8_t version_ = 0;           ///< 0 until STARTUP fixes it
    bool ready_ = false;                 ///< after READY or AUTH_SUCCESS
    bool framing_ = false;               ///< v5 segments (after the STARTUP exchange)
    bool awaiting_auth_ = false;
    protocol::compression compression_ = protocol::compression::none;
    std::set<std::string> events_;
    std::vector<byte_buffer> pending_;   ///< envelopes not yet written
    bool writing_ = false;
    bool processing_ = false;  // answers to one read batch go out in one write, after the batch
    bool closed_ = false;
};

struct prepared_entry {
    std::string query;
    std::vector<column_spec> markers;
    std::vector<std::uint16_t> pk_indexes;
};

struct node {
    cluster::impl& sim;
    std::size_t index;  ///< 1-based
    tcp::endpoint endpoint;
    std::string datacenter;
    std::string rack;
    uuid host_id{};
    std::vector<std::string> tokens;
    std::optional<tcp::acceptor> acceptor;
    bool paused = false;
    std::list<std::shared_ptr<connection_base>> connections;
    std::map<byte_buffer, prepared_entry> prepared;
    std::optional<uuid> schema_version;  ///< set: this node's own (it disagrees with the cluster's)

    node(cluster::impl& s, std::size_t i) : sim(s), index(i) {}
    void start();
    void stop();
};

struct compiled_prime {
    prime_when when;
    std::optional<boost::regex> pattern;
    prime_then then;
};

struct cluster::impl {
    cluster_config config;
    asio::io_context io;
    std::optional<asio::ssl::context> tls;
    std::vector<std::unique_ptr<node>> nodes;
    std::vector<compiled_prime> primes;
    std::vector<recorded_request> log;  // guarded by log_mutex: tests wait on it from their own thread
    mutable std::mutex log_mutex;
    mutable std::condition_variable log_changed;
    std::uint64_t next_connection = 1;
    uuid schema_version{};
    std::thread thread;
    std::thread::id thread_id;

    /// Runs f on the sim thread and returns its result (directly when already on it).
    template <class F>
    auto sync(F f) -> decltype(f()) {
        if (std::this_thread::get_id() == thread_id) return f();
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto result = task.get_future();
        asio::post(io, [&task] { task(); });
        return result.get();
    }

    const compiled_prime* find_prime(std::size_t node, std::string_view query, std::optional<consistency> cl,
                                     std::optional<std::size_t> page = std::nullopt) const;
    node& at(std::size_t n);
};

/// Builds the answer to one request.
struct request_handler {
    connection_base& conn;
    void handle(const protocol::frame_header& h, bytes_view body);
    /// Answers a request in a protocol version this node does not speak.
    void refuse_version(std::uint8_t requested, std::int16_t stream);

private:
    void record(const protocol::frame_header& h, const protocol::request& req);
    void handle_startup(const protocol::frame_header& h, const protocol::startup_request& r);
    void handle_statement(const protocol::frame_header& h, std::string_view query, const protocol::query_params& p,
                          const prepared_entry* prepared);
    void handle_prepare(const protocol::frame_header& h, const protocol::prepare_request& r);
    void error(const protocol::frame_header& h, protocol::server_error code, std::string message);
};

/// The answer to queries of system tables (system.local, peers, schema), or nullopt.
std::optional<rows_answer> system_table(const cluster::impl& sim, const node& n, std::string_view query);

/// A rows RESULT for `rows`, honouring page size and paging state.
protocol::result_response rows_result(const rows_answer& rows, const protocol::query_params& p, std::uint8_t version);

/// 16-byte MD5 of a text (prepared ids, as Cassandra makes them).
byte_buffer md5(std::string_view text);

}  // namespace cqlcoro::sim
