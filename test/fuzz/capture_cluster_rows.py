#!/usr/bin/env python3
"""Writes seeds for fuzz_cluster_rows from a real node: the RESULT bodies a session reads at connect
(system.local, system.peers or peers_v2, and every schema table), after creating a keyspace with a
table, an index, a user type, a function and an aggregate.

    capture_cluster_rows.py HOST NAME    # e.g. 127.0.0.1 cassandra21: writes corpus/fuzz_cluster_rows/NAME*

Speaks protocol v4 (v3 for a 2.1 node) over a plain socket, so it needs nothing but Python. The seed
format is fuzz_cluster_rows.cpp's: a version byte, then chunks (slot byte, 16-bit length, body).
"""
import os
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SLOTS = ["keyspaces", "tables", "columns", "indexes", "views", "types", "functions", "aggregates",
         "local", "peers", "peers_v2"]


class Node:
    def __init__(self, host, version):
        self.sock = socket.create_connection((host, 9042), timeout=30)
        self.version = version
        self.stream = 0
        body = struct.pack(">H", 1) + self.string("CQL_VERSION") + self.string("3.0.0")
        op, body = self.request(0x01, body)
        if op != 0x02:
            raise SystemExit(f"{host}: STARTUP answered opcode {op:#x}: {body!r}")

    @staticmethod
    def string(s):
        b = s.encode()
        return struct.pack(">H", len(b)) + b

    def read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise SystemExit("connection closed")
            out += chunk
        return out

    def request(self, op, body):
        self.stream += 1
        self.sock.sendall(struct.pack(">BBhBi", self.version, 0, self.stream, op, len(body)) + body)
        while True:
            _, flags, stream, rop, length = struct.unpack(">BBhBi", self.read(9))
            rbody = self.read(length)
            if stream == self.stream:
                return rop, rbody

    def query(self, text):
        b = text.encode()
        body = struct.pack(">i", len(b)) + b + struct.pack(">HB", 1, 0)  # consistency ONE, no flags
        return self.request(0x07, body)


def main():
    host, name = sys.argv[1], sys.argv[2]
    v3_layout = not name.endswith("21")  # a name ending in 21 is a Cassandra 2.1 node: v3, system.schema_*
    n = Node(host, 4 if v3_layout else 3)
    ddl = [
        "CREATE KEYSPACE IF NOT EXISTS fuzz_seed WITH replication = "
        "{'class': 'NetworkTopologyStrategy', 'dc1': 2}",
        ["CREATE TYPE IF NOT EXISTS fuzz_seed.addr (street text, zip int, tags frozen<set<text>>)",
         "CREATE TYPE IF NOT EXISTS fuzz_seed.addr (street text, zip int)"],  # 2.1: no collection in a type
        ["CREATE TABLE IF NOT EXISTS fuzz_seed.t (k int, c timeuuid, v map<text, frozen<list<int>>>, "
         "a frozen<addr>, s text static, PRIMARY KEY ((k), c)) WITH CLUSTERING ORDER BY (c DESC) "
         "AND comment = 'seed'",
         "CREATE TABLE IF NOT EXISTS fuzz_seed.t (k int, c timeuuid, v map<text, int>, "
         "a frozen<addr>, s text static, PRIMARY KEY ((k), c)) WITH CLUSTERING ORDER BY (c DESC) "
         "AND comment = 'seed'"],
        "CREATE INDEX IF NOT EXISTS t_s ON fuzz_seed.t (a)",
        "CREATE OR REPLACE FUNCTION fuzz_seed.plus(a int, b int) CALLED ON NULL INPUT RETURNS int "
        "LANGUAGE java AS 'return a == null ? b : a + b;'",
        "CREATE AGGREGATE IF NOT EXISTS fuzz_seed.total(int) SFUNC plus STYPE int INITCOND 0",
    ]
    for alternatives in ddl:  # the first a server takes of each
        for q in [alternatives] if isinstance(alternatives, str) else alternatives:
            op, body = n.query(q)
            if op != 0x00:
                break
            # An ERROR: a server without UDFs enabled, or too old for the statement; the rest still seeds.
            print(f"{name}: {q[:40]}...: {body[6:].decode(errors='replace')}", file=sys.stderr)
    # Every keyspace's row, but the elements of two keyspaces only: the system keyspaces' hundreds of
    # columns would make each input tens of kilobytes, and the fuzzer ten times slower.
    only = " WHERE keyspace_name IN ('fuzz_seed', 'system_traces')"
    if v3_layout:
        tables = {s: f"SELECT * FROM system_schema.{s}" + ("" if s == "keyspaces" else only) for s in SLOTS[:8]}
    else:
        tables = {"keyspaces": "SELECT * FROM system.schema_keyspaces",
                  "tables": "SELECT * FROM system.schema_columnfamilies" + only,
                  "columns": "SELECT * FROM system.schema_columns" + only,
                  "types": "SELECT * FROM system.schema_usertypes" + only,
                  "functions": "SELECT * FROM system.schema_functions" + only,
                  "aggregates": "SELECT * FROM system.schema_aggregates" + only}
    tables["local"] = "SELECT * FROM system.local WHERE key='local'"
    tables["peers"] = "SELECT * FROM system.peers"
    if v3_layout:
        tables["peers_v2"] = "SELECT * FROM system.peers_v2"
    chunks = []
    out_dir = os.path.join(HERE, "corpus", "fuzz_cluster_rows")
    os.makedirs(out_dir, exist_ok=True)
    version_byte = bytes([n.version - 3 + (0 if v3_layout else 0x80)])
    for slot, q in tables.items():
        op, body = n.query(q)
        if op != 0x08:
            print(f"{name}: {q}: opcode {op:#x}, skipped", file=sys.stderr)
            continue
        if len(body) > 0xFFFF:
            print(f"{name}: {q}: {len(body)} bytes, over a chunk's 65535: skipped", file=sys.stderr)
            continue
        chunk = bytes([SLOTS.index(slot)]) + struct.pack(">H", len(body)) + body
        chunks.append(chunk)
        with open(os.path.join(out_dir, f"{name}-{slot}"), "wb") as f:
            f.write(version_byte + chunk)
    with open(os.path.join(out_dir, f"{name}-all"), "wb") as f:
        f.write(version_byte + b"".join(chunks))
    print(f"{name}: {len(chunks)} tables captured")


if __name__ == "__main__":
    main()
