-- The admin API as the gateway and `smg system start-api` start it (admin/server.lua).
local server = require "smg.admin.server"

local M = {}

-- The admin files directory of `cfg`: gateway.admin.files_dir, else `admin-files` beside
-- the config file.
function M.files_dir(cfg)
  if cfg.gateway.admin.files_dir then return cfg.gateway.admin.files_dir end
  local dir = (cfg.source or ""):match("^(.*)/[^/]+$") or "."
  return dir .. "/admin-files"
end

-- Starts the listener for `cfg`. opts: { host?, port?, admin_key = fn, on_change = fn }.
-- Returns server | nil, err.
function M.start(cfg, opts)
  local a = cfg.gateway.admin
  local server_, err = server.listen({
    host = opts.host or a.host, port = opts.port or a.port, config_path = cfg.source,
    files_dir = M.files_dir(cfg), admin_key = opts.admin_key, on_change = opts.on_change, limits = cfg.gateway.limits,
  })
  if not server_ then return nil, ("admin API on %s:%s: %s"):format(opts.host or a.host, tostring(opts.port or a.port), err) end
  return server_
end

return M
