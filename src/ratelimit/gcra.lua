-- Token buckets kept as GCRA (the generic cell rate algorithm, which governor implements in
-- memory for the in-process store), run inside Redis so that a check is one atomic step for
-- every replica.
--
-- KEYS[i]: one bucket each, checked in order.
-- ARGV[2i-1]: bucket i's refill interval in microseconds; ARGV[2i]: its size (burst).
--
-- A bucket's value is its "theoretical arrival time" (TAT): the time, in microseconds of the
-- Redis server's clock, at which the bucket would be full again. The key expires then: a
-- full bucket needs no state.
--
-- Each bucket takes one request, in order; the first refusal ends the script, so a refused
-- request does not drain the buckets after it (as in the in-memory store).
-- Returns four numbers per bucket looked at: allowed (1 or 0), requests left, microseconds
-- until the bucket is full again, microseconds until the next request can pass (0 if allowed).

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local answers = {}

for i, key in ipairs(KEYS) do
    local interval = tonumber(ARGV[2 * i - 1])
    local burst = tonumber(ARGV[2 * i])
    local tat = tonumber(redis.call('GET', key)) or now
    if tat < now then
        tat = now
    end
    -- The request passes if the bucket, after taking it, would still be no fuller than
    -- `burst` requests' worth of time ahead of now.
    local allow_at = tat + interval - burst * interval
    if now < allow_at then
        table.insert(answers, 0)
        table.insert(answers, 0)
        table.insert(answers, tat - now)
        table.insert(answers, allow_at - now)
        return answers
    end
    local new_tat = tat + interval
    -- '%.0f': Lua would otherwise write a large number in exponent form and lose digits.
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
    table.insert(answers, 1)
    table.insert(answers, math.floor((now - allow_at) / interval))
    table.insert(answers, new_tat - now)
    table.insert(answers, 0)
end

return answers
