-- wrk script: POST signed Twilio SMS status callbacks, each with a fresh, random
-- I-Twilio-Idempotency-Token (a UUID, as Twilio's are: a key made of it lands at
-- random in an index, not at its end).  benchmarks/run.py writes the requests
-- file and sets, in wrk's environment:
--   BENCH_DATA   the file: first line "host:port path", then one request per
--                line, "<X-Twilio-Signature> <form body>" (each body a distinct
--                MessageSid, signed for http://host:port/path)
--   BENCH_NONCE  18 hex digits and dashes ("xxxxxxxx-xxxx-xxxx"), new for every
--                load run: it seeds the tokens, so that no two runs repeat them
-- The requests are assembled once in init(); request() only appends a counter.

-- twilio_request.lua, beside this script, assembles the requests.
package.path = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") .. "/?.lua;" .. package.path
local twilio_request = require("twilio_request")

local nonce = os.getenv("BENCH_NONCE") or "00000000-0000-0000"
local path_to_data = os.getenv("BENCH_DATA")
local thread_counter = 0

function setup(thread)
   thread:set("thread_id", thread_counter)
   thread_counter = thread_counter + 1
end

local heads, tails, count, next_index, sent

function init(args)
   if not path_to_data then
      error("post.lua: BENCH_DATA is not set")
   end
   local file = assert(io.open(path_to_data, "r"))
   local first = file:read("*l")
   local host, path = first:match("^(%S+) (%S+)$")
   assert(host and path, "post.lua: bad first line in " .. path_to_data)
   heads, tails, count = {}, {}, 0
   for line in file:lines() do
      local signature, body = line:match("^(%S+) (%S+)$")
      if signature then
         count = count + 1
         heads[count], tails[count] = twilio_request.parts(host, path, signature, body)
      end
   end
   file:close()
   assert(count > 0, "post.lua: no request in " .. path_to_data)
   -- thread_id is set by setup(); the run's nonce keeps streams of two runs apart
   math.randomseed(os.time() + (thread_id or 0) + tonumber(nonce:sub(1, 8), 16))
   next_index = (thread_id or 0) % count
   sent = 0
end

function request()
   next_index = next_index + 1
   if next_index > count then
      next_index = 1
   end
   sent = sent + 1
   return heads[next_index] .. twilio_request.token() .. tails[next_index]
end
