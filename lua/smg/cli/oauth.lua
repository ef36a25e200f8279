-- `smg oauth metrics|pending|revoke --server-name S`: the upstream OAuth tokens of the gateway
-- running on this config, through its admin API (the tokens live in that process).
local ask = require("smg.cli.gateway_api").ask

local C = {}

C.metrics = { flags = {}, help = "Token acquisitions, refreshes, cache hits and latency of the running gateway",
  run = function(_, ctx) return ask(ctx, "GET", "/api/v1/oauth/metrics") end,
  text = function(v)
    return ("%d token(s) active; %d acquired (%d refreshes), %d failed; cache hit ratio %.2f; latency avg %.0f ms, max %.0f ms; %d revoked")
      :format(v.active_tokens or 0, v.token_acquisitions_success or 0, v.token_refreshes or 0,
        v.token_acquisitions_failure or 0, v.cache_hit_ratio or 0, v.avg_latency_ms or 0, v.max_latency_ms or 0,
        v.revocations or 0)
  end }

C.revoke = { flags = { { "--server-name", required = true, help = "the server whose token to revoke" },
  { "--config-id", help = "only in this mcp_config (default: every one that has the server)" } },
  help = "Revoke the running gateway's token for a server (RFC 7009) and forget it; the next call fetches a new one",
  run = function(opts, ctx)
    return ask(ctx, "POST", "/api/v1/oauth/revoke", { server_name = opts.server_name, config_id = opts.config_id })
  end,
  text = function(v) return ("revoked the token for %s"):format(tostring(v.server_name)) end }

C.pending = { flags = {}, help = "Upstreams waiting for a person to authorize them: the URLs to open in a browser",
  run = function(_, ctx) return ask(ctx, "GET", "/api/v1/oauth/pending") end,
  text = function(v)
    if #v == 0 then return "no authorization pending" end
    local lines = {}
    for _, p in ipairs(v) do
      lines[#lines + 1] = ("%s%s (expires in %ds):\n  %s"):format(p.server_name,
        p.config_id and (" in mcp_config " .. p.config_id) or "", p.expires_in, p.authorization_url)
    end
    return table.concat(lines, "\n")
  end }

return { summary = "The running gateway's upstream OAuth tokens (through its admin API).", commands = C }
