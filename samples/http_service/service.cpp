#include "service.hpp"

#include <cqlcoro/metrics.hpp>
#include <cqlcoro/value.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <fmt/format.h>

#include <optional>
#include <tuple>
#include <variant>
#include <string_view>

namespace http_service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using request_t = http::request<http::string_body>;
using response_t = http::response<http::string_body>;

// ---- Schema and data

asio::awaitable<statements> prepare_schema(cqlcoro::session& s) {
    co_await s.execute(cqlcoro::statement(
        "CREATE KEYSPACE IF NOT EXISTS http_service WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"));
    co_await s.execute(cqlcoro::statement(
        "CREATE TABLE IF NOT EXISTS http_service.users (id uuid PRIMARY KEY, name text, email text, age int)"));
    co_await s.execute(cqlcoro::statement("CREATE TABLE IF NOT EXISTS http_service.items (id int PRIMARY KEY, payload text)"));
    statements st;
    st.insert_user = co_await s.prepare("INSERT INTO http_service.users (id, name, email, age) VALUES (?, ?, ?, ?)");
    st.select_user = co_await s.prepare("SELECT id, name, email, age FROM http_service.users WHERE id = ?");
    // Compare-and-set on the name read just before: an update never recreates a row deleted meanwhile
    // (UPDATE ... IF EXISTS needs Cassandra 2.1.1), and a concurrent change is a 409, not lost.
    st.update_user = co_await s.prepare("UPDATE http_service.users SET name = ?, email = ?, age = ? WHERE id = ? IF name = ?");
    // IF EXISTS: a delete of an unknown id is a 404.
    st.delete_user = co_await s.prepare("DELETE FROM http_service.users WHERE id = ? IF EXISTS");
    st.list_users = co_await s.prepare("SELECT id, name, email, age FROM http_service.users");
    st.list_items = co_await s.prepare("SELECT id, payload FROM http_service.items");
    st.insert_item = co_await s.prepare("INSERT INTO http_service.items (id, payload) VALUES (?, ?)");
    co_return st;
}

asio::awaitable<void> seed_items(cqlcoro::session& s, const statements& st, std::size_t n) {
    constexpr std::size_t chunk = 10'000;
    for (std::size_t first = 0; first < n; first += chunk) {
        std::vector<cqlcoro::bound_statement> writes;
        for (std::size_t i = first; i < std::min(n, first + chunk); ++i) {
            std::string payload = fmt::format("item {:08} ", i);
            payload.resize(512, 'x');
            writes.push_back(st.insert_item.bind(static_cast<std::int32_t>(i), payload).idempotent(true));
        }
        cqlcoro::fan_out_options o;
        o.batch_writes = true;
        auto r = co_await s.execute_many(std::move(writes), o);
        for (const auto& item : r.items)
            if (item.ec) throw cqlcoro::error(item.ec, "seeding the items table");
    }
}

// ---- Counters

void counters::count(std::string_view route, unsigned status) {
    std::lock_guard lock(mutex_);
    ++requests_[{std::string(route), status}];
}

std::string counters::prometheus() const {
    std::string out;
    out += "# HELP http_requests_total HTTP requests answered, by route and status.\n# TYPE http_requests_total counter\n";
    {
        std::lock_guard lock(mutex_);
        for (const auto& [key, n] : requests_)
            out += fmt::format("http_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", key.first, key.second, n);
    }
    out += fmt::format("# HELP http_requests_in_flight HTTP requests being served.\n# TYPE http_requests_in_flight gauge\n"
                       "http_requests_in_flight {}\n",
                       in_flight.load(std::memory_order_relaxed));
    out += fmt::format("# HELP http_connections_open HTTP connections open.\n# TYPE http_connections_open gauge\n"
                       "http_connections_open {}\n",
                       open_connections.load(std::memory_order_relaxed));
    out += fmt::format("# HELP http_stream_rows_total Rows sent by the streamed listings.\n# TYPE http_stream_rows_total counter\n"
                       "http_stream_rows_total {}\n",
                       stream_rows_.load(std::memory_order_relaxed));
    return out;
}

