-- Requests-per-minute limits shared by the replicas: one GCRA state per client or team (the
-- theoretical arrival time, unix ms), all of a request's parties at once or none.
-- KEYS: each party's state. ARGV[1]: now (unix ms); ARGV[1 + i]: party i's limit (per minute).
-- N a minute admits N at once, then one every 60 s / N: a request is refused while the state
-- is more than a minute ahead of now.
-- Answers {0, then per party: requests left, ms until the whole quota is back} when admitted,
--         {i, ms until party i admits again} when refused (nothing is changed then).
local now = tonumber(ARGV[1])
local next_tats = {}
local out = {0}
for i, key in ipairs(KEYS) do
  local rpm = tonumber(ARGV[i + 1])
  local interval = 60000 / rpm
  local tat = math.max(tonumber(redis.call('GET', key) or '0'), now)
  local after = tat + interval
  if after - now > 60000 then
    return {i, math.ceil(after - now - 60000)}
  end
  next_tats[i] = after
  out[#out + 1] = math.floor((now + 60000 - after) / interval)
  out[#out + 1] = math.ceil(after - now)
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tostring(next_tats[i]), 'PX', 61000)
end
return out
