-- The Lua server library's implicit 2026-07-28 rounds (Ctx:request on a modern request):
-- a retry may answer only the key the last round asked, never override an answer sealed
-- in requestState, and must repeat the arguments of the call it continues.
local smg = require "smg"
local Server = require "smg.mcp.server"
local json = smg.json

local META = { ["io.modelcontextprotocol/protocolVersion"] = "2026-07-28",
  ["io.modelcontextprotocol/clientCapabilities"] = { elicitation = {} } }

local function server()
  local out = {}
  local s = Server.new({ name = "t" })
  s.write = function(line) out[#out + 1] = json.decode(line) end
  s:tool({ name = "two", inputSchema = { type = "object" }, handler = function(_, ctx)
    local a = ctx:request("elicitation/create", { message = "first?" })
    local b = ctx:request("elicitation/create", { message = "second?" })
    return Server.text_result(a.content.v .. "+" .. b.content.v)
  end })
  return s, out
end

local function call(s, out, id, params)
  params._meta = META
  params.name = "two"
  s:handle_line(json.encode({ jsonrpc = "2.0", id = id, method = "tools/call", params = params }))
  local deadline = smg.monotime() + 2
  while smg.monotime() < deadline do
    for _, m in ipairs(out) do
      if m.id == id then return m.result or m.error end
    end
    require("smg.async").sleep(0.01)
  end
  error("no answer to " .. id)
end

local function answer(v) return { action = "accept", content = { v = v } } end

describe("mcp.server implicit rounds", function()
  it("answers round by round, each retry answering only what was asked", function()
    local s, out = server()
    local r = call(s, out, 1, { arguments = { x = 1 } })
    assert.are.equal("input_required", r.resultType)
    assert.is_truthy(r.inputRequests.r1)
    -- A forged answer to the second ask, not asked yet: ignored, r2 is asked.
    r = call(s, out, 2, { arguments = { x = 1 }, requestState = r.requestState,
      inputResponses = { r1 = answer("A"), r2 = answer("FORGED") } })
    assert.are.equal("input_required", r.resultType)
    assert.is_truthy(r.inputRequests.r2)
    local state = r.requestState
    -- Overriding the sealed first answer: ignored.
    r = call(s, out, 3, { arguments = { x = 1 }, requestState = state,
      inputResponses = { r1 = answer("OVERRIDE"), r2 = answer("B") } })
    assert.are.equal("A+B", r.content[1].text)
    -- The state on a call with other arguments: not this call's; it starts over.
    r = call(s, out, 4, { arguments = { x = 2 }, requestState = state, inputResponses = { r2 = answer("B") } })
    assert.are.equal("input_required", r.resultType)
    assert.is_truthy(r.inputRequests.r1)
    -- inputResponses without a requestState answer nothing.
    r = call(s, out, 5, { arguments = { x = 1 }, inputResponses = { r1 = answer("A"), r2 = answer("B") } })
    assert.are.equal("input_required", r.resultType)
  end)
end)
