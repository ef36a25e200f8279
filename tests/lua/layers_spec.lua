-- The layering of lua/smg (docs/architecture.md): imports go one way. The protocol (mcp/)
-- knows nothing of routing, upstreams or the gateway; routers decide and never carry;
-- upstream clients report to a sink and never reach into the gateway; the discovery
-- cache stands alone; gateway/ composes them all. Read off the source files themselves.
local core = require "smg.core"

local _, root = core.paths()
local LUA = root .. "/lua/"

-- The layer a module name belongs to.
local function layer_of(mod)
  -- The binding's store (smg.cache) and its first level are base; the discovery cache
  -- built on them is the cache layer.
  if mod == "smg.cache" or mod == "smg.cache.lru" then return "base" end
  local sub = mod:match("^smg%.([%w_]+)%.")
  if sub == "mcp" or sub == "router" or sub == "upstream" or sub == "gateway" then return sub end
  if sub == "cache" then return "cache" end
  if sub == "cli" or mod == "smg.cli" then return "cli" end
  if sub == "admin" or mod == "smg.admin" then return "admin" end
  if mod == "smg.main" then return "main" end
  if mod == "smg.gateway" then return "gateway" end
  return "base" -- smg, smg.core, smg.async, smg.metrics, smg.plugins, smg.config, smg.cache ...
end

-- What each layer may import besides itself.
local MAY = {
  base = { base = true, mcp = "smg.mcp.jsonrpc" }, -- protocol constants for error shapes only
  mcp = { base = true },
  router = { base = true, mcp = true },
  upstream = { base = true, mcp = true },
  cache = { base = true, mcp = true },
  gateway = { base = true, mcp = true, router = true, upstream = true, cache = true },
  cli = { base = true, mcp = true, router = true, upstream = true, cache = true, gateway = true },
  admin = { base = true, cli = true },
  main = { base = true, mcp = true, router = true, upstream = true, cache = true, gateway = true, cli = true,
    admin = true },
}

local function requires(src)
  local out = {}
  for name in src:gmatch("require%s*%(?%s*[\"']([%w%._]+)[\"']") do
    if name == "smg" or name:match("^smg%.") then out[#out + 1] = name end
  end
  return out
end

-- The violations in one module's source: { "from -> to" }.
local function violations(mod, src)
  local from = layer_of(mod)
  local bad = {}
  for _, to in ipairs(requires(src)) do
    local l = layer_of(to)
    local rule = MAY[from][l]
    local ok = l == from or rule == true or rule == to
    if not ok then bad[#bad + 1] = mod .. " -> " .. to end
  end
  return bad
end

local function modules()
  local p = io.popen("cd " .. LUA .. " && find smg -name '*.lua' | sort")
  local list = {}
  for path in p:lines() do
    local mod = path:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    list[#list + 1] = { mod = mod, path = LUA .. path }
  end
  p:close()
  return list
end

describe("layers", function()
  it("finds every module and reads its requires", function()
    local list = modules()
    assert.is_true(#list > 40)
    local f = assert(io.open(LUA .. "smg/gateway/pipeline.lua"))
    local reqs = requires(f:read("*a"))
    f:close()
    assert.is_truthy(table.concat(reqs, " "):find("smg.upstream.client", 1, true))
  end)

  it("catches an import that goes the wrong way", function()
    assert.are.same({ "smg.mcp.session -> smg.gateway.pipeline" },
      violations("smg.mcp.session", 'local p = require "smg.gateway.pipeline"\nlocal a = require "smg.async"'))
    assert.are.same({ "smg.router.aggregate -> smg.upstream.client" },
      violations("smg.router.aggregate", 'local C = require("smg.upstream.client")'))
    assert.are.same({ "smg.upstream.http -> smg.gateway.telemetry" },
      violations("smg.upstream.http", "local t = require 'smg.gateway.telemetry'"))
    assert.are.same({ "smg.metrics -> smg.mcp.session" }, violations("smg.metrics", 'require "smg.mcp.session"'))
    assert.are.same({}, violations("smg.limits", 'require "smg.mcp.jsonrpc"'))
  end)

  it("holds for every module under lua/smg", function()
    local all = {}
    for _, m in ipairs(modules()) do
      local f = assert(io.open(m.path))
      for _, v in ipairs(violations(m.mod, f:read("*a"))) do all[#all + 1] = v end
      f:close()
    end
    assert.are.same({}, all)
  end)
end)
