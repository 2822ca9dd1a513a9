"""The Lua scripts of the Redis inbox: each change of an event is one, so that it is atomic.

The keys are described in :mod:`twilio_trigger.inbox.redis`.  Every script that
stores or dispatches checks the inbox's ``marker`` and id counter against what the
calling process saw, so that data Redis lost is noticed, never silently made anew.
"""

from __future__ import annotations

__all__ = ["EPOCH", "FINISH", "PROMOTE", "PUT", "RELEASE", "REPLAY", "START", "WITHDRAW"]

# KEYS: delivery key, seq, stream, all, marker, counters; ARGV: key, kind, sid, status,
# params, received_at, retention ms, entry key prefix, headers, marker seen,
# highest id seen, held until ('' when no confirmation follows), now.
# Answers {-1, marker, seq} when the data is not the one this process saw,
# {0, id, held} for a copy, {1, id, message} for a new entry.
PUT = """
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local marker = redis.call('GET', KEYS[5])
if marker ~= ARGV[10] or seq < tonumber(ARGV[11]) then return {-1, marker or '', seq} end
local copy = redis.call('GET', KEYS[1])
if copy then
    if ARGV[12] == '' then return {0, tonumber(copy), 0} end
    -- Rewritten unchanged, so that waiting for this connection's writes waits
    -- for the original's too: replicas and the AOF receive writes in order.
    redis.call('SET', KEYS[1], copy, 'KEEPTTL')
    local hold = redis.call('HGET', ARGV[8] .. copy, 'hold')
    if hold and tonumber(hold) > tonumber(ARGV[13]) then return {0, tonumber(copy), 1} end
    return {0, tonumber(copy), 0}
end
local id = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], id, 'PX', ARGV[7])
redis.call('HSET', ARGV[8] .. id, 'key', ARGV[1], 'kind', ARGV[2], 'sid', ARGV[3],
    'status', ARGV[4], 'params', ARGV[5], 'received_at', ARGV[6], 'state', 'pending',
    'attempts', 0, 'next_attempt_at', ARGV[6], 'headers', ARGV[9])
if ARGV[12] ~= '' then redis.call('HSET', ARGV[8] .. id, 'hold', ARGV[12]) end
local message = redis.call('XADD', KEYS[3], '*', 'id', id)
redis.call('ZADD', KEYS[4], id, id)
redis.call('HINCRBY', KEYS[6], 'received', 1)
return {1, id, message}
"""
# KEYS: retry, stream, marker, seq, dead; ARGV: now, limit, marker seen, highest
# id seen.  Answers {-1, marker, seq} as _PUT does, else {promoted, seq,
# events not finished, dead letters}: what a loss would take, told if it happens.
PROMOTE = """
local seq = tonumber(redis.call('GET', KEYS[4]) or '0')
local marker = redis.call('GET', KEYS[3])
if marker ~= ARGV[3] or seq < tonumber(ARGV[4]) then return {-1, marker or '', seq} end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('XADD', KEYS[2], '*', 'id', id)
end
return {#ids, seq, redis.call('XLEN', KEYS[2]) + redis.call('ZCARD', KEYS[1]),
    redis.call('ZCARD', KEYS[5])}
"""
# KEYS: stream, retry; ARGV: entry key prefix, id, now, group, message
START = """
local entry = ARGV[1] .. ARGV[2]
if redis.call('EXISTS', entry) == 0 then return false end
local hold = redis.call('HGET', entry, 'hold')
if hold then
    if tonumber(hold) > tonumber(ARGV[3]) then
        -- Not confirmed yet: the listener may still withdraw it.  Due once the
        -- hold lapses, or as soon as the listener confirms it.
        redis.call('XACK', KEYS[1], ARGV[4], ARGV[5])
        redis.call('XDEL', KEYS[1], ARGV[5])
        redis.call('HSET', entry, 'next_attempt_at', hold)
        redis.call('ZADD', KEYS[2], hold, ARGV[2])
        return 0
    end
    redis.call('HDEL', entry, 'hold')
end
redis.call('HINCRBY', entry, 'attempts', 1)
redis.call('HSET', entry, 'state', 'running')
return redis.call('HGETALL', entry)
"""
# KEYS: stream, the state's set (done, dead or retry), dead letters, marker,
# counters; ARGV: message, entry key, state, score, error, finish time, group,
# retention ms, the marker the entry was claimed under
FINISH = """
if redis.call('GET', KEYS[4]) ~= ARGV[9] then return 0 end
redis.call('XACK', KEYS[1], ARGV[7], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', ARGV[2]) == 0 then return 0 end
local id = string.match(ARGV[2], '(%d+)$')
-- Counted here: an attempt that failed is one, a state reached twice (a worker
-- that outlived its claim) is one.
local was = redis.call('HGET', ARGV[2], 'state')
if ARGV[3] == 'done' then
    if was ~= 'done' then redis.call('HINCRBY', KEYS[5], 'handled', 1) end
else
    redis.call('HINCRBY', KEYS[5], 'failed_attempts', 1)
    if ARGV[3] == 'dead' and was ~= 'dead' then
        redis.call('HINCRBY', KEYS[5], 'dead_lettered', 1)
    end
end
redis.call('HSET', ARGV[2], 'state', ARGV[3], 'finished_at', ARGV[6])
if ARGV[5] ~= '' then redis.call('HSET', ARGV[2], 'last_error', ARGV[5]) end
if ARGV[3] == 'pending' then redis.call('HSET', ARGV[2], 'next_attempt_at', ARGV[4]) end
redis.call('ZADD', KEYS[2], ARGV[4], id)
if ARGV[3] == 'done' then redis.call('PEXPIRE', ARGV[2], ARGV[8]) end
if ARGV[3] == 'dead' then
    local entry = redis.call('HMGET', ARGV[2], 'kind', 'sid', 'status', 'attempts')
    redis.call('XADD', KEYS[3], '*', 'id', id, 'kind', entry[1], 'sid', entry[2],
        'status', entry[3], 'attempts', entry[4], 'error', ARGV[5])
end
return 1
"""
# KEYS: stream, retry, done, dead, counters; ARGV: entry key prefix, id, now, the
# state it must be in ('' or none: any but running)
REPLAY = """
local entry = ARGV[1] .. ARGV[2]
local state = redis.call('HGET', entry, 'state')
if not state or state == 'running' then return 0 end
if ARGV[4] and ARGV[4] ~= '' and state ~= ARGV[4] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('PERSIST', entry)
redis.call('HSET', entry, 'state', 'pending', 'attempts', 0, 'next_attempt_at', ARGV[3],
    'finished_at', '')
redis.call('XADD', KEYS[1], '*', 'id', ARGV[2])
redis.call('HINCRBY', KEYS[5], 'replayed', 1)
return 1
"""
# The event is confirmed: workers may take it, at once if one put it aside.
# KEYS: retry; ARGV: entry key, id, now
RELEASE = """
if redis.call('HDEL', ARGV[1], 'hold') == 1 and redis.call('ZSCORE', KEYS[1], ARGV[2]) then
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
    redis.call('HSET', ARGV[1], 'next_attempt_at', ARGV[3])
end
return 0
"""
# The event was not confirmed, and its request is answered 503: remove it, so
# that only Twilio's retry of it can store it again.
# KEYS: delivery key, stream, retry, all, counters; ARGV: entry key, id, message
WITHDRAW = """
local entry = redis.call('HMGET', ARGV[1], 'state', 'attempts')
if entry[1] ~= 'pending' or entry[2] ~= '0' then return 0 end
redis.call('DEL', ARGV[1])
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
redis.call('XDEL', KEYS[2], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('HINCRBY', KEYS[5], 'received', -1)  -- not stored after all
return 1
"""
# Adopt the inbox's marker, or write one; ids never go below what was seen.
# KEYS: marker, seq, stream, counters; ARGV: marker seen ('' when none), a fresh
# marker, highest id seen, '1' to replace the seen marker, group, now in ms (when
# counting begins, if it has not: with the inbox, or anew once its data is lost).
# Answers {marker, seq before, seq after, 1 when the marker was written}.
EPOCH = """
local marker = redis.call('GET', KEYS[1])
local written = 0
if not marker or (ARGV[4] == '1' and marker == ARGV[1]) then
    marker = ARGV[2]
    redis.call('SET', KEYS[1], marker)
    written = 1
end
local before = tonumber(redis.call('GET', KEYS[2]) or '0')
local after = before
if before < tonumber(ARGV[3]) then
    after = tonumber(ARGV[3])
    redis.call('SET', KEYS[2], ARGV[3])
end
redis.pcall('XGROUP', 'CREATE', KEYS[3], ARGV[5], '0', 'MKSTREAM')
redis.call('HSETNX', KEYS[4], 'since_ms', ARGV[6])
return {marker, before, after, written}
"""
