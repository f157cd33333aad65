#!/usr/bin/env python3
"""The admin API with a million clients: latency (p50/p99) of create, get
and list, on SQLite, with the clients `bench/scale` imports. Writes the
section "Admin API with a million clients" of BENCHMARKS.md.

Run it through `bench/admin`, which builds Writ in release mode first.
"""

import base64
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402  the client file, ids and the process helpers
from bench import write_section  # noqa: E402

WRIT = scale.WRIT
REQUESTS = int(os.environ.get("WRIT_ADMIN_REQUESTS", "300"))
PORT = 18997


def run(*args, env=None):
    out = subprocess.run([WRIT, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"writ {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def percentile(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    work = tempfile.mkdtemp(prefix="writ-admin-bench-")
    db = f"sqlite://{work}/writ.db"
    env = dict(os.environ, RUST_LOG="warn")
    run("init", "--database", db, env=env)
    started = time.monotonic()
    with open(scale.clients_file()) as f:
        subprocess.run([WRIT, "client", "import", "-", "--json", "--database", db],
                       stdin=f, capture_output=True, check=True, env=env)
    imported = time.monotonic() - started
    ops = json.loads(run("client", "create", "--name", "ops", "--scope", "writ:admin",
                         "--json", "--database", db, env=env))
    server = subprocess.Popen([WRIT, "serve", "--listen", f"127.0.0.1:{PORT}", "--database", db],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", PORT)
        basic = base64.b64encode(f"{ops['client_id']}:{ops['client_secret']}".encode()).decode()
        conn.request("POST", "/oauth/token", "grant_type=client_credentials&scope=writ:admin",
                     {"Authorization": f"Basic {basic}",
                      "Content-Type": "application/x-www-form-urlencoded"})
        token = json.loads(conn.getresponse().read())["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def timed(method, path, body=None, expect=200):
            t = time.perf_counter()
            conn.request(method, path, body, headers)
            r = conn.getresponse()
            r.read()
            if r.status != expect:
                sys.exit(f"{method} {path}: {r.status}")
            return (time.perf_counter() - t) * 1000

        rows = []
        rng = random.Random(7)
        samples = [timed("POST", "/admin/v1/clients",
                         json.dumps({"name": f"admin bench {i}", "scope": "read"}), 201)
                   for i in range(REQUESTS)]
        rows.append(("create (`POST /clients`)", samples))
        samples = [timed("GET", f"/admin/v1/clients/{scale.client_id(rng.randint(1, 1_000_000))}")
                   for _ in range(REQUESTS)]
        rows.append(("get (`GET /clients/{id}`, a random one of the million)", samples))
        samples = [timed("GET", f"/admin/v1/clients?limit=100&after={scale.client_id(rng.randint(1, 999_000))}")
                   for _ in range(REQUESTS)]
        rows.append(("list, a page of 100 after a random client", samples))
        samples = [timed("GET", "/admin/v1/clients?limit=100") for _ in range(REQUESTS)]
        rows.append(("list, the first page of 100", samples))
        samples = [timed("GET", "/admin/v1/clients?limit=100&name_prefix=scale%20client%209999")
                   for _ in range(max(REQUESTS // 10, 10))]
        rows.append(("list by name prefix (`scale client 9999`, 111 match)", samples))
    finally:
        server.terminate()
        server.wait()
    load = os.getloadavg()
    table = ["| request | p50 | p99 |", "|---|---|---|"]
    for name, s in rows:
        table.append(f"| {name} | {percentile(s, 50):.2f} ms | {percentile(s, 99):.2f} ms |")
    section = f"""## Admin API with a million clients

Produced by `bench/admin`: 1,000,000 clients imported into SQLite (in
{imported:.0f} s), `writ serve` on its default settings, then {REQUESTS}
sequential requests of each kind from one keep-alive connection (Python's
http.client), timed at the client. Load average at the end: {load[0]:.2f}.

{chr(10).join(table)}
"""
    write_section("Admin API with a million clients", section)
    print(section)


if __name__ == "__main__":
    main()
