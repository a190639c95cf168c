-- Sluice limit store: every limit of a request in ONE atomic script call.
-- The arithmetic mirrors src/core/limits/{gcra,sliding-window,lease}.ts exactly (integers only;
-- see those files for the rules). Time comes from the server (TIME), never from the caller.
--
-- ARGV[1] = op:
--   'r' reserve  KEYS = bucket keys [.. open-record key]; ARGV = op, requestId, n, K, then per bucket:
--                alg ('g'|'w'|'l'), limit, burst, windowMs, shadow (0|1), cost     (integer units)
--                [, settleWindowMs]. With a record key, an admitted request leaves an open record
--                (PX settleWindowMs) that its first effective settle consumes. peek passes none.
--                returns { ok, bucketIndex (0-based, -1 if ok), retryAfterMs (-1 = never), now,
--                          then per bucket: remaining, resetMs, mark }
--                mark: -1 not charged (shadow that would deny), the slot for windows, 0 otherwise.
--   's' settle   KEYS = bucket keys .. open-record key; ARGV = op, n, K, then per bucket:
--                alg, limit, burst, windowMs, mark, delta (actual - reserved, units)
--                returns { 1, now }, or { 0, now } when the record is gone (settled already, or
--                later than the settle window): nothing is applied twice
--   'c' claim-settle, for reservations made without a record (request counts only: a refund):
--                as 's' with ARGV[.. + 1 .. + 3] = claimTtlMs, reservedAt, settleWindowMs; the
--                record is SET NX PX claimTtlMs instead of deleted, and { 0, now } when it exists
--                already (a duplicate) or the reservation is older than the settle window.
--   'l' release  KEYS = lease keys; ARGV = op, requestId. Returns { leases removed, now }.
--
-- State: GCRA  string "a:f:d" (TAT = a + f/d ms), expiring when the allowance is full again.
--        window hash { g = slot ms, s = sum, lo = oldest non-empty slot, <slot> = amount,
--                      t<slot> = time of the slot's newest charge }.
--        lease  sorted set { requestId -> expiry ms }.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]

local function floordiv(x, n)
  local q = math.floor(x / n)
  local r = x - q * n
  if r < 0 then q = q - 1 elseif r >= n then q = q + 1 end
  return q
end
local function ceildiv(x, n) return -floordiv(-x, n) end
-- Integers as strings without an exponent (tostring(1e15) would give "1e+15").
local function fmt(x) return string.format('%.0f', x) end

---------------------------------------------------------------- GCRA
local function gcra_ahead(key, N)
  local v = redis.call('GET', key)
  if not v then return 0 end
  local a, f, d = string.match(v, '^(-?%d+):(%d+):(%d+)$')
  if not a then return 0 end
  a = tonumber(a); f = tonumber(f); d = tonumber(d)
  if d ~= N then
    local s = ceildiv(f * N, d)
    local c = floordiv(s, N)
    a = a + c
    f = s - c * N
  end
  if a < now then return 0 end
  return (a - now) * N + f
end

local function gcra_store(key, N, ahead)
  if ahead <= 0 then
    redis.call('DEL', key)
    return
  end
  local q = floordiv(ahead, N)
  redis.call('SET', key, fmt(now + q) .. ':' .. fmt(ahead - q * N) .. ':' .. fmt(N), 'PX', fmt(q + 1))
end

local function gcra_remaining(N, B, W, ahead)
  local r = floordiv((N + B) * W - ahead, W)
  if r < 0 then return 0 end
  return r
end

local function gcra_reset(N, ahead)
  if ahead <= 0 then return 0 end
  return ceildiv(ahead, N)
end

---------------------------------------------------------------- sliding window
-- Field 't<slot>' holds the time of the slot's newest charge; the slot counts until that + W
-- (a slot without one, written before it existed, until its end + W).
local function win_leaves(key, w, j)
  local t = tonumber(redis.call('HGET', key, 't' .. fmt(j)))
  if not t then t = (j + 1) * w.g - 1 end
  return t + w.W
end

local function win_drop(key, j)
  redis.call('HDEL', key, fmt(j), 't' .. fmt(j))
end

