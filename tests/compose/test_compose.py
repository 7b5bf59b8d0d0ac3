#!/usr/bin/env python3
"""The compose cluster under real Docker: bring-up from nothing, a write through
one gateway checked on every owner, a store killed and one cut off from the
network under load, etcd stopped, a gateway restarted with hints queued, one
trace across gateway and stores, and `down -v` leaving nothing behind.

Run by `make test-compose` (after `make images`). Every acknowledged point is
audited on both of its owners by reading the shards back from each store
(`sundial-ctl read-shard`), and SELECT through each gateway counts the same."""

import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT = "sundialtest"
FILES = ["-f", "docker-compose.yml", "-f", "tests/compose/override.yml"]
GW = {1: 18086, 2: 18087}
ENV = dict(
    os.environ,
    GATEWAY1_PORT=str(GW[1]),
    GATEWAY2_PORT=str(GW[2]),
    JAEGER_UI_PORT="18686",
    OTLP_ENDPOINT="http://otlp-sink:4317",
)
SERVICES = ["etcd", "meta", "store1", "store2", "store3", "gateway1", "gateway2", "otlp-sink"]
T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def compose_cmd():
    ok = subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    return ["docker", "compose"] if ok else ["docker-compose"]


COMPOSE = compose_cmd() + ["-p", PROJECT] + FILES


def run(args, check=True, timeout=300):
    r = subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


def container(service):
    cid = run(COMPOSE + ["ps", "-q", service]).strip()
    assert cid, f"no container for {service}"
    return cid


def http(method, port, path, body=None, headers=None, timeout=10):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, str(e)


def query(port, q):
    status, body = http("POST", port, "/query?" + urllib.parse.urlencode({"q": q}))
    assert status == 200, f"{q}: {status} {body}"
    return json.loads(body)


def wait(what, cond, secs=120, every=0.5):
    deadline = time.time() + secs
    while True:
        if cond():
            return
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


# ------------------------------------------------------------------ writes and audits

ACKED = {}  # "measurement,tags time" -> line, for every acknowledged point
ACK_LOCK = threading.Lock()
BASE_TS = 1_700_000_000_000_000_000


def write(port, lines, consistency="one", headers=None):
    status, body = http(
        "POST",
        port,
        f"/write?db=db&consistency={consistency}",
        "\n".join(lines).encode(),
        headers,
    )
    if status == 204:
        with ACK_LOCK:
            for line in lines:
                ACKED[point_key(line)] = line
    return status, body


def point_key(line):
    head, _, rest = line.partition(" ")
    ts = rest.rsplit(" ", 1)[1]
    return f"{head} {ts}"


def batch(measurement, n, start):
    """n points of one measurement, hosts spread over shards, times from start."""
    return [
        f"{measurement},host=h{i % 50} v={i}i {BASE_TS + start + i}"
        for i in range(n)
    ]


class Load(threading.Thread):
    """Writes batches to a gateway until stopped; every one must be acknowledged."""

    def __init__(self, port, measurement):
        super().__init__(daemon=True)
        self.port, self.measurement = port, measurement
        self.stop, self.sent, self.failures = threading.Event(), 0, []

    def run(self):
        while not self.stop.is_set():
            status, body = write(self.port, batch(self.measurement, 100, self.sent * 100))
            if status != 204:
                self.failures.append((status, body))
            self.sent += 1
            time.sleep(0.05)

    def finish(self):
        self.stop.set()
        self.join(30)
        assert not self.failures, f"{self.measurement}: writes failed: {self.failures[:3]}"
        assert self.sent > 0
        log(f"{self.measurement}: {self.sent} batches acknowledged, none failed")


def ctl(*args):
    """sundial-ctl inside the cluster's network (from gateway2's container, which
    has the shared secret in its environment)."""
    return run(["docker", "exec", container("gateway2"), "sundial-ctl", "--meta", "meta:8091", *args])


def metric_sum(port, prefix):
    status, text = http("GET", port, "/metrics")
    assert status == 200, text
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(prefix))


