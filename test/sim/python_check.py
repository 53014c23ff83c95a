#!/usr/bin/python3
"""Cross-check of the simulated nodes with an independent client: Debian's python3-cassandra driver.

Runs cqlsim with 3 nodes and, for protocol v4 and v5, checks that the driver connects, discovers all
three nodes, runs simple and prepared queries, pages through a primed 10,000-row result, and sees a
pushed STATUS_CHANGE. Exits non-zero with a message on the first failure.

    python_check.py path/to/cqlsim [port]
"""
import subprocess
import sys
import threading

from cassandra.cluster import Cluster
from cassandra.query import SimpleStatement


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Sim:
    def __init__(self, binary, port):
        self.proc = subprocess.Popen(
            [binary, "--nodes", "3", "--port", str(port), "--rows", "SELECT id, name FROM sim.big", "10000"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        check(line.startswith("ready"), f"cqlsim did not start: {line!r}")

    def command(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        check(self.proc.stdout.readline().strip() == "ok", f"cqlsim refused {cmd!r}")

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run(sim, port, version):
    cluster = Cluster(contact_points=["127.0.0.1"], port=port, protocol_version=version,
                      connect_timeout=10, control_connection_timeout=10)
    events = []
    seen = threading.Event()
    cc = cluster.control_connection
    original = cc._handle_status_change

    def recording(event):
        events.append(dict(event))
        seen.set()
        return original(event)

    cc._handle_status_change = recording
    session = cluster.connect()
    try:
        check(session.cluster.protocol_version == version, f"negotiated v{session.cluster.protocol_version}, wanted v{version}")
        hosts = sorted(h.address for h in cluster.metadata.all_hosts())
        check(hosts == ["127.0.0.1", "127.0.0.2", "127.0.0.3"], f"v{version}: discovered {hosts}")
        check(all(h.is_up for h in cluster.metadata.all_hosts()), f"v{version}: not every host is up")
        check(cluster.metadata.cluster_name == "cqlcoro-sim", f"v{version}: cluster name {cluster.metadata.cluster_name}")

        local = session.execute("SELECT release_version FROM system.local").one()
        check(local.release_version == "3.11.16", f"v{version}: release_version {local.release_version}")

        prepared = session.prepare("SELECT v FROM sim.t WHERE k = ?")
        row = session.execute(prepared, (7,)).one()
        check(row.v == "v", f"v{version}: prepared query returned {row}")

        rows = session.execute(SimpleStatement("SELECT id, name FROM sim.big", fetch_size=1000))
        ids = [r.id for r in rows]
        check(ids == list(range(10000)), f"v{version}: paged {len(ids)} rows")

        cc_host = cc._connection.endpoint.address
        about = "127.0.0.2" if cc_host != "127.0.0.2" else "127.0.0.3"
        sim.command(f"status {about[-1]} DOWN")
        check(seen.wait(timeout=10), f"v{version}: no STATUS_CHANGE reached the driver")
        check(events[0]["change_type"] == "DOWN" and events[0]["address"][0] == about,
              f"v{version}: unexpected event {events[0]}")
        print(f"v{version}: ok: 3 hosts, simple, prepared, 10000 rows in pages of 1000, STATUS_CHANGE {events[0]}")
    finally:
        cluster.shutdown()


def main():
    binary = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 19142
    sim = Sim(binary, port)
    try:
        for version in (4, 5):
            run(sim, port, version)
    finally:
        sim.close()
    print("python3-cassandra cross-check passed")


if __name__ == "__main__":
    main()