-- Loads and advances a window: returns { g, s, lo, W, changed }.
local function win_load(key, W, K)
  local g = ceildiv(W, K)
  local cur = floordiv(now, g)
  local h = redis.call('HMGET', key, 'g', 's', 'lo')
  local sg, s, lo = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3])
  if not sg or s <= 0 then
    if sg then redis.call('DEL', key) end
    return { g = g, s = 0, lo = cur, W = W, changed = false }
  end
  if sg ~= g then
    -- The window changed in the policy: old usage collapses into the current slot (conservative).
    redis.call('DEL', key)
    redis.call('HSET', key, fmt(cur), fmt(s), 't' .. fmt(cur), fmt(now))
    return { g = g, s = s, lo = cur, W = W, changed = true }
  end
  local min = cur - K
  local changed = false
  if min - lo > 2 * K + 2 then
    -- Cannot happen while the key's TTL follows its newest slot; rebuild from scratch to stay safe.
    local all = redis.call('HGETALL', key)
    s = 0
    lo = nil
    for i = 1, #all, 2 do
      local f = all[i]
      local j = tonumber(f) or tonumber(string.match(f, '^t(-?%d+)$'))
      if j then
        if j < min then
          redis.call('HDEL', key, f)
        elseif tonumber(f) then
          s = s + tonumber(all[i + 1])
          if not lo or j < lo then lo = j end
        end
      end
    end
    return { g = g, s = s, lo = lo or cur, W = W, changed = true }
  end
  local w = { g = g, s = s, lo = lo, W = W, changed = false }
  while w.lo < min and w.s > 0 do
    local v = redis.call('HGET', key, fmt(w.lo))
    if v then
      w.s = w.s - tonumber(v)
      win_drop(key, w.lo)
    end
    w.lo = w.lo + 1
    w.changed = true
  end
  -- Skip empty slots, and drop the oldest slots whose newest charge has left the window.
  local stop = cur + K + 1
  while w.s > 0 and w.lo < stop do
    local v = redis.call('HGET', key, fmt(w.lo))
    if v then
      if win_leaves(key, w, w.lo) > now then break end
      w.s = w.s - tonumber(v)
      win_drop(key, w.lo)
    end
    w.lo = w.lo + 1
    w.changed = true
  end
  if w.s <= 0 then
    redis.call('DEL', key)
    return { g = g, s = 0, lo = cur, W = W, changed = false }
  end
  return w
end

local function win_save(key, w, K)
  if w.s <= 0 then
    redis.call('DEL', key)
    return
  end
  redis.call('HSET', key, 'g', fmt(w.g), 's', fmt(w.s), 'lo', fmt(w.lo))
  -- Gone once the newest possible slot (the current one) has left the window.
  local cur = floordiv(now, w.g)
  redis.call('PEXPIRE', key, fmt((cur + K + 1) * w.g - now + 1))
end

local function win_retry(key, w, L, c, K)
  if c > L then return -1 end
  local left = w.s
  for j = w.lo, w.lo + 2 * K + 2 do
    local v = redis.call('HGET', key, fmt(j))
    if v then
      left = left - tonumber(v)
      if left + c <= L then
        local r = win_leaves(key, w, j) - now
        if r < 1 then r = 1 end
        return r
      end
    end
  end
  return w.W
end

local function win_reset(key, w)
  if w.s <= 0 then return 0 end
  local r = win_leaves(key, w, w.lo) - now
  if r < 0 then return 0 end
  return r
end

local function win_charge(key, w, c)
  local cur = floordiv(now, w.g)
  redis.call('HINCRBY', key, fmt(cur), fmt(c))
  redis.call('HSET', key, 't' .. fmt(cur), fmt(now))
  if w.s <= 0 or cur < w.lo then w.lo = cur end
  w.s = w.s + c
  return cur
end

---------------------------------------------------------------- leases
local LEASE_RETRY_MS = 1000

local function lease_reset(key, cap, count)
  if count < cap then return 0 end
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if not first[2] then return 0 end
  local r = tonumber(first[2]) - now
  if r < 1 then r = 1 end
  return r
end