def hints_queued(port):
    return metric_sum(port, "sundial_hh_queue_records{")


def owners_at(ts):
    """The store services that own db's shard holding time BASE_TS + ts, so that
    the steps below kill and cut off stores the writes actually go to."""
    service = {}
    for line in ctl("nodes").splitlines()[1:]:
        f = line.split()
        service[int(f[0])] = f[1].rsplit(":", 1)[0]
    for line in ctl("shards", "--database", "db").splitlines()[1:]:
        f = line.split()
        if int(f[3]) <= BASE_TS + ts < int(f[4]):
            return [service[int(o)] for o in f[5].split(",")]
    raise AssertionError(f"no shard of db holds time {BASE_TS + ts}")


def audit():
    """Every acknowledged point is on both owners of its shard."""
    shards = []
    for line in ctl("shards", "--database", "db").splitlines()[1:]:
        f = line.split()
        shards.append((int(f[0]), [int(o) for o in f[5].split(",")]))
    assert shards, "no shards"
    on_node = {}
    for shard, owners in shards:
        assert len(owners) == 2, f"shard {shard} has owners {owners}, want 2 (RF 2)"
        for node in owners:
            keys = {point_key(l) for l in ctl("read-shard", str(shard), "--node", str(node)).splitlines() if l}
            on_node.setdefault(node, set()).update(keys)
            on_node.setdefault((shard, node), set()).update(keys)
    with ACK_LOCK:
        acked = set(ACKED)
    # A point lives in one shard; both of its owners must hold it.
    for shard, owners in shards:
        held = [on_node[(shard, n)] for n in owners]
        assert held[0] == held[1], (
            f"shard {shard}: owners {owners} differ by {len(held[0] ^ held[1])} points"
        )
    everywhere = set().union(*(on_node[(s, o[0])] for s, o in shards))
    missing = acked - everywhere
    assert not missing, f"{len(missing)} acknowledged points missing, e.g. {sorted(missing)[:3]}"
    # SELECT through each gateway counts exactly what the stores hold.
    for port in GW.values():
        status, body = http(
            "POST", port, "/query?" + urllib.parse.urlencode({"db": "db", "q": "SELECT count(v) FROM /.*/"})
        )
        assert status == 200, body
        series = json.loads(body)["results"][0].get("series", [])
        counted = sum(s["values"][0][1] for s in series)
        assert counted == len(everywhere), f"SELECT counts {counted}, the stores hold {len(everywhere)}: {body[:500]}"
    log(f"audit: {len(acked)} acknowledged points on both owners of {len(shards)} shards, SELECT agrees")


def wait_healthy(service):
    status = ["docker", "inspect", "-f", "{{.State.Health.Status}}"]
    wait(f"{service} healthy", lambda: "healthy" in run(status + [container(service)]))


def wait_drained(port):
    """No owner write still running (a cut-off owner's call ends, or times out and
    queues its hint), then no hint left to deliver."""
    wait(
        f"gateway on {port}: owner writes finished",
        lambda: metric_sum(port, "sundial_coordinator_owner_writes_in_flight ") == 0,
        secs=60,
    )
    wait(f"gateway on {port} to deliver its hints", lambda: hints_queued(port) == 0, secs=120)


# ------------------------------------------------------------------ the test


