-- The per-request record: declared fields only, idempotent cancel that reaches the
-- upstream waiting on it, and W3C trace context continued or started.
local Call = require "smg.mcp.call"

describe("mcp.call", function()
  it("refuses a field it does not declare", function()
    local c = Call.new(1, "tools/call", nil, nil)
    c.server = "s"
    assert.are.equal("s", c.server)
    assert.has_error(function() c.servr = "typo" end, "call record has no field servr")
  end)

  it("knows whether the client asked for progress", function()
    assert.is_false(Call.new(1, "m"):wants_progress())
    assert.is_true(Call.new(1, "m", nil, nil, "tok"):wants_progress())
    assert.is_true(Call.new(1, "m", nil, nil, 0):wants_progress())
  end)

  it("cancels once and tells the upstream it waits on", function()
    local told = {}
    local up = { cancel = function(_, entry, reason) told[#told + 1] = { entry, reason } end }
    local c = Call.new(1, "tools/call")
    c:waiting_on(up, "entry-1")
    c:cancel("client cancelled")
    c:cancel("again")
    assert.is_true(c.cancelled)
    assert.are.same({ { "entry-1", "client cancelled" } }, told)
  end)

  it("continues a client's trace and starts one otherwise", function()
    local tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    local c = Call.new(1, "m", nil, nil, nil, tp)
    local trace, span, parent = c:trace()
    assert.are.equal("0af7651916cd43dd8448eb211c80319c", trace)
    assert.are.equal("b7ad6b7169203331", parent)
    assert.are.equal(16, #span)
    assert.are.equal("00-" .. trace .. "-" .. span .. "-01", c:traceparent())
    for _, bad in ipairs({ "garbage", "00-" .. ("0"):rep(32) .. "-b7ad6b7169203331-01" }) do
      local t2, _, p2 = Call.new(1, "m", nil, nil, nil, bad):trace()
      assert.are.equal(32, #t2)
      assert.is_nil(p2)
    end
  end)
end)
