-- `smg cache status|clear [--server-name S] [--config-id C] [--cache-type T]`: the cache
-- of the gateway running on this config, asked through its admin API (the address it
-- wrote beside the config, the config's admin_apikey). The first level lives in that
-- process (the second in Redis, shared): a separate command cannot read it any other way.
local ask = require("smg.cli.gateway_api").ask

local C = {}

C.status = { flags = {}, help = "What the running gateway's cache holds, per tenant and server", run = function(_, ctx)
  return ask(ctx, "GET", "/api/v1/cache/status")
end, text = function(v)
  local g, c = v.global or {}, v.cache or {}
  local l1 = c.l1 or {}
  local lines = { ("cache %s: %d list(s) in %d tenant(s); L1 %d entries, %d bytes of %d; %d hits (%d from Redis), "
    .. "%d misses%s"):format(tostring(g.cache_type), g.total_tool_caches or 0, g.total_gateways or 0, l1.entries or 0,
    l1.bytes or 0, l1.max_bytes or 0, c.hits or 0, c.l2_hits or 0, c.misses or 0,
    type(c.redis_state) == "string" and (", redis " .. c.redis_state) or "") }
  local ids = {}
  for id in pairs(v.tenants or {}) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    lines[#lines + 1] = "  " .. id
    local servers = v.tenants[id].tools and v.tenants[id].tools.servers or {}
    local names = {}
    for name in pairs(servers) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local s = servers[name]
      local what
      if s.are_tools_explicitly_defined then
        what = ("%d tool(s) defined in the config"):format(s.tool_count)
      elseif s.exists then
        what = ("%d tool(s) cached until %s"):format(s.tool_count, tostring(s.expires_at))
      else
        what = "not cached (discovered on next use)"
      end
      lines[#lines + 1] = ("    %s: %s"):format(name, what)
    end
  end
  return table.concat(lines, "\n")
end }

C.clear = { flags = { { "--server-name", help = "only this server's lists" },
  { "--config-id", help = "only this mcp_config (tenant)" },
  { "--cache-type", help = "all | server_config | gateway_config (the seed's types)" } },
  help = "Drop cached lists in both levels (they are rediscovered on next use)", run = function(opts, ctx)
  return ask(ctx, "POST", "/api/v1/cache/clear", { server_name = opts.server_name, config_id = opts.config_id,
    cache_type = opts.cache_type })
end, text = function(v) return v.message or ("cleared %d cached list(s)"):format(v.cleared or 0) end }

return { summary = "The running gateway's cache (through its admin API).", commands = C }
