-- Budgets and tokens-per-minute limits shared by the replicas: a request's worst case reserved
-- in its client's and its team's windows, all of them or none.
-- Keys (built from the prefix: one Redis, not a cluster): <prefix>budget:<party> and
-- <prefix>tpm:<party>, hashes of the window's start (unix s), what it used (tokens, nano:
-- nanodollars) and one pair of fields per request in flight, r:<holder>:<request>:t and :n;
-- <prefix>runs, the holders alive (sorted set: holder -> until, unix ms; a replica takes a new
-- holder after each outage). Reservations of a holder that is no longer alive are dropped.
-- ARGV: prefix, holder, request, now (unix ms), parties, then per party: name, budget start (-1:
--       no budget), cap tokens (-1: none), cap nano (-1: none), tpm (-1: none), minute start,
--       ask tokens, ask nano.
-- Answers {0, per party: tokens left this minute (-1: no tpm)} when reserved, else
--         {party, what (1: budget tokens, 2: budget money, 3: tpm), cap, taken}, nothing changed.
local prefix, run, request, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local runs = prefix .. 'runs'

-- Rolls the window at `key` to `start`; answers what it used and what live requests reserve.
local function window(key, start)
  local stored = tonumber(redis.call('HGET', key, 'start') or '-1')
  if start > stored then
    redis.call('HSET', key, 'start', start, 'tokens', 0, 'nano', 0)
  end
  local used_t = tonumber(redis.call('HGET', key, 'tokens') or '0')
  local used_n = tonumber(redis.call('HGET', key, 'nano') or '0')
  local held_t, held_n = 0, 0
  local all = redis.call('HGETALL', key)
  for j = 1, #all, 2 do
    local owner, what = string.match(all[j], '^r:([^:]+):[^:]+:(%a)$')
    if owner then
      local alive = redis.call('ZSCORE', runs, owner)
      if alive and tonumber(alive) > now then
        if what == 't' then held_t = held_t + tonumber(all[j + 1]) else held_n = held_n + tonumber(all[j + 1]) end
      else
        redis.call('HDEL', key, all[j])
      end
    end
  end
  return used_t, used_n, held_t, held_n
end

local parties = tonumber(ARGV[5])
local out = {0}
for p = 1, parties do
  local a = 5 + (p - 1) * 8
  local name = ARGV[a + 1]
  local bstart, cap_t, cap_n = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local tpm, mstart = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local ask_t, ask_n = tonumber(ARGV[a + 7]), tonumber(ARGV[a + 8])
  if bstart >= 0 then
    local used_t, used_n, held_t, held_n = window(prefix .. 'budget:' .. name, bstart)
    if cap_t >= 0 and used_t + held_t + ask_t > cap_t then return {p, 1, cap_t, used_t + held_t} end
    if cap_n >= 0 and used_n + held_n + ask_n > cap_n then return {p, 2, cap_n, used_n + held_n} end
  end
  local left = -1
  if tpm >= 0 then
    local used_t, _, held_t, _ = window(prefix .. 'tpm:' .. name, mstart)
    if used_t + held_t + ask_t > tpm then return {p, 3, tpm, used_t + held_t} end
    left = tpm - (used_t + held_t + ask_t)
  end
  out[#out + 1] = left
end
local field = 'r:' .. run .. ':' .. request .. ':'
for p = 1, parties do
  local a = 5 + (p - 1) * 8
  local name = ARGV[a + 1]
  if tonumber(ARGV[a + 2]) >= 0 then
    redis.call('HSET', prefix .. 'budget:' .. name, field .. 't', ARGV[a + 7], field .. 'n', ARGV[a + 8])
  end
  if tonumber(ARGV[a + 5]) >= 0 then
    local key = prefix .. 'tpm:' .. name
    redis.call('HSET', key, field .. 't', ARGV[a + 7])
    redis.call('PEXPIRE', key, 120000)
  end
end
return out
