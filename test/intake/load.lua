-- wrk script for test/intake: one OpenLineage COMPLETE event per request
-- ($WRK_BATCH > 1: a JSON array of that many), each with a run id nobody
-- else sends ("<prefix>-<thread>-<seq>[.<i>]"), and a record of which ones
-- got a 2xx.  With one connection per thread (-t N
-- -c N) requests and responses alternate, so the answer always belongs to
-- the last request made.  done() writes the acknowledged run ids to
-- $WRK_ACK_FILE, one per line.
local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

function init(args)
   seq = 0
   current = nil
   acked = {}
   nacked = 0
   failed = 0
   prefix = os.getenv("WRK_RUN_PREFIX") or "load"
   token = os.getenv("WRK_TOKEN")
   jobs = tonumber(os.getenv("WRK_JOBS") or "50")
   batch = tonumber(os.getenv("WRK_BATCH") or "1")
end

local function event(id, job, t, ms)
   return string.format(
      '{"eventType":"COMPLETE","eventTime":"%s.%03dZ","run":{"runId":"%s"},' ..
      '"job":{"namespace":"load","name":"%s"},"inputs":[],"outputs":[],' ..
      '"producer":"https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/airflow",' ..
      '"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}',
      t, ms, id, job)
end

function request()
   seq = seq + 1
   current = string.format("%s-%d-%d", prefix, tid, seq)
   local job = string.format("job_%02d", seq % jobs)
   local t = os.date("!%Y-%m-%dT%H:%M:%S")
   local body
   if batch <= 1 then
      body = event(current, job, t, seq % 1000)
   else
      local parts = {}
      for i = 1, batch do
         parts[i] = event(current .. "." .. i, job, t, seq % 1000)
      end
      body = "[" .. table.concat(parts, ",") .. "]"
   end
   return wrk.format("POST", "/api/v1/lineage",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

function response(status, headers, body)
   if current ~= nil and status >= 200 and status < 300 then
      if batch <= 1 then
         nacked = nacked + 1
         acked[nacked] = current
      else
         for i = 1, batch do
            nacked = nacked + 1
            acked[nacked] = current .. "." .. i
         end
      end
   else
      failed = failed + 1
   end
   current = nil
end

function done(summary, latency, requests)
   local path = os.getenv("WRK_ACK_FILE")
   local total, bad = 0, 0
   local f = path and io.open(path, "w")
   for _, thread in ipairs(threads) do
      local n = thread:get("nacked")
      local a = thread:get("acked")
      total = total + n
      bad = bad + thread:get("failed")
      if f then
         for i = 1, n do f:write(a[i], "\n") end
      end
   end
   if f then f:close() end
   io.write(string.format("acknowledged %d events, %d other answers\n", total, bad))
end
