-- Config loading: the seed's schema with defaults, errors that name the key path.
local config = require "smg.config"
local smg = require "smg"

local function server(extra)
  local s = { server_name = "a", config = { command = "x" } }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

local function doc(servers, gateway)
  return smg.json.encode({ mcp_configs = { c1 = { mcp_config = servers } }, gateway = gateway or {} })
end

describe("config", function()
  it("applies the seed's defaults", function()
    local cfg = assert(config.parse(doc({ server() })))
    local t = cfg.common_mcp_gateway_config.timeout_settings
    assert.are.equal(30, t.default_timeout)
    assert.are.equal(60, t.tool_execution_timeout)
    assert.are.equal(0.8, t.escalation_policies.warn_threshold)
    assert.are.equal("127.0.0.1", cfg.gateway.host)
    assert.are.equal(8000, cfg.gateway.port)
    assert.are.equal("meta", cfg.gateway.mode)
    assert.are.equal("enkrypt_", cfg.gateway.tool_prefix)
    assert.are.equal("shared", cfg.mcp_configs.c1.mcp_config[1].sharing)
  end)

  it("names the path of a bad value", function()
    local cfg, errs = config.parse(doc({ server(), server({ server_name = "b", config = { command = 5 } }) }))
    assert.is_nil(cfg)
    assert.are.same({ "mcp_configs.c1.mcp_config[1].config.command: expected string, got number" }, errs)
  end)

  it("rejects duplicate server names, bad modes and missing transports", function()
    local _, errs = config.parse(doc({ server(), server() }))
    assert.matches("appears twice", errs[1])
    _, errs = config.parse(doc({ server() }, { mode = "turbo" }))
    assert.matches("gateway.mode: must be one of meta, aggregate, passthrough", errs[1])
    _, errs = config.parse(doc({ { server_name = "a", config = {} } }))
    assert.matches("exactly one of command", errs[1])
    _, errs = config.parse(doc({ server() }, { bogus = 1 }))
    assert.matches("gateway.bogus: unknown key", errs[1])
  end)

  it("reports unknown keys in seed sections as warnings", function()
    local cfg, warns = config.parse(smg.json.encode({ mcp_configs = {}, surprise = true }))
    assert.is_table(cfg)
    assert.are.same({ "surprise: unknown key" }, warns)
  end)

  it("checks cross references", function()
    local _, errs = config.parse(smg.json.encode({ projects = { p = { mcp_config_id = "nope" } } }))
    assert.matches("projects.p.mcp_config_id: no mcp_config", errs[1])
  end)

  it("expands ${VAR} before validating", function()
    local cfg = assert(config.parse(doc({ { server_name = "r", config = { url = "http://h${HOME}" } } })))
    assert.are.equal("http://h" .. os.getenv("HOME"), cfg.mcp_configs.c1.mcp_config[1].config.url)
  end)

  it("refuses text that is not JSON", function()
    local cfg, errs = config.parse("{nope", "f.json")
    assert.is_nil(cfg)
    assert.matches("^f.json: invalid JSON", errs[1])
  end)

  it("loads the embedded default", function()
    local cfg = assert(config.load({ path = select(2, require("smg.core").paths()) .. "/config/default.json" }))
    assert.are.equal("aggregate", cfg.gateway.mode)
    assert.are.equal("default", config.default_config_id(cfg))
  end)
end)