// ---- Answers

namespace {

struct http_error {
    http::status status;
    std::string kind, message;
};

// The driver's error as the client of this service should see it: what kind of failure, and whether
// trying again may help. Never a stack trace; the message names the host and the server's words.
http_error map_error(const cqlcoro::error_code& ec, std::string message) {
    using k = cqlcoro::error_kind;
    const auto kind = cqlcoro::kind_of(ec);
    http::status status = http::status::internal_server_error;
    switch (kind) {
    case k::request_timeout:
    case k::read_timeout:
    case k::write_timeout:
        status = http::status::gateway_timeout;
        break;
    case k::unavailable:
    case k::overloaded:
    case k::connection:
    case k::no_host_available:
    case k::refused:
    case k::aborted:
        status = http::status::service_unavailable;
        break;
    case k::request_error:
        // The statements are the service's own, so the server refusing one means the values sent.
        status = ec == cqlcoro::server_errc::invalid ? http::status::bad_request : http::status::internal_server_error;
        break;
    case k::other:
        // Client-side: a value that does not fit its column.
        status = ec.category() == cqlcoro::type_category() ? http::status::bad_request : http::status::internal_server_error;
        break;
    }
    return {status, std::string(cqlcoro::to_string(kind)), std::move(message)};
}

response_t make_json(const request_t& req, http::status status, const json::value& body) {
    response_t res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = json::serialize(body);
    res.prepare_payload();
    return res;
}

response_t make_error(const request_t& req, const http_error& e) {
    return make_json(req, e.status, json::object{{"error", e.kind}, {"message", e.message}});
}

response_t bad_request(const request_t& req, std::string message) {
    return make_error(req, {http::status::bad_request, "bad_request", std::move(message)});
}

std::optional<cqlcoro::uuid> parse_id(std::string_view text) {
    if (text.size() != 36) return std::nullopt;
    try {
        return boost::uuids::string_generator()(text.begin(), text.end());
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

json::object user_json(const cqlcoro::row_view& row) {
    json::object o;
    o["id"] = boost::uuids::to_string(row.get<cqlcoro::uuid>(0));
    o["name"] = row.get<std::string_view>(1);
    o["email"] = row.get<std::string_view>(2);
    if (row.is_null(3))
        o["age"] = nullptr;
    else
        o["age"] = row.get<std::int32_t>(3);
    return o;
}

json::object item_json(const cqlcoro::row_view& row) {
    return json::object{{"id", row.get<std::int32_t>(0)}, {"payload", row.get<std::string_view>(1)}};
}

// A user as a request body: {"name": string, "email": string, "age": integer or null (optional)}.
struct user_fields {
    std::string name, email;
    std::optional<std::int32_t> age;
};

std::variant<user_fields, std::string> parse_user(std::string_view body) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return fmt::format("the body is not JSON: {}", ec.message());
    const auto* o = v.if_object();
    if (!o) return std::string("the body must be a JSON object with \"name\", \"email\" and optionally \"age\"");
    user_fields u;
    const auto* name = o->if_contains("name");
    const auto* email = o->if_contains("email");
    if (!name || !name->is_string() || name->get_string().empty()) return std::string("\"name\" must be a non-empty string");
    if (!email || !email->is_string()) return std::string("\"email\" must be a string");
    u.name = name->get_string();
    u.email = email->get_string();
    if (const auto* age = o->if_contains("age"); age && !age->is_null()) {
        const auto n = age->to_number<std::int64_t>(ec);
        if (ec || n < 0 || n > 1000) return std::string("\"age\" must be an integer from 0 to 1000, or null");
        u.age = static_cast<std::int32_t>(n);
    }
    return u;
}

// A user as the answers show it, from what a request body gave.
json::object fields_json(const cqlcoro::uuid& id, const user_fields& u) {
    json::object o{{"id", boost::uuids::to_string(id)}, {"name", u.name}, {"email", u.email}};
    o["age"] = u.age ? json::value(*u.age) : json::value(nullptr);
    return o;
}

// Whether an LWT result was applied: its first column, [applied].
bool applied(const cqlcoro::result& r) { return !r.empty() && r.one().get<bool>(0); }

}  // namespace

// ---- One connection

class connection : public std::enable_shared_from_this<connection> {
public:
    connection(tcp::socket socket, std::shared_ptr<server> srv) : stream_(std::move(socket)), server_(std::move(srv)) {}

