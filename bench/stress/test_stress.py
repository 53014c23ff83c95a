#!/usr/bin/env python3
"""Runs cqlcoro-stress as a user would, on simulated nodes and against the real node.

    test_stress.py PATH_TO_cqlcoro-stress PATH_TO_cqlsim

The real node: the first of $CQLCORO_TEST_HOSTS. Checks: bad arguments and files (a clear message, exit
2 or 1, never a hang); a closed-loop run's JSON and CSV; an open-loop run that keeps its schedule and
measures a stalled node's requests from their intended start (no coordinated omission); a node that
dies mid-run (errors counted by kind, the run ends on time); compare; the plots; and short runs against
the real node with the built-in workloads and a workload file with every generator.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

STRESS, CQLSIM = sys.argv[1], sys.argv[2]
HOST = os.environ.get("CQLCORO_TEST_HOSTS", "127.0.0.1").split(",")[0]
SIM_PORT = 29461
TMP = tempfile.mkdtemp(prefix="cqlcoro-stress-test-")
failures = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)


def stress(*args, env=None, timeout=180):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([STRESS, *args], capture_output=True, text=True, timeout=timeout, env=e)


def refused(args, rc, text, what):
    p = stress(*args)
    first = (p.stderr.strip().splitlines() or [""])[0]
    check(p.returncode == rc and text in p.stderr, f"{what}: exit {p.returncode} (want {rc}): {first[:160]}")


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class Sim:
    """cqlsim with N nodes on SIM_PORT; commands go to its standard input."""

    def __init__(self, nodes=1):
        self.p = subprocess.Popen([CQLSIM, "--nodes", str(nodes), "--port", str(SIM_PORT), "--no-record"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit(f"cqlsim did not start: {line!r}")

    def command(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def close(self):
        self.command("quit")
        self.p.wait(timeout=30)


SIM_ENV = {"CQLCORO_PORT": str(SIM_PORT), "CQLCORO_CONTACT_POINTS": "127.0.0.1"}


def result(path):
    with open(path) as f:
        return json.load(f)


def main():
    # ---- Bad arguments and files: a clear message, exit 2 (usage) or 1 (the run could not be made).
    refused([], 2, "say run or compare", "no command")
    refused(["go"], 2, "unknown command", "an unknown command")
    refused(["run", "--rate", "fast"], 2, "--rate takes a number", "a bad --rate")
    refused(["run", "--duration", "5 minutes"], 2, "takes a time such as", "a bad --duration")
    refused(["run", "--duration", "5s", "--count", "3"], 2, "not both", "--duration with --count")
    refused(["run", "--bogus", "1"], 2, "unknown option --bogus", "an unknown option")
    refused(["run", "--distribution", "zipf:0"], 1, "zipf:S takes an exponent", "a bad zipf exponent")
    refused(["run", "--workload", os.path.join(TMP, "none.wl")], 1, "no such file", "a missing workload file")
    refused(["run", "--workload", write("bad.wl", "op read 1: SELECT * FROM t WHERE k = {nope}\n")], 1,
            "bad.wl:1: unknown generator {nope}", "an unknown generator, with its line")
    refused(["run", "--workload", write("bad2.wl", "SELECT 1\n")], 1, "bad2.wl:1: a line is", "a line that is not a statement")
    refused(["compare", "a.json"], 2, "two result files", "compare with one file")
    refused(["compare", write("x.json", "{}"), write("y.json", "[]")], 1, "is not a cqlcoro-stress result", "compare with a file that is not a result")
    p = stress("run", "--hosts", "127.0.0.1", "--duration", "1s", env={"CQLCORO_PORT": "1"})
    check(p.returncode == 1 and "no contact point could be reached" in p.stderr, f"a dead node at start: exit {p.returncode}: {p.stderr.strip()[:160]}")

    # ---- Closed loop on a simulated node: the JSON and CSV say what happened.
    sim = Sim()
    try:
        js, csv = os.path.join(TMP, "closed.json"), os.path.join(TMP, "closed.csv")
        p = stress("run", "--workload", "mixed", "--ratio", "3:1", "--create-schema", "--duration", "2s", "--concurrency", "8",
                   "--json", js, "--csv", csv, env=SIM_ENV)
        check(p.returncode == 0, f"closed loop: exit {p.returncode} {p.stderr.strip()[:200]}")
        r = result(js)
        check(r["requests"] > 0 and r["errors"] == 0, f"closed loop: {r['requests']} requests, {r['errors']} errors")
        lat = [r["latency_us"][k] for k in ("p50", "p90", "p99", "p99.9", "max")]
        check(lat == sorted(lat) and lat[0] > 0, f"percentiles rise: {lat}")
        ops = {o["name"]: o["requests"] for o in r["ops"]}
        check(set(ops) == {"read", "write"} and ops["read"] > ops["write"] and sum(ops.values()) == r["requests"],
              f"3:1 reads to writes: {ops}")
        check(len(r["series"]) >= 1 and sum(s["requests"] for s in r["series"]) <= r["requests"], f"a series of {len(r['series'])} seconds")
        with open(csv) as f:
            rows = f.read().splitlines()
        check(rows[0].startswith("t_s,requests,errors,throughput_per_s") and len(rows) == len(r["series"]) + 1, f"CSV: {len(rows)} lines")
        check("\x1b" not in p.stdout and "[#" not in p.stdout, "not a terminal: plain lines, no progress bar")

        # On a terminal: a line per second with a progress bar.
        master, slave = os.openpty()
        run = subprocess.Popen([STRESS, "run", "--duration", "2s", "--concurrency", "4"], stdout=slave, stderr=subprocess.PIPE,
                               env={**os.environ, **SIM_ENV})
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal's other end closed
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        run.wait(timeout=60)
        bars = re.findall(rb"\[(#*)(-*)\]", seen)
        check(run.returncode == 0 and len(bars) >= 1 and all(len(a) + len(b) == 24 for a, b in bars),
              f"on a terminal: {len(bars)} progress bars in the per-second lines")

        # ---- Open loop: the schedule is kept, and a stall shows in the latency it caused.
        js2 = os.path.join(TMP, "open.json")
        t0 = time.monotonic()
        p = stress("run", "--rate", "200", "--count", "300", "--json", js2, env=SIM_ENV)
        took = time.monotonic() - t0
        r2 = result(js2)
        check(p.returncode == 0 and r2["requests"] == 300, f"open loop: {r2['requests']} of 300 requests")
        check(r2["seconds"] >= 1.45, f"open loop at 200/s: 300 requests took {r2['seconds']:.2f} s, not less than the schedule's 1.5 s")

        js3 = os.path.join(TMP, "stall.json")
        run = subprocess.Popen([STRESS, "run", "--rate", "200", "--duration", "3s", "--json", js3, "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **SIM_ENV})
        time.sleep(0.8)            # the fault scenario: run, then stall the node for a second
        sim.command("pause 1")
        time.sleep(1.0)
        sim.command("resume 1")
        out, err = run.communicate(timeout=120)
        r3 = result(js3)
        check(run.returncode == 0 and r3["errors"] == 0, f"a stalled node: exit {run.returncode}, {r3['errors']} errors")
        check(r3["latency_us"]["max"] >= 700_000, f"a 1 s stall shows in max latency: {r3['latency_us']['max'] / 1000:.0f} ms")
        check(r3["latency_us"]["p90"] >= 200_000,
              f"... and in p90 ({r3['latency_us']['p90'] / 1000:.0f} ms): requests scheduled during the stall count from their intended start")

        # ---- compare puts two results side by side.
        p = stress("compare", js, js2)
        check(p.returncode == 0 and re.search(r"throughput \(/s\)\s+[\d.]+\s+[\d.]+\s+[\d.]+x", p.stdout) is not None,
              "compare: two runs side by side with their ratio")

        # ---- Plots with gnuplot.
        prefix = os.path.join(TMP, "plot")
        p = stress("run", "--duration", "2s", "--concurrency", "4", "--plot", prefix, "--quiet", env=SIM_ENV)
        pngs = [f"{prefix}-{k}.png" for k in ("throughput", "latency", "distribution")]
        ok = p.returncode == 0 and all(os.path.exists(f) and open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for f in pngs)
        check(ok, f"plots: {', '.join(os.path.basename(f) for f in pngs)} {p.stderr.strip()[:200]}")
    finally:
        sim.close()

    # ---- A node that dies mid-run: errors by kind, and the run still ends on time.
    sim = Sim()
    try:
        js4 = os.path.join(TMP, "dies.json")
        run = subprocess.Popen([STRESS, "run", "--duration", "3s", "--concurrency", "8", "--json", js4, "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **SIM_ENV, "CQLCORO_REQUEST_TIMEOUT": "1s"})
        time.sleep(1.0)
        sim.command("stop 1")
        out, err = run.communicate(timeout=120)
        r4 = result(js4)
        kinds = {k: v for k, v in r4["errors_by_kind"].items() if v}
        check(run.returncode == 0 and r4["errors"] > 0 and set(kinds) <= {"connection", "no_host_available", "request_timeout"},
              f"a node stopped mid-run: exit {run.returncode}, {r4['errors']} errors by kind {kinds}")
        check(r4["seconds"] < 3 + 1 + 2, f"the run ended {r4['seconds']:.1f} s after its start (3 s, plus at most the request timeout)")
        check("errors" in out and str(r4["errors"]) in out, "the summary prints the errors")
    finally:
        sim.close()

    # ---- The real node.
    real = {"CQLCORO_CONTACT_POINTS": HOST}
    for workload in ("write", "read"):
        js5 = os.path.join(TMP, f"real-{workload}.json")
        p = stress("run", "--workload", workload, "--create-schema", "--keys", "1000", "--duration", "2s", "--concurrency", "32",
                   "--json", js5, "--quiet", env=real)
        r5 = result(js5) if p.returncode == 0 else {"requests": 0, "errors": -1}
        check(p.returncode == 0 and r5["requests"] > 0 and r5["errors"] == 0,
              f"real node, {workload}: {r5['requests']} requests, {r5['errors']} errors {p.stderr.strip()[:200]}")
    wl = write("all.wl", """
