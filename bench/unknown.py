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
from bench import WRIT, Server, run, write_section, wrk  # noqa: E402

SECONDS = int(os.environ.get("WRIT_BENCH_SECONDS", "10"))

# wrk's Lua has no base64 library: the script encodes the Basic header itself.
LUA = r"""
local b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function enc(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end
math.randomseed(os.time())
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  local id = string.format("unknown-%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  wrk.headers["Authorization"] = "Basic " .. enc(id .. ":not-a-secret")
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


def main():
    work = tempfile.mkdtemp(prefix="writ-unknown-bench-")
    db = f"sqlite://{work}/writ.db"
    config = os.path.join(work, "writ.toml")
    with open(config, "w") as f:
        f.write("[limits]\nenabled = false\n")
    run([WRIT, "init", "--database", db])
    out = run([WRIT, "client", "create", "--name", "b", "--json", "--database", db])
    client_id = __import__("json").loads(out)["client_id"]
    random_lua = os.path.join(work, "random.lua")
    with open(random_lua, "w") as f:
        f.write(LUA)
    with open(os.path.join(work, "fixed.lua"), "w") as f:
        f.write(LUA.replace('local id = string.format("unknown-%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))',
                            f'local id = "{client_id}"'))
    rows = []
    for name, lua in (("wrong secret, a registered client", os.path.join(work, "fixed.lua")),
                      ("a random unknown id each request", random_lua)):
        server = Server(name, [WRIT, "serve", "--listen", "127.0.0.1:18990", "--database", db,
                               "--config", config], env={"RUST_LOG": "warn"})
        try:
            wrk("/oauth/token", "", "", "", 64, 2, lua)
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
