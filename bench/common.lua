-- Shared by the wrk scripts of bench/: per-thread identity, the request cap, the data files and
-- a machine-readable summary. Loaded with dofile() by each script (wrk runs one Lua state per
-- thread plus one for setup/done; each loads the script, hence this file, on its own).
--
-- Environment (set by bench/run.sh):
--   BENCH_OUT       file a one-line summary is appended to by done()
--   BENCH_MAX       most requests per run (all threads together); 0 = unbounded (time bound only)
--   BENCH_PHONES    file of "phone_number_id access_token" lines
--   BENCH_CUSTOMERS customers per phone number (their wa_ids are BENCH_CUSTOMER_BASE + i)
--   BENCH_SAMPLE    when set to N: keep the id of every N-th 2xx answer (wamid sampling)

local common = {}

local threads = {}
local next_id = 0

-- Called by wrk in the main state for each thread before it starts.
function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  thread:set("thread_count", tonumber(os.getenv("BENCH_THREADS") or "1"))
  table.insert(threads, thread)
end

function common.env_num(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return tonumber(v)
end

-- This thread's share of BENCH_MAX requests (0 = no cap).
function common.cap()
  local max = common.env_num("BENCH_MAX", 0)
  if max <= 0 then return 0 end
  local n = thread_count or 1
  local per = math.floor(max / n)
  if (thread_id or 0) < max % n then per = per + 1 end
  return per
end

-- Ends this thread: it stops sending and leaves a marker file. wrk itself only ends at its -d
-- duration; bench/run.sh sends wrk SIGINT (which makes it stop and report at once) when every
-- thread has left its marker.
local finished = false
function common.finish()
  if finished then return end
  finished = true
  local f = io.open(os.getenv("BENCH_OUT") .. ".done." .. tostring(thread_id or 0), "w")
  if f then f:close() end
  wrk.thread:stop()
end

-- wrk calls request() once on thread 0 before the run, to check the script (it counts the
-- requests in the string); that call is not a request sent. True on that call only.
local verify_pending = nil
function common.is_verify_call()
  if verify_pending == nil then verify_pending = (thread_id or 0) == 0 end
  if verify_pending then
    verify_pending = false
    return true
  end
  return false
end

-- Counts a request; ends this thread once its cap is reached.
local sent, cap = 0, nil
function common.count()
  if cap == nil then cap = common.cap() end
  sent = sent + 1
  if cap > 0 and sent >= cap then common.finish() end
end

function common.read_phones()
  local path = os.getenv("BENCH_PHONES")
  local phones = {}
  for line in io.lines(path) do
    local id, token = line:match("^(%S+)%s+(%S+)")
    if id then table.insert(phones, { id = id, token = token }) end
  end
  assert(#phones > 0, "no phone numbers in " .. tostring(path))
  return phones
end

-- Pair k (0-based) → phone index, customer wa_id. Consecutive k hit different numbers, so per-number
-- and per-customer load is spread evenly.
function common.pair(k, phones, customers)
  local p = k % #phones
  local c = math.floor(k / #phones) % customers
  local base = common.env_num("BENCH_CUSTOMER_BASE", 15550000000)
  return phones[p + 1], string.format("%d", base + c)
end

-- Wamid sampling (only when BENCH_SAMPLE is set, so measured runs do not parse bodies).
samples = {}
ok_count = 0
local sample_every = common.env_num("BENCH_SAMPLE", 0)
if sample_every > 0 then
  function response(status, headers, body)
    if status >= 200 and status < 300 then
      ok_count = ok_count + 1
      if ok_count % sample_every == 1 and #samples < 200 then
        local id = body:match('"id"%s*:%s*"(wamid[^"]+)"')
        if id then table.insert(samples, id) end
      end
    end
  end
end

-- One line of key=value pairs: what bench/run.sh reads back.
function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local line = string.format(
    "requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.status, e.timeout)
  local out = assert(io.open(os.getenv("BENCH_OUT"), "a"))
  out:write(line, "\n")
  if sample_every > 0 then
    local ok = 0
    for _, t in ipairs(threads) do
      ok = ok + (t:get("ok_count") or 0)
      local s = t:get("samples") or {}
      for _, id in ipairs(s) do out:write("wamid=", id, "\n") end
    end
    out:write("ok_count=", ok, "\n")
  end
  out:close()
end

return common
