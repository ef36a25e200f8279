-- Message intake shared by HTTP and stdio: one classified list, or one refusal with both
-- an HTTP status and a JSON-RPC code; revision rules asked as predicates.
local intake = require "smg.mcp.intake"
local version = require "smg.mcp.version"
local rpc = require "smg.mcp.jsonrpc"

describe("mcp.intake", function()
  it("classifies single messages and batches", function()
    local list, kinds, is_batch, nreq = intake.parse('{"jsonrpc":"2.0","id":1,"method":"ping"}')
    assert.are.same({ "request" }, kinds)
    assert.is_false(is_batch)
    assert.are.equal(1, nreq)
    assert.is_true(intake.is_initialize(intake.parse('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}')))
    assert.is_false(intake.is_initialize(list, kinds, is_batch))
    list, kinds, is_batch, nreq = intake.parse(
      '[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":"s1","result":{}}]')
    assert.are.same({ "request", "notification", "response" }, kinds)
    assert.is_true(is_batch)
    assert.are.equal(1, nreq)
    assert.are.equal(3, #list)
  end)

  it("refuses what is not well-formed, naming the offending id", function()
    local cases = {
      { "{", 400, rpc.PARSE_ERROR, "Parse error" },
      { "[]", 400, rpc.INVALID_REQUEST, "empty batch" },
      { '{"jsonrpc":"1.0","id":7,"method":"x"}', 400, rpc.INVALID_REQUEST, "Invalid Request" },
      { '[{"jsonrpc":"2.0","id":9,"method":"initialize"}]', 400, rpc.INVALID_REQUEST, "must not be batched" },
    }
    for _, c in ipairs(cases) do
      local list, r = intake.parse(c[1])
      assert.is_nil(list, c[1])
      assert.are.equal(c[2], r.status)
      assert.are.equal(c[3], r.code)
      assert.is_truthy(r.message:find(c[4], 1, true), r.message)
    end
    local _, r = intake.parse('[{"jsonrpc":"2.0","id":9,"method":"initialize"}]')
    assert.are.equal(9, r.id)
    assert.is_truthy(intake.error_line(r):find('"id":9', 1, true))
  end)

  it("allows batches only on revisions that have them", function()
    assert.is_nil(intake.batch_refusal("2025-03-26"))
    assert.are.equal(400, intake.batch_refusal("2025-06-18").status)
    assert.are.equal(400, intake.batch_refusal("2025-11-25").status)
    assert.is_true(version.priming("2025-11-25"))
    assert.is_false(version.priming("2025-06-18"))
    assert.are.equal("2025-06-18", version.negotiate("2025-06-18"))
    assert.are.equal(version.LATEST, version.negotiate("1999-01-01"))
    assert.is_false(version.supported("2024-11-05"))
  end)
end)
