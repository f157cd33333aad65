#!/usr/bin/env python3
"""A million clients: Writ with 1,000,000 imported clients, on SQLite and on
PostgreSQL.

Measures, in one bounded run:
 1. `writ client import` rate into each store;
 2. process start to the first token served, and VmRSS right after;
 3. VmRSS once a working set of distinct clients has each fetched a token
    (wrk cycling once through their credentials; 20,000 by default, not
    100,000: see WORKING_SET), and peak RSS (VmHWM);
 4. tokens/s with Zipf-distributed clients over that working set (s = 1)
    against one client alone, on the same warm server;
 5. two `writ serve` nodes on one PostgreSQL database: while `writ client
    disable` streams 50 changes/s, the time from the CLI's exit until the
    disabled client gets 401 from each node, and the token p99 on a node
    under a steady load meanwhile (and without the stream, for comparison);
 6. `writ client create` → first 200 from the token endpoint, sent the
    moment the CLI exits: on SQLite (the CLI writes the serving node's own
    database) and on each of two PostgreSQL nodes.

The client file is generated once into the cache folder ($WRIT_BENCH_CACHE,
outside the source tree). Results go into BENCHMARKS.md, section "A million
clients". Run it through `bench/scale`, which installs what it needs first.
"""

import base64
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import CACHE, PG_ADMIN, ROOT, WRIT, basic, log, pg_database, run, write_section  # noqa: E402

CLIENTS = int(os.environ.get("WRIT_SCALE_CLIENTS", "1000000"))
# The working set the scenario serves, one client at a time in slices of
# SLICE whose rates show that a new client costs the same however many
# were served before it.
WORKING_SET = min(int(os.environ.get("WRIT_SCALE_WORKING_SET", "100000")), CLIENTS)
SLICE = int(os.environ.get("WRIT_SCALE_SLICE", "5000"))
SECONDS = int(os.environ.get("WRIT_BENCH_SECONDS", "15"))
WARMUP = int(os.environ.get("WRIT_BENCH_WARMUP", "2"))
CONCURRENCY = int(os.environ.get("WRIT_SCALE_CONCURRENCY", "64"))
CHANGES = int(os.environ.get("WRIT_SCALE_CHANGES", "300"))
CHANGE_RATE = float(os.environ.get("WRIT_SCALE_CHANGE_RATE", "50"))
CREATIONS = int(os.environ.get("WRIT_SCALE_CREATIONS", "60"))
# Polling for a disabled client's 401 every POLL seconds on each node: the
# visibility times are this coarse, in exchange for prober CPU that the two
# nodes, PostgreSQL and the CLI processes would otherwise lose.
POLL = float(os.environ.get("WRIT_SCALE_POLL_MS", "10")) / 1000
# The steady load on node A while changes stream: CONNS connections, each
# pausing DELAY ms between requests (at most CONNS * 1000 / DELAY per second).
STEADY_CONNS, STEADY_DELAY_MS = 8, 8
PORTS = (18990, 18991)
LUA = os.path.join(ROOT, "bench", "scale.lua")
FORM = "application/x-www-form-urlencoded"
TOKEN_BODY = "grant_type=client_credentials"
MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
LOAD_AT_START = "?"
# A disabled client is not necessarily refused at once; give up after this.
VISIBLE_TIMEOUT = 5.0


def client_id(i):
    return f"scale-{i:07d}"


def client_secret(i):
    # Known to the load generator, distinct per client, never used elsewhere.
    return f"writ_sk_scale_{i:07d}_bench"


def auth(i):
    return basic(client_id(i), client_secret(i))


def clients_file():
    """The JSON Lines import file, made once and kept in the cache folder."""
    path = os.path.join(CACHE, f"scale-clients-v1-{CLIENTS}.jsonl")
    if os.path.exists(path):
        return path
    os.makedirs(CACHE, exist_ok=True)
    log(f"generating {CLIENTS:,} clients into {path}")
    tmp = path + ".part"
    with open(tmp, "w") as f:
        for i in range(1, CLIENTS + 1):
            f.write(json.dumps({"client_id": client_id(i), "client_secret": client_secret(i),
                                "name": f"scale client {i}", "scope": "", "public": False}) + "\n")
    os.replace(tmp, path)
    return path


