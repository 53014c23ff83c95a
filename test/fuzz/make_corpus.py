#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (valid messages, frames and v5 segments) into corpus/.

The messages mirror the byte-exact vectors of test/unit/protocol; run again after adding one.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def s(x):  # [string]
    b = x.encode()
    return struct.pack(">H", len(b)) + b


def i(n):
    return struct.pack(">i", n)


def h(n):
    return struct.pack(">H", n)


ROWS = (i(2) + i(3) + i(2) + i(2) + b"\x01\x02" + s("ks") + s("t") + s("k") + h(9) + s("v") + h(0x0D)
        + i(2) + i(4) + i(1) + i(1) + b"a" + i(4) + i(2) + i(-1))
TYPES = (i(2) + i(1) + i(4) + s("ks") + s("t") + s("a") + h(0x21) + h(0x0D) + h(0x20) + h(9)
         + s("b") + h(0x31) + h(2) + h(0x13) + h(0x14)
         + s("c") + h(0x30) + s("ks") + s("addr") + h(2) + s("city") + h(0x0D) + s("zip") + h(9)
         + s("d") + h(0) + s("org.apache.cassandra.db.marshal.DateType") + i(0))
PREPARED_V4 = (i(4) + h(1) + b"\x0a" + i(1) + i(2) + i(1) + h(1) + s("ks") + s("t") + s("a") + h(9) + s("k") + h(9)
               + i(4) + i(0))
PREPARED_V5 = (i(4) + h(1) + b"\x0a" + h(2) + b"\xcc\xcc" + i(0) + i(0) + i(0) + i(1) + i(1) + s("ks") + s("t")
               + s("v") + h(0x0D))

# (version, opcode, flags, body)
MESSAGES = {
    "ready": (4, 0x02, 0, b""),
    "authenticate": (3, 0x03, 0, s("org.apache.cassandra.auth.PasswordAuthenticator")),
    "supported": (3, 0x06, 0, h(1) + s("COMPRESSION") + h(2) + s("snappy") + s("lz4")),
    "error_syntax": (3, 0x00, 0, i(0x2000) + s("oops")),
    "error_unavailable": (4, 0x00, 0, i(0x1000) + s("") + h(6) + i(2) + i(1)),
    "error_write_timeout_cas": (5, 0x00, 0, i(0x1100) + s("") + h(9) + i(0) + i(1) + s("CAS") + h(3)),
    "error_read_failure_v5": (5, 0x00, 0, i(0x1300) + s("") + h(1) + i(0) + i(1) + i(1) + b"\x04\x7f\x00\x00\x02" + h(1) + b"\x01"),
    "error_write_failure_v4": (4, 0x00, 0, i(0x1500) + s("") + h(4) + i(1) + i(2) + i(1) + s("COUNTER")),
    "error_function_failure": (4, 0x00, 0, i(0x1400) + s("") + s("ks") + s("f") + h(1) + s("int")),
    "error_unprepared": (3, 0x00, 0, i(0x2500) + s("") + h(3) + b"\x01\x02\x03"),
    "result_void": (3, 0x08, 0, i(1)),
    "result_rows": (4, 0x08, 0, ROWS),
    "result_types": (4, 0x08, 0, TYPES),
    "result_prepared_v4": (4, 0x08, 0, PREPARED_V4),
    "result_prepared_v5": (5, 0x08, 0, PREPARED_V5),
    "result_set_keyspace": (3, 0x08, 0, i(3) + s("ks")),
    "result_schema_change": (4, 0x08, 0, i(5) + s("DROPPED") + s("FUNCTION") + s("ks") + s("f") + h(1) + s("int")),
    "event_topology": (3, 0x0C, 0, s("TOPOLOGY_CHANGE") + s("NEW_NODE") + b"\x04\x7f\x00\x00\x03" + i(9042)),
    "event_status_v6": (4, 0x0C, 0, s("STATUS_CHANGE") + s("DOWN") + b"\x10" + bytes(15) + b"\x01" + i(9042)),
    "event_schema": (3, 0x0C, 0, s("SCHEMA_CHANGE") + s("UPDATED") + s("TABLE") + s("ks") + s("t")),
    "auth_challenge": (4, 0x0E, 0, i(2) + b"\xab\xcd"),
    "with_tracing_warnings_payload": (4, 0x08, 0x0E, bytes(range(16)) + h(1) + s("warn") + h(1) + s("k") + i(1) + b"\xff" + i(1)),
}


def frame(version, op, flags, body, stream=0):
    return struct.pack(">BBhBi", 0x80 | version, flags, stream, op, len(body)) + body


