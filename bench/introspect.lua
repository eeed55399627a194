-- wrk script: RFC 7662 introspection as a gateway principal.
--   CHARTER_GATEWAY_TOKEN   bearer token of a principal with role gateway (required)
--   BENCH_TOKENS_FILE       access tokens, one a line (required)
--   BENCH_MODE=same         every request introspects the file's first token (verified once,
--                           then served from the verified-token cache)
--   BENCH_MODE=distinct     every request introspects a token not sent before: thread k of T
--                           takes lines k, k+T, …; a thread that runs out stops, and the rate
--                           is then computed over the time until the last thread ran out
--   BENCH_CHECK_ACTIVE=1    also count responses without "active":true (costs client CPU)
-- Prints one BENCH_RESULT line (see lib.lua) at the end.
local lib = dofile((os.getenv("BENCH_DIR") or "bench") .. "/lib.lua")

local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  threads[#threads + 1] = thread
end

local headers
local mode
local mine = {}
local idx = 0
local last_req
-- read back by done() through thread:get()
fresh = 0
t_start = 0
t_end = 0
exhausted = false
inactive = 0

local function build(token)
  return wrk.format("POST", nil, headers, "token=" .. token)
end

function init(args)
  headers = {
    ["Authorization"] = "Bearer " .. lib.env("CHARTER_GATEWAY_TOKEN"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Accept"] = "application/json",
  }
  mode = lib.env("BENCH_MODE", "same")
  local all = lib.read_lines(lib.env("BENCH_TOKENS_FILE"))
  assert(#all > 0, "no tokens in BENCH_TOKENS_FILE")
  if mode == "same" then
    last_req = build(all[1])
  else
    local n = tonumber(lib.env("BENCH_THREADS"))
    for i = thread_id, #all, n do mine[#mine + 1] = all[i] end
    last_req = build(mine[1])
  end
  all = nil
  collectgarbage()
  if os.getenv("BENCH_CHECK_ACTIVE") == "1" then
    response = function(status, hdrs, body)
      if not body:find('"active":true', 1, true) then inactive = inactive + 1 end
    end
  end
end

function request()
  if t_start == 0 then t_start = lib.now_us() end
  if mode == "same" then return last_req end
  idx = idx + 1
  if idx <= #mine then
    fresh = fresh + 1
    last_req = build(mine[idx])
    return last_req
  end
  if not exhausted then
    exhausted = true
    t_end = lib.now_us()
    wrk.thread:stop()
  end
  return last_req -- a few in-flight repeats while the thread stops
end

function done(summary, latency, requests)
  local extra = {}
  local total_fresh, first, last, any_exhausted, bad = 0, math.huge, 0, false, 0
  for _, t in ipairs(threads) do
    total_fresh = total_fresh + (t:get("fresh") or 0)
    local s, e = t:get("t_start") or 0, t:get("t_end") or 0
    if s > 0 and s < first then first = s end
    if e > last then last = e end
    if t:get("exhausted") then any_exhausted = true end
    bad = bad + (t:get("inactive") or 0)
  end
  if os.getenv("BENCH_CHECK_ACTIVE") == "1" then extra.inactive = bad end
  if lib.env("BENCH_MODE", "same") ~= "same" then
    extra.fresh = total_fresh
    extra.exhausted = tostring(any_exhausted)
    if any_exhausted and last > first then
      -- wrk's own rate divides by the whole -d; use the time the tokens lasted instead
      extra.fresh_window_us = string.format("%.0f", last - first)
      extra.fresh_rps = string.format("%.1f", total_fresh / ((last - first) / 1e6))
    end
  end
  lib.report(os.getenv("BENCH_NAME") or ("introspect_" .. lib.env("BENCH_MODE", "same")),
    summary, latency, extra)
end
