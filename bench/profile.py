#!/usr/bin/env python3
"""Where a request's time goes: instructions per request for each scenario
(callgrind), against the ceiling's and a signing ceiling's, and flame
graphs of the token path under load (perf, as SVG in bench/).

Instructions are counted in user space only (the kernel's share, sockets
and fsync, is in the perf profiles), from a run of SECONDS at concurrency
16 after a warm-up, divided by the requests served; they do not vary from
run to run as timings do, so they show what a change saved. Writes the
"Instructions per request" section of BENCHMARKS.md.

Run it through `bench/profile`, which installs what it needs first.
"""

import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (shares the benchmark's set-up and servers)

SECONDS = int(os.environ.get("WRIT_PROFILE_SECONDS", "10"))
# `WRIT_PROFILE_BINARY=path`: count another build of Writ (say, the commit
# before a change) and print the table only: no flame graphs, nothing written.
OTHER = os.environ.get("WRIT_PROFILE_BINARY")
CONCURRENCY = 16
FLAMES = {  # scenario -> SVG written beside this script
    "Writ JWT ES256": "flame-jwt-es256.svg",
    "Writ opaque (SQLite)": "flame-opaque-sqlite.svg",
}


def started(cmd, env=None):
    """A server under `cmd`, once it accepts connections (valgrind is slow)."""
    proc = subprocess.Popen(cmd, env=dict(os.environ, **(env or {})),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while True:
        try:
            socket.create_connection(("127.0.0.1", bench.PORT), timeout=0.5).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{cmd[0]} did not start")
            time.sleep(0.1)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(path, body, content_type, auth, seconds, concurrency, lua):
    """wrk against the server (not pinned: valgrind runs it on one thread)."""
    env = {"WRK_BODY": body or "", "WRK_CT": content_type, "WRK_AUTH": auth or "",
           "WRK_BODIES": ""}
    out = bench.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s",
                     "-s", lua, f"http://127.0.0.1:{bench.PORT}{path}"], env=env)
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return bench.json.loads(line[len("RESULT "):])


def instructions(name, cmd, env, path, body, content_type, auth, expect, lua, work):
    """User-space instructions per request: callgrind counts only between
    the warm-up's end and the measured run's end."""
    out = os.path.join(work, "callgrind.out")
    proc = started(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                    f"--callgrind-out-file={out}", *cmd], env)
    try:
        if isinstance(body, bench.TokenOf):
            status, tok = bench.request("/oauth/token", body.request,
                                        "application/x-www-form-urlencoded", auth)
            assert status == 200, tok
            body = f"token={tok['access_token']}"
        if expect == 429:  # the address's burst of one (`bench.LIMITED`), spent
            bench.request(path, body, content_type, auth)
        status, answer = bench.request(path, body, content_type, auth)
        if status != expect:
            raise SystemExit(f"{name}: expected {expect}, got {status} {answer}")
        # Instrumented from the warm-up on (translation happens there), the
        # counts zeroed after it and dumped at the end of the measured run.
        bench.run(["callgrind_control", "--instr=on", str(proc.pid)])
        load(path, body, content_type, auth, 3, CONCURRENCY, lua)
        bench.run(["callgrind_control", "--zero", str(proc.pid)])
        r = load(path, body, content_type, auth, SECONDS, CONCURRENCY, lua)
        bench.run(["callgrind_control", "--dump", str(proc.pid)])
    finally:
        stop(proc)
    total = None
    for f in os.listdir(work):
        if f.startswith("callgrind.out"):
            if f.endswith(".1"):
                with open(os.path.join(work, f)) as fh:
                    total = next(int(line.split()[1]) for line in fh
                                 if line.startswith("totals:"))
            os.remove(os.path.join(work, f))
    if total is None:
        raise SystemExit(f"{name}: callgrind wrote no dump")
    requests = r["requests"]
    per = total / max(requests, 1)
    bench.log(f"  {name:40} {requests:>7} requests  {per:>10,.0f} instructions/request")
    return per


def flame(name, cmd, env, path, body, content_type, auth, lua, work, svg):
    """A perf profile at concurrency 64, server on CPU 0 and wrk on CPU 1 as
    in the benchmark, folded (inferno) into an SVG."""
    data = os.path.join(work, "perf.data")
    proc = started(["taskset", "-c", bench.SERVER_CPU, *cmd], env)
    try:
        if isinstance(body, bench.TokenOf):
            status, tok = bench.request("/oauth/token", body.request,
                                        "application/x-www-form-urlencoded", auth)
            body = f"token={tok['access_token']}"
        bench.wrk(path, body, content_type, auth, 64, 2, lua)
        env_wrk = {"WRK_BODY": body or "", "WRK_CT": content_type, "WRK_AUTH": auth or "",
                   "WRK_BODIES": ""}
        loader = subprocess.Popen(
            ["taskset", "-c", bench.LOAD_CPU, "wrk", "-t1", "-c64", "-d8s", "-s", lua,
             f"http://127.0.0.1:{bench.PORT}{path}"],
            env=dict(os.environ, **env_wrk), stdout=subprocess.DEVNULL)
        bench.run(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-p",
                   str(proc.pid), "-o", data, "--", "sleep", "6"])
        loader.wait()
    finally:
        stop(proc)
    script = subprocess.run(["perf", "script", "-i", data], capture_output=True, check=True)
    folded = subprocess.run(["inferno-collapse-perf"], input=script.stdout, capture_output=True,
                            check=True)
    graph = subprocess.run(["inferno-flamegraph", "--title", f"{name}: server CPU, c=64",
                            "--width", "1600"], input=folded.stdout, capture_output=True,
                           check=True)
    with open(os.path.join(bench.ROOT, "bench", svg), "wb") as f:
        f.write(graph.stdout)
    os.remove(data)
    bench.log(f"  {name}: bench/{svg}")


