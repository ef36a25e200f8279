-- local_apikey: key -> project -> user -> mcp_config, every header form, disabled keys,
-- stdio keys from the environment, and no key material in what it returns.
local plugins = require "smg.plugins"

describe("local_apikey auth", function()
  local p = assert(plugins.load("auth", "local_apikey", {}))
  local gw = {
    apikeys = { ["key-alpha-0123456789"] = { project_id = "p1", user_id = "u1" },
      ["key-off-0123456789"] = { project_id = "p1", user_id = "u1", disabled = true },
      ["key-orphan-0123456789"] = { project_id = "gone" } },
    projects = { p1 = { project_name = "Project One", mcp_config_id = "c1" } },
    users = { u1 = { email = "u1@example.com" } },
    mcp_configs = { c1 = {} },
  }
  local function auth(headers, transport)
    local ok, id, why = plugins.run_hook(p, "authenticate", 1, { headers = headers, transport = transport or "http" }, p.config, gw)
    assert.is_true(ok)
    return id, why
  end

  it("accepts the key in each header form and resolves the identity", function()
    for _, h in ipairs({ { apikey = "key-alpha-0123456789" }, { ["x-api-key"] = "key-alpha-0123456789" },
      { authorization = "Bearer key-alpha-0123456789" } }) do
      local id = auth(h)
      assert.are.same({ project_id = "p1", project_name = "Project One", user_id = "u1", email = "u1@example.com",
        mcp_config_id = "c1", key_hint = "****6789" }, id)
    end
  end)

  it("refuses missing, unknown, disabled and orphaned keys without echoing them", function()
    local cases = { [{}] = "missing API key", [{ apikey = "nope-nope-nope" }] = "invalid API key",
      [{ apikey = "key-off-0123456789" }] = "API key is disabled",
      [{ apikey = "key-orphan-0123456789" }] = "project does not exist" }
    for h, want in pairs(cases) do
      local id, why = auth(h)
      assert.is_nil(id)
      assert.matches(want, why)
      assert.is_nil(why:find("0123456789", 1, true))
    end
  end)

  it("reads the key from the environment in stdio mode only", function()
    local q = assert(plugins.load("auth", "local_apikey", { env_var = "HOME" }))
    local ok, id, why = plugins.run_hook(q, "authenticate", 1, { headers = {}, transport = "stdio" }, q.config, gw)
    assert.is_true(ok)
    assert.is_nil(id)
    assert.are.equal("invalid API key", why) -- $HOME is not a key: read, compared, refused
    ok, id, why = plugins.run_hook(q, "authenticate", 1, { headers = {}, transport = "http" }, q.config, gw)
    assert.matches("missing API key", why)
  end)
end)
