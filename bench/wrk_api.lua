-- wrk script for bench/api_latency.py: one endpoint, the API key from the environment, and for job creation a
-- fresh random commit sha in every body (so every request makes a new job, none is coalesced).
-- done() prints one JSON line: the latency percentiles wrk measured (HdrHistogram) and the statuses seen.
local key = os.getenv("AQE_API_KEY")
local mode = os.getenv("AQE_BENCH_MODE") or "get"
local repo = os.getenv("AQE_BENCH_REPO") or "acme/widgets"
local statuses = {}
local threads = {}
local hex = "0123456789abcdef"

math.randomseed(os.time())

local function sha()
  local out = {}
  for i = 1, 40 do
    local n = math.random(1, 16)
    out[i] = hex:sub(n, n)
  end
  return table.concat(out)
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
end

function request()
  local headers = {["Authorization"] = "Bearer " .. key}
  if mode == "create" then
    headers["Content-Type"] = "application/json"
    local body = '{"repo": "' .. repo .. '", "sha": "' .. sha() .. '", "scan_types": ["secrets"]}'
    return wrk.format("POST", nil, headers, body)
  end
  return wrk.format("GET", nil, headers, nil)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local seen = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for status, n in pairs(c) do
      seen[tostring(status)] = (seen[tostring(status)] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(seen) do
    table.insert(parts, string.format('"%s": %d', status, n))
  end
  io.write(string.format('RESULT {"requests": %d, "errors": %d, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, '
    .. '"max_ms": %.3f, "statuses": {%s}}\n', summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, table.concat(parts, ", ")))
end
