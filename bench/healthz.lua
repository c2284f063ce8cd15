-- Floor: greenlight's cheapest endpoint, GET /healthz (no auth, no store).
local common = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local req = wrk.format("GET", "/healthz")
function request()
  if common.is_verify_call() then return req end
  common.count()
  return req
end