def main():
    for tool in ("wrk", "valgrind", "callgrind_control", "perf", "inferno-flamegraph"):
        if not bench.shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run bench/profile, which installs it")
    work = tempfile.mkdtemp(prefix="writ-profile-")
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write(bench.LUA)
    try:
        sqlite = f"sqlite://{work}/writ.db"
        creds = bench.setup_writ(sqlite, {})
        config = os.path.join(work, "writ.toml")
        with open(config, "w") as f:
            f.write("[limits]\nenabled = false\n")
        quiet = {"RUST_LOG": "info,audit=off"}
        writ = [OTHER or bench.WRIT, "serve", "--listen", f"127.0.0.1:{bench.PORT}", "--database", sqlite,
                "--config", config]
        limited = os.path.join(work, "writ-limited.toml")
        with open(limited, "w") as f:
            f.write(bench.LIMITED)
        writ_limited = writ[:-1] + [limited]
        ceiling = [bench.CEILING, f"127.0.0.1:{bench.PORT}"]
        form = "application/x-www-form-urlencoded"
        cc = "grant_type=client_credentials"
        secret = bench.basic("bench", "secret")
        rows = [
            ("ceiling (axum, fixed JSON)", ceiling, {}, "/oauth/token", cc, secret, 200),
            ("ceiling + one ES256 signature", ceiling + ["--sign", "ES256"], {}, "/oauth/token",
             cc, secret, 200),
            ("ceiling + one EdDSA signature", ceiling + ["--sign", "EdDSA"], {}, "/oauth/token",
             cc, secret, 200),
        ]
        for (name, kind, path, body, ct, auth, expect) in bench.writ_scenarios(creds, "sqlite", collections.defaultdict(lambda: None)):
            if name in ("Writ JWT ES256", "Writ JWT EdDSA", "Writ opaque (SQLite)",
                        "Writ wrong secret (401)") or "introspection" in name:
                rows.append((name, writ, quiet, path, body, auth, expect))
            if name == "Writ rate-limited (429)":
                rows.append((name, writ_limited, quiet, path, body, auth, expect))
        results = {}
        for name, cmd, env, path, body, auth, expect in rows:
            results[name] = instructions(name, cmd, env, path, body, form, auth, expect, lua, work)
        if OTHER:
            return print(table(results))
        with bench.halt_polling():  # as in bench/run
            for name, cmd, env, path, body, auth, expect in rows:
                if name in FLAMES:
                    flame(name, cmd, env, path, body, form, auth, lua, work, FLAMES[name])
        report(results)
    finally:
        bench.shutil.rmtree(work, ignore_errors=True)


def baseline(name):
    """The row an instruction count is compared with."""
    if "JWT ES256" in name and "introspection" not in name:
        return "ceiling + one ES256 signature"
    if "JWT EdDSA" in name:
        return "ceiling + one EdDSA signature"
    return "ceiling (axum, fixed JSON)"


def table(results):
    lines = ["| scenario | instructions/request | compared with | instructions above it |",
             "|---|---|---|---|"]
    for name, per in results.items():
        base = baseline(name)
        above = (f"{per - results[base]:+,.0f}" if base in results and base != name
                 and not name.startswith("ceiling") else "–")
        lines.append(f"| {name} | {per:,.0f} | {base if above != '–' else '–'} | {above} |")
    return "\n".join(lines)


def report(results):
    rows = table(results)
    commit = bench.commit()
    section = f"""## Instructions per request

Produced by `bench/profile` on {commit}: user-space instructions per request counted by
callgrind (valgrind), from a {SECONDS} s run at concurrency {CONCURRENCY}
after a warm-up, divided by the requests served. Unlike timings, they
repeat from run to run, so they show what a change to the code saved; the
kernel's share (sockets, fsync, waking threads) is not in them, and is in
the flame graphs, perf profiles at concurrency 64 with the server on one
core: [JWT ES256](bench/{FLAMES['Writ JWT ES256']}),
[opaque on SQLite](bench/{FLAMES['Writ opaque (SQLite)']}).
Valgrind's CPU has no SHA extensions, so the HMAC-SHA-256 of a client
secret (every Writ row) and of an opaque token (opaque rows) is counted
in its software form, 7,000 to 9,000 instructions each, where the
server's core takes about 100 ns; the signatures' SHA-256 (aws-lc) runs
its AVX code in both.

{rows}
"""
    bench.write_section("Instructions per request", section)
    print(rows)


if __name__ == "__main__":
    main()