    asio::awaitable<void> serve();
    /// Shutdown: an idle connection closes now; a busy one after its answer. Runs on the connection's strand.
    void stop(bool force = false) {
        stopping_ = true;
        if (force) {
            beast::error_code ignored;
            stream_.socket().close(ignored);
        } else if (!busy_) {
            beast::error_code ignored;
            stream_.socket().cancel(ignored);
        }
    }
    asio::any_io_executor executor() { return stream_.get_executor(); }

private:
    // Answers one request; false when the connection must close after it (keep-alive off, a stream cut).
    asio::awaitable<bool> handle(request_t& req);
    asio::awaitable<response_t> route(request_t& req, std::string& route_name);
    asio::awaitable<bool> stream_json(request_t& req, cqlcoro::bound_statement stmt, json::object (*to_json)(const cqlcoro::row_view&));

    asio::awaitable<response_t> create_user(request_t& req);
    asio::awaitable<response_t> read_user(request_t& req, const cqlcoro::uuid& id);
    asio::awaitable<response_t> update_user(request_t& req, const cqlcoro::uuid& id);
    asio::awaitable<response_t> delete_user(request_t& req, const cqlcoro::uuid& id);
    response_t health(request_t& req);
    response_t metrics(request_t& req);

    beast::tcp_stream stream_;
    std::shared_ptr<server> server_;
    bool busy_ = false;      // a request is being served (on the strand)
    bool stopping_ = false;  // shutdown: close after the request being served
};

asio::awaitable<void> connection::serve() {
    auto& stats = server_->stats();
    stats.open_connections.fetch_add(1, std::memory_order_relaxed);
    beast::flat_buffer buffer;
    for (;;) {
        if (stopping_ || server_->stopping()) break;
        http::request_parser<http::string_body> parser;
        parser.body_limit(64 * 1024);
        stream_.expires_after(server_->config().idle_timeout);
        auto [ec, n] = co_await http::async_read(stream_, buffer, parser, asio::as_tuple(use_awaitable));
        if (ec == http::error::body_limit) {
            request_t req = parser.release();
            auto res = make_error(req, {http::status::payload_too_large, "bad_request", "the body is larger than 64 KiB"});
            res.keep_alive(false);
            stream_.expires_after(server_->config().write_timeout);
            co_await http::async_write(stream_, res, asio::as_tuple(use_awaitable));
            server_->stats().count("other", 413);
            break;
        }
        if (ec) break;  // closed by the client, idle time-out, shutdown, or not HTTP
        request_t req = parser.release();
        busy_ = true;
        stats.in_flight.fetch_add(1, std::memory_order_relaxed);
        const bool keep = co_await handle(req);
        stats.in_flight.fetch_sub(1, std::memory_order_relaxed);
        busy_ = false;
        if (!keep) break;
    }
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
    stats.open_connections.fetch_sub(1, std::memory_order_relaxed);
    server_->forget(shared_from_this());
}

asio::awaitable<bool> connection::handle(request_t& req) {
    const std::string_view target = req.target();
    const bool listing = req.method() == http::verb::get && (target == "/users" || target == "/items");
    if (listing) {
        const auto& st = server_->prepared();
        auto stmt = target == "/users" ? st.list_users.bind() : st.list_items.bind();
        stmt.page_size(server_->config().stream_page_rows).idempotent(true);
        co_return co_await stream_json(req, std::move(stmt), target == "/users" ? &user_json : &item_json);
    }
    std::string route_name = "other";
    response_t res;
    try {
        res = co_await route(req, route_name);
    } catch (const cqlcoro::error& e) {
        res = make_error(req, map_error(e.boost_code(), e.what()));
    } catch (const std::exception& e) {
        res = make_error(req, {http::status::internal_server_error, "internal", e.what()});
    }
    // Shutting down: this answer is the connection's last, and says so.
    if (stopping_ || server_->stopping()) res.keep_alive(false);
    server_->stats().count(route_name, res.result_int());
    stream_.expires_after(server_->config().write_timeout);
    auto [ec, n] = co_await http::async_write(stream_, res, asio::as_tuple(use_awaitable));
    co_return !ec && res.keep_alive();
}

asio::awaitable<response_t> connection::route(request_t& req, std::string& route_name) {
    const std::string_view target = req.target();
    const auto verb = req.method();
    if (target == "/health") {
        route_name = "/health";
        co_return health(req);
    }
    if (target == "/metrics") {
        route_name = "/metrics";
        co_return metrics(req);
    }
    if (target == "/users") {
        route_name = "/users";
        if (verb == http::verb::post) co_return co_await create_user(req);
        co_return make_error(req, {http::status::method_not_allowed, "bad_request", "use GET or POST on /users"});
    }
    if (target.starts_with("/users/")) {
        route_name = "/users/{id}";
        const auto id = parse_id(target.substr(7));
        if (!id) co_return bad_request(req, "the id must be a UUID such as 6ba7b810-9dad-11d1-80b4-00c04fd430c8");
        switch (verb) {
        case http::verb::get: co_return co_await read_user(req, *id);
        case http::verb::put: co_return co_await update_user(req, *id);
        case http::verb::delete_: co_return co_await delete_user(req, *id);
        default: co_return make_error(req, {http::status::method_not_allowed, "bad_request", "use GET, PUT or DELETE on /users/{id}"});
        }
    }
    co_return make_error(req, {http::status::not_found, "not_found",
                               "routes: POST /users, GET /users, GET|PUT|DELETE /users/{id}, GET /items, /metrics, /health"});
}

asio::awaitable<response_t> connection::create_user(request_t& req) {
    auto parsed = parse_user(req.body());
    if (auto* why = std::get_if<std::string>(&parsed)) co_return bad_request(req, *why);
    auto& u = std::get<user_fields>(parsed);
    const auto id = cqlcoro::make_timeuuid();
    // A fresh id makes the insert idempotent: retrying it cannot create a second user.
    auto stmt = server_->prepared().insert_user.bind(id, u.name, u.email, u.age).idempotent(true);
    co_await server_->session().execute(std::move(stmt));
    const json::object body = fields_json(id, u);
    auto res = make_json(req, http::status::created, body);
    res.set(http::field::location, "/users/" + boost::uuids::to_string(id));
    co_return res;
}

asio::awaitable<response_t> connection::read_user(request_t& req, const cqlcoro::uuid& id) {
    auto stmt = server_->prepared().select_user.bind(id).idempotent(true);
    auto rs = co_await server_->session().execute(std::move(stmt));
    if (rs.empty()) co_return make_error(req, {http::status::not_found, "not_found", "no user has this id"});
    co_return make_json(req, http::status::ok, user_json(rs.one()));
}

asio::awaitable<response_t> connection::update_user(request_t& req, const cqlcoro::uuid& id) {
    auto parsed = parse_user(req.body());
    if (auto* why = std::get_if<std::string>(&parsed)) co_return bad_request(req, *why);
    auto& u = std::get<user_fields>(parsed);
    auto read = server_->prepared().select_user.bind(id).idempotent(true);
    auto current = co_await server_->session().execute(std::move(read));
    if (current.empty()) co_return make_error(req, {http::status::not_found, "not_found", "no user has this id"});
    const std::string was(current.one().get<std::string_view>(1));
    auto stmt = server_->prepared().update_user.bind(u.name, u.email, u.age, id, was);
    auto rs = co_await server_->session().execute(std::move(stmt));
    if (!applied(rs))
        co_return make_error(req, {http::status::conflict, "conflict", "the user was changed or deleted meanwhile; read it again"});
    const json::object body = fields_json(id, u);
    co_return make_json(req, http::status::ok, body);
}

asio::awaitable<response_t> connection::delete_user(request_t& req, const cqlcoro::uuid& id) {
    auto stmt = server_->prepared().delete_user.bind(id);
    auto rs = co_await server_->session().execute(std::move(stmt));
    if (!applied(rs)) co_return make_error(req, {http::status::not_found, "not_found", "no user has this id"});
    response_t res{http::status::no_content, req.version()};
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    co_return res;
}

response_t connection::health(request_t& req) {
    // Usable: a node the session is connected to. Draining: shutting down, so take no new work here.
    const auto m = server_->session().metrics();
    std::size_t usable = 0;
    json::array nodes;
    for (const auto& n : m.nodes) {
        const bool up = n.state == cqlcoro::node_state::up && n.open_connections > 0;
        usable += up ? 1 : 0;
        nodes.push_back(json::object{{"host", n.host}, {"state", cqlcoro::to_string(n.state)}, {"connections", n.open_connections}});
    }
    const char* status = server_->stopping() ? "draining" : usable ? "up" : "down";
    const bool ok = usable && !server_->stopping();
    return make_json(req, ok ? http::status::ok : http::status::service_unavailable,
                     json::object{{"status", status}, {"usable_nodes", usable}, {"nodes", std::move(nodes)}});
}

response_t connection::metrics(request_t& req) {
    response_t res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.keep_alive(req.keep_alive());
    res.body() = cqlcoro::to_prometheus(server_->session().metrics()) + server_->stats().prometheus();
    res.prepare_payload();
    return res;
}

// A listing as one JSON array, sent in chunks as pages arrive. Backpressure: the next page is asked
// for only after the previous chunk was written to the socket, and the pager fetches at most one page
// ahead, so a slow client holds this stream at two pages whatever the table's size. An error before
// the first row is an ordinary error answer; after it, the status is sent, so the connection is closed
// without the last chunk, and the client sees a cut body rather than a well-formed short list.
asio::awaitable<bool> connection::stream_json(request_t& req, cqlcoro::bound_statement stmt,
                                              json::object (*to_json)(const cqlcoro::row_view&)) {
    const std::string route_name(req.target());
    cqlcoro::stream_options o;
    o.prefetch = 1;
    auto pager = server_->session().stream(std::move(stmt), o);
    std::tuple<cqlcoro::error_code, cqlcoro::stream_page> got = co_await pager.next_page(asio::as_tuple(use_awaitable));
    const cqlcoro::error_code first_ec = std::get<0>(got);
    cqlcoro::stream_page page = std::move(std::get<1>(got));
    if (first_ec) {
        auto res = make_error(req, map_error(first_ec, fmt::format("reading {}: {}", route_name, first_ec.message())));
        server_->stats().count(route_name, res.result_int());
        stream_.expires_after(server_->config().write_timeout);
        auto [ec, n] = co_await http::async_write(stream_, res, asio::as_tuple(use_awaitable));
        co_return !ec && res.keep_alive() && !stopping_;
    }
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive() && !stopping_ && !server_->stopping());
    res.chunked(true);
    http::response_serializer<http::empty_body> sr{res};
    stream_.expires_after(server_->config().write_timeout);
    if (auto [ec, n] = co_await http::async_write_header(stream_, sr, asio::as_tuple(use_awaitable)); ec) co_return false;

