-- The plugin loader and hook runner. A plugin is plugins/<kind>/<name>.lua (or
-- plugins/<kind>/<name>/init.lua) returning { name, kind, version, priority, schema,
-- <hooks> }. Loading validates the table and the plugin's config against its schema;
-- running a hook happens in its own coroutine with a time limit, and an error or a
-- timeout never escapes: the caller gets a verdict it can apply (fail closed by default
-- for guardrails).
local smg = require "smg"
local core = require "smg.core"
local async = require "smg.async"
local schema = require "smg.schema"
local log = smg.log

local M = {}

local KINDS = {
  auth = { authenticate = true, challenge = true, resource_metadata = true },
  guardrail = { check_input = true, check_output = true, check_discovery = true, on_message = true },
  telemetry = { on_event = true, shutdown = true },
}
local DIRS = { auth = "auth", guardrail = "guardrails", telemetry = "telemetry" }
local META = { name = true, kind = true, version = true, priority = true, schema = true, description = true,
  messages = true, discovery = true, cpu_only = true }

-- The message pipeline's hook points (lua/smg/gateway/hooks.lua): a guardrail with
-- on_message lists in `messages` the points it wants to see.
-- Whether provider `p` sees `method` at `point`.
function M.sees(p, point, method)
  local w = p.points[point]
  if w == true then return true end
  if not w then return false end
  if w.only then return w.only[method] == true end
  return not w.except[method]
end

M.POINTS = { "c2s:request", "c2s:notification", "c2s:result", "c2s:error",
  "s2c:request", "s2c:notification", "s2c:result", "s2c:error" }
-- What check_discovery can see: the four lists, and a server's instructions (as a list of
-- one item, { instructions = text }).
M.LISTS = { tools = true, prompts = true, resources = true, resourceTemplates = true, instructions = true }
local POINT = {}
for _, p in ipairs(M.POINTS) do POINT[p] = true end

-- Directories searched before $SMG_PLUGIN_PATH and <root>/plugins (tests add theirs).
M.extra_dirs = {}

