-- The admin REST API: the seed's routes (admin/routes.lua) on their own listener (default
-- 127.0.0.1:8001), on the same C HTTP server and loop as `smg serve`, or alone
-- (`smg system start-api`). Every route but /health and /openapi.json needs
-- `Authorization: Bearer <admin_apikey>`, compared in constant time; without an
-- admin_apikey in the config the API refuses everything (503) rather than run open.
--
-- Each request runs its CLI command in a `smg cli-exec` child: the config store's lock and
-- fsync never block this loop, and the API and the CLI are one implementation. Answers
-- have the seed's shape {message, data, timestamp}; errors {detail, error = {code,
-- message}, timestamp} with a stable code. API keys never reach a log, not even when they
-- travel in a URL path. CORS is off: no browser origin is answered.
local smg = require "smg"
local core = require "smg.core"
local worker = require "smg.worker"
local routes = require "smg.admin.routes"
local openapi = require "smg.admin.openapi"

local json = smg.json
local log = smg.log

local M = {}

local WORKER_TIMEOUT = 30 -- seconds a command may take before its worker is killed

local function now_iso() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

local function reply(req, status, body)
  if not req:alive() then return end
  req:respond(status, { ["Content-Type"] = "application/json", ["Cache-Control"] = "no-store" }, json.encode(body))
end

local function fail(req, status, code, message)
  reply(req, status, { detail = message, error = { code = code, message = message }, timestamp = now_iso() })
end

-- The path as it may be logged: an API key in it is masked.
function M.loggable(path)
  return (path:gsub("(/api%-keys/)([^/]+)", function(pre, key)
    if key == "rotate" then return pre .. key end
    return pre .. smg.mask(key)
  end))
end

local function url_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- A file name from a request, inside the admin files directory (made 0700 at start).
-- Returns path | nil, err.
local function confined(dir, name)
  if type(name) ~= "string" or name == "" or name:find("/", 1, true) or name == "." or name == ".." or name:find("%z") then
    return nil, "a file is named by a plain file name inside the admin files directory (" .. dir .. ")"
  end
  return dir .. "/" .. name
end

