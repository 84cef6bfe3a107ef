-- wrk script: replay the requests of BENCH_REQUESTS, one per line, and report as JSON.
--
-- A line is  METHOD <tab> PATH <tab> HEADER NAME <tab> HEADER VALUE <tab> BODY  (the last three
-- may be empty). Each wrk thread takes every n-th line from its own offset, so no two threads
-- send the same line; "{seq}" in a body becomes a run-unique number. Headers common to every
-- request (Authorization, Content-Type, Cookie) come from wrk's -H options.

local lines = {}
for line in io.lines(os.getenv("BENCH_REQUESTS")) do
  lines[#lines + 1] = line
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  threads[#threads + 1] = thread
end

local requests = {}
local position = 0
local stride = 1
local sequence = 0
local prefix = os.getenv("BENCH_SEQ_PREFIX") or "r"

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

function init(args)
  stride = tonumber(os.getenv("BENCH_THREADS") or "1")
  position = thread_id - 1
  for _, line in ipairs(lines) do
    requests[#requests + 1] = split(line)
  end
end

function request()
  local fields = requests[(position % #requests) + 1]
  position = position + stride
  sequence = sequence + 1
  -- a headers table given to wrk.format replaces the -H ones: start from a copy of them
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  if fields[3] ~= nil and fields[3] ~= "" then
    headers[fields[3]] = fields[4]
  end
  local body = fields[5]
  if body == "" then
    body = nil
  else
    body = body:gsub("{seq}", prefix .. thread_id .. "x" .. sequence)
  end
  return wrk.format(fields[1], fields[2], headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
