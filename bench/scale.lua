-- Token requests for wrk from many clients, the client chosen per request.
--
-- WRK_AUTH_FILE: one `Authorization` header value a line, client 1 first.
-- WRK_MODE:
--   one    always client 1 (the single-client baseline, at the same Lua
--          cost per request as the others)
--   cycle  each client once, in order, then stop sending and create the
--          file WRK_DONE_FILE (wrk itself runs until its duration is up
--          or it gets SIGINT, which the caller sends on seeing the file)
--   zipf   client k with probability proportional to 1/k (s = 1)
-- WRK_DELAY_MS (optional): a pause before each request on a connection,
--   so a few connections offer a steady load instead of flooding.
-- WRK_SEED: the Zipf draws are the same from run to run.

local mode = os.getenv("WRK_MODE") or "one"
local auth = {}
for line in io.lines(os.getenv("WRK_AUTH_FILE")) do
  auth[#auth + 1] = line
end
local n = #auth

wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

-- Cumulative Zipf probabilities, searched by bisection for each request.
local cdf
if mode == "zipf" then
  cdf = {}
  local sum = 0
  for k = 1, n do
    sum = sum + 1 / k
    cdf[k] = sum
  end
  for k = 1, n do
    cdf[k] = cdf[k] / sum
  end
end

local next_client = 0
local function pick()
  if mode == "one" then
    return 1
  elseif mode == "cycle" then
    next_client = next_client % n + 1
    return next_client
  end
  local u, lo, hi = math.random(), 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

init = function(args)
  math.randomseed(tonumber(os.getenv("WRK_SEED") or "1"))
end

request = function()
  wrk.headers["Authorization"] = auth[pick()]
  return wrk.format()
end

-- Only the working set needs to see responses (to stop after one round);
-- defining `response` makes wrk parse every response into Lua.
ok, bad = 0, 0
if mode == "cycle" then
  response = function(status)
    if status == 200 then ok = ok + 1 else bad = bad + 1 end
    if ok + bad == n then
      wrk.thread:stop()
      io.open(os.getenv("WRK_DONE_FILE"), "w"):close()
    end
  end
end

local pause = tonumber(os.getenv("WRK_DELAY_MS") or "")
if pause then
  delay = function() return pause end
end

local threads = {}
setup = function(thread)
  threads[#threads + 1] = thread
end

done = function(summary, latency, requests)
  local ok_all, bad_all = 0, 0
  for _, t in ipairs(threads) do
    ok_all = ok_all + t:get("ok")
    bad_all = bad_all + t:get("bad")
  end
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,'
    .. '"p50":%d,"p99":%d,"p999":%d,"ok":%d,"bad":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), ok_all, bad_all))
end
