-- wrk script: every request is a distinct, correctly signed GitHub pull_request delivery.
-- Its own X-GitHub-Delivery and its own head sha, so nothing is deduped or coalesced: each one enqueues a job.
-- bench/webhook_ingest.py writes the parameters file named by the AQE_WRK_PARAMS environment variable:
--   line 1: path of the body prefix (its length is a multiple of 64 bytes)
--   line 2: 8 hex words, SHA-256 state after (secret ^ ipad) .. prefix
--   line 3: 8 hex words, SHA-256 state after (secret ^ opad)
--   line 4: a run id (24 hex digits) that makes shas and delivery ids unique across runs
--           (webhook_ingest.py writes a new one for every wrk invocation)
-- At the end it prints one line, `aqe-statuses sent=<n> 202=<n> 200=<n> other=<n>`, summed over threads:
-- how many requests were generated and how many responses of each status were received.

local bit = require("bit")
local band, bor, bxor, bnot, rshift, lshift, ror, tobit, tohex =
  bit.band, bit.bor, bit.bxor, bit.bnot, bit.rshift, bit.lshift, bit.ror, bit.tobit, bit.tohex

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local W = {}

local function compress(H, block)
  for i = 0, 15 do
    local a, b, c, d = block:byte(i * 4 + 1, i * 4 + 4)
    W[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
  end
  for i = 16, 63 do
    local w15, w2 = W[i - 15], W[i - 2]
    local s0 = bxor(ror(w15, 7), ror(w15, 18), rshift(w15, 3))
    local s1 = bxor(ror(w2, 17), ror(w2, 19), rshift(w2, 10))
    W[i] = tobit(W[i - 16] + s0 + W[i - 7] + s1)
  end
  local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
  for i = 0, 63 do
    local t1 = tobit(h + bxor(ror(e, 6), ror(e, 11), ror(e, 25)) + bxor(band(e, f), band(bnot(e), g)) + K[i + 1] + W[i])
    local t2 = tobit(bxor(ror(a, 2), ror(a, 13), ror(a, 22)) + bxor(band(a, b), band(a, c), band(b, c)))
    h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
  end
  return { tobit(H[1] + a), tobit(H[2] + b), tobit(H[3] + c), tobit(H[4] + d),
           tobit(H[5] + e), tobit(H[6] + f), tobit(H[7] + g), tobit(H[8] + h) }
end

local function be64(n)  -- big-endian 64-bit length in bits (fits in a double)
  local hi, lo = math.floor(n / 4294967296), n % 4294967296
  return string.char(band(rshift(hi, 24), 255), band(rshift(hi, 16), 255), band(rshift(hi, 8), 255), band(hi, 255),
                     band(rshift(lo, 24), 255), band(rshift(lo, 16), 255), band(rshift(lo, 8), 255), band(lo, 255))
end

local function pad(data, total_len)
  return data .. "\128" .. string.rep("\0", (55 - #data) % 64) .. be64(total_len * 8)
end

local function words(line)
  local out = {}
  for word in line:gmatch("%x+") do out[#out + 1] = tobit(tonumber(word, 16)) end
  return out
end

local function to_bytes(H)
  local parts = {}
  for i = 1, 8 do
    local x = H[i]
    parts[i] = string.char(band(rshift(x, 24), 255), band(rshift(x, 16), 255), band(rshift(x, 8), 255), band(x, 255))
  end
  return table.concat(parts)
end

local function to_hex(H)
  local parts = {}
  for i = 1, 8 do parts[i] = tohex(H[i], 8) end
  return table.concat(parts)
end

local prefix, inner, outer, run_id
local counter = 0
sent, s202, s200, sother = 0, 0, 0, 0  -- globals, so that done() can read them through thread:get()

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_no", #threads)  -- keeps the ids of several wrk threads (-t) apart
end

function init(args)
  local params = io.open(os.getenv("AQE_WRK_PARAMS")):read("*a")
  local lines = {}
  for line in params:gmatch("[^\n]+") do lines[#lines + 1] = line end
  prefix = io.open(lines[1], "rb"):read("*a")
  inner, outer, run_id = words(lines[2]), words(lines[3]), lines[4]
end

function request()
  counter = counter + 1
  sent = sent + 1
  local unique = run_id .. string.format("%04x%012x", thread_no, counter)
  local tail = '"sha":"' .. unique .. '"}}}'
  local digest = compress(inner, pad(tail, 64 + #prefix + #tail))
  local signature = to_hex(compress(outer, pad(to_bytes(digest), 64 + 32)))
  local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/wrk",
    ["X-GitHub-Event"] = "pull_request",
    ["X-GitHub-Delivery"] = unique,
    ["X-Hub-Signature-256"] = "sha256=" .. signature,
  }
  return wrk.format("POST", "/webhooks/github", headers, prefix .. tail)
end

function response(status, headers, body)
  if status == 202 then s202 = s202 + 1
  elseif status == 200 then s200 = s200 + 1
  else sother = sother + 1 end
end

function done(summary, latency, requests)
  local totals = { sent = 0, s202 = 0, s200 = 0, sother = 0 }
  for _, thread in ipairs(threads) do
    for name in pairs(totals) do totals[name] = totals[name] + thread:get(name) end
  end
  io.write(string.format("aqe-statuses sent=%d 202=%d 200=%d other=%d\n",
                         totals.sent, totals.s202, totals.s200, totals.sother))
end