-- The command options for a request. Returns opts | nil, message.
local function options_of(self, route, params, body, query)
  local opts, reads = {}, {}
  for name, v in pairs(params) do opts[routes.PARAMS[name]] = url_decode(v) end
  for qname, opt in pairs(route.query or {}) do
    if query[qname] and query[qname] ~= "" then opts[opt] = query[qname] end
  end
  local allowed = {}
  for k, v in pairs(route.body or {}) do
    if type(k) == "number" then allowed[v] = v else allowed[k] = v end
  end
  for _, f in ipairs(route.ignore or {}) do allowed[f] = false end
  for field, v in pairs(body) do
    local flag = allowed[field]
    if flag == nil then return nil, ("unknown field %q"):format(tostring(field)) end
    if flag then
      local file = routes.FILE_FIELDS[field]
      if file then
        local path, err = confined(self.files_dir, v)
        if not path then return nil, err end
        -- A file that is read must not be a symlink out of the directory: the worker checks
        -- (a file that is written replaces the name, it is never written through).
        if field ~= "output_file" then reads[#reads + 1] = path end
        v = path
        if type(file) == "string" then flag = file end
      elseif field == "ids" and type(v) == "table" then
        local parts = {}
        for i, id in ipairs(v) do parts[i] = tostring(id) end
        v = table.concat(parts, ",")
      elseif type(v) == "table" then
        v = json.encode(v) -- objects and lists go to the command as the JSON its flags take
      elseif type(v) == "boolean" and (field == "enabled" or field == "insecure") then
        v = tostring(v)
      elseif type(v) == "number" then
        v = tostring(v)
      end
      opts[flag] = v
    end
  end
  -- An export without a file comes back in `data`.
  if allowed.output_file and opts.output_file == nil then opts.output_file = "-" end
  return opts, reads
end

-- Runs one command in a `smg cli-exec` worker. Yields. Returns value | nil, err, exit
-- code, internal. `reads`: files the command reads, which must be regular files (checked
-- in the worker).
local function execute(self, noun, verb, opts, reads)
  local res, err, internal = worker.run({ noun = noun, verb = verb, opts = opts, config = self.config_path,
    regular_files = reads }, WORKER_TIMEOUT)
  if not res then return nil, err, 1, internal end
  if res.ok then return res.data end
  return nil, res.error, res.code
end

-- A command's message as a REST client reads it: the CLI's flags named as the body's
-- fields ("--email is required" -> "email is required").
function M.as_fields(message)
  return (message:gsub("%-%-(%a[%w%-]*)", function(flag) return (flag:gsub("%-", "_")) end))
end

-- A command's failure as an HTTP status and a stable code.
local function classify(err, code)
  err = tostring(err)
  if code == 2 then return 400, "invalid_request" end
  if err == "the worker timed out" then return 504, "timeout" end
  if err:find("^no ") or err:find("no such") or err:find("^unknown") then return 404, "not_found" end
  if err:find("exists") or err:find("already") or err:find("used by") or err:find("is not in") then
    return 409, "conflict"
  end
  if err:find("refused") or err:find("invalid") then return 422, "invalid_config" end
  return 400, "failed"
end

local function authorized(self, req)
  local key = self:admin_key()
  if not key or key == "" then return false, 503, "admin_disabled", "the admin API needs admin_apikey in the config" end
  local h = req:header("authorization") or ""
  local token = h:match("^[Bb]earer%s+(%S+)%s*$")
  if not token then return false, 401, "unauthorized", "Authorization: Bearer <admin_apikey> is required" end
  if not smg.secure_equal(token, key) then return false, 401, "unauthorized", "invalid admin API key" end
  return true
end

local function query_of(req)
  local q = {}
  for k, v in (req:query() or ""):gmatch("([^&=]+)=([^&]*)") do q[url_decode(k)] = url_decode((v:gsub("%+", " "))) end
  return q
end

function M.handle(self, req)
  local method, path = req:method(), req:path()
  if method == "OPTIONS" or req:header("origin") then
    -- CORS is off: a browser page must not drive the admin API with a stolen token.
    return fail(req, 403, "forbidden", "cross-origin requests are not served")
  end
  if path == "/health" or path == "/openapi.json" then
    if method ~= "GET" then return fail(req, 405, "method_not_allowed", method .. " is not served on " .. path) end
    if path == "/health" then
      return reply(req, 200, { status = "ok", version = core.version, config_path = self.config_path })
    end
    return reply(req, 200, openapi.document())
  end
  if path == "/oauth/callback" then return self:oauth_callback(req, method) end
  local ok, status, code, message = authorized(self, req)
  if not ok then
    log.warn(("admin API: refused %s %s from %s: %s"):format(method, M.loggable(path), req:peer(), code))
    return fail(req, status, code, message)
  end
  req:trust()
  local route, params = routes.match(method, path)
  if not route then
    if params == "method" then return fail(req, 405, "method_not_allowed", method .. " is not served on " .. M.loggable(path)) end
    return fail(req, 404, "not_found", "no route " .. M.loggable(path))
  end
  local body = {}
  local text = req:body() or ""
  if text:find("%S") then
    local decoded = json.decode(text)
    if type(decoded) ~= "table" or json.is_array(decoded) then return fail(req, 400, "invalid_json", "the body must be a JSON object") end
    body = decoded
  end
  local opts, reads = options_of(self, route, params, body, query_of(req))
  if not opts then return fail(req, 400, "invalid_request", reads) end
  if route.inproc then -- the gateway's own state (its cache): answered here, not by a worker
    local fn = self.inproc and self.inproc[route.inproc]
    if not fn then return fail(req, 503, "no_gateway", "no gateway runs in this process (smg system start-api)") end
    log.info(("admin API: %s %s"):format(method, M.loggable(path)))
    -- In a coroutine of its own: some (an OAuth revocation) wait for I/O.
    return smg.spawn(function()
      local fine, data, err = pcall(fn, opts)
      if not req:alive() then return end
      if not fine then
        log.error("admin API: " .. tostring(data))
        return fail(req, 500, "internal", "internal error")
      end
      if data == nil then return fail(req, 400, "failed", M.as_fields(tostring(err))) end
      reply(req, 200, { message = route.summary, data = data, timestamp = now_iso() })
    end)
  end
  smg.spawn(function()
    local value, err, ecode, internal = execute(self, route.noun, route.verb, opts, reads)
    local st, c
    if value == nil then
      if internal then
        st, c = 500, "internal"
      else
        st, c = classify(err, ecode)
      end
    else
      st = route.status or 200
    end
    log.info(("admin API: %s %s -> %d"):format(method, M.loggable(path), st))
    if value == nil then return fail(req, st, c, M.as_fields(tostring(err))) end
    if self.on_change and method ~= "GET" then self.on_change() end
    reply(req, st, { message = route.summary, data = value, timestamp = now_iso() })
  end)
end

-- The authorization server sends a person's browser here after they authorized an
-- upstream (OAUTH_GRANT_TYPE authorization_code). No admin key: the single-use state the
-- gateway put in the authorization URL is what this request must carry.
function M.oauth_callback(self, req, method)
  local page = function(status, text)
    if not req:alive() then return end
    req:respond(status, { ["Content-Type"] = "text/plain; charset=utf-8", ["Cache-Control"] = "no-store",
      ["X-Frame-Options"] = "DENY", ["Referrer-Policy"] = "no-referrer",
      ["X-Content-Type-Options"] = "nosniff" }, text .. "\n")
  end
  if method ~= "GET" then return page(405, "GET only") end
  local fn = self.inproc and self.inproc.oauth_callback
  if not fn then return page(503, "no gateway runs in this process") end
  local q = query_of(req)
  return smg.spawn(function()
    local fine, name, err = pcall(fn, q)
    if not fine then
      log.error("admin API: oauth callback: " .. tostring(name))
      return page(500, "internal error")
    end
    if not name then
      log.warn(("admin API: oauth callback refused from %s: %s"):format(req:peer(), tostring(err)))
      return page(400, "Authorization failed: " .. tostring(err))
    end
    page(200, ("Authorized: smg now holds a token for %s. You can close this window."):format(name))
  end)
end

-- Starts the listener. opts: { host, port, config_path, files_dir, admin_key = fn,
-- limits, inproc = { cache_status = fn(opts), cache_clear = fn(opts) } (a gateway's) }.
-- Returns server | nil, err.
function M.listen(opts)
  -- At start, not per request: no process is spawned on the loop for a request.
  os.execute("mkdir -p -m 0700 '" .. opts.files_dir:gsub("'", "'\\''") .. "'")
  local self = setmetatable({ config_path = opts.config_path, files_dir = opts.files_dir, admin_key = opts.admin_key,
    on_change = opts.on_change, inproc = opts.inproc }, { __index = M })
  local lim = opts.limits or {}
  local server, err = core.http_listen(opts.host, opts.port, {
    max_header_bytes = lim.max_header_bytes or 16384,
    max_body_bytes = 4 * 1024 * 1024,
    max_connections = 256,
    max_untrusted_per_peer = 64,
    reserved_connections = 16,
    header_timeout_ms = 10000,
    idle_timeout_ms = 75000,
    request_timeout_ms = (WORKER_TIMEOUT + 10) * 1000,
  }, function(req)
    local ok, e = xpcall(M.handle, debug.traceback, self, req)
    if not ok then
      log.error("admin API handler: " .. tostring(e))
      pcall(fail, req, 500, "internal", "internal error")
    end
  end, function() end)
  if not server then return nil, err end
  return server
end

return M
