-- Mcp-Param-* (SEP-2243): declarations read from a tool's inputSchema, the Base64
-- sentinel both ways, the client's headers checked against the body, and an upstream's
-- headers rebuilt from the arguments it is sent.
local ph = require "smg.mcp.param_headers"

local SCHEMA = {
  type = "object",
  properties = {
    region = { type = "string", ["x-mcp-header"] = "Region" },
    count = { type = "integer", ["x-mcp-header"] = "Count" },
    dry = { type = "boolean", ["x-mcp-header"] = "Dry" },
    nested = { type = "object", properties = { tenant = { type = "string", ["x-mcp-header"] = "Tenant" } } },
    bad = { type = "string", ["x-mcp-header"] = "not a token" },
    dup = { type = "string", ["x-mcp-header"] = "region" },
    list = { type = "array", items = { type = "string", ["x-mcp-header"] = "Item" } },
    obj = { type = "object", ["x-mcp-header"] = "Obj" },
  },
}

describe("mcp.param_headers", function()
  it("reads the declarations reachable through properties, valid ones only", function()
    local names = {}
    for _, d in ipairs(ph.declarations(SCHEMA)) do names[#names + 1] = d.name .. "=" .. table.concat(d.path, ".") end
    table.sort(names)
    -- "dup" collides case-insensitively with Region and comes first in key order.
    assert.are.same({ "Count=count", "Dry=dry", "Tenant=nested.tenant", "region=dup" }, names)
    assert.are.same({}, ph.declarations(nil))
  end)

  it("encodes with the Base64 sentinel what is not plain visible ASCII", function()
    assert.are.equal("us-west1", ph.encode("us-west1"))
    assert.are.equal("=?base64?IGxlYWRpbmc=?=", ph.encode(" leading"))
    assert.are.equal("=?base64?w6l0w6k=?=", ph.encode("été"))
    assert.are.equal("=?base64??=", ph.encode(""))
    assert.are.equal("=?base64?PT9iYXNlNjQ/eD89?=", ph.encode("=?base64?x?="))
    assert.are.equal("a\r\nb", ph.decode(ph.encode("a\r\nb")))
    assert.are.equal("plain", ph.decode("plain"))
    assert.is_nil(ph.decode("=?base64?not base64!?="))
    assert.is_nil(ph.decode("=?base64?YQ?="), "unpadded is not canonical")
  end)

  it("checks the client's headers against the body", function()
    local decls = ph.declarations(SCHEMA)
    local args = { dup = "eu", count = 3, dry = false, nested = { tenant = "été" } }
    local got = { region = "eu", count = "3", dry = "false", tenant = "=?base64?w6l0w6k=?=" }
    assert.is_nil(ph.check(decls, args, got))
    assert.is_nil(ph.check(decls, { dup = "eu", count = 3, dry = false, nested = { tenant = "été" } },
      { region = "eu", count = "3.0", dry = "false", tenant = "=?base64?w6l0w6k=?=" }), "numbers compare as numbers")
    assert.matches("Mcp%-Param%-region header is absent", ph.check(decls, { dup = "eu" }, {}))
    assert.matches("says \"us\" but the body carries dup=eu", ph.check(decls, { dup = "eu" }, { region = "us" }))
    assert.matches("invalid Base64", ph.check(decls, { dup = "eu" }, { region = "=?base64?!!?=" }))
    assert.is_nil(ph.check(decls, {}, { region = "anything" }), "an absent argument expects no header")
  end)

  it("collects at most MAX headers", function()
    local h = { ["mcp-param-a"] = "1", ["content-type"] = "x" }
    assert.are.same({ a = "1" }, ph.collect(h))
    assert.is_nil(ph.collect({ accept = "x" }))
    for i = 1, ph.MAX + 1 do h["mcp-param-p" .. i] = "v" end
    local got, why = ph.collect(h)
    assert.is_nil(got)
    assert.matches("more than", why)
  end)

  it("rebuilds an upstream's headers from the arguments it is sent, passing undeclared ones on", function()
    local decls = ph.declarations({ type = "object", properties = {
      q = { type = "string", ["x-mcp-header"] = "Query" } } })
    -- A guardrail redacted the argument: the header follows the body, not the client.
    local lines = ph.lines(decls, { q = "[REDACTED]" }, { query = "secret", trace = "t1", ["bad name"] = "x" })
    table.sort(lines)
    assert.are.same({ "Mcp-Param-Query: [REDACTED]", "Mcp-Param-trace: t1" }, lines)
    assert.is_nil(ph.lines(false, {}, false))
  end)
end)
