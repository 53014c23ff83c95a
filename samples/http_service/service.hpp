// The HTTP service: a users API over Cassandra, a streamed listing, /metrics and /health, on Beast.
//
// One io_context runs on N threads. The session is created once and shared by every handler (a
// cqlcoro::session is a cheap handle, safe from any thread); each HTTP connection is a coroutine on its
// own strand. See README.md beside this file for the routes and how it shuts down.
#pragma once

#include <cqlcoro/session.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace http_service {

struct settings {
    boost::asio::ip::tcp::endpoint listen{boost::asio::ip::make_address("127.0.0.1"), 8080};
    /// How long shutdown waits for the requests in flight (a stream to a slow client included).
    std::chrono::seconds grace{30};
    /// A keep-alive connection with no request for this long is closed.
    std::chrono::seconds idle_timeout{30};
    /// A write to the client that makes no progress for this long ends its connection (a stalled
    /// reader of a stream must not hold a pager forever).
    std::chrono::seconds write_timeout{60};
    /// Rows per page of the streamed listings; at most two pages per stream are held at once.
    std::int32_t stream_page_rows = 1000;
};

/// The prepared statements, made once at start.
struct statements {
    cqlcoro::prepared_statement insert_user, select_user, update_user, delete_user, list_users, list_items, insert_item;
};

/// Creates the keyspace and tables when missing, and prepares the statements.
boost::asio::awaitable<statements> prepare_schema(cqlcoro::session& s);

/// Upserts items 0 .. n-1 (each with a 512-byte payload), replica-grouped in unlogged batches.
boost::asio::awaitable<void> seed_items(cqlcoro::session& s, const statements& st, std::size_t n);

/// The service's own counters, rendered in Prometheus text next to the session's.
class counters {
public:
    void count(std::string_view route, unsigned status);
    void add_stream_rows(std::uint64_t n) { stream_rows_.fetch_add(n, std::memory_order_relaxed); }
    std::atomic<std::int64_t> in_flight{0};
    std::atomic<std::int64_t> open_connections{0};
    std::string prometheus() const;

private:
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;
    std::atomic<std::uint64_t> stream_rows_{0};
};

class connection;

/// Accepts connections and serves them until stop(); then drains and closes the session.
class server : public std::enable_shared_from_this<server> {
public:
    server(boost::asio::any_io_executor ex, cqlcoro::session s, statements st, settings cfg);
    /// Binds and listens (throws with the address on failure); the port is known after it.
    void listen();
    boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
    /// Accepts until stop(), then waits for the connections to finish (at most settings::grace),
    /// closes the session, and returns. Spawn it on executor().
    boost::asio::awaitable<void> run();
    boost::asio::strand<boost::asio::any_io_executor> executor() const { return strand_; }
    /// Stops accepting; requests being served finish, idle connections close. Any thread.
    void stop();

    // For the connections.
    cqlcoro::session& session() { return session_; }
    const statements& prepared() const { return statements_; }
    const settings& config() const { return settings_; }
    counters& stats() { return counters_; }
    bool stopping() const { return stopping_.load(std::memory_order_acquire); }
    void forget(const std::shared_ptr<connection>& c);  // a connection ended

private:
    boost::asio::awaitable<void> accept_loop();
    void begin_shutdown();  // on strand_

    boost::asio::any_io_executor io_;  // each connection gets its own strand of it
    boost::asio::strand<boost::asio::any_io_executor> strand_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer drained_;
    cqlcoro::session session_;
    statements statements_;
    settings settings_;
    counters counters_;
    std::atomic<bool> stopping_{false};
    std::map<connection*, std::shared_ptr<connection>> connections_;  // on strand_
};

}  // namespace http_service