    std::string chunk = "[";
    bool first = true;
    std::uint64_t rows = 0;
    while (page) {
        for (const auto& row : page.rows()) {
            if (!first) chunk += ',';
            first = false;
            chunk += json::serialize(to_json(row));
        }
        rows += page.size();
        server_->stats().add_stream_rows(page.size());
        // A page may hold no rows (the last one often does), and an empty chunk would end the body.
        if (!chunk.empty()) {
            stream_.expires_after(server_->config().write_timeout);
            const auto body_chunk = http::make_chunk(asio::buffer(chunk));  // a named local: GCC 12 and co_await temporaries
            auto [wec, wn] = co_await asio::async_write(stream_, body_chunk, asio::as_tuple(use_awaitable));
            if (wec) {
                server_->stats().count(route_name, 499);  // the client went away, or stalled past write_timeout
                co_return false;
            }
            chunk.clear();
        }
        page = {};  // give the page's room back before waiting for the next one
        got = co_await pager.next_page(asio::as_tuple(use_awaitable));
        if (const auto ec = std::get<0>(got)) {
            fmt::print(stderr, "http_service: {} cut after {} rows: {}\n", route_name, rows, ec.message());
            server_->stats().count(route_name, 502);
            co_return false;
        }
        page = std::move(std::get<1>(got));
    }
    chunk += "]";
    stream_.expires_after(server_->config().write_timeout);
    const auto tail = http::make_chunk(asio::buffer(chunk));
    const auto last = http::make_chunk_last();
    auto [ec1, n1] = co_await asio::async_write(stream_, tail, asio::as_tuple(use_awaitable));
    if (ec1) co_return false;
    auto [ec2, n2] = co_await asio::async_write(stream_, last, asio::as_tuple(use_awaitable));
    if (ec2) co_return false;
    server_->stats().count(route_name, 200);
    co_return res.keep_alive();
}

