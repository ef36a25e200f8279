-- `smg cache status|clear [--server-name S]`: the discovery cache of the gateway running
-- on this config, asked through its admin API (the address it wrote beside the config,
-- the config's admin_apikey). The cache lives in that process (or in Redis, shared): a
-- separate command cannot read it any other way.
local ask = require("smg.cli.gateway_api").ask

local C = {}

C.status = { flags = {}, help = "What the running gateway's discovery cache holds", run = function(_, ctx)
  return ask(ctx, "GET", "/api/v1/cache/status")
end, text = function(v)
  local lines = { ("backend %s, %d hits, %d misses"):format(tostring(v.backend), v.hits or 0, v.misses or 0) }
  for _, e in ipairs(v.entries or {}) do
    lines[#lines + 1] = ("  %s %s: %d item(s), expires in %ds"):format(e.server_name, e.kind, e.items, e.expires_in_seconds)
  end
  return table.concat(lines, "\n")
end }

C.clear = { flags = { { "--server-name", help = "only this server's lists" } },
  help = "Drop the running gateway's cached lists (they are rediscovered on next use)", run = function(opts, ctx)
  return ask(ctx, "POST", "/api/v1/cache/clear", { server_name = opts.server_name })
end, text = function(v) return ("cleared %d cached list(s)"):format(v.cleared or 0) end }

return { summary = "The running gateway's discovery cache (through its admin API).", commands = C }
