-- wrk script for the ingest benchmark.
--   pos:    wrk ... -s events.lua URL -- pos <ingest key> <restaurant id> <event id prefix>
--           one POS event per request, each with a new event_id ("<prefix>-w<thread>-<n>")
--   stripe: wrk ... -s events.lua URL -- stripe <bodies file prefix> <path>
--           cycles through pre-signed Stripe webhooks read from "<prefix>.<thread>"
-- done() prints one line "BENCH_JSON {...}" with rate, latency percentiles and counts.
-- Non-2xx answers are wrk's own status error count (status > 399; ingest sends no 1xx/3xx):
-- a Lua response() hook would make wrk build header and body tables for every answer,
-- which cost 20-50 % of wrk's rate against the bare ASGI app on this 2-core machine.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local mode, key, restaurant, prefix, path
local counter = 0
local bodies = {}
local headers = {}
sent = 0
repeats = 0
local now_iso, now_sec = "", -1

local function iso_now()
   local t = os.time()
   if t ~= now_sec then
      now_sec = t
      now_iso = os.date("!%Y-%m-%dT%H:%M:%SZ", t)
   end
   return now_iso
end

local TEMPLATES = {
   '{"event_id":"%s","type":"table.seated","occurred_at":"%s","restaurant_id":"%s",'
      .. '"table_id":"t%d","data":{"covers":4}}',
   '{"event_id":"%s","type":"order.created","occurred_at":"%s","restaurant_id":"%s",'
      .. '"order_id":"o%d","table_id":"t%d","data":{"channel":"dine_in","covers":4}}',
   '{"event_id":"%s","type":"order.item_added","occurred_at":"%s","restaurant_id":"%s",'
      .. '"order_id":"o%d","table_id":"t%d","data":{"line_id":"l1","item_id":"shawarma",'
      .. '"item_name":"Chicken shawarma","quantity":2,"unit_price":24.00,"currency":"AED"}}',
   '{"event_id":"%s","type":"order.paid","occurred_at":"%s","restaurant_id":"%s",'
      .. '"order_id":"o%d","table_id":"t%d","data":{"amount":96.00,"currency":"AED",'
      .. '"payment_ref":"pay-1"}}',
}

function init(args)
   mode = args[1]
   if mode == "pos" then
      key, restaurant, prefix = args[2], args[3], args[4]
      headers = {
         ["Authorization"] = "Bearer " .. key,
         ["Content-Type"] = "application/json",
      }
   elseif mode == "stripe" then
      path = args[3]
      local fh = assert(io.open(args[2] .. "." .. tid, "r"))
      for line in fh:lines() do
         local tab = line:find("\t", 1, true)
         bodies[#bodies + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
      end
      fh:close()
   else
      error("mode must be pos or stripe")
   end
end

function request()
   counter = counter + 1
   sent = counter
   if mode == "pos" then
      local id = string.format("%s-w%d-%d", prefix, tid, counter)
      local n = counter % #TEMPLATES + 1
      local order = tid * 1000000000 + math.floor(counter / 4)
      local body
      if n == 1 then
         body = string.format(TEMPLATES[1], id, iso_now(), restaurant, counter % 40)
      else
         body = string.format(TEMPLATES[n], id, iso_now(), restaurant, order, counter % 40)
      end
      return wrk.format("POST", "/events", headers, body)
   end
   local i = (counter - 1) % #bodies + 1
   if counter > #bodies then
      repeats = repeats + 1
   end
   local item = bodies[i]
   return wrk.format("POST", path, {
      ["Stripe-Signature"] = item[1],
      ["Content-Type"] = "application/json",
   }, item[2])
end

function done(summary, latency, requests)
   local total_sent, total_repeats = 0, 0
   for _, t in ipairs(threads) do
      total_sent = total_sent + t:get("sent")
      total_repeats = total_repeats + t:get("repeats")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,"rps":%.1f,'
         .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,'
         .. '"non2xx":%d,"sent":%d,"repeats":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
      summary.duration, summary.requests, summary.bytes,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean,
      e.status, total_sent, total_repeats,
      e.connect, e.read, e.write, e.status, e.timeout))
end
