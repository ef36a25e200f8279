-- /health: every configured upstream with its state (ready, starting, down with the
-- reason; per_session ones start with their session). "down" (HTTP 503) when servers are
-- configured and none of them can serve; "degraded" when some cannot.
local smg = require "smg"
local json = smg.json

local M = {}

local STATE = { ready = "ready", idle = "starting", starting = "starting", backoff = "down", failed = "down",
  closed = "down" }

function M.report(gw)
  local list, usable, down = json.array({}), 0, 0
  local ids = {}
  for id in pairs(gw.cfg.mcp_configs) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    for _, spec in ipairs(gw.cfg.mcp_configs[id].mcp_config) do
      local e = { server = spec.server_name, mcp_config_id = id }
      if spec.sharing == "per_session" then
        e.state = "per_session"
      else
        local up = gw.pool:find_shared(id, spec.server_name)
        e.state = up and STATE[up.state] or "starting"
        if e.state == "down" then e.reason = up.last_error end
      end
      if e.state == "down" then down = down + 1 else usable = usable + 1 end
      list[#list + 1] = e
    end
  end
  local status = "ok"
  if gw.draining then status = "draining"
  elseif down > 0 and usable == 0 then status = "down"
  elseif down > 0 then status = "degraded" end
  return { status = status, sessions = gw.tenants:count(), version = smg.version, upstreams = list }
end

return M