def crc24(bs):
    crc = 0x875060
    for b in bs:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1974F0B
    return crc & 0xFFFFFF


def le(v, n):
    return bytes((v >> (8 * k)) & 0xFF for k in range(n))


def segment(payload, self_contained=True):
    head = le(len(payload) | ((1 if self_contained else 0) << 17), 3)
    return head + le(crc24(head), 3) + payload + le(zlib.crc32(b"\xfa\x2d\x55\xca" + payload), 4)


def stored_lz4_segment(payload):
    head = le(len(payload) | (1 << 34), 5)  # uncompressed length 0: stored as is
    return head + le(crc24(head), 3) + payload + le(zlib.crc32(b"\xfa\x2d\x55\xca" + payload), 4)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for name, (v, op, flags, body) in MESSAGES.items():
    write("fuzz_response", name, bytes([v, op, flags]) + body)
    if v < 5:
        write("fuzz_frame", name, b"\x00" + frame(v, op, flags, body, stream=3))
    else:
        write("fuzz_segment", name, b"\x00" + segment(frame(v, op, flags, body)))
        write("fuzz_segment", name + "_lz4stored", b"\x01" + stored_lz4_segment(frame(v, op, flags, body)))

# Event bodies (byte 0: the version), the ones above and each kind of change.
EVENTS = {name: (v, body) for name, (v, op, _, body) in MESSAGES.items() if op == 0x0C}
EVENTS.update({
    "event_topology_removed_v6": (4, s("TOPOLOGY_CHANGE") + s("REMOVED_NODE") + b"\x10" + bytes(15) + b"\x01" + i(9042)),
    "event_schema_keyspace": (4, s("SCHEMA_CHANGE") + s("CREATED") + s("KEYSPACE") + s("ks")),
    "event_schema_type": (5, s("SCHEMA_CHANGE") + s("CREATED") + s("TYPE") + s("ks") + s("addr")),
    "event_schema_function": (5, s("SCHEMA_CHANGE") + s("DROPPED") + s("FUNCTION") + s("ks") + s("f") + h(2) + s("int")
                              + s("frozen<list<text>>")),
    "event_schema_aggregate": (4, s("SCHEMA_CHANGE") + s("UPDATED") + s("AGGREGATE") + s("ks") + s("total") + h(1) + s("int")),
})
for name, (v, body) in EVENTS.items():
    write("fuzz_event", name, bytes([v - 3]) + body)

# Requests, for the request decoder (the server side of the codec).
REQUESTS = {
    "req_options": (4, 0x05, b""),
    "req_startup": (3, 0x01, h(1) + s("CQL_VERSION") + s("3.0.0")),
    "req_query_all_flags": (4, 0x07, i(1) + b"Q" + h(6) + b"\x7f" + h(2) + s("a") + i(4) + i(1) + s("b") + i(-2)
                            + i(100) + i(2) + b"\xab\xcd" + h(9) + struct.pack(">q", 5)),
    "req_execute": (4, 0x0A, h(2) + b"\xca\xfe" + h(4) + b"\x01" + h(1) + i(4) + i(1)),
    "req_batch": (3, 0x0D, b"\x01" + h(2) + b"\x00" + i(6) + b"INSERT" + h(0) + b"\x01" + h(2) + b"\x0a\x0b" + h(1)
                  + i(4) + i(1) + h(2) + b"\x30" + h(8) + struct.pack(">q", 5)),
    "req_register": (4, 0x0B, h(1) + s("STATUS_CHANGE")),
}
for name, (v, op, body) in REQUESTS.items():
    write("fuzz_frame", name, b"\x00" + struct.pack(">BBhBi", v, 0, 1, op, len(body)) + body)

# Several frames back to back, and a multi-segment envelope.
write("fuzz_frame", "stream_of_three",
      b"\x00" + b"".join(frame(4, op, f, b) for (_, op, f, b) in list(MESSAGES.values())[:3]))
big = frame(5, 0x08, 0, ROWS)
write("fuzz_segment", "split_envelope", b"\x00" + segment(big[:20], False) + segment(big[20:], False))