def main():
    started = time.time()
    try:
        run(COMPOSE + ["down", "-v", "--remove-orphans"], check=False)
        up = time.time()
        out = run(["deploy/compose-up.sh", "-p", PROJECT, *FILES, "--", *SERVICES], timeout=400)
        log(out.strip().splitlines()[-1] + f" (up to healthy: {time.time() - up:.0f}s)")

        # Bring-up: a database with the cluster's default RF 2, a write through
        # gateway 1 with a known trace id, seen through gateway 2 and on the stores.
        query(GW[1], "CREATE DATABASE db")
        trace_id = "%032x" % random.getrandbits(128)
        status, body = write(
            GW[1],
            batch("first", 500, 0),
            consistency="all",
            headers={"traceparent": f"00-{trace_id}-{'%016x' % random.getrandbits(64)}-01"},
        )
        assert status == 204, body
        dbs = query(GW[2], "SHOW DATABASES")["results"][0]["series"][0]["values"]
        assert ["db"] in dbs, dbs
        rp = query(GW[2], "SHOW RETENTION POLICIES ON db")["results"][0]["series"][0]
        assert rp["values"][0][rp["columns"].index("replicaN")] == 2, rp
        audit()

        # One trace: spans of the gateway and of the stores share the write's id.
        def services_in_trace():
            logs = run(["docker", "logs", container("otlp-sink")])
            return {l.split()[1] for l in logs.splitlines() if l.startswith("span ") and l.split()[2] == trace_id}

        wait("the write's spans at the OTLP receiver", lambda: {"sundial-gateway", "sundial-store"} <= services_in_trace(), secs=60)
        log(f"trace {trace_id}: spans from {sorted(services_in_trace())}")

        # A store killed under load: consistency=one writes keep succeeding; after
        # it is back, hinted handoff fills it in.
        owners = owners_at(0)
        log(f"the shard written below is owned by {owners}")
        load = Load(GW[1], "killed")
        load.start()
        time.sleep(2)
        run(["docker", "kill", container(owners[0])])
        log(f"{owners[0]} killed")
        time.sleep(6)
        wait("hints queued for the killed store", lambda: hints_queued(GW[1]) > 0, secs=30)
        run(["docker", "start", container(owners[0])])
        wait_healthy(owners[0])
        time.sleep(2)
        load.finish()
        wait_drained(GW[1])
        audit()

        # A store cut off from the network, then reconnected: the same.
        net = f"{PROJECT}_default"
        load = Load(GW[2], "partitioned")
        load.start()
        time.sleep(2)
        run(["docker", "network", "disconnect", net, container(owners[1])])
        log(f"{owners[1]} disconnected")
        time.sleep(6)
        run(["docker", "network", "connect", "--alias", owners[1], net, container(owners[1])])
        log(f"{owners[1]} reconnected")
        time.sleep(2)
        load.finish()
        wait_drained(GW[2])
        audit()

        # etcd stopped: writes into existing shard groups go on; once it is back,
        # a write far in another week creates a new shard group.
        run(["docker", "stop", container("etcd")])
        log("etcd stopped")
        for i in range(5):
            status, body = write(GW[1], batch("first", 100, 1000 + i * 100))
            assert status == 204, f"write with etcd down: {status} {body}"
        log("writes to existing shard groups acknowledged with etcd down")
        run(["docker", "start", container("etcd")])
        week = 7 * 24 * 3600 * 10**9

        def new_group():
            status, _ = write(GW[1], batch("later", 100, 3 * week))
            return status == 204

        wait("a new shard group once etcd is back", new_group, secs=90, every=1)
        log("new shard group created after etcd came back")
        audit()

        # A gateway restarted with hints queued: nothing acknowledged is lost.
        run(["docker", "kill", container(owners[0])])
        for i in range(10):
            status, body = write(GW[1], batch("restarted", 100, i * 100))
            assert status == 204, body
        queued = hints_queued(GW[1])
        assert queued > 0, "no hints queued for the killed store"
        log(f"{queued:.0f} hints queued; restarting gateway1")
        run(["docker", "restart", "-t", "30", container("gateway1")])
        wait_healthy("gateway1")
        run(["docker", "start", container(owners[0])])
        wait_drained(GW[1])
        audit()

        log(f"compose test passed in {time.time() - started:.0f}s (images built before)")
    finally:
        run(COMPOSE + ["down", "-v", "--remove-orphans"], check=False, timeout=300)
    left = {
        "containers": run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}"]).split(),
        "networks": run(["docker", "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"]).split(),
        "volumes": run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"]).split(),
    }
    assert not any(left.values()), f"down -v left {left}"
    log("down -v left no containers, networks or volumes")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        log(f"FAILED: {e}")
        sys.exit(1)
