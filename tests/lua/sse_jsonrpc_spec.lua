-- SSE parsing (split across chunks, CRLF, multi-line data) and JSON-RPC classification.
local sse = require "smg.sse"
local rpc = require "smg.mcp.jsonrpc"
local json = require("smg").json

describe("sse parser", function()
  it("parses events split across chunks", function()
    local got = {}
    local p = sse.parser(function(data, ev, id) got[#got + 1] = { data, ev, id } end)
    p:feed("id: 1\nevent: message\nda")
    p:feed("ta: {\"a\":1}\n\n: comment\n\nid: 2\r\ndata: x\r\ndata: y\r\n\r\n")
    p:feed("id: 3\ndata:\n\n") -- priming event: no data, not delivered
    assert.are.same({ { '{"a":1}', "message", "1" }, { "x\ny", "message", "2" } }, got)
    assert.are.equal("3", p.last_id)
  end)

  it("bounds an event's size", function()
    local p = sse.parser(function() end, 10)
    local ok, err = p:feed(string.rep("d", 100))
    assert.is_false(ok)
    assert.matches("too large", err)
  end)
end)

describe("jsonrpc", function()
  it("classifies messages", function()
    assert.are.equal("request", rpc.kind({ jsonrpc = "2.0", id = 1, method = "x" }))
    assert.are.equal("notification", rpc.kind({ jsonrpc = "2.0", method = "x" }))
    assert.are.equal("response", rpc.kind({ jsonrpc = "2.0", id = "a", result = {} }))
    assert.is_nil((rpc.kind({ jsonrpc = "2.0", id = json.null, method = "x" })))
    assert.is_nil((rpc.kind({ jsonrpc = "2.0", id = 1.5, method = "x" })))
    assert.is_nil((rpc.kind({ id = 1, method = "x" })))
    assert.is_nil((rpc.kind(json.array({}))))
  end)

  it("negotiates versions like the reference SDK", function()
    local version = require "smg.mcp.version"
    assert.are.equal("2025-06-18", version.negotiate("2025-06-18"))
    assert.are.equal("2025-03-26", version.negotiate("2025-03-26"))
    assert.are.equal(version.LATEST, version.negotiate("2024-01-01"))
  end)
end)
