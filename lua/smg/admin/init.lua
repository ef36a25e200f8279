-- The admin API as the gateway and `smg system start-api` start it (admin/server.lua).
local core = require "smg.core"
local server = require "smg.admin.server"

local M = {}

-- The admin files directory of `cfg`: gateway.admin.files_dir, else `admin-files` beside
-- the config file.
function M.files_dir(cfg)
  if cfg.gateway.admin.files_dir then return cfg.gateway.admin.files_dir end
  local dir = (cfg.source or ""):match("^(.*)/[^/]+$") or "."
  return dir .. "/admin-files"
end

-- Where a running admin API tells local commands (`smg cache ...`) its address.
function M.endpoint_file(cfg) return cfg.source .. ".admin-endpoint" end

-- Starts the listener for `cfg`. opts: { host?, port?, admin_key = fn, on_change = fn,
-- inproc = { ... } (the gateway's cache) }. Returns server | nil, err.
function M.start(cfg, opts)
  local a = cfg.gateway.admin
  local host = opts.host or a.host
  local server_, err = server.listen({
    host = host, port = opts.port or a.port, config_path = cfg.source,
    files_dir = M.files_dir(cfg), admin_key = opts.admin_key, on_change = opts.on_change, limits = cfg.gateway.limits,
    inproc = opts.inproc,
  })
  if not server_ then return nil, ("admin API on %s:%s: %s"):format(host, tostring(opts.port or a.port), err) end
  core.write_durable(M.endpoint_file(cfg), ("http://%s:%d\n"):format(host:find(":") and ("[" .. host .. "]") or host,
    server_:port()))
  local close = server_.close
  return setmetatable({ close = function()
    os.remove(M.endpoint_file(cfg))
    return close(server_)
  end }, { __index = function(_, k)
    local v = server_[k]
    if type(v) == "function" then return function(_, ...) return v(server_, ...) end end
    return v
  end })
end

return M