# Type strings for the type parser.
for n, text in enumerate([
    "int", "map<text, frozen<list<int>>>", "set<frozen<tuple<int, text, uuid>>>", "vector<float, 3>", "ks.address",
    "'com.example.Custom(a,b)'",
    "org.apache.cassandra.db.marshal.MapType(org.apache.cassandra.db.marshal.UTF8Type,"
    "org.apache.cassandra.db.marshal.ListType(org.apache.cassandra.db.marshal.TimeUUIDType))",
    "org.apache.cassandra.db.marshal.UserType(ks,61646472657373,63697479:org.apache.cassandra.db.marshal.UTF8Type,"
    "7a6970:org.apache.cassandra.db.marshal.Int32Type)",
    "org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType, 3)",
    "org.apache.cassandra.db.marshal.ReversedType(org.apache.cassandra.db.marshal.TimestampType)",
]):
    write("fuzz_type_parser", f"type_{n}", text.encode())

# A type ([option]) then a cell, for the value decoder.
VALUES = {
    "int": h(9) + i(7),
    "text": h(0x0D) + b"h\xc3\xa9",
    "decimal": h(6) + i(2) + b"\x30\x39",
    "varint": h(0x0E) + b"\xff\x7f",
    "duration": h(0x15) + b"\x02\x04\x06",
    "list_int": h(0x20) + h(9) + i(2) + i(4) + i(1) + i(4) + i(2),
    "map_text_list": h(0x21) + h(0x0D) + h(0x20) + h(9) + i(1) + i(1) + b"a" + i(12) + i(1) + i(4) + i(9),
    "tuple": h(0x31) + h(2) + h(9) + h(0x0D) + i(4) + i(1) + i(-1),
    "udt": h(0x30) + s("ks") + s("a") + h(2) + s("city") + h(0x0D) + s("zip") + h(9) + i(1) + b"X" + i(4) + i(5),
    "vector": h(0) + s("org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType, 2)")
              + b"\x3f\x80\x00\x00\x40\x00\x00\x00",
    "timestamp": h(0x0B) + struct.pack(">q", -1500),
    "inet6": h(0x10) + bytes(15) + b"\x01",
}
for name, data in VALUES.items():
    write("fuzz_value", name, data)

# Scripts for the multiplexer: byte 0 the framing, then operations (fuzz_multiplexer.cpp says which).
def feed(bs):  # op 0, in pieces of at most 64 bytes
    out = b""
    for k in range(0, len(bs), 64):
        piece = bs[k:k + 64]
        out += bytes([(len(piece) - 1) << 2]) + piece
    return out


ADD, ADD_TIMED, WRITE = bytes([1]), bytes([(5 << 2) | 1]), bytes([3])
ready = [frame(4, 0x02, 0, b"", stream=n) for n in range(3)]
write("fuzz_multiplexer", "three_answered", b"\x00" + ADD * 3 + WRITE + feed(ready[2] + ready[0] + ready[1]))
write("fuzz_multiplexer", "cancel_and_orphan", b"\x00" + ADD * 2 + bytes([(1 << 2) | 2]) + WRITE + bytes([2])
      + feed(ready[1] + ready[0]))
write("fuzz_multiplexer", "deadline_and_event", b"\x00" + ADD_TIMED + ADD + WRITE + bytes([(10 << 2) | 3])
      + feed(frame(4, 0x0C, 0, s("STATUS_CHANGE") + s("UP") + b"\x04\x7f\x00\x00\x01" + i(9042), stream=-1) + ready[1]))
write("fuzz_multiplexer", "rows_split", b"\x00" + ADD + WRITE + feed(frame(4, 0x08, 0, ROWS)))
# 16 requests take every stream id; three more wait for one (one with a deadline, one cancelled), and
# get the ids the answers free.
ADD_WAITING, ADD_WAITING_TIMED = bytes([(2 << 2) | 1]), bytes([(6 << 2) | 1])
write("fuzz_multiplexer", "parked_for_ids", b"\x00" + ADD * 16 + ADD_WAITING * 2 + ADD_WAITING_TIMED + WRITE
      + bytes([(17 << 2) | 2]) + feed(b"".join(frame(4, 0x02, 0, b"", stream=n) for n in range(3))) + WRITE
      + bytes([(10 << 2) | 3]) + feed(b"".join(frame(4, 0x02, 0, b"", stream=n) for n in range(3, 16))))
v5_ready = [frame(5, 0x02, 0, b"", stream=n) for n in range(2)]
write("fuzz_multiplexer", "v5_segments", b"\x01" + ADD * 2 + WRITE + feed(segment(v5_ready[1] + v5_ready[0])))
write("fuzz_multiplexer", "v5_split_envelope", b"\x01" + ADD + WRITE + feed(segment(frame(5, 0x08, 0, ROWS)[:20], False)
      + segment(frame(5, 0x08, 0, ROWS)[20:], False)))
