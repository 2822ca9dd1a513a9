"""The Lua scripts of the Redis inbox's paces and places, and of giving an entry back.

A pace is a string key holding the time its next token is due; places are a
sorted set of holders scored by the end of their lease.  Both read Redis's own
clock (``TIME``), so that processes on several hosts agree.
"""

from __future__ import annotations

__all__ = ["DEFER", "ENTER", "PACE", "RELEASE_HELD"]

# KEYS: the pace; ARGV: interval, burst.  Answers the wait as a string ("0": start).
PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local due = tonumber(redis.call('GET', KEYS[1]) or '0')
if due < now then due = now end
local wait = due - interval * (math.max(1, tonumber(ARGV[2])) - 1) - now
if wait > 0.000000001 then return tostring(wait) end
due = due + interval
redis.call('SET', KEYS[1], string.format('%.6f', due), 'PX',
    math.ceil((due - now) * 1000) + 60000)
return '0'
"""
# KEYS: the places; ARGV: holder, limit, lease seconds.  Answers 1 when taken.
ENTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
        and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], string.format('%.6f', now + lease), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 1000) + 60000)
return 1
"""
# KEYS: stream, retry, marker, the hold (the marker when none); ARGV: message, entry
# key, due at, group, the marker the entry was claimed under, the hold ('' for
# none).  Pending again without counting the attempt; remembered under the hold.
DEFER = """
if redis.call('GET', KEYS[3]) ~= ARGV[5] then return 0 end
redis.call('XACK', KEYS[1], ARGV[4], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
if redis.call('HGET', ARGV[2], 'state') ~= 'running' then return 0 end
local id = string.match(ARGV[2], '(%d+)$')
local attempts = tonumber(redis.call('HGET', ARGV[2], 'attempts') or '0')
redis.call('HSET', ARGV[2], 'state', 'pending', 'next_attempt_at', ARGV[3],
    'attempts', math.max(0, attempts - 1))
redis.call('ZADD', KEYS[2], ARGV[3], id)
if ARGV[6] ~= '' then redis.call('SADD', KEYS[4], id) end
return 1
"""
# KEYS: the hold, retry; ARGV: now, entry key prefix.  The held entries still
# waiting in the retry set (pending) are made due now (XX: only those there); the
# hold is forgotten.
RELEASE_HELD = """
local ids = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
local released = 0
for _, id in ipairs(ids) do
    if redis.call('ZADD', KEYS[2], 'XX', 'CH', ARGV[1], id) == 1 then
        redis.call('HSET', ARGV[2] .. id, 'next_attempt_at', ARGV[1])
        released = released + 1
    end
end
return released
"""