function M.dirs()
  local _, root = core.paths()
  local dirs = {}
  for _, d in ipairs(M.extra_dirs) do dirs[#dirs + 1] = d end
  local extra = os.getenv("SMG_PLUGIN_PATH")
  if extra and extra ~= "" then for d in extra:gmatch("[^:]+") do dirs[#dirs + 1] = d end end
  dirs[#dirs + 1] = root .. "/plugins"
  return dirs
end

local function find(kind, name)
  if not name:match("^[%w_%-]+$") then return nil, "invalid plugin name " .. name end
  for _, dir in ipairs(M.dirs()) do
    for _, p in ipairs({ dir .. "/" .. DIRS[kind] .. "/" .. name .. ".lua",
      dir .. "/" .. DIRS[kind] .. "/" .. name .. "/init.lua" }) do
      local f = io.open(p, "rb")
      if f then
        f:close()
        return p
      end
    end
  end
  return nil, ("no %s plugin %q (looked in %s)"):format(kind, name, table.concat(M.dirs(), ", "))
end

-- Checks the returned table's shape. Returns true | nil, err.
function M.check_shape(p, kind, path)
  if type(p) ~= "table" then return nil, path .. ": must return a table" end
  if p.kind ~= kind then return nil, ("%s: kind must be %q"):format(path, kind) end
  if type(p.name) ~= "string" or p.name == "" then return nil, path .. ": name must be a string" end
  if type(p.version) ~= "string" or not p.version:match("^%d+%.%d+%.%d+") then
    return nil, path .. ": version must look like 1.2.3"
  end
  if type(p.priority) ~= "number" or p.priority ~= math.floor(p.priority) then
    return nil, path .. ": priority must be an integer"
  end
  for k, v in pairs(p) do
    -- Helpers of the plugin's own are fine; a misspelt hook would silently never run.
    if not META[k] and not KINDS[kind][k] and type(k) == "string" and (k:match("^check_") or k:match("^on_")) then
      return nil, ("%s: unknown hook %q"):format(path, k)
    end
    if KINDS[kind][k] and type(v) ~= "function" then return nil, ("%s: %s must be a function"):format(path, k) end
  end
  if p.schema ~= nil and type(p.schema) ~= "table" then return nil, path .. ": schema must be a table" end
  if p.on_message then
    if type(p.messages) ~= "table" or #p.messages == 0 then
      return nil, path .. ": on_message needs messages, a list of hook points (" .. table.concat(M.POINTS, ", ") .. ")"
    end
    -- "point" sees every message there; "point method ..." only those methods' (a
    -- provider that cares about prompts/get costs nothing on tools/call); "point !method
    -- ..." every method but those. p.points[point] = true | { only = set } | { except = set }.
    p.points = {}
    for _, entry in ipairs(p.messages) do
      local pt, rest = tostring(entry):match("^(%S+)%s*(.*)$")
      if not POINT[pt] then
        return nil, ("%s: unknown hook point %q in messages (known: %s)"):format(path, tostring(entry),
          table.concat(M.POINTS, ", "))
      end
      local only, except = nil, nil
      for m in rest:gmatch("%S+") do
        if m:sub(1, 1) == "!" then
          except = except or {}
          except[m:sub(2)] = true
        else
          only = only or {}
          only[m] = true
        end
      end
      if only and except then
        return nil, ("%s: %q mixes methods and !methods"):format(path, tostring(entry))
      end
      local cur = p.points[pt]
      if not only and not except then
        p.points[pt] = true
      elseif cur == nil or (cur ~= true and cur.only and only) then
        cur = cur or { only = only, except = except }
        for m in pairs(only or {}) do cur.only[m] = true end
        p.points[pt] = cur
      else
        return nil, ("%s: hook point %s is named twice in messages"):format(path, pt)
      end
    end
  elseif p.messages ~= nil then
    return nil, path .. ": messages without on_message"
  end
  -- Which discovered lists check_discovery sees (api_minor 2); tools only by default.
  if p.check_discovery then
    p.lists = {}
    for _, l in ipairs(p.discovery or { "tools" }) do
      if not M.LISTS[l] then
        return nil, ("%s: unknown list %q in discovery (known: tools, prompts, resources, resourceTemplates, "
          .. "instructions)"):format(path, tostring(l))
      end
      p.lists[l] = true
    end
  elseif p.discovery ~= nil then
    return nil, path .. ": discovery without check_discovery"
  end
  return true
end

-- Loads plugin `name` of `kind` with `config`. Returns plugin (with .config filled) |
-- nil, err. Each load gets a fresh module (a reload never shares state with the old one).
-- The seed's provider names, loaded as smg's equivalents with their config translated, so
-- a seed config keeps its telemetry and guardrails instead of failing to load them.
local function otlp_of(c)
  local url = type(c.url) == "string" and c.url or "http://127.0.0.1:4318"
  if url:find(":4317", 1, true) then
    -- The seed exports OTLP over gRPC (4317); smg exports OTLP over HTTP, on 4318.
    log.warn(("telemetry: the seed's opentelemetry provider (%s, gRPC) runs as otlp over HTTP on port 4318"):format(url))
    url = url:gsub(":4317", ":4318", 1)
  end
  if not url:match("^https?://") then url = "http://" .. url end
  return { endpoint = url }
end
M.ALIASES = {
  telemetry = { opentelemetry = { "otlp", otlp_of } },
  guardrail = { custom_keyword = { "keyword" }, openai = { "openai_moderation" } },
}

function M.load(kind, name, config)
  local alias = M.ALIASES[kind] and M.ALIASES[kind][name]
  if alias then
    name = alias[1]
    if alias[2] then config = alias[2](config or {}) end
  end
  local path, err = find(kind, name)
  if not path then return nil, err end
  local chunk, lerr = loadfile(path)
  if not chunk then return nil, lerr end
  local ok, p = pcall(chunk, name)
  if not ok then return nil, path .. ": " .. tostring(p) end
  local sok, serr = M.check_shape(p, kind, path)
  if not sok then return nil, serr end
  local cfg, errs = schema.validate({ type = "object", fields = p.schema or {}, unknown = "error" },
    config or {}, "plugins." .. DIRS[kind] .. ".config")
  if #errs > 0 then return nil, table.concat(errs, "; ") end
  p.config = cfg
  p.path = path
  return p
end

-- Runs hook `fn(...)` in its own coroutine and waits at most `timeout` seconds.
-- Returns true, r1, r2 (the hook's first two results) | false, reason ("error" or
-- "timeout"); an auth hook's two results are identity | nil, reason.
--
-- Most hooks finish without waiting for anything: then the run is one pooled coroutine
-- and one table (`run`), and no future. A hook that waits gets a future, created by the
-- caller right after the hook first yields (before anything can resume it).
local function hook_body(run)
  async.set_deadline(run.timeout)
  local ok, r1, r2
  local n, a = run.n, run
  if n <= 5 then
    ok, r1, r2 = xpcall(run.fn, debug.traceback, a[1], a[2], a[3], a[4], a[5])
  else
    ok, r1, r2 = xpcall(run.fn, debug.traceback, unpack(a, 1, n))
  end
  async.set_deadline(nil)
  run.done, run.ok, run.r1, run.r2 = true, ok, r1, r2
  if run.future then run.future:set(true) end
end

function M.run_hook(plugin, hook, timeout, ...)
  if plugin.cpu_only and select("#", ...) <= 5 and async.in_coroutine() then
    local ok, r1, r2 = async.run_inline(timeout, plugin[hook], debug.traceback, ...)
    if ok then return true, r1, r2 end
    if tostring(r1):find("time budget spent", 1, true) then
      log.warn(("plugin %s: %s timed out after %gs"):format(plugin.name, hook, timeout))
      return false, "timeout"
    end
    log.error(("plugin %s: %s failed: %s"):format(plugin.name, hook, tostring(r1)))
    return false, "error"
  end
  local run = { fn = plugin[hook], timeout = timeout, n = select("#", ...), ... }
  local co = async.spawn(hook_body, run)
  if not run.done then
    run.future = async.future()
    if run.future:wait(timeout) == nil then
      async.expire(co) -- CPU work it goes on with stops at its next checkpoint
      log.warn(("plugin %s: %s timed out after %gs"):format(plugin.name, hook, timeout))
      return false, "timeout"
    end
  end
  if not run.ok then
    log.error(("plugin %s: %s failed: %s"):format(plugin.name, hook, tostring(run.r1)))
    return false, "error"
  end
  return true, run.r1, run.r2
end

return M
