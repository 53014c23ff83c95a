// The whole public API of cqlcoro in one include:
//
//   #include <cqlcoro/cqlcoro.hpp>
//
// Each header below also stands alone, for a program that wants less.
#pragma once

#include <cqlcoro/admission.hpp>
#include <cqlcoro/auth.hpp>
#include <cqlcoro/bind.hpp>
#include <cqlcoro/chain.hpp>
#include <cqlcoro/codec.hpp>
#include <cqlcoro/completion.hpp>
#include <cqlcoro/column_spec.hpp>
#include <cqlcoro/consistency.hpp>
#include <cqlcoro/cql_type.hpp>
#include <cqlcoro/error.hpp>
#include <cqlcoro/fan_out.hpp>
#include <cqlcoro/latency_histogram.hpp>
#include <cqlcoro/list_view.hpp>
#include <cqlcoro/load_balancing.hpp>
#include <cqlcoro/log.hpp>
#include <cqlcoro/metadata.hpp>
#include <cqlcoro/metrics.hpp>
#include <cqlcoro/pager.hpp>
#include <cqlcoro/profile.hpp>
#include <cqlcoro/protocol_version.hpp>
#include <cqlcoro/request_tracker.hpp>
#include <cqlcoro/result.hpp>
#include <cqlcoro/retry_budget.hpp>
#include <cqlcoro/retry_policy.hpp>
#include <cqlcoro/rows.hpp>
#include <cqlcoro/server_error.hpp>
#include <cqlcoro/session.hpp>
#include <cqlcoro/speculative_execution.hpp>
#include <cqlcoro/statement.hpp>
#include <cqlcoro/stream_options.hpp>
#include <cqlcoro/tls.hpp>
#include <cqlcoro/trace.hpp>
#include <cqlcoro/value.hpp>
#include <cqlcoro/value_types.hpp>
