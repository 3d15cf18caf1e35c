-- wrk script of the submission benchmark (bench/submit.py): POST a varied, valid op-ed response
-- with a fresh version-4 submission_id per request, count every status other than 201, and print
-- one JSON summary line (marked BENCH_JSON) at the end.
--
-- The bodies come from the file named by BENCH_BODIES: one JSON body per line, each holding the
-- placeholder submission_id 00000000-0000-4000-8000-000000000000.

local bodies = {}
local mark = "00000000%-0000%-4000%-8000%-000000000000"
local threads = {}
local path = os.getenv("BENCH_PATH") or "/api/v1/questionnaires/dialogue_2022/responses"
local headers = { ["Content-Type"] = "application/json" }

-- Each body is kept as the text before and after its placeholder, so that a request costs one
-- concatenation instead of a pattern search through the body (the generator shares the CPU).
for line in io.lines(os.getenv("BENCH_BODIES")) do
  local first, last = line:find(mark)
  bodies[#bodies + 1] = { line:sub(1, first - 1), line:sub(last + 1) }
end

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  not201 = 0
  statuses = {}
end

local function uuid4()
  local r = math.random
  return string.format("%04x%04x-%04x-4%03x-%x%03x-%04x%04x%04x",
    r(0, 65535), r(0, 65535), r(0, 65535), r(0, 4095), r(8, 11), r(0, 4095),
    r(0, 65535), r(0, 65535), r(0, 65535))
end

function request()
  local parts = bodies[math.random(#bodies)]
  return wrk.format("POST", path, headers, parts[1] .. uuid4() .. parts[2])
end

function response(status, headers, body)
  if status ~= 201 then
    not201 = not201 + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  local by_status = {}
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not201")
    for status, count in pairs(thread:get("statuses")) do
      by_status[#by_status + 1] = string.format('"%d": %d', status, count)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "not201": %d, "statuses": {%s}, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, bad, table.concat(by_status, ", "),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