# every generator against real column types
schema: CREATE KEYSPACE IF NOT EXISTS cqlcoro_stress WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}
schema: CREATE TABLE IF NOT EXISTS cqlcoro_stress.gen (k int PRIMARY KEY, s bigint, u uuid, t timeuuid, name text, b blob, n int, ts timestamp)
op put 2: INSERT INTO cqlcoro_stress.gen (k, s, u, t, name, b, n, ts) VALUES ({key}, {seq}, {uuid}, {uuid}, {text:20}, {blob:64}, {int:1:10}, {zipf:1000:1.1})
op get 1: SELECT name FROM cqlcoro_stress.gen WHERE k = {uniform:1000}
""")
    js6 = os.path.join(TMP, "real-file.json")
    p = stress("run", "--workload", wl, "--create-schema", "--keys", "1000", "--distribution", "zipf:1.1", "--count", "500",
               "--consistency", "one", "--json", js6, "--quiet", env=real)
    r6 = result(js6) if p.returncode == 0 else {"requests": 0, "errors": -1, "ops": []}
    check(p.returncode == 0 and r6["requests"] == 500 and r6["errors"] == 0 and {o["name"] for o in r6["ops"]} == {"put", "get"},
          f"real node, a workload file with every generator: {r6['requests']} requests, {r6['errors']} errors {p.stderr.strip()[:300]}")
    wrong = write("wrong.wl", "op get 1: SELECT name FROM cqlcoro_stress.gen WHERE k = {uuid}\n")
    p = stress("run", "--workload", wrong, "--count", "1", env=real)
    check(p.returncode == 1 and "marker 1 (k) is of CQL type int" in p.stderr, f"a generator that cannot fill its marker: {p.stderr.strip()[:200]}")

    print(f"{len(failures)} failed" if failures else "all passed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
