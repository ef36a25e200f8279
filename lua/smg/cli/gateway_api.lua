-- What a CLI command asks the gateway running on its config: through that gateway's admin
-- API (the address it wrote beside the config, the config's admin_apikey). State that
-- lives in the running process (its caches, its OAuth tokens) cannot be read otherwise.
local smg = require "smg"
local config = require "smg.config"

local json = smg.json

local M = {}

-- Returns the answer's data | nil, err.
function M.ask(ctx, method, path, body)
  local cfg, errs = config.load({ path = ctx.path })
  if not cfg then return nil, ctx.path .. " is invalid: " .. table.concat(errs, "; ") end
  if not cfg.admin_apikey then return nil, "the config has no admin_apikey: the gateway serves no admin API to ask" end
  local text = smg.read_file(ctx.path .. ".admin-endpoint")
  local base = text and text:match("^(%S+)")
  if not base then return nil, "no gateway with an admin API runs on " .. ctx.path .. " (smg serve starts one)" end
  local res, err = smg.http.request({ method = method, url = base .. path, timeout = 10,
    headers = { Authorization = "Bearer " .. cfg.admin_apikey, ["Content-Type"] = "application/json" },
    body = body and json.encode(body) or nil })
  if not res then return nil, ("the gateway's admin API (%s) did not answer: %s"):format(base, tostring(err)) end
  local doc = json.decode(res.body or "")
  if res.status ~= 200 or type(doc) ~= "table" then
    return nil, ("the admin API answered %d: %s"):format(res.status, type(doc) == "table" and tostring(doc.detail) or "")
  end
  return doc.data
end

return M
