-- Send: in-window text messages through the full path (POST /v23.0/{phone}/messages with the
-- tenant's token). Rotates over every (phone number, customer) pair whose window bench/run.sh
-- opened; each thread starts at its own offset. Requests are built once in init().
local common = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local reqs, n, k

function init(args)
  local phones = common.read_phones()
  local customers = common.env_num("BENCH_CUSTOMERS", 1)
  n = #phones * customers
  reqs = {}
  for i = 0, n - 1 do
    local phone, wa = common.pair(i, phones, customers)
    local body = string.format(
      '{"messaging_product":"whatsapp","recipient_type":"individual","to":"%s","type":"text",' ..
      '"text":{"preview_url":false,"body":"Your order %d has shipped and will arrive tomorrow."}}', wa, i)
    reqs[i + 1] = wrk.format("POST", "/v23.0/" .. phone.id .. "/messages", {
      ["Authorization"] = "Bearer " .. phone.token,
      ["Content-Type"] = "application/json",
    }, body)
  end
  k = math.floor((thread_id or 0) * n / (thread_count or 1))
end

function request()
  if common.is_verify_call() then return reqs[(k % n) + 1] end
  common.count()
  local r = reqs[(k % n) + 1]
  k = k + 1
  return r
end
