#!/usr/bin/env python3
"""The soak: mixed load on a real three-node cluster for a while, killing and restarting its nodes one
after another, and the client's resources sampled every second must end where they began.

    soak.py STRESS CCLUSTER --duration SECONDS --restart-every SECONDS [--out DIR]

STRESS is cqlcoro-stress; CCLUSTER is test/cluster/ccluster, with the cluster's CQLCORO_CLUSTER_* in
the environment (scripts/test exports the 5.0 three-node cluster's as CQLCORO_TEST_C50_MULTI_*; this
reads those, or CQLCORO_CLUSTER_DIR and CQLCORO_CLUSTER_BASE as ccluster does). The nodes restarted
are those that are not the first (the first is the contact point).

The load: cqlcoro-stress's mixed workload (reads and writes, 3:1) at 64 in flight, LOCAL_ONE, on a
keyspace of replication factor 3. Each restart is a kill -9 and a start that waits until the node
serves CQL; a restart after the first begins only if it can be over 25 s before the load ends.

Checked, each against the first sample after a 5 s warm-up (the tolerances, in docs/development.md, "The soak"):
- no request took longer than the request timeout (12 s) and a second: none was stuck past its
  deadline; and every request completed (the tool ends only when the last has);
- at the end: as many open connections, nodes up and open file descriptors as at the start; no
  orphaned stream id; resident memory at most 16 MiB or 25 % above the start's, whichever is more;
- the load did not stop: every second completed requests.
Prints the table of samples and the restarts; exits 1 naming what failed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("stress")
parser.add_argument("ccluster")
parser.add_argument("--duration", type=int, default=60)
parser.add_argument("--restart-every", type=int, default=20)
parser.add_argument("--out", default=None)
args = parser.parse_args()
if args.duration < 45:
    sys.exit("soak.py: --duration must be at least 45 s (a restart, and 25 s after it)")

env = dict(os.environ)
# The cluster: scripts/test's three-node 5.0 cluster, or the one CQLCORO_CLUSTER_* name.
if "CQLCORO_TEST_C50_MULTI_DIR" in env:
    env["CQLCORO_CLUSTER_DIR"] = env["CQLCORO_TEST_C50_MULTI_DIR"]
    env["CQLCORO_CLUSTER_BASE"] = env["CQLCORO_TEST_C50_MULTI_HOST"].rsplit(".", 1)[1]
    env["CQLCORO_CASSANDRA_VERSION"] = "5.0"
    hosts = env["CQLCORO_TEST_C50_MULTI_HOSTS"].split(",")
else:
    status = subprocess.run([args.ccluster, "status"], env=env, capture_output=True, text=True, check=True).stdout
    hosts = [line.split()[1] for line in status.splitlines() if line.startswith("node")]
if len(hosts) < 3:
    sys.exit(f"soak.py: needs a cluster of three nodes, found {hosts}")
out = args.out or tempfile.mkdtemp(prefix="cqlcoro-soak-")
os.makedirs(out, exist_ok=True)

# A session that notices a node back within 2 s of its return, so the end is compared with a full
# pool (the soak is about what is left behind, not about reconnection delays).
config = os.path.join(out, "soak.json")
with open(config, "w") as f:
    json.dump({"reconnection": {"kind": "constant", "base": "1s", "max": "1s"}, "request_timeout": "12s"}, f)
request_timeout_us = 12e6

# ASan holds freed memory in a quarantine (256 MiB by default) that would read as growth: keep it small.
env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16").lstrip(":")
result_json = os.path.join(out, "soak-run.json")
cmd = [args.stress, "run", "--hosts", hosts[0], "--config", config, "--workload", "mixed", "--ratio", "3:1",
       "--create-schema", "--rf", "3", "--keyspace", "cqlcoro_soak", "--keys", "10000", "--consistency", "local_one",
       "--concurrency", "64", "--warmup", "5s", "--duration", f"{args.duration}s", "--json", result_json]
print("soak:", " ".join(cmd), flush=True)
log = open(os.path.join(out, "stress.log"), "w")
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
# The schedule counts from the measured part's start, which the tool's first line without "(w)" marks
# (creating the schema and the warm-up come before it, and take what they take).
measuring = threading.Event()


def copy_output():
    for line in proc.stdout:
        log.write(line)
        log.flush()
        if "req/s" in line and "(w)" not in line:
            measuring.set()


reader = threading.Thread(target=copy_output, daemon=True)
reader.start()
if not measuring.wait(180):
    proc.kill()
    sys.exit("soak.py: cqlcoro-stress did not begin its measured part within 180 s; its output: "
             + open(os.path.join(out, "stress.log")).read()[-1500:])
started = time.monotonic()

# Restarts: nodes 2, 3, 2, ..., the first 1 s into the measured part, each next one --restart-every
# seconds after the last came back and only if it can be over 25 s before the end (a restart takes
# 15-30 s here, more on a busy machine: 45 s are allowed for it).
restarts = []
node = 2
next_at = 1
end_at = args.duration
failures = []
while proc.poll() is None:
    now = time.monotonic() - started
    if now >= next_at and (not restarts or now + 45 + 25 <= end_at):
        t0 = time.monotonic() - started
        killed = subprocess.run([args.ccluster, "kill", str(node)], env=env, capture_output=True, text=True)
        back = subprocess.run([args.ccluster, "restart", str(node)], env=env, capture_output=True, text=True)
        t1 = time.monotonic() - started
        restarts.append((node, t0, t1, killed.returncode == 0 and back.returncode == 0))
        if back.returncode != 0:
            failures.append(f"node {node} did not come back: {back.stderr.strip()[-300:]}")
        node = 3 if node == 2 else 2
        next_at = t1 + args.restart_every
    time.sleep(0.2)
    if time.monotonic() - started > args.duration + 120:
        proc.kill()
        failures.append("cqlcoro-stress did not end 120 s after its duration: a request is stuck")
        break
proc.wait()
reader.join(10)
log.close()
if proc.returncode not in (0, None):
    failures.append(f"cqlcoro-stress exited {proc.returncode}: " + open(os.path.join(out, "stress.log")).read()[-1500:])
if not os.path.exists(result_json):
    print("\n".join("FAIL: " + f for f in failures) or "FAIL: no result")
    sys.exit(1)

r = json.load(open(result_json))
series = r["series"]
print(f"\n{'t':>5} {'req/s':>8} {'err':>5} {'max ms':>8} {'in flight':>9} {'RSS MiB':>8} {'fds':>4} {'conns':>5} "
      f"{'orphans':>7} {'up':>3}")
for s in series:
    print(f"{s['t']:5.0f} {s['requests']:8d} {s['errors']:5d} {s['max_us'] / 1000:8.1f} {s['in_flight']:9d} "
          f"{s['rss_kib'] / 1024:8.1f} {s['fds']:4d} {s['connections']:5d} {s['orphaned']:7d} {s['nodes_up']:3d}")
print("\nrestarts (node, killed at s, back at s):")
for n, a, b, ok in restarts:
    print(f"  node {n}: {a:.0f} -> {b:.0f}{'' if ok else ' (FAILED)'}")
print(f"\n{r['requests']} requests, {r['errors']} errors {r.get('errors_by_kind', {})}, "
      f"failures by outcome {r.get('failures_by_outcome', {})}")

first, last = series[0], series[-1]
if not restarts:
    failures.append("no node was restarted: raise --duration")
slowest = max(s["max_us"] for s in series)
if slowest > request_timeout_us + 1e6:
    failures.append(f"a request took {slowest / 1e6:.1f} s, past the 12 s request timeout: stuck past its deadline")
for key in ("connections", "nodes_up", "fds"):
    if last[key] != first[key]:
        failures.append(f"{key}: {first[key]} at the start, {last[key]} at the end")
if last["orphaned"] != 0:
    failures.append(f"{last['orphaned']} orphaned stream ids at the end")
rss_limit = first["rss_kib"] + max(16 * 1024, first["rss_kib"] // 4)
if last["rss_kib"] > rss_limit:
    failures.append(f"resident memory grew from {first['rss_kib'] // 1024} to {last['rss_kib'] // 1024} MiB "
                    f"(the limit: {rss_limit // 1024} MiB)")
idle = [s["t"] for s in series if s["requests"] == 0 and s["t"] > 0.5]  # the first sample may close a sliver
if idle:
    failures.append(f"no request completed in the second ending at {idle[0]:.0f} s")
if first["nodes_up"] < 2:
    failures.append(f"only {first['nodes_up']} node up at the start: the node the soak restarts (2) was not in use")

for f in failures:
    print("FAIL:", f)
print(f"soak: {'passed' if not failures else 'failed'} ({args.duration} s, {len(restarts)} restarts); files in {out}")
sys.exit(1 if failures else 0)
