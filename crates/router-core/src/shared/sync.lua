-- One replica's exchange with the shared state, atomic.
-- KEYS[1]: the epoch (a random value; a Redis without it holds none of the replicas' data)
-- KEYS[2]: each pair's total score over every replica (hash: pair -> integer)
-- KEYS[3]: this replica's own score per pair (hash: pair -> integer); it expires a week after
--          the replica's last exchange (its part of the totals stays)
-- KEYS[4]: cooldowns running (hash: "pair|rate" or "pair|rest" -> until, unix ms)
-- KEYS[5]: the replica runs alive (sorted set: run -> until, unix ms), whose reservations in
--          budgets and minutes count (budgets.lua)
-- ARGV: the epoch the replica saw last ("" at first), the epoch to start if there is none,
--       now (unix ms), this run, until when it counts as alive, n, n × (pair, this replica's
--       score), m, m × (cooldown field, until), then the pairs whose totals to read.
-- A score is absolute, not a delta: sending one twice (a call that timed out but ran) changes
-- nothing. The total moves by the difference from what the replica's hash held.
-- Answers: {epoch, 1 if this call started it else 0, totals in the order asked,
--           {field, until, ...} of the cooldowns still running, the runs alive}.
local epoch = redis.call('GET', KEYS[1])
local started = 0
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[1], epoch)
  started = 1
end
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[4])
local i = 6
local n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do
  local pair, score = ARGV[i], tonumber(ARGV[i + 1])
  local before = tonumber(redis.call('HGET', KEYS[3], pair) or '0')
  if score ~= before then
    redis.call('HINCRBY', KEYS[2], pair, score - before)
    redis.call('HSET', KEYS[3], pair, score)
  end
  i = i + 2
end
redis.call('PEXPIRE', KEYS[3], 7 * 24 * 3600 * 1000)
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  local known = tonumber(redis.call('HGET', KEYS[4], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > known then
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
local totals = {}
local batch = {}
for j = i, #ARGV do
  batch[#batch + 1] = ARGV[j]
  if #batch == 1000 or j == #ARGV then
    local got = redis.call('HMGET', KEYS[2], unpack(batch))
    for k = 1, #got do
      totals[#totals + 1] = got[k]
    end
    batch = {}
  end
end
local running = {}
local all = redis.call('HGETALL', KEYS[4])
for j = 1, #all, 2 do
  local untilms = tonumber(all[j + 1])
  if untilms > now then
    running[#running + 1] = all[j]
    running[#running + 1] = all[j + 1]
  elseif untilms < now - 60000 then
    redis.call('HDEL', KEYS[4], all[j])
  end
end
return {epoch, started, totals, running, redis.call('ZCOUNT', KEYS[5], now, '+inf')}
