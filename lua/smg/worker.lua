-- Work that must not block the event loop (the config store's lock, writes and fsyncs)
-- runs in a `smg cli-exec` child process: the request goes as one JSON document on its
-- stdin (never in argv, where other local users can read it), the answer comes back as
-- one JSON line on its stdout. Used by the admin API (one CLI command per request) and by
-- config replication (gateway/cluster.lua).
local core = require "smg.core"
local async = require "smg.async"
local json = require("smg").json

local M = {}

-- Runs `request` (a table) in a worker, killing it after `timeout` seconds. Yields.
-- Returns the worker's answer (a table) | nil, err, internal (true: the worker died
-- without answering, a bug rather than a refusal).
function M.run(request, timeout)
  local exe = core.paths()
  local f = async.future()
  local out = {}
  local proc, err = core.spawn({ file = exe, args = { "cli-exec" }, max_line = 64 * 1024 * 1024 },
    function(stream, line)
      if stream == 1 then out[#out + 1] = line end
    end,
    function(status) f:set(status) end)
  if not proc then return nil, "cannot start a worker: " .. tostring(err) end
  proc:write(json.encode(request) .. "\n")
  proc:shutdown(timeout * 1000) -- stdin closed now; killed if it outlives this
  local status = f:wait(timeout + 5)
  proc:release()
  if status == nil then return nil, "the worker timed out" end
  local res = json.decode(table.concat(out, "\n"))
  if type(res) ~= "table" then
    return nil, "the worker exited (status " .. tostring(status) .. ") without an answer", true
  end
  return res
end

return M
