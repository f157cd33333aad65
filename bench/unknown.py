#!/usr/bin/env python3
"""401s for client ids nobody registered, against 401s for a wrong secret.

Clients are read from the store on demand (read-your-writes), so an id the
node does not hold costs a store lookup, once per id (then it is
remembered for a minute). This measures the worst case, a random new id on
every request, against the wrong-secret 401 of a registered client (no
lookup), in the same run: server pinned to CPU 0, wrk to CPU 1, c64.
Writes the section "401s for unknown client ids" of BENCHMARKS.md.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import WRIT, Server, basic, run, write_section, wrk  # noqa: E402

SECONDS = int(os.environ.get("WRIT_BENCH_SECONDS", "10"))

# The Authorization headers are made ahead of the run, one a line, and sent
# in turn: encoding them in wrk's Lua would make the load generator, not
# the server, the limit (it did, at about 29,000/s).
LUA = r"""
local headers, i = {}, 0
for line in io.lines(os.getenv("WRK_HEADERS")) do headers[#headers + 1] = line end
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  i = i + 1
  wrk.headers["Authorization"] = headers[(i - 1) % #headers + 1]
  return wrk.format()
end
done = function(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,'
    .. '"p50":%d,"p99":%d,"p999":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""
# More random ids than requests in a run (wrk wraps around otherwise, and
# a repeated id is answered from memory, not the store).
RANDOM_IDS = int(os.environ.get("WRIT_BENCH_UNKNOWN_IDS", "1500000"))


def headers_file(path, ids):
    with open(path, "w") as f:
        for client_id in ids:
            f.write(basic(client_id, "not-a-secret") + "\n")
    return path


def main():
    work = tempfile.mkdtemp(prefix="writ-unknown-bench-")
    db = f"sqlite://{work}/writ.db"
    config = os.path.join(work, "writ.toml")
    with open(config, "w") as f:
        f.write("[limits]\nenabled = false\n")
    run([WRIT, "init", "--database", db])
    out = run([WRIT, "client", "create", "--name", "b", "--json", "--database", db])
    client_id = __import__("json").loads(out)["client_id"]
    lua = os.path.join(work, "headers.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    fixed = headers_file(os.path.join(work, "fixed.txt"), [client_id])
    def unknown(name, count):
        return headers_file(os.path.join(work, name),
                            (f"unknown-{os.urandom(8).hex()}" for _ in range(count)))
    # The warm-up has ids of its own: an id asked twice is answered from memory.
    random_ids = (unknown("warm.txt", RANDOM_IDS // 5), unknown("random.txt", RANDOM_IDS))
    rows = []
    for name, (warm, headers) in (("wrong secret, a registered client", (fixed, fixed)),
                                  ("a random unknown id each request", random_ids)):
        server = Server(name, [WRIT, "serve", "--listen", "127.0.0.1:18990", "--database", db,
                               "--config", config], env={"RUST_LOG": "warn"})
        try:
            os.environ["WRK_HEADERS"] = warm
            wrk("/oauth/token", "", "", "", 64, 2, lua)
            os.environ["WRK_HEADERS"] = headers
            cpu0 = server.cpu_seconds()
            r = wrk("/oauth/token", "", "", "", 64, SECONDS, lua)
            cpu = server.cpu_seconds() - cpu0
        finally:
            server.stop()
        rate = r["requests"] / (r["duration_us"] / 1e6)
        rows.append((name, rate, r["p99"] / 1000, cpu * 1e6 / max(r["requests"], 1)))
        print(name, f"{rate:,.0f}/s", file=sys.stderr)
    base = rows[0][1]
    table = ["| 401 for | requests/s | p99 | server CPU µs per request |", "|---|---|---|---|"]
    for name, rate, p99, us in rows:
        table.append(f"| {name} | {rate:,.0f} ({rate / base:.0%}) | {p99:.2f} ms | {us:.0f} |")
    load = os.getloadavg()
    section = f"""## 401s for unknown client ids

Produced by `bench/unknown`, SQLite, limits off, c64 for {SECONDS} s: the
worst case for the store lookup a client id the node does not hold costs
(read-your-writes), a new random id on every request, beside the 401 of a
wrong secret for a registered client in the same run. Load average at the
end: {load[0]:.2f}.

{chr(10).join(table)}
"""
    write_section("401s for unknown client ids", section)
    print(section)


if __name__ == "__main__":
    main()
