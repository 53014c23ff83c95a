#!/usr/bin/env python3
"""The DataStax Python driver (PyPI cassandra-driver) as an independent client of a real Cassandra 5.0
node, for the interop test (test/integration/interop_test.cpp).

  python_driver.py HOST PROTOCOL write KEY    writes the row of edge values under KEY
  python_driver.py HOST PROTOCOL check KEY    reads the row under KEY (written by cqlcoro) and checks
                                             every column against the same values; exits 1 naming
                                             each column that differs

The table and the values mirror interop_test.cpp's and JavaDriverCheck.java's: keep the three in step.
"""
import datetime
import decimal
import ipaddress
import math
import sys
import uuid

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.util import Date, Time, Duration, OrderedMapSerializedKey, SortedSet
from cassandra.cqltypes import UserType  # noqa: F401  (the UDT registers below)

KEYSPACE = "cqlcoro_interop"
TABLE = ("(k int PRIMARY KEY, a ascii, b bigint, c blob, d boolean, e decimal, f double, g float, h inet, "
         "i int, j text, l timestamp, m uuid, n timeuuid, o varint, si smallint, ti tinyint, dt date, tm time, "
         "du duration, p list<int>, q set<text>, r map<text, bigint>, s frozen<tuple<int, text, double>>, "
         "t frozen<address>, lm list<frozen<map<text, int>>>, nested frozen<list<frozen<list<int>>>>, "
         "ve vector<float, 3>)")
COLUMNS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "l", "m", "n", "o", "si", "ti", "dt", "tm", "du",
           "p", "q", "r", "s", "t", "lm", "nested", "ve"]


class Address:
    def __init__(self, street=None, zip=None):
        self.street = street
        self.zip = zip

    def __eq__(self, other):
        return isinstance(other, Address) and (self.street, self.zip) == (other.street, other.zip)

    def __repr__(self):
        return f"Address({self.street!r}, {self.zip!r})"


def expected():
    return {
        "a": "ascii only",
        "b": -(2 ** 63),
        "c": bytes([0x00, 0xff, 0x10]),
        "d": True,
        "e": decimal.Decimal("-1234567890.12345678901234567890"),
        "f": 5e-324,                                   # the smallest denormal double
        "g": -0.0,
        "h": ipaddress.ip_address("2001:db8::1"),
        "i": 2 ** 31 - 1,
        "j": "h\u00e9llo \u2713",
        "l": datetime.datetime(1969, 12, 30, 23, 59, 59, 877000),  # 86,400,123 ms before 1970
        "m": uuid.UUID("8f2d7c5e-1b3a-4c6d-9e8f-0a1b2c3d4e5f"),
        "n": uuid.UUID("e3e3b1a0-8d2b-11ee-b9d1-0242ac120002"),
        "o": -98765432109876543210987654321098765432109876543210,
        "si": -(2 ** 15),
        "ti": -(2 ** 7),
        "dt": Date(-(2 ** 31)),                         # the first day CQL has
        "tm": Time(86399999999999),                     # the last nanosecond of a day
        "du": Duration(-14, -3, -1),
        "p": [3, 1, 2],
        "q": {"x", "y"},
        "r": {"one": 1, "min": -(2 ** 63)},
        "s": (7, "seven", None),
        "t": Address("Main St", 12345),
        "lm": [{"a": 1, "b": -2}, {}, {"\u00e9": 2 ** 31 - 1}],
        "nested": [[1], [], [2, 3]],
        "ve": [-0.0, math.inf, 1.5],
    }


def normal(name, v):
    """A value as read, in the form expected() uses, for comparison."""
    if v is None:
        return None
    if isinstance(v, (SortedSet, set, frozenset)):
        return set(v)
    if isinstance(v, OrderedMapSerializedKey) or isinstance(v, dict):
        return {k: normal(name, x) for k, x in v.items()}
    if isinstance(v, tuple) and not hasattr(v, "_fields"):
        return tuple(v)
    if isinstance(v, list):
        return [normal(name, x) for x in v]
    if isinstance(v, str) and name == "h":
        return ipaddress.ip_address(v)
    return v


def same(name, got, want):
    if name in ("g",):
        return got == want and math.copysign(1, got) == math.copysign(1, want)
    if name == "ve":
        return got == want and math.copysign(1, got[0]) == math.copysign(1, want[0])
    return got == want


def main():
    host, protocol, verb, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=30)
    cluster = Cluster([host], protocol_version=protocol, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    session = cluster.connect()
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute(f"CREATE TYPE IF NOT EXISTS {KEYSPACE}.address (street text, zip int)")
    session.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.values_ {TABLE}")
    cluster.register_user_type(KEYSPACE, "address", Address)
    want = expected()
    if verb == "write":
        insert = session.prepare(f"INSERT INTO {KEYSPACE}.values_ (k, {', '.join(COLUMNS)}) VALUES "
                                 f"(?, {', '.join('?' for _ in COLUMNS)})")
        session.execute(insert, [key] + [want[c] for c in COLUMNS])
        print(f"python driver v{protocol}: wrote row {key}")
        cluster.shutdown()
        return 0
    row = session.execute(f"SELECT {', '.join(COLUMNS)} FROM {KEYSPACE}.values_ WHERE k = %s", [key]).one()
    if row is None:
        print(f"python driver: no row {key}")
        return 1
    bad = []
    for c in COLUMNS:
        got = normal(c, getattr(row, c))
        if not same(c, got, want[c]):
            bad.append(f"{c}: read {got!r}, expected {want[c]!r}")
    for b in bad:
        print("python driver: " + b)
    print(f"python driver v{protocol}: row {key}: {len(COLUMNS) - len(bad)} of {len(COLUMNS)} columns as expected")
    cluster.shutdown()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
