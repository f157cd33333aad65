#!/usr/bin/env python3
"""The web console with a million clients: its first load (bytes and time
of the clients page and its stylesheet and script) and the clients page
(the first page, a name-prefix search, a deep page by `after`), beside the
admin API's answer to the same query. SQLite, with the clients `bench/scale`
imports. Writes the section "Web console with a million clients" of
BENCHMARKS.md.

Run it through `bench/console`, which builds Writ in release mode first.
"""

import base64
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402  the client file, ids and the process helpers
from bench import write_section  # noqa: E402

WRIT = scale.WRIT
REQUESTS = int(os.environ.get("WRIT_CONSOLE_REQUESTS", "300"))
LOADS = int(os.environ.get("WRIT_CONSOLE_LOADS", "50"))
PORT = 18996
ASSETS = ("/console/assets/console.css", "/console/assets/console.js")


def run(*args, env=None):
    out = subprocess.run([WRIT, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"writ {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def percentile(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def get(conn, path, headers, expect=200):
    """One GET: (milliseconds, body bytes)."""
    t = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    ms = (time.perf_counter() - t) * 1000
    if r.status != expect:
        sys.exit(f"GET {path}: {r.status} {body[:200]!r}")
    return ms, body


def sign_in(db, env):
    """A session cookie, from a link of `writ console` spent like a browser."""
    link = json.loads(run("console", "--json", "--base-url", f"http://127.0.0.1:{PORT}",
                          "--database", db, env=env))["url"]
    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    conn.request("GET", urllib.parse.urlparse(link)._replace(scheme="", netloc="").geturl())
    r = conn.getresponse()
    r.read()
    cookie = r.getheader("set-cookie")
    if r.status != 200 or not cookie:
        sys.exit(f"sign-in: {r.status}")
    conn.close()
    return cookie.split(";")[0]


def admin_token(db, env):
    ops = json.loads(run("client", "create", "--name", "ops", "--scope", "writ:admin:read",
                         "--json", "--database", db, env=env))
    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    basic = base64.b64encode(f"{ops['client_id']}:{ops['client_secret']}".encode()).decode()
    conn.request("POST", "/oauth/token", "grant_type=client_credentials&scope=writ:admin:read",
                 {"Authorization": f"Basic {basic}",
                  "Content-Type": "application/x-www-form-urlencoded"})
    token = json.loads(conn.getresponse().read())["access_token"]
    conn.close()
    return token


def main():
    work = tempfile.mkdtemp(prefix="writ-console-bench-")
    db = f"sqlite://{work}/writ.db"
    env = dict(os.environ, RUST_LOG="warn")
    run("init", "--database", db, env=env)
    started = time.monotonic()
    with open(scale.clients_file()) as f:
        subprocess.run([WRIT, "client", "import", "-", "--json", "--database", db],
                       stdin=f, capture_output=True, check=True, env=env)
    imported = time.monotonic() - started
    server = subprocess.Popen([WRIT, "serve", "--listen", f"127.0.0.1:{PORT}", "--database", db],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        cookie = {"Cookie": sign_in(db, env)}
        bearer = {"Authorization": f"Bearer {admin_token(db, env)}"}

        # First load: a new connection, the page, then its two assets, as a
        # browser with nothing cached asks for them (one after the other
        # here; a browser fetches the assets side by side).
        loads, sizes = [], {}
        for _ in range(LOADS):
            conn = http.client.HTTPConnection("127.0.0.1", PORT)
            t = time.perf_counter()
            for path in ("/console/clients",) + ASSETS:
                _, body = get(conn, path, cookie)
                sizes[path] = len(body)
            loads.append((time.perf_counter() - t) * 1000)
            conn.close()

        conn = http.client.HTTPConnection("127.0.0.1", PORT)
        rng = random.Random(7)
        prefix = urllib.parse.quote("scale client 9999")
        kinds = [
            ("the first page", lambda: "/console/clients",
             lambda: "/admin/v1/clients?limit=50", REQUESTS),
            ("a name-prefix search (`scale client 9999`, 111 match)",
             lambda: f"/console/clients?q={prefix}",
             lambda: f"/admin/v1/clients?limit=50&name_prefix={prefix}", max(REQUESTS // 10, 10)),
        ]
        deep = []
        for _ in range(REQUESTS):
            deep.append(scale.client_id(rng.randint(1, 999_000)))
        kinds.append(("a deep page (`after` a random one of the million)",
                      lambda: f"/console/clients?after={deep[rng.randrange(len(deep))]}",
                      lambda: f"/admin/v1/clients?limit=50&after={deep[rng.randrange(len(deep))]}",
                      REQUESTS))
        rows = []
        for name, console_path, api_path, n in kinds:
            # Alternated, so that neither reads pages the other left warm.
            console, api = [], []
            for _ in range(n):
                console.append(get(conn, console_path(), cookie)[0])
                api.append(get(conn, api_path(), bearer)[0])
            rows.append((name, n, console, api))
    finally:
        server.terminate()
        server.wait()
    load = os.getloadavg()
    first = ["| part | bytes |", "|---|---|"]
    for path in ("/console/clients",) + ASSETS:
        first.append(f"| `{path}` | {sizes[path]:,} |")
    first.append(f"| all three | {sum(sizes.values()):,} |")
    table = ["| clients page | requests | console p50 | console p99 | admin API p50 | admin API p99 |",
             "|---|---|---|---|---|---|"]
    for name, n, console, api in rows:
        table.append(f"| {name} | {n} | {percentile(console, 50):.2f} ms | {percentile(console, 99):.2f} ms"
                     f" | {percentile(api, 50):.2f} ms | {percentile(api, 99):.2f} ms |")
    section = f"""## Web console with a million clients

Produced by `bench/console`: {scale.CLIENTS:,} clients imported into SQLite
(in {imported:.0f} s), `writ serve` on its default settings, a console
session opened with a `writ console` link. Timed at the client (Python's
http.client), one request at a time. Load average at the end: {load[0]:.2f}.

First load of the clients page with nothing cached: a new connection, the
HTML page (its first 50 clients), then its stylesheet and script, one after
the other, {LOADS} times. Sizes are as sent (no compression); the assets
are then cached by the browser for 5 minutes.

{chr(10).join(first)}

Time for the three: p50 {percentile(loads, 50):.2f} ms, p99 {percentile(loads, 99):.2f} ms
(the very first: {loads[0]:.2f} ms).

The clients page, 50 clients a page, beside the admin API's list with the
same query and page size, from one keep-alive connection, the two
alternating:

{chr(10).join(table)}
"""
    write_section("Web console with a million clients", section)
    print(section)


if __name__ == "__main__":
    main()
