#!/usr/bin/env python3
"""Drives samples/http_service from outside, as its clients would, against the real node.

    test_http_service.py PATH_TO_http_service

The node: the first of $CQLCORO_TEST_HOSTS; $CQLCORO_TEST_CLUSTER and $CQLCORO_TEST_DIR (set by
scripts/test) pause it for the time-out case. Checks, in order: refusals of bad flags, a bad config
file and a dead node; CRUD round trips and the status of each error; a 504 while the node is paused;
/metrics parsed as Prometheus text and moving with the load; a 100,000-row stream read by a slow
client while the service's RSS stays within a bound; SIGTERM during a load, with no request lost or
cut, the stream in progress finished, and every acknowledged write (and no unacknowledged one) in
the table afterwards. Standard library only.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

BIN = sys.argv[1]
HOST = os.environ.get("CQLCORO_TEST_HOSTS", "127.0.0.1").split(",")[0]
ITEMS = 100_000
# The stream's body is about 54 MB; a service that held it (or its rows) would grow by more than that.
RSS_BOUND_MIB = 32
RUN = uuid.uuid4().hex[:8]  # names written by this run
failures = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)


def config_file(contact_point=HOST, extra=None):
    cfg = {"contact_points": [contact_point], "request_timeout": "3s"}
    cfg.update(extra or {})
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(cfg, f)
    f.close()
    return f.name


def service_env():
    env = dict(os.environ)
    # ASan keeps freed memory in quarantine (256 MiB by default), which would show in RSS as growth
    # that is not the service's; a small quarantine keeps the RSS bound about the service.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8"
    return env


class Service:
    def __init__(self, *args, start_timeout=600):
        self.proc = subprocess.Popen([BIN, "--config", config_file(), "--listen", "127.0.0.1:0", "--threads", "2", *args],
                                     stdout=subprocess.PIPE, text=True, env=service_env())
        self.port = None
        self.lines = []
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            m = re.search(r"listening on [0-9.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise SystemExit(f"the service did not start: {''.join(self.lines)}")
        # The rest of its output, kept for the checks.
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, conn=None):
        c = conn or self.conn()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, path, body=None if body is None else (body if isinstance(body, (str, bytes)) else json.dumps(body)),
                  headers=headers)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        ctype = r.getheader("Content-Type", "")
        return r.status, (json.loads(data) if data and ctype.startswith("application/json") else data.decode()), r

    def rss_mib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except FileNotFoundError:  # it exited
            pass
        return 0.0

    def terminate(self, timeout=180):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return rc


def run_refused(args, want_rc, want_text, what):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120, env=service_env())
    first = (p.stderr.strip().splitlines() or [""])[0]
    check(p.returncode == want_rc and want_text in p.stderr, f"{what}: exit {p.returncode} (want {want_rc}), says: {first[:200]}")


def parse_prometheus(text):
    """{(name, labels): value}; raises ValueError on a line that is not the text format."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)', line)
        if not m:
            raise ValueError(f"not Prometheus text: {line!r}")
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in typed and family not in typed:
            raise ValueError(f"sample before its # TYPE line: {line!r}")
        samples[(name, m.group(2) or "")] = float(m.group(3))
    return samples


def slow_stream(svc, path, progress=None, chunk=16384, pause=0.002):
    """Reads a chunked listing slowly; returns (parsed list or None, bytes, peak RSS MiB)."""
    c = svc.conn(timeout=120)
    c.request("GET", path)
    r = c.getresponse()
    if r.status != 200:
        return None, 0, 0.0
    parts, n, peak, reads = [], 0, svc.rss_mib(), 0
    while True:
        try:
            data = r.read(chunk)
        except http.client.IncompleteRead as e:  # the body was cut
            parts.append(e.partial)
            break
        if not data:
            break
        parts.append(data)
        n += len(data)
        reads += 1
        if reads % 32 == 0:
            peak = max(peak, svc.rss_mib())
        if progress:
            progress(n)
        time.sleep(pause)  # the slow client: the service must wait for it, not buffer ahead
    c.close()
    try:
        return json.loads(b"".join(parts)), n, peak
    except ValueError:
        return None, n, peak


