-- wrk script of the steady-state benchmark (benchmarks/steady.py): POST each signed
-- request of a file once, read as it is sent (a million do not fit in wrk's memory
-- as post.lua's table).  In wrk's environment:
--   BENCH_DATA   the file: first line "host:port path", then one request per line,
--                "<X-Twilio-Signature> <form body>", each a distinct MessageSid
--   BENCH_SKIP   requests of the file sent by earlier runs, passed over (default 0)
--   BENCH_NONCE  seeds the I-Twilio-Idempotency-Tokens (random UUIDs), new every run
-- done() prints the latency percentiles wrk's --latency leaves out (99.9%), and
-- whether the file ran out (then the last request was sent again: a copy).

-- twilio_request.lua, beside this script, assembles the requests.
package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local twilio_request = require("twilio_request")

local nonce = os.getenv("BENCH_NONCE") or "00000000-0000-0000"
local path_to_data = os.getenv("BENCH_DATA")
local file, host, path, last
local exhausted = false

function init(args)
   if not path_to_data then
      error("steady.lua: BENCH_DATA is not set")
   end
   file = assert(io.open(path_to_data, "r"))
   local first = file:read("*l")
   local found_host, found_path = first:match("^(%S+) (%S+)$")
   assert(found_host and found_path, "steady.lua: bad first line in " .. path_to_data)
   host, path = found_host, found_path
   for _ = 1, tonumber(os.getenv("BENCH_SKIP") or "0") do
      if not file:read("*l") then
         break
      end
   end
   math.randomseed(os.time() + tonumber(nonce:sub(1, 8), 16))
end

function request()
   local line = (not exhausted) and file:read("*l") or nil
   if line then
      local signature, body = line:match("^(%S+) (%S+)$")
      local head, tail = twilio_request.parts(host, path, signature, body)
      last = head .. twilio_request.token() .. tail
   else
      exhausted = true -- the last one again: a copy, and steady.py calls the run failed
   end
   return last
end

function done(summary, latency, requests)
   io.write(string.format(
      "steady: requests %d duration_us %d non2xx %d errors %d p50_us %d p99_us %d "
         .. "p999_us %d max_us %d exhausted %d\n",
      summary.requests, summary.duration, summary.errors.status,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
      exhausted and 1 or 0
   ))
end
