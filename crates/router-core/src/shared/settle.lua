-- What a replica's requests used, counted in their parties' windows, and their reservations
-- given back (see budgets.lua for the keys).
-- ARGV: prefix, n, n × (party, budget start (-1: none), tokens, nano, minute start (-1: none),
--       tokens in that minute), then pairs (party, reservation: "r:<holder>:<request>:") to drop.
local prefix = ARGV[1]

-- Counts use in the window at `key` if it is the one `start` names (or a later one than kept).
local function count(key, start, tokens, nano)
  if start < 0 or (tokens == 0 and nano == 0) then return end
  local stored = tonumber(redis.call('HGET', key, 'start') or '-1')
  if start > stored then
    redis.call('HSET', key, 'start', start, 'tokens', 0, 'nano', 0)
    stored = start
  end
  if start == stored then
    redis.call('HINCRBY', key, 'tokens', tokens)
    if nano > 0 then redis.call('HINCRBY', key, 'nano', nano) end
  end
end

local n = tonumber(ARGV[2])
local i = 3
for _ = 1, n do
  local party = ARGV[i]
  count(prefix .. 'budget:' .. party, tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]))
  count(prefix .. 'tpm:' .. party, tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), 0)
  i = i + 6
end
while i + 1 <= #ARGV do
  local party, field = ARGV[i], ARGV[i + 1]
  redis.call('HDEL', prefix .. 'budget:' .. party, field .. 't', field .. 'n')
  redis.call('HDEL', prefix .. 'tpm:' .. party, field .. 't')
  i = i + 2
end
return 1
