-- wrk script for bench/gateway.sh: the same GET to every target (direct, nginx hop, Charter
-- gateway), with `Authorization: Bearer $BENCH_TOKEN`, so the request bytes are the same;
-- only the gateway reads the header.
--   BENCH_TOKEN      the partner's access token (required)
--   BENCH_DELAY_MS   paced mode: mean pause in ms (fractional) after each response, per
--                    connection. wrk's delay() takes whole milliseconds, so each pause is
--                    floor or ceil of the mean, chosen at random to give that mean. With C
--                    connections the rate is about C / (pause + latency).
--   BENCH_NAME       name in the BENCH_RESULT line
-- Prints one BENCH_RESULT line (see lib.lua) at the end.
local lib = dofile((os.getenv("BENCH_DIR") or "bench") .. "/lib.lua")

-- Static request (built once per thread): no Lua call per request in the default mode.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. lib.env("BENCH_TOKEN")
wrk.headers["Accept"] = "application/json"

local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause and pause > 0 then
  local lo = math.floor(pause)
  local frac = pause - lo
  local seeded = false
  function delay()
    if not seeded then
      math.randomseed(math.floor(lib.now_us()) % 2147483647)
      seeded = true
    end
    if math.random() < frac then return lo + 1 end
    return lo
  end
end

function done(summary, latency, requests)
  lib.report(os.getenv("BENCH_NAME") or "gateway", summary, latency,
    { delay_ms = pause or 0 })
end
