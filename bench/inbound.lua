-- Setup: each (phone number, customer) pair writes once through the sandbox, which opens its
-- customer-service window. Threads split the pairs and walk their slice, then wrap around (a
-- repeated pair only re-opens its window). A thread ends once it has as many 2xx answers as its
-- slice plus its connections, so that the whole slice has been answered; bench/run.sh checks
-- the windows in the database afterwards and runs this again if any is missing.
local common = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local reqs, k, count, ok, enough

function init(args)
  local phones = common.read_phones()
  local customers = common.env_num("BENCH_CUSTOMERS", 1)
  local pairs_n = #phones * customers
  local t, n = thread_id or 0, thread_count or 1
  local first = math.floor(t * pairs_n / n)
  count = math.max(1, math.floor((t + 1) * pairs_n / n) - first)
  reqs = {}
  for i = 0, count - 1 do
    local phone, wa = common.pair((first + i) % pairs_n, phones, customers)
    local body = string.format(
      '{"from":"%s","profile_name":"Bench %s","type":"text","text":{"body":"hi, benchmark"}}', wa, wa)
    reqs[i + 1] = wrk.format("POST", "/sandbox/v1/" .. phone.id .. "/inbound", {
      ["Authorization"] = "Bearer " .. phone.token,
      ["Content-Type"] = "application/json",
    }, body)
  end
  k, ok = 0, 0
  enough = count + common.env_num("BENCH_CONNS_PER_THREAD", 1)
end

function request()
  if common.is_verify_call() then return reqs[1] end
  local r = reqs[(k % count) + 1]
  k = k + 1
  return r
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 end
  if ok >= enough then common.finish() end
end
