// Events, node control, authentication and TLS of the simulated nodes.
#include "raw_client.hpp"
#include "sim.hpp"

#include <boost/asio/ssl.hpp>

#include <catch2/catch_test_macros.hpp>

#include <cstdlib>
#include <filesystem>

using namespace cqlcoro;
using namespace cqlcoro::protocol;
using cqlcoro::sim::test::as;
using cqlcoro::sim::test::raw_client;

namespace {

constexpr std::uint16_t port = 19042;

void register_all(raw_client& c) {
    std::array<std::string_view, 3> ev{"TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"};
    REQUIRE(std::holds_alternative<ready_response>(c.roundtrip(register_request{ev}).message.body));
}

}  // namespace

TEST_CASE("sim events: status (with 2.1's duplicate UPs), topology and schema changes reach registered connections") {
    sim::cluster c({.nodes = 3, .port = port});
    raw_client listener("127.0.0.1", port, 4), quiet("127.0.0.1", port, 4);
    listener.startup();
    quiet.startup();
    register_all(listener);

    c.push_status_change(2, "DOWN");
    auto down = listener.receive();
    CHECK(down.header.stream == -1);
    const auto& s = std::get<status_change_event>(as<event_response>(down).event);
    CHECK(s.change == "DOWN");
    CHECK(s.address.address_string() == "127.0.0.2");
    CHECK(s.address.port == port);

    c.push_status_change(2, "UP");
    c.push_status_change(2, "UP");
    CHECK(std::get<status_change_event>(as<event_response>(listener.receive()).event).change == "UP");
    CHECK(std::get<status_change_event>(as<event_response>(listener.receive()).event).change == "UP");

    c.push_topology_change(3, "REMOVED_NODE");
    CHECK(std::get<topology_change_event>(as<event_response>(listener.receive()).event).change == "REMOVED_NODE");
    c.push_schema_change({"CREATED", "TABLE", "ks", "t", {}});
    CHECK(std::get<schema_change_event>(as<event_response>(listener.receive()).event).change.name == "t");

    // The unregistered connection got nothing: its next frame is the answer to its own request.
    CHECK(quiet.roundtrip(options_request{}, 5).header.stream == 5);
}

TEST_CASE("sim control: a paused node reads nothing until resumed") {
    sim::cluster c({.nodes = 1, .port = port});
    raw_client client("127.0.0.1", port);
    client.startup();
    const auto before = c.requests().size();
    c.pause(1);
    client.send(query_request{"SELECT during pause", {}}, 3);
    CHECK(c.requests().size() == before);  // unread
    c.resume(1);
    CHECK(client.receive().header.stream == 3);
    CHECK(c.requests().back().query == "SELECT during pause");
}

TEST_CASE("sim control: stop closes connections and the listener; start listens again; drop closes connections") {
    sim::cluster c({.nodes = 2, .port = port});
    raw_client client("127.0.0.2", port);
    client.startup();
    CHECK(c.connection_count(2) == 1);
    c.stop(2);
    CHECK(client.at_eof());
    CHECK_THROWS(raw_client("127.0.0.2", port));  // refused
    c.start(2);
    raw_client again("127.0.0.2", port);
    CHECK(std::holds_alternative<ready_response>(again.startup().message.body));
    c.drop_connections(2);
    CHECK(again.at_eof());
    CHECK(c.connection_count(2) == 0);
    raw_client third("127.0.0.2", port);
    CHECK(std::holds_alternative<ready_response>(third.startup().message.body));
}

TEST_CASE("sim auth: PasswordAuthenticator over SASL PLAIN") {
    sim::cluster c({.nodes = 1, .port = port, .credentials = std::pair<std::string, std::string>{"cassandra", "secret"}});
    raw_client bad("127.0.0.1", port, 4);
    auto r = bad.startup(compression::none, "cassandra", "wrong");
    CHECK(as<error_response>(r).code == static_cast<std::int32_t>(server_error::bad_credentials));
    raw_client good("127.0.0.1", port, 5);
    CHECK(std::holds_alternative<auth_success_response>(good.startup(compression::lz4, "cassandra", "secret").message.body));
    CHECK(std::holds_alternative<result_response>(good.roundtrip(query_request{"SELECT * FROM system.local", {}}, 1).message.body));
    // Queries before logging in are refused.
    raw_client early("127.0.0.1", port, 4);
    CHECK(std::holds_alternative<authenticate_response>(early.roundtrip(startup_request{}).message.body));
    CHECK(as<error_response>(early.roundtrip(query_request{"SELECT 1", {}}, 1)).code == static_cast<std::int32_t>(server_error::protocol_error));
}

namespace {
// A throw-away certificate authority and node certificate, made for this test run.
struct test_certs {
    std::filesystem::path dir = std::filesystem::temp_directory_path() / ("cqlcoro-sim-tls-" + std::to_string(::getpid()));
    test_certs() {
        std::filesystem::create_directories(dir);
        const auto d = dir.string();
        const std::string cmd =
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=cqlcoro-sim "
            "-addext subjectAltName=IP:127.0.0.1 -keyout " + d + "/key.pem -out " + d + "/cert.pem >/dev/null 2>&1 && "
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=client "
            "-keyout " + d + "/client-key.pem -out " + d + "/client.pem >/dev/null 2>&1";
        REQUIRE(std::system(cmd.c_str()) == 0);
    }
    ~test_certs() { std::filesystem::remove_all(dir); }
    std::string file(const char* name) const { return (dir / name).string(); }
};

// OPTIONS over TLS; returns the number of SUPPORTED options, or throws if the handshake fails.
std::size_t tls_options(const test_certs& certs, bool with_client_cert) {
    namespace ssl = boost::asio::ssl;
    boost::asio::io_context io;
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(certs.file("cert.pem"));
    ctx.set_verify_mode(ssl::verify_peer);
    if (with_client_cert) {
        ctx.use_certificate_chain_file(certs.file("client.pem"));
        ctx.use_private_key_file(certs.file("client-key.pem"), ssl::context::pem);
    }
    ssl::stream<boost::asio::ip::tcp::socket> s(io, ctx);
    s.lowest_layer().connect({boost::asio::ip::make_address("127.0.0.1"), port});
    s.handshake(ssl::stream_base::client);
    byte_buffer out;
    REQUIRE_FALSE(encode_request(4, options_request{}, {}, out));
    boost::asio::write(s, boost::asio::buffer(out));
    std::array<std::uint8_t, header_size> head{};
    boost::asio::read(s, boost::asio::buffer(head));
    auto h = decode_header(head);
    REQUIRE(h.has_value());
    byte_buffer body(h->length);
    boost::asio::read(s, boost::asio::buffer(body));
    auto m = decode_response(*h, body);
    REQUIRE(m.has_value());
    return std::get<supported_response>(m->body).options.size();
}
}  // namespace

TEST_CASE("sim TLS: served over OpenSSL, with optional required client certificates") {
    test_certs certs;
    {
        sim::cluster c({.nodes = 1, .port = port, .tls = sim::tls_files{certs.file("cert.pem"), certs.file("key.pem"), ""}});
        CHECK(tls_options(certs, false) == 3);
        CHECK_THROWS(raw_client("127.0.0.1", port).roundtrip(options_request{}));  // plain TCP gets no CQL answer
    }
    {
        sim::cluster c({.nodes = 1, .port = port,
                        .tls = sim::tls_files{certs.file("cert.pem"), certs.file("key.pem"), certs.file("client.pem")}});
        CHECK(tls_options(certs, true) == 3);
        CHECK_THROWS(tls_options(certs, false));
    }
}
