"""The DataStax Python driver client of the driver comparison (bench/peers/README.md).

Written as the driver's own benchmarks and users write sustained asynchronous load: the libev reactor
(LibevConnection), execute_async, and `concurrency` callback chains, each issuing its next request from
the callback of the last. Same options and the same JSON line as every peer client.
"""
import argparse
import json
import random
import resource
import sys
import threading
import time

from cassandra import ConsistencyLevel, __version__ as driver_version
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.io.libevreactor import LibevConnection
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import SimpleStatement


def cpu_now():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main():
    ap = argparse.ArgumentParser(prog="peer_python")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--dc", default="")
    ap.add_argument("--workload", choices=["read", "write", "local"], default="read")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--rows", type=int, default=1000)
    o = ap.parse_args()

    policy = TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=o.dc or None))
    profile = ExecutionProfile(load_balancing_policy=policy, consistency_level=ConsistencyLevel.LOCAL_ONE, request_timeout=12)
    cluster = Cluster([o.host], port=o.port, connection_class=LibevConnection,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    session = cluster.connect()
    value = "v" * 100
    if o.workload == "read":
        stmt = session.prepare("SELECT v FROM cqlcoro_peers.kv WHERE k = ?")
        params = lambda k: (k,)
    elif o.workload == "write":
        stmt = session.prepare("INSERT INTO cqlcoro_peers.kv (k, v) VALUES (?, ?)")
        params = lambda k: (k, value)
    else:
        stmt = SimpleStatement("SELECT release_version FROM system.local")
        params = lambda k: None

    state = {"ok": 0, "errors": 0, "first_error": "", "active": o.concurrency, "stop": False}
    drained = threading.Event()
    rnd = random.Random(1)

    def issue():
        f = session.execute_async(stmt, params(rnd.randrange(o.rows)))
        f.add_callbacks(on_ok, on_error)

    def next_or_finish():
        if state["stop"]:
            state["active"] -= 1
            if state["active"] == 0:
                drained.set()
        else:
            issue()

    def on_ok(rows):
        if o.workload == "read" and len(rows[0].v) != 100:  # a read takes its one value out of the row
            return on_error(ValueError("bad row"))
        state["ok"] += 1
        next_or_finish()

    def on_error(e):
        state["errors"] += 1
        if not state["first_error"]:
            state["first_error"] = str(e)
        next_or_finish()

    for _ in range(o.concurrency):
        issue()
    time.sleep(o.warmup)
    ok0, err0, cpu0, t0 = state["ok"], state["errors"], cpu_now(), time.monotonic()
    time.sleep(o.duration)
    ok1, err1, cpu1 = state["ok"], state["errors"], cpu_now()
    seconds = time.monotonic() - t0
    state["stop"] = True
    drained.wait(30)
    print(json.dumps({"driver": "python-driver", "version": driver_version, "workload": o.workload,
                      "concurrency": o.concurrency, "requests": ok1 - ok0, "errors": err1 - err0,
                      "seconds": round(seconds, 4), "cpu_seconds": round(cpu1 - cpu0, 4),
                      "first_error": state["first_error"]}), flush=True)
    cluster.shutdown()
    return 0 if ok1 > ok0 else 1


if __name__ == "__main__":
    sys.exit(main())
