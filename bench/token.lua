-- wrk script: OAuth 2.0 client_credentials token requests with client_secret_basic.
--   CHARTER_CLIENT_ID, CHARTER_CLIENT_SECRET  the credential (required)
--   BENCH_RECORD=PREFIX   mint mode: append each issued access_token to PREFIX.<thread>
--                         and stop a thread once it has BENCH_RECORD_QUOTA tokens
-- Prints one BENCH_RESULT line (see lib.lua) at the end.
local lib = dofile((os.getenv("BENCH_DIR") or "bench") .. "/lib.lua")

local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  threads[#threads + 1] = thread
end

local req
local out, quota, prefix = nil, 0, nil
recorded = 0 -- global: read back by done() through thread:get()

function init(args)
  local id = lib.env("CHARTER_CLIENT_ID")
  local secret = lib.env("CHARTER_CLIENT_SECRET")
  local basic = lib.base64(lib.form_encode(id) .. ":" .. lib.form_encode(secret))
  req = wrk.format("POST", nil, {
    ["Authorization"] = "Basic " .. basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Accept"] = "application/json",
  }, "grant_type=client_credentials")
  prefix = os.getenv("BENCH_RECORD")
  if prefix and prefix ~= "" then
    out = assert(io.open(prefix .. "." .. thread_id, "w"))
    quota = tonumber(lib.env("BENCH_RECORD_QUOTA", "1e12"))
    -- Only in mint mode: a defined response() makes wrk hand every body to Lua.
    response = function(status, headers, body)
      if status == 200 and recorded < quota then
        local tok = body:match('"access_token"%s*:%s*"([^"]+)"')
        if tok then
          out:write(tok, "\n")
          recorded = recorded + 1
          if recorded >= quota then
            out:close()
            -- tells bench/oauth.sh this thread is done (wrk itself waits out -d)
            assert(io.open(prefix .. "." .. thread_id .. ".done", "w")):close()
            wrk.thread:stop()
          end
        end
      end
    end
  end
end

function request()
  return req
end

function done(summary, latency, requests)
  local recorded_total = 0
  for _, t in ipairs(threads) do recorded_total = recorded_total + (t:get("recorded") or 0) end
  lib.report(os.getenv("BENCH_NAME") or "token", summary, latency,
    { recorded = recorded_total })
end
