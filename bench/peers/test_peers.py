"""The driver comparison's harness (bench/peers/run) end to end, with the cqlcoro client on cqlsim.

    python3 test_peers.py RUN PEER_CQLCORO CQLSIM

The other drivers' clients are built from their registries by the full run (bench/peers/README.md);
here the harness itself is under test: the rounds and the rotation, each run's numbers from the client
and from /proc (VmHWM), the medians and the table, the plots, and its refusals of bad arguments and of a dead
target. The client's own refusals too.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

RUN, PEER, CQLSIM = sys.argv[1:4]
PORT = 29481
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def harness(*extra, work):
    cmd = [sys.executable, RUN, "--peer-cqlcoro", PEER, "--cqlsim", CQLSIM, "--sim-port", str(PORT), "--work", work, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


work = tempfile.mkdtemp(prefix="cqlcoro-peers-test.")
try:
    # A short comparison with cqlcoro alone: 2 rounds x 2 workloads x 2 concurrencies.
    r = harness("--drivers", "cqlcoro", "--targets", "sim", "--workloads", "read,local", "--concurrency", "1,64",
                "--rounds", "2", "--warmup", "0.3", "--duration", "0.7", work=work)
    check(r.returncode == 0, f"a short run on cqlsim exits 0 (got {r.returncode}: {r.stderr[-800:]})")
    results = json.load(open(os.path.join(work, "results.json")))
    runs = results["runs"]
    check(len(runs) == 8, f"8 runs recorded (got {len(runs)})")
    check(sorted({x["round"] for x in runs}) == [1, 2], "both rounds recorded")
    check(all("failed" not in x for x in runs), "no run failed: " + "; ".join(x.get("failed", "") for x in runs))
    good = [x for x in runs if "failed" not in x]
    check(all(x["requests"] > 0 and x["errors"] == 0 for x in good), "every run completed requests without an error")
    check(all(0.6 < x["seconds"] < 2.0 for x in good), "each window lasted about its 0.7 s")
    check(all(x["cpu_us_per_request"] and 0 < x["cpu_us_per_request"] < 10000 for x in good), "CPU per request is measured")
    check(all(1 < x["peak_rss_mib"] < 2000 for x in good), "peak RSS (VmHWM) is recorded")
    by_c = {c: [x["rate"] for x in good if x["concurrency"] == c and x["workload"] == "read"] for c in (1, 64)}
    check(min(by_c[64]) > max(by_c[1]), f"64 in flight outrun 1 in flight on cqlsim ({by_c})")
    md = open(os.path.join(work, "results.md")).read()
    check("#### sim, read" in md and "#### sim, local" in md and "| cqlcoro |" in md, "the table has a section per workload")
    check(md.count("/s,") == 4, "the table has one cell per workload and concurrency")
    check(r.stdout.strip().startswith("Medians of 2 round(s)"), "the table is printed")
    if shutil.which("gnuplot"):
        for png in ("peers_throughput.png", "peers_cpu.png"):
            p = os.path.join(work, png)
            check(os.path.exists(p) and open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n", f"{png} is a PNG")

    # Bad arguments: refused with a message, before anything runs.
    for args, says in ((["--drivers", "cqlcoro,nosuch"], "'nosuch' is not one of"),
                       (["--concurrency", "0"], "must be positive"),
                       (["--concurrency", "a,b"], "not a comma-separated list of numbers"),
                       (["--drivers", "java"], "must include cqlcoro"),
                       (["--duration", "-1"], "must be positive")):
        r = harness(*args, work=work)
        check(r.returncode == 2 and says in r.stderr, f"{' '.join(args)} is refused saying '{says}' ({r.stderr.strip()[-200:]})")

    # A dead target: a clear error, no hang.
    dead = free_port()
    r = harness("--drivers", "cqlcoro", "--targets", "real", "--real-host", f"127.0.0.1:{dead}", work=work)
    check(r.returncode == 1 and f"nothing answers on 127.0.0.1:{dead}" in r.stderr, f"a dead node is named ({r.stderr.strip()[-300:]})")

    # The client alone: its refusals, and a node that is not there.
    r = subprocess.run([PEER, "--workload", "scan"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and "--workload is read, write or local" in r.stderr, "the client refuses an unknown workload")
    r = subprocess.run([PEER, "--port", str(dead), "--warmup", "0.1", "--duration", "0.1"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "peer_cqlcoro:" in r.stderr, f"the client says why it cannot connect ({r.stderr.strip()[-200:]})")
finally:
    shutil.rmtree(work, ignore_errors=True)

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