def auth_file(work, name, ids):
    """One Authorization header a line, for scale.lua."""
    path = os.path.join(work, name)
    with open(path, "w") as f:
        for i in ids:
            f.write(auth(i) + "\n")
    return path


def percentile(values, q):
    """Nearest rank: the smallest value with at least q% of them at or below it."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, -(-len(s) * q // 100) - 1))]


class Node:
    """`writ serve` on a port, pinned to a CPU when told; stopped by its PID."""

    def __init__(self, database, port, cpu, config, env):
        cmd = [WRIT, "serve", "--listen", f"127.0.0.1:{port}", "--database", database,
               "--config", config, "--issuer", f"http://127.0.0.1:{PORTS[0]}"]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd  # taskset execs: the PID stays writ's
        self.port = port
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=dict(os.environ, **env),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def first_token(self, i):
        """Waits for the first 200 for client i; seconds since launch."""
        deadline = self.started + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("writ serve exited at start")
            try:
                if token(self.port, auth(i)) == 200:
                    return time.monotonic() - self.started
            except OSError:
                time.sleep(0.001)
        raise SystemExit("no token within 20 s of start")

    def memory_mib(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def token(port, authorization, conn=None):
    """One token request; the status. Reuses `conn` (keep-alive) when given."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("POST", "/oauth/token", TOKEN_BODY,
                  {"Content-Type": FORM, "Authorization": authorization})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        if conn is None:
            c.close()