// ---- The server

server::server(asio::any_io_executor ex, cqlcoro::session s, statements st, settings cfg)
    : io_(ex),
      strand_(asio::make_strand(ex)),
      acceptor_(strand_),
      drained_(strand_),
      session_(std::move(s)),
      statements_(std::move(st)),
      settings_(cfg) {}

void server::listen() {
    acceptor_.open(settings_.listen.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    beast::error_code ec;
    acceptor_.bind(settings_.listen, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}", settings_.listen.address().to_string(),
                                                 settings_.listen.port(), ec.message()));
    acceptor_.listen(asio::socket_base::max_listen_connections);
}

void server::stop() {
    asio::post(strand_, [self = shared_from_this()] { self->begin_shutdown(); });
}

void server::begin_shutdown() {
    if (stopping_.exchange(true)) return;
    beast::error_code ignored;
    acceptor_.close(ignored);
    for (auto& [raw, c] : connections_) asio::post(c->executor(), [c = c] { c->stop(); });
}

void server::forget(const std::shared_ptr<connection>& c) {
    asio::post(strand_, [self = shared_from_this(), c] {
        self->connections_.erase(c.get());
        if (self->connections_.empty()) self->drained_.cancel();
    });
}

asio::awaitable<void> server::accept_loop() {
    while (!stopping()) {
        auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(io_), asio::as_tuple(use_awaitable));
        if (ec) {
            if (stopping()) break;
            fmt::print(stderr, "http_service: accept: {}\n", ec.message());
            continue;
        }
        socket.set_option(tcp::no_delay(true));
        auto c = std::make_shared<connection>(std::move(socket), shared_from_this());
        connections_.emplace(c.get(), c);
        asio::co_spawn(c->executor(), c->serve(), asio::detached);
    }
}

asio::awaitable<void> server::run() {
    co_await accept_loop();
    // Stopped: wait for the connections to answer what they were serving, then close the session.
    if (!connections_.empty()) {
        drained_.expires_after(settings_.grace);
        co_await drained_.async_wait(asio::as_tuple(use_awaitable));
    }
    if (!connections_.empty()) {
        fmt::print(stderr, "http_service: {} connections still busy after {} s; closing them\n", connections_.size(),
                   settings_.grace.count());
        for (auto& [raw, c] : connections_) asio::post(c->executor(), [c = c] { c->stop(true); });
    }
    co_await session_.close();
}

}  // namespace http_service
