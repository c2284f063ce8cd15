-- Send: messages through the full path (POST /v23.0/{phone}/messages with the tenant's token).
-- Rotates over every (phone number, customer) pair that bench/run.sh prepared; each thread starts
-- at its own offset. Requests are built once in init().
--   BENCH_MESSAGE=text (default): an in-window text (run.sh opened the customers' windows);
--   BENCH_MESSAGE=template: a business-initiated utility template BENCH_TEMPLATE_NAME (run.sh
--     had it approved and recorded the customers' opt-ins; their windows are not open).
local common = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local reqs, n, k

local function body_for(wa, i)
  if (os.getenv("BENCH_MESSAGE") or "text") == "template" then
    return string.format(
      '{"messaging_product":"whatsapp","recipient_type":"individual","to":"%s","type":"template",' ..
      '"template":{"name":"%s","language":{"code":"en_US"},"components":[{"type":"body","parameters":' ..
      '[{"type":"text","text":"B-%d"},{"type":"text","text":"Friday"}]}]}}',
      wa, os.getenv("BENCH_TEMPLATE_NAME") or "bench_order_update", i)
  end
  return string.format(
    '{"messaging_product":"whatsapp","recipient_type":"individual","to":"%s","type":"text",' ..
    '"text":{"preview_url":false,"body":"Your order %d has shipped and will arrive tomorrow."}}', wa, i)
end

function init(args)
  local phones = common.read_phones()
  local customers = common.env_num("BENCH_CUSTOMERS", 1)
  n = #phones * customers
  reqs = {}
  for i = 0, n - 1 do
    local phone, wa = common.pair(i, phones, customers)
    reqs[i + 1] = wrk.format("POST", "/v23.0/" .. phone.id .. "/messages", {
      ["Authorization"] = "Bearer " .. phone.token,
      ["Content-Type"] = "application/json",
    }, body_for(wa, i))
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
