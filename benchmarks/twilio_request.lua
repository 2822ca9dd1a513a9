-- What post.lua and steady.lua both send: a signed Twilio status callback as Twilio
-- posts it, with a fresh random I-Twilio-Idempotency-Token.  Loaded by each with
--   package.path = <this folder> .. "/?.lua;" .. package.path
--   local twilio_request = require("twilio_request")

local M = {}

-- The request up to the idempotency token's value, and what follows it: the token
-- goes between the two (a new one for every request).
function M.parts(host, path, signature, body)
   local head = "POST " .. path .. " HTTP/1.1\r\n"
      .. "Host: " .. host .. "\r\n"
      .. "User-Agent: TwilioProxy/1.1\r\n"
      .. "Accept: */*\r\n"
      .. "X-Home-Region: us1\r\n"
      .. "Content-Type: application/x-www-form-urlencoded\r\n"
      .. "Content-Length: " .. #body .. "\r\n"
      .. "X-Twilio-Signature: " .. signature .. "\r\n"
      .. "I-Twilio-Idempotency-Token: "
   return head, "\r\n\r\n" .. body
end

-- A random UUID (version 4), as Twilio sends; math.randomseed is the caller's.
function M.token()
   return string.format(
      "%08x-%04x-4%03x-%04x-%04x%08x",
      math.random(0, 0x7fffffff), math.random(0, 0xffff), math.random(0, 0xfff),
      math.random(0x8000, 0xbfff), math.random(0, 0xffff), math.random(0, 0x7fffffff)
   )
end

return M