class Prober:
    """A keep-alive connection to a node that reconnects when dropped."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def status(self, authorization):
        for _ in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                return token(self.port, authorization, self.conn)
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
        raise SystemExit(f"node on port {self.port} does not answer")

    def close(self):
        if self.conn:
            self.conn.close()


def wrk(port, auth_path, mode, connections, seconds, cpu=None, delay_ms=None):
    env = {"WRK_AUTH_FILE": auth_path, "WRK_MODE": mode, "WRK_SEED": "1"}
    if delay_ms:
        env["WRK_DELAY_MS"] = str(delay_ms)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
           "-s", LUA, f"http://127.0.0.1:{port}/oauth/token"]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    out = run(cmd, env=env)
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def wrk_once_each(port, auth_path, count, connections, cpu, work):
    """wrk through every client of `auth_path` once (scale.lua's cycle mode).
    wrk only ends on its duration or on SIGINT, so the Lua script marks the
    last response with a file and this sends SIGINT when it appears; the
    rate is counted to that moment."""
    done = os.path.join(work, "cycle.done")
    if os.path.exists(done):
        os.remove(done)
    env = dict(os.environ, WRK_AUTH_FILE=auth_path, WRK_MODE="cycle", WRK_DONE_FILE=done)
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", "-d600s", "--timeout", "5s",
           "-s", LUA, f"http://127.0.0.1:{port}/oauth/token"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not os.path.exists(done) and proc.poll() is None and time.monotonic() - t0 < 600:
        time.sleep(0.01)
    seconds = time.monotonic() - t0
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk: {out}\n{err}")
    r = json.loads(line[len("RESULT "):])
    r["rps"] = count / seconds
    return r


def import_clients(database, env, path):
    log(f"importing {CLIENTS:,} clients into {database.split(':')[0]}")
    t0 = time.monotonic()
    out = json.loads(run([WRIT, "--json", "--database", database, "client", "import", path], env=env))
    seconds = time.monotonic() - t0
    if out.get("imported") != CLIENTS:
        raise SystemExit(f"import: {out}")
    log(f"  {CLIENTS / seconds:,.0f} clients/s ({seconds:.1f} s)")
    return {"import_s": seconds, "import_rate": CLIENTS / seconds}


def single_node(database, env, config, work, label):
    """Steps 2-4 on one node pinned to CPU 0, wrk on CPU 1."""
    res = {}
    # Start to first token, three fresh starts, each asking for a client no
    # earlier start asked for (so the first token includes a store read).
    starts = []
    for n in range(3):
        node = Node(database, PORTS[0], 0, config, env)
        try:
            starts.append(node.first_token(CLIENTS - n) * 1000)
            if n == 0:
                res["rss_start"] = node.memory_mib("VmRSS")
        finally:
            node.stop()
    res["start_ms"] = statistics.median(starts)
    res["start_all"] = starts
    log(f"  {label}: start to first token {res['start_ms']:.0f} ms (median of {starts}), "
        f"RSS after start {res['rss_start']:.1f} MiB")

    node = Node(database, PORTS[0], 0, config, env)
    try:
        node.first_token(1)
        working = auth_file(work, "working-set.txt", range(1, WORKING_SET + 1))
        # Each of the working set once, a slice at a time: every request is
        # a cache miss and a store read. The rate of each slice shows how
        # the cost of a new client grows with the clients served before it.
        res["slices"] = []
        started = time.monotonic()
        for first in range(1, WORKING_SET + 1, SLICE):
            ids = range(first, min(first + SLICE, WORKING_SET + 1))
            part = auth_file(work, "slice.txt", ids)
            r = wrk_once_each(PORTS[0], part, len(ids), CONCURRENCY, 1, work)
            if r["ok"] < len(ids) or r["bad"] or r["socket_errors"]:
                raise SystemExit(f"{label} working set: {r}")
            res["slices"].append((first - 1, ids[-1], r["rps"], node.memory_mib("VmRSS")))
            log(f"  {label}: clients {first:,}-{ids[-1]:,} first tokens at {r['rps']:,.0f}/s, "
                f"RSS {res['slices'][-1][3]:.1f} MiB")
        res["ws_rps"] = WORKING_SET / (time.monotonic() - started)
        res["rss_ws"] = node.memory_mib("VmRSS")
        # Client 1 is the top Zipf rank, so "one" adds nothing to the cache.
        # Two rounds, alternating, so that neither mode always runs first
        # and a burst of other work on the machine shows as a disagreement;
        # the better round of each is reported.
        rounds = {"one": [], "zipf": []}
        for mode in ("one", "zipf", "zipf", "one"):
            wrk(PORTS[0], working, mode, CONCURRENCY, WARMUP, cpu=1)
            r = wrk(PORTS[0], working, mode, CONCURRENCY, SECONDS, cpu=1)
            if r["status_errors"] or r["socket_errors"]:
                raise SystemExit(f"{label} {mode}: {r}")
            rounds[mode].append(r)
            log(f"  {label}: {mode:4} {r['rps']:,.0f} tokens/s p99 {r['p99'] / 1000:.2f} ms")
        for mode, rs in rounds.items():
            res[mode] = max(rs, key=lambda r: r["rps"])
            res[mode]["rounds"] = [r["rps"] for r in rs]
        res["rss_after"] = node.memory_mib("VmRSS")
        res["hwm"] = node.memory_mib("VmHWM")
        log(f"  {label}: RSS after Zipf {res['rss_after']:.1f} MiB, peak {res['hwm']:.1f} MiB")
        res["create"] = create_to_token(database, env, [PORTS[0]], CREATIONS, label)
    finally:
        node.stop()
    return res


def create_to_token(database, env, ports, count, label):
    """`client create`, then token requests from this process the moment the
    CLI has exited, on each port in turn; milliseconds to the first 200."""
    probers = {p: Prober(p) for p in ports}
    for p in ports:  # the keep-alive connections exist before the clock starts
        probers[p].status("Basic eA==")
    times = {p: [] for p in ports}
    refused_first = {p: 0 for p in ports}
    cli = []
    try:
        for n in range(count):
            port = ports[n % len(ports)]
            t0 = time.monotonic()
            created = json.loads(run([WRIT, "--json", "--database", database, "client", "create",
                                      "--name", f"scale new {n}"], env=env))
            exited = time.monotonic()
            cli.append((exited - t0) * 1000)
            authorization = basic(created["client_id"], created["client_secret"])
            first = True
            while True:
                status = probers[port].status(authorization)
                if status == 200:
                    break
                refused_first[port] += first
                first = False
                if time.monotonic() - exited > VISIBLE_TIMEOUT:
                    raise SystemExit(f"{label}: new client refused for {VISIBLE_TIMEOUT} s ({status})")
            times[port].append((time.monotonic() - exited) * 1000)
    finally:
        for p in probers.values():
            p.close()
    out = {"cli_ms": statistics.median(cli), "nodes": {}}
    for p in ports:
        out["nodes"][p] = {"n": len(times[p]), "p50": percentile(times[p], 50),
                           "p99": percentile(times[p], 99), "max": max(times[p]),
                           "refused_first": refused_first[p]}
        log(f"  {label} port {p}: create→token p50 {out['nodes'][p]['p50']:.1f} ms "
            f"p99 {out['nodes'][p]['p99']:.1f} ms, first request refused {refused_first[p]}×; "
            f"CLI {out['cli_ms']:.0f} ms")
    return out


def change_stream(database, env, ports, work, stream_label):
    """Step 5: `writ client disable` at CHANGE_RATE a second, CHANGES in all,
    each for a client both nodes hold in memory; from each CLI's exit, each
    node is asked for a token for that client until it answers 401."""
    # Targets outside the working set and the Zipf load, so only the
    # disables touch them; a token each on both nodes puts them in memory.
    first = WORKING_SET + 1
    targets = list(range(first, first + CHANGES))
    warm = Prober(ports[0]), Prober(ports[1])
    for i in targets:
        for w in warm:
            if w.status(auth(i)) != 200:
                raise SystemExit(f"target {client_id(i)} refused before the stream")
    for w in warm:
        w.close()

    results, errors = [], []
    lock = threading.Lock()

    def change(i):
        t0 = time.monotonic()
        out = subprocess.run([WRIT, "--json", "--database", database, "client", "disable",
                              client_id(i)], env=dict(os.environ, **env), capture_output=True)
        exited = time.monotonic()
        if out.returncode != 0:
            with lock:
                errors.append(out.stderr.decode(errors="replace").strip())
            return
        probers = {p: Prober(p) for p in ports}
        seen = {}
        try:
            while len(seen) < len(ports) and time.monotonic() - exited < VISIBLE_TIMEOUT:
                for p in ports:
                    if p not in seen and probers[p].status(auth(i)) == 401:
                        seen[p] = (time.monotonic() - exited) * 1000
                if len(seen) < len(ports):
                    time.sleep(POLL)
        finally:
            for pr in probers.values():
                pr.close()
        with lock:
            results.append({"cli_ms": (exited - t0) * 1000, "launched": t0, "exited": exited,
                            "seen": seen})

    # The steady load on node A runs through the whole stream (and alone
    # before it, for the baseline p99).
    zipf = os.path.join(work, "working-set.txt")
    stream_seconds = int(CHANGES / CHANGE_RATE) + 2
    baseline = wrk(ports[0], zipf, "zipf", STEADY_CONNS, stream_seconds, delay_ms=STEADY_DELAY_MS)
    log(f"  steady load alone: {baseline['rps']:,.0f}/s p99 {baseline['p99'] / 1000:.2f} ms")
    during = {}
    load = threading.Thread(target=lambda: during.update(
        wrk(ports[0], zipf, "zipf", STEADY_CONNS, stream_seconds, delay_ms=STEADY_DELAY_MS)))
    load.start()
    time.sleep(0.5)
    threads = []
    start = time.monotonic()
    for n, i in enumerate(targets):
        due = start + n / CHANGE_RATE
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        t = threading.Thread(target=change, args=(i,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout=VISIBLE_TIMEOUT + 30)
    load.join(timeout=stream_seconds + 30)
    # A CLI run that fails (e.g. PostgreSQL out of connection slots when
    # the CLI processes pile up) is counted and reported, not retried.
    if len(errors) > len(targets) // 2:
        raise SystemExit(f"{len(errors)} disables failed, e.g. {errors[0]}")
    if during.get("socket_errors") or baseline.get("socket_errors"):
        raise SystemExit(f"steady load: socket errors {baseline} {during}")

    # The rate the CLI processes were actually launched at (fork and exec
    # on a busy machine can fall behind the schedule).
    launches = sorted(r["launched"] for r in results)
    out = {"changes": len(results),
           "achieved_rate": (len(launches) - 1) / max(launches[-1] - launches[0], 1e-9),
           "cli_ms": percentile([r["cli_ms"] for r in results], 50),
           "cli_p99": percentile([r["cli_ms"] for r in results], 99),
           "baseline": baseline, "during": during, "nodes": {},
           "failed": len(errors), "failure": errors[0] if errors else ""}
    both = [max(r["seen"].values()) for r in results if len(r["seen"]) == len(ports)]
    out["missed"] = len(results) - len(both)
    out["both_p50"] = percentile(both, 50) if both else float("nan")
    out["both_p99"] = percentile(both, 99) if both else float("nan")
    out["both_max"] = max(both) if both else float("nan")
    for p in ports:
        seen = [r["seen"][p] for r in results if p in r["seen"]]
        out["nodes"][p] = {"p50": percentile(seen, 50), "p99": percentile(seen, 99), "n": len(seen)}
    log(f"  {stream_label}: {out['changes']} changes ({out['failed']} CLI runs failed) at {out['achieved_rate']:.1f}/s "
        f"(CLI p50 {out['cli_ms']:.0f} ms): visible on both p50 {out['both_p50']:.0f} ms "
        f"p99 {out['both_p99']:.0f} ms max {out['both_max']:.0f} ms, not seen in "
        f"{VISIBLE_TIMEOUT:.0f} s: {out['missed']}; token p99 {during['p99'] / 1000:.2f} ms "
        f"at {during['rps']:,.0f}/s (alone {baseline['p99'] / 1000:.2f} ms)")
    return out


def machine():
    def first(cmd):
        try:
            return run(cmd, check=False).strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    return {
        "machine": f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.release()}",
        "writ": first(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]),
        "rustc": first(["rustc", "--version"]),
        "wrk": " ".join(wrk_version[:2]) if wrk_version else "?",
        "postgresql": first(["psql", "--version"]),
        # The machine may be shared: what else was running shows here.
        "load average at the start (1, 5, 15 min)": LOAD_AT_START,
    }


def report(res, info, elapsed):
    s, p, two = res["sqlite"], res["postgres"], res["two"]
    ms = lambda v: f"{v:,.0f}" if v >= 10 else f"{v:.1f}"  # noqa: E731

    def zipf_row(r):
        ratio = r["zipf"]["rps"] / r["one"]["rps"]
        each = lambda m: " / ".join(f"{v:,.0f}" for v in r[m]["rounds"])  # noqa: E731
        return (f"{r['zipf']['rps']:,.0f} vs {r['one']['rps']:,.0f} one client "
                f"({(ratio - 1) * 100:+.1f}%); p99 {r['zipf']['p99'] / 1000:.2f} vs "
                f"{r['one']['p99'] / 1000:.2f} ms (rounds: Zipf {each('zipf')}, one {each('one')})")

    def create_row(r, port):
        n = r["create"]["nodes"][port] if "create" in r else r["nodes"][port]
        return f"p50 {n['p50']:.1f} ms, p99 {n['p99']:.1f} ms (n = {n['n']}; first request refused {n['refused_first']}×)"

    def mark(ok):
        return "met" if ok else "**missed**"

    rows = [
        ("1. import rate (clients/s)", f"{s['import_rate']:,.0f} ({s['import_s']:.0f} s)",
         f"{p['import_rate']:,.0f} ({p['import_s']:.0f} s)",
         f"≥ 20,000/s into SQLite: {mark(s['import_rate'] >= 20000)}"),
        ("2. start → first token (median of 3)", f"{ms(s['start_ms'])} ms", f"{ms(p['start_ms'])} ms",
         f"≤ 1 s: {mark(max(s['start_ms'], p['start_ms']) <= 1000)}"),
        ("2. VmRSS right after start", f"{s['rss_start']:.1f} MiB", f"{p['rss_start']:.1f} MiB",
         f"≤ 150 MiB: {mark(max(s['rss_start'], p['rss_start']) <= 150)}"),
        (f"3. VmRSS with {WORKING_SET:,} clients served", f"{s['rss_ws']:.1f} MiB", f"{p['rss_ws']:.1f} MiB",
         f"≤ 300 MiB with 100,000: {mark(max(s['rss_ws'], p['rss_ws']) <= 300)}"
         if WORKING_SET >= 100000 else "≤ 300 MiB with 100,000: not reached (see below)"),
        ("3. peak RSS (VmHWM) at the end", f"{s['hwm']:.1f} MiB", f"{p['hwm']:.1f} MiB", ""),
        (f"3. first token of each of the {WORKING_SET:,} (store read each)", f"{s['ws_rps']:,.0f}/s",
         f"{p['ws_rps']:,.0f}/s", ""),
        (f"4. tokens/s, Zipf over {WORKING_SET:,} vs one client, c={CONCURRENCY}", zipf_row(s), zipf_row(p),
         "within 15%: " + mark(all(abs(r['zipf']['rps'] / r['one']['rps'] - 1) <= 0.15 for r in (s, p)))),
        ("6. create → first token, node serving the CLI's database", create_row(s, PORTS[0]), "", ""),
    ]
    table = ["| | SQLite | PostgreSQL | target |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]

    st = two["stream"]
    a, b = PORTS
    two_rows = [
        (f"5. disable visible on both nodes ({st['changes']} changes at {st['achieved_rate']:.0f}/s)",
         f"p50 {ms(st['both_p50'])} ms, p99 {ms(st['both_p99'])} ms, max {ms(st['both_max'])} ms; "
         f"not visible within {VISIBLE_TIMEOUT:.0f} s: {st['missed']}",
         f"≤ 1 s p99: {mark(st['both_p99'] <= 1000 and not st['missed'])}"),
        ("5. … on node A / node B alone",
         f"p50 {ms(st['nodes'][a]['p50'])} / {ms(st['nodes'][b]['p50'])} ms, "
         f"p99 {ms(st['nodes'][a]['p99'])} / {ms(st['nodes'][b]['p99'])} ms", ""),
        (f"5. token p99 on node A, steady Zipf load ({STEADY_CONNS} connections, {STEADY_DELAY_MS} ms pause)",
         f"{st['during']['p99'] / 1000:.2f} ms at {st['during']['rps']:,.0f}/s during the stream; "
         f"{st['baseline']['p99'] / 1000:.2f} ms at {st['baseline']['rps']:,.0f}/s without it", ""),
        ("5. `writ client disable` on PostgreSQL, wall time",
         f"p50 {st['cli_ms']:.0f} ms, p99 {st['cli_p99']:.0f} ms; failed: {st['failed']}"
         + (f" (`{st['failure']}`)" if st["failed"] else ""), ""),
        ("6. create → first token on node A", create_row(two["create"], a), ""),
        ("6. create → first token on node B", create_row(two["create"], b), ""),
        ("6. `writ client create` on PostgreSQL, wall time (median)", f"{two['create']['cli_ms']:.0f} ms", ""),
    ]
    table2 = ["| two nodes, one PostgreSQL database | | target |", "|---|---|---|"]
    table2 += [f"| {x} | {y} | {z} |" for x, y, z in two_rows]
    slices = ["| clients served, from → to | first tokens/s, SQLite | VmRSS after, SQLite | "
              "first tokens/s, PostgreSQL | VmRSS after, PostgreSQL |", "|---|---|---|---|---|"]
    for (a0, a1, ar, am), (_, _, br, bm) in zip(s["slices"], p["slices"]):
        slices.append(f"| {a0:,} → {a1:,} | {ar:,.0f} | {am:.1f} MiB | {br:,.0f} | {bm:.1f} MiB |")
    meta = "\n".join(f"- {k}: {v}" for k, v in info.items())
    section = f"""## A million clients

Produced by `bench/scale` in {elapsed / 60:.0f} minutes. {CLIENTS:,} clients, each
with its own known secret, imported from a generated JSON Lines file by
`writ client import`, then served with the default `[cache] clients`
(100,000), `[limits] enabled = false` and `RUST_LOG=info,audit=off` as in
the table above. All requests are `client_credentials` for a JWT (ES256,
default audience) with HTTP Basic, plain HTTP/1.1 on 127.0.0.1.

What ran where (2 cores): the import ran unpinned (PostgreSQL beside it).
Single-node rows: `writ serve` pinned to CPU 0, wrk (one thread,
{CONCURRENCY} connections) to CPU 1; each start asks for a client not asked
for before, so the first token includes a store read. RSS right after start
is read the moment the first token is served. The working set is wrk going
once through {WORKING_SET:,} distinct clients; Zipf (s = 1) and one client
(the top Zipf rank) are then measured {SECONDS} s each, twice, alternating, on
that warm server (the better round of each is compared).
Two nodes: node A pinned to CPU 0, node B to CPU 1; PostgreSQL, wrk, the CLI
and the Python driver unpinned, competing with both. The changes are
`writ client disable ID`, one process each, launched {CHANGE_RATE:.0f} a second
from a Python driver (a thread per change); each disables a client both
nodes already hold in memory, and from the moment that CLI exits, the
driver asks each node for a token for that client every {POLL * 1000:.0f} ms until it
answers 401 (the times are that coarse). Creations are `writ client create`
followed, the moment the CLI exits, by token requests for the new client
from the driver on a keep-alive connection, alternating node A and node B.

{meta}

{chr(10).join(table)}

{chr(10).join(table2)}

Serving each client of the working set once, a slice of {SLICE:,} at a
time (the rates include the store read of each client, a cache miss by
construction):

{chr(10).join(slices)}
"""
    # Only this section: the other scripts' stay as they are.
    write_section("A million clients", section)
    print(section)


def main():
    for tool in ("wrk", "taskset", "psql"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run bench/scale, which installs it")
    began = time.monotonic()
    global LOAD_AT_START
    with open("/proc/loadavg") as f:
        LOAD_AT_START = " ".join(f.read().split()[:3])
    path = clients_file()
    work = tempfile.mkdtemp(prefix="writ-scale-")
    config = os.path.join(work, "writ.toml")
    with open(config, "w") as f:
        # One client flat out from one address is what the rate limits stop.
        f.write("[limits]\nenabled = false\n")
    quiet = {"RUST_LOG": "info,audit=off"}
    pg_name = f"writ_scale_{os.getpid()}"
    res = {}
    try:
        sqlite = f"sqlite://{work}/writ.db"
        run([WRIT, "--json", "--database", sqlite, "init"])
        res["sqlite"] = import_clients(sqlite, {}, path)
        res["sqlite"].update(single_node(sqlite, quiet, config, work, "SQLite"))
        os.remove(os.path.join(work, "writ.db"))  # a few hundred MB, no longer needed

        pg = pg_database(pg_name)
        pg_env = {"WRIT_MASTER_KEY": MASTER_KEY}
        run([WRIT, "--json", "--database", pg, "init"], env=pg_env)
        res["postgres"] = import_clients(pg, pg_env, path)
        res["postgres"].update(single_node(pg, {**pg_env, **quiet}, config, work, "PostgreSQL"))

        log("two nodes on one PostgreSQL database")
        nodes = [Node(pg, PORTS[0], 0, config, {**pg_env, **quiet}),
                 Node(pg, PORTS[1], 1, config, {**pg_env, **quiet})]
        try:
            for n in nodes:
                n.first_token(1)
            res["two"] = {"stream": change_stream(pg, pg_env, PORTS, work, "stream"),
                          "create": create_to_token(pg, pg_env, list(PORTS), 2 * CREATIONS, "two nodes")}
        finally:
            for n in nodes:
                n.stop()
        report(res, machine(), time.monotonic() - began)
        log(f"done in {(time.monotonic() - began) / 60:.1f} minutes")
    finally:
        try:
            pg_database(pg_name, drop=True)
        except SystemExit:
            pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