def main():
    # ---- Refusals: a clear message and a non-zero exit, never a hang.
    run_refused(["--threads", "0"], 2, "--threads takes a number", "a bad flag")
    run_refused(["--listen", "nowhere"], 2, "--listen takes ADDRESS:PORT", "a bad --listen")
    run_refused(["--config", "/nonexistent/cqlcoro.json"], 1, "/nonexistent/cqlcoro.json", "a missing config file")
    bad = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    bad.write('{"request_timeout": "soon"}')
    bad.close()
    run_refused(["--config", bad.name], 1, "request_timeout", "a bad config value")
    run_refused(["--config", config_file("127.0.0.1", {"port": 1}), "--listen", "127.0.0.1:0"], 1,
                "no contact point could be reached", "a dead node")

    # ---- Seed the streamed table (a run of its own, so the next run's RSS starts clean), then stop it.
    seeding = Service("--seed-items", str(ITEMS))
    check(any(f"{ITEMS} items" in l for l in seeding.lines), f"seeded {ITEMS} items")
    check(seeding.terminate() == 0, "the seeding run exits 0 on SIGTERM")

    svc = Service("--grace", "120")
    status, body, _ = svc.request("GET", "/health")
    check(status == 200 and body["status"] == "up" and body["usable_nodes"] >= 1, f"/health: {status} {body}")

    # ---- CRUD round trips and the status of each error.
    status, user, r = svc.request("POST", "/users", {"name": f"ann-{RUN}", "email": "ann@example.com", "age": 41})
    check(status == 201 and r.getheader("Location") == f"/users/{user['id']}", f"create: {status} {user}")
    uid = user["id"]
    status, got, _ = svc.request("GET", f"/users/{uid}")
    check(status == 200 and got == user, f"read back: {status} {got}")
    status, got, _ = svc.request("PUT", f"/users/{uid}", {"name": f"ann-{RUN}", "email": "ann@example.org", "age": None})
    check(status == 200 and got["email"] == "ann@example.org", f"update: {status} {got}")
    status, got, _ = svc.request("GET", f"/users/{uid}")
    check(status == 200 and got["email"] == "ann@example.org" and got["age"] is None, f"read the update: {status} {got}")
    status, _, _ = svc.request("DELETE", f"/users/{uid}")
    check(status == 204, f"delete: {status}")
    for method, body in (("GET", None), ("PUT", {"name": "x", "email": "y"}), ("DELETE", None)):
        status, got, _ = svc.request(method, f"/users/{uid}", body)
        check(status == 404 and got["error"] == "not_found", f"{method} of a deleted user: {status} {got}")
    cases = [
        ("POST", "/users", "{not json", 400, "the body is not JSON"),
        ("POST", "/users", {"email": "a@b"}, 400, '"name" must be'),
        ("POST", "/users", {"name": "a", "email": "b", "age": "old"}, 400, '"age" must be'),
        ("GET", "/users/not-a-uuid", None, 400, "must be a UUID"),
        ("PATCH", f"/users/{uid}", None, 405, "use GET, PUT or DELETE"),
        ("GET", "/nowhere", None, 404, "routes:"),
        ("POST", "/users", "x" * 70_000, 413, "larger than 64 KiB"),
    ]
    for method, path, body, want, text in cases:
        try:
            status, got, _ = svc.request(method, path, body)
        except (ConnectionError, http.client.HTTPException) as e:
            status, got = None, repr(e)
        said = got.get("message", "") if isinstance(got, dict) else str(got)
        check(status == want and text in said, f"{method} {path}: {status} (want {want}) {str(got)[:120]}")

    # ---- A time-out at the node is a 504 that says so; the service recovers when the node does.
    status, user, _ = svc.request("POST", "/users", {"name": f"bob-{RUN}", "email": "bob@example.com"})
    tool, cdir = os.environ.get("CQLCORO_TEST_CLUSTER"), os.environ.get("CQLCORO_TEST_DIR")
    if not tool or not cdir:
        check(False, "CQLCORO_TEST_CLUSTER and CQLCORO_TEST_DIR are set (run through scripts/test)")
    else:
        harness = lambda cmd: subprocess.run(f"CQLCORO_CLUSTER_DIR={cdir} {tool} {cmd}", shell=True, check=True)
        harness("pause 1")
        try:
            status, got, _ = svc.request("GET", f"/users/{user['id']}")
        finally:
            harness("resume 1")
        check(status == 504 and got["error"] == "request_timeout", f"a paused node: {status} {got}")
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and status != 200:
            status, got, _ = svc.request("GET", f"/users/{user['id']}")
        check(status == 200, f"after the node resumed: {status}")

    # ---- /metrics: Prometheus text, moving with the load.
    def metrics():
        status, text, r = svc.request("GET", "/metrics")
        check(status == 200 and r.getheader("Content-Type").startswith("text/plain"), "/metrics answers text/plain")
        return parse_prometheus(text)
    try:
        before = metrics()
        keep = svc.conn()
        for _ in range(50):
            status, _, _ = svc.request("GET", f"/users/{user['id']}", conn=keep)
        keep.close()
        after = metrics()
        route = ("http_requests_total", '{route="/users/{id}",code="200"}')
        check(after[route] - before.get(route, 0) == 50, f"http_requests_total moved by {after[route] - before.get(route, 0)} (want 50)")
        moved = after[("cqlcoro_requests_total", "")] - before[("cqlcoro_requests_total", "")]
        check(moved >= 50, f"cqlcoro_requests_total moved by {moved} (want >= 50)")
        conns = [v for k, v in after.items() if k[0] == "cqlcoro_node_open_connections" and f'host="{HOST}:' in k[1]]
        check(conns and conns[0] >= 1, f"the node's open connections are exported: {conns}")
        check(("cqlcoro_request_latency_seconds_count", "") in after, "the latency histogram is exported")
    except ValueError as e:
        check(False, str(e))

    # ---- A 100,000-row stream to a slow client: memory stays flat.
    base = svc.rss_mib()
    items, size, peak = slow_stream(svc, "/items")
    ids = {i["id"] for i in items} if items else set()
    check(items is not None and len(items) == ITEMS and ids == set(range(ITEMS)), f"/items streamed {len(ids)} distinct items in {size / 1e6:.1f} MB")
    check(peak - base < RSS_BOUND_MIB, f"RSS during the slow stream: {base:.1f} MiB before, {peak:.1f} MiB at most "
          f"(growth {peak - base:.1f} MiB, bound {RSS_BOUND_MIB} MiB)")

    # ---- SIGTERM during a load: nothing lost or cut.
    ledger = []  # (name, outcome): ok | refused | cut
    lock = threading.Lock()
    progress = threading.Event()
    streamed = {}

    def writer(t):
        for i in range(100_000):
            name = f"term-{RUN}-{t}-{i}"
            try:
                status, got, _ = svc.request("POST", "/users", {"name": name, "email": "t@example.com"})
                outcome = "ok" if status == 201 and got.get("name") == name else f"status {status}"
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
                outcome = "refused"  # not accepted, or closed before any byte of an answer: not served
            except Exception as e:  # a partial answer
                outcome = f"cut: {e!r}"
            with lock:
                ledger.append((name, outcome))
                if len(ledger) >= 40:
                    progress.set()
            if outcome != "ok":
                return

    def reader():
        got, size, _ = slow_stream(svc, "/items", progress=lambda n: n > 4_000_000 and progress.set())
        streamed["items"], streamed["size"] = got, size

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    progress.wait(timeout=120)
    check(progress.is_set(), "the load is running before SIGTERM")
    t0 = time.monotonic()
    rc = svc.terminate()
    for t in threads:
        t.join(timeout=300)
    outcomes = {}
    for _, o in ledger:
        outcomes[o.split(":")[0]] = outcomes.get(o.split(":")[0], 0) + 1
    check(rc == 0, f"SIGTERM: exit {rc} after {time.monotonic() - t0:.1f} s")
    check(any("stopped" in l for l in svc.lines), "the service said it stopped")
    check(set(outcomes) <= {"ok", "refused"}, f"writes during SIGTERM: {outcomes} (only ok and refused allowed)")
    got = streamed.get("items")
    check(got is not None and len(got) == ITEMS, f"the stream in progress at SIGTERM finished: {len(got) if got else 0} items")

    # ---- Afterwards: every acknowledged write is there, and no write that got no answer.
    svc = Service()
    status, users, _ = svc.request("GET", "/users")
    names = {u["name"] for u in users} if status == 200 else set()
    acked = {n for n, o in ledger if o == "ok"}
    unanswered = {n for n, o in ledger if o != "ok"}
    check(acked <= names, f"all {len(acked)} acknowledged writes are in the table ({len(acked - names)} missing)")
    check(not (unanswered & names), f"none of the {len(unanswered)} unanswered writes is ({len(unanswered & names)} found)")
    check(svc.terminate() == 0, "the last run exits 0")

    print(f"{len(failures)} failed" if failures else "all passed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
