// A traced request as the server recorded it: session.fetch_trace(result.tracing_id()) reads it from
// system_traces.sessions and system_traces.events.
#pragma once

#include <cqlcoro/consistency.hpp>
#include <cqlcoro/value_types.hpp>

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace cqlcoro {

/// One step of a traced request on one node (a row of system_traces.events).
struct trace_event {
    uuid id{};                                  ///< event_id, a timeuuid: when it happened
    std::string activity;                       ///< "Parsing SELECT ...", "Executing single-partition query on kv", ...
    boost::asio::ip::address source;            ///< the node it happened on
    std::chrono::microseconds source_elapsed{0};  ///< since the request reached that node
    std::string thread;
};

/// The trace of one request (a row of system_traces.sessions, with its events in order).
struct query_trace {
    uuid id{};                                  ///< the tracing id the result carried
    std::string request;                        ///< "Execute CQL3 query", "Execute batch of CQL3 queries", ...
    boost::asio::ip::address coordinator;
    boost::asio::ip::address client;            ///< Cassandra 3.0+; unspecified before
    std::chrono::microseconds duration{0};      ///< on the coordinator
    timestamp started_at{};
    std::map<std::string, std::string> parameters;  ///< query, consistency_level, page_size, ...
    std::vector<trace_event> events;
};

/// How fetch_trace waits for the server, which writes a trace after answering the request:
/// it reads the session row until its duration is set, `attempts` times at most, `interval` apart.
struct trace_options {
    int attempts = 5;
    std::chrono::milliseconds interval{3};
    cqlcoro::consistency consistency = consistency::one;
};

}  // namespace cqlcoro
