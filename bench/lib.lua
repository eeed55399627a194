-- Shared helpers for the wrk scripts in bench/ (loaded with dofile from $BENCH_DIR).
-- wrk runs setup()/done() in one Lua state and each thread in its own state; every state
-- loads the script, and so this file, separately.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]

local lib = {}

-- Wall-clock microseconds (CLOCK_MONOTONIC).
local ts = ffi.new("bench_timespec")
function lib.now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

function lib.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then error("environment variable " .. name .. " is required") end
    return default
  end
  return v
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function lib.base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1)
      .. (b and b64chars:sub(c3 + 1, c3 + 1) or "=")
      .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

-- application/x-www-form-urlencoded encoding (RFC 6749 §2.3.1 applies it to Basic
-- credentials too).
function lib.form_encode(s)
  return (s:gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end))
end

-- Reads a file of one token per line.
function lib.read_lines(path)
  local t = {}
  for line in io.lines(path) do
    if #line > 0 then t[#t + 1] = line end
  end
  return t
end

-- One machine-readable summary line for bench/oauth.sh.
function lib.report(name, summary, latency, extra)
  local e = summary.errors
  local parts = {
    "BENCH_RESULT", "name=" .. name,
    "requests=" .. summary.requests,
    "duration_us=" .. summary.duration,
    string.format("rps=%.1f", summary.requests / (summary.duration / 1e6)),
    "p50_us=" .. latency:percentile(50.0),
    "p90_us=" .. latency:percentile(90.0),
    "p99_us=" .. latency:percentile(99.0),
    "max_us=" .. latency.max,
    "status_errors=" .. e.status,
    "connect_errors=" .. e.connect,
    "read_errors=" .. e.read,
    "write_errors=" .. e.write,
    "timeouts=" .. e.timeout,
  }
  for k, v in pairs(extra or {}) do parts[#parts + 1] = k .. "=" .. tostring(v) end
  io.write(table.concat(parts, " ") .. "\n")
end

return lib
