-- Structured JSON lines, one per gateway event (requests with the seed's context fields:
-- project, user, mcp_config, server, tool, duration, trace ids; upstream restarts;
-- reloads), secret-looking values masked. Written to stdout, or stderr under
-- `smg serve --stdio` where stdout is the MCP channel, or appended to a file (path). Lines are buffered and flushed every
-- flush_interval seconds, so a burst costs one write, not one per event.
local smg = require "smg"

local M = {
  name = "stdout",
  kind = "telemetry",
  version = "1.0.0",
  priority = 100,
  description = "JSON lines on stdout (stderr in stdio mode)",
  schema = {
    events = { type = "array", items = { type = "string" }, description = "event names to write (default: all)" },
    flush_interval = { type = "number", default = 0.2, min = 0 },
    path = { type = "string", description = "append to this file instead of stdout" },
  },
}

local out, timer, only

local function stream(config)
  if not out then
    if config.path then
      out = assert(smg.open_private(config.path, "a"))
    else
      out = smg.stdio_transport and io.stderr or io.stdout
    end
    out:setvbuf("full")
  end
  return out
end

function M.on_event(ev, config)
  if config.events and not only then
    only = {}
    for _, e in ipairs(config.events) do only[e] = true end
  end
  if only and not only[ev.event] then return end
  local line = smg.json.encode(smg.mask_table(ev))
  if not line then return end
  local f = stream(config)
  f:write(line, "\n")
  if config.flush_interval == 0 then
    f:flush()
  elseif not timer then
    timer = smg.timer(config.flush_interval, function()
      timer:close()
      timer = nil
      f:flush()
    end)
  end
end

function M.shutdown()
  if timer then
    timer:close()
    timer = nil
  end
  if out then out:flush() end
end

return M