---------------------------------------------------------------- reserve
if op == 'r' then
  local rid = ARGV[2]
  local n = tonumber(ARGV[3])
  local K = tonumber(ARGV[4])
  local checks = {}
  local deny_at, deny_wait = -1, -2
  for i = 1, n do
    local base = 4 + (i - 1) * 6
    local alg, N, B, W = ARGV[base + 1], tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
    local shadow, c = ARGV[base + 5] == '1', tonumber(ARGV[base + 6])
    local key = KEYS[i]
    local ck = { alg = alg, N = N, B = B, W = W, c = c, ok = true, wait = 0 }
    if alg == 'g' then
      local ahead = gcra_ahead(key, N)
      ck.ahead = ahead
      if c > 0 then
        local cap = (N + B) * W
        local nxt = ahead + c * W
        if nxt <= cap then
          ck.next = nxt
        else
          ck.ok = false
          if c > N + B then ck.wait = -1 else ck.wait = ceildiv(nxt - cap, N) end
        end
      end
      -- The state before this request; replaced below if the request is admitted.
      ck.remaining = gcra_remaining(N, B, W, ahead)
      ck.reset = gcra_reset(N, ahead)
    elseif alg == 'w' then
      local w = win_load(key, W, K)
      if w.changed then win_save(key, w, K) end
      ck.w = w
      if c > 0 and w.s + c > N then
        ck.ok = false
        ck.wait = win_retry(key, w, N, c, K)
      end
    else
      redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now))
      local count = redis.call('ZCARD', key)
      ck.count = count
      if c > 0 and count >= N and not redis.call('ZSCORE', key, rid) then
        ck.ok = false
        if N < 1 then
          ck.wait = -1
        else
          ck.wait = lease_reset(key, N, count)
          if ck.wait > LEASE_RETRY_MS then ck.wait = LEASE_RETRY_MS end
        end
      end
    end
    if not ck.ok and not shadow then
      -- The bound limit is the one with the longest wait; "never" (-1) beats any finite wait.
      local rank = ck.wait
      if rank == -1 then rank = math.huge end
      local best = deny_wait
      if best == -1 then best = math.huge end
      if deny_at < 0 or rank > best then
        deny_at = i
        deny_wait = ck.wait
      end
    end
    checks[i] = ck
  end

  local out = { 0, -1, 0, now }
  if deny_at < 0 then out[1] = 1 else out[2] = deny_at - 1; out[3] = deny_wait end
  if deny_at < 0 and KEYS[n + 1] then
    redis.call('SET', KEYS[n + 1], '1', 'PX', ARGV[4 + n * 6 + 1])
  end
  for i = 1, n do
    local ck = checks[i]
    local key = KEYS[i]
    local mark = 0
    if deny_at >= 0 or not ck.ok then
      -- Denied (nothing is charged anywhere), or a shadow bucket that would deny (not charged).
      if deny_at < 0 then mark = -1 end
      if ck.alg == 'w' then
        ck.remaining = math.max(0, ck.N - ck.w.s)
        ck.reset = win_reset(key, ck.w)
      elseif ck.alg == 'l' then
        ck.remaining = math.max(0, ck.N - ck.count)
        ck.reset = lease_reset(key, ck.N, ck.count)
      end
    elseif ck.alg == 'g' then
      if ck.next then
        gcra_store(key, ck.N, ck.next)
        ck.remaining = gcra_remaining(ck.N, ck.B, ck.W, ck.next)
        ck.reset = gcra_reset(ck.N, ck.next)
      end
    elseif ck.alg == 'w' then
      local w = ck.w
      if ck.c > 0 then
        mark = win_charge(key, w, ck.c)
        win_save(key, w, K)
      else
        mark = floordiv(now, w.g)
      end
      ck.remaining = math.max(0, ck.N - w.s)
      ck.reset = win_reset(key, w)
    else
      local count = ck.count
      if ck.c > 0 then
        if not redis.call('ZSCORE', key, rid) then count = count + 1 end
        redis.call('ZADD', key, fmt(now + ck.W), rid)
        redis.call('PEXPIRE', key, fmt(ck.W + 1))
      end
      ck.remaining = math.max(0, ck.N - count)
      ck.reset = lease_reset(key, ck.N, count)
    end
    out[#out + 1] = ck.remaining
    out[#out + 1] = ck.reset
    out[#out + 1] = mark
  end
  return out
end

---------------------------------------------------------------- settle
if op == 's' or op == 'c' then
  local n = tonumber(ARGV[2])
  local K = tonumber(ARGV[3])
  if op == 's' then
    if redis.call('DEL', KEYS[n + 1]) == 0 then return { 0, now } end
  else
    local at, win = tonumber(ARGV[3 + n * 6 + 2]), tonumber(ARGV[3 + n * 6 + 3])
    if at > 0 and now - at >= win then return { 0, now } end
    if not redis.call('SET', KEYS[n + 1], '1', 'NX', 'PX', ARGV[3 + n * 6 + 1]) then return { 0, now } end
  end
  for i = 1, n do
    local base = 3 + (i - 1) * 6
    local alg, N, W = ARGV[base + 1], tonumber(ARGV[base + 2]), tonumber(ARGV[base + 4])
    local mark, delta = tonumber(ARGV[base + 5]), tonumber(ARGV[base + 6])
    local key = KEYS[i]
    if alg ~= 'l' and mark ~= -1 and delta ~= 0 then
      if alg == 'g' then
        local ahead = gcra_ahead(key, N) + delta * W
        if ahead < 0 then ahead = 0 end
        gcra_store(key, N, ahead)
      else
        local w = win_load(key, W, K)
        if delta > 0 then
          win_charge(key, w, delta)
        elseif mark >= w.lo then
          local v = tonumber(redis.call('HGET', key, fmt(mark)) or '0')
          local take = math.min(v, -delta)
          if take > 0 then
            if v - take <= 0 then win_drop(key, mark)
            else redis.call('HINCRBY', key, fmt(mark), fmt(-take)) end
            w.s = w.s - take
          end
        end
        win_save(key, w, K)
      end
    end
  end
  return { 1, now }
end

---------------------------------------------------------------- release
if op == 'l' then
  local removed = 0
  for i = 1, #KEYS do removed = removed + redis.call('ZREM', KEYS[i], ARGV[2]) end
  return { removed, now }
end

return redis.error_reply('sluice limits: unknown op ' .. tostring(op))
