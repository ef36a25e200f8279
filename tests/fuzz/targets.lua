-- The Lua-side fuzz entry points (tests/fuzz/fuzz_lua.c calls one per input). Each must
-- accept any bytes without raising: parsers answer bad input with nil, err.
local smg = require "smg"
local json = smg.json
local rpc = require "smg.mcp.jsonrpc"
local version = require "smg.mcp.version"
local intake = require "smg.mcp.intake"
local sse = require "smg.sse"
local config = require "smg.config"

local M = {}

local function same(a, b, depth)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b or (a ~= a and b ~= b) end
  if depth > 200 then return true end -- deep enough; the C stack is what is being tested
  if json.is_array(a) ~= json.is_array(b) then return false end
  for k, v in pairs(a) do if not same(v, b[k], depth + 1) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- Decode, and whatever decodes must encode and decode back to the same value (object key
-- order is not kept: Lua tables have none).
function M.json(data)
  local v = json.decode(data)
  if v == nil then return end
  local a = assert(json.encode(v))
  local w = assert(json.decode(a), "re-decoding our own encoding failed")
  assert(same(v, w, 0), "a value changed through encode + decode")
end

-- The envelope checks every inbound message goes through, and the replies we build.
function M.jsonrpc(data)
  local v = json.decode(data)
  if v == nil then return end
  local list = json.is_array(v) and v or { v }
  for _, m in ipairs(list) do
    local kind = rpc.kind(m)
    if kind == "request" then
      assert(rpc.error(m.id, rpc.INVALID_PARAMS, "x"))
    end
  end
  version.negotiate(type(v) == "table" and v.protocolVersion or data)
  -- The transports' shared intake: a list and its kinds, or one refusal with a status.
  local msgs, kinds, is_batch, nreq = intake.parse(data)
  if msgs then
    assert(#kinds == #msgs and type(is_batch) == "boolean" and nreq <= #msgs)
  else
    assert(type(kinds.status) == "number" and type(kinds.code) == "number" and intake.error_line(kinds))
  end
end

-- Fed in two pieces at every split a byte suggests, like a network would.
function M.sse(data)
  local split = #data > 0 and (data:byte(1) % (#data + 1)) or 0
  local events = 0
  local p = sse.parser(function() events = events + 1 end, 4096)
  p:feed(data:sub(1, split))
  p:feed(data:sub(split + 1))
end

-- The whole config pipeline: decode, ${VAR} expansion, schema validation, cross checks.
function M.config(data)
  local cfg, errs = config.parse(data, "fuzz")
  assert(cfg ~= nil or (type(errs) == "table" and #errs > 0), "a refused config must say why")
end

-- The text-scanning guardrails on arbitrary strings: they must not raise, pii's redaction
-- must leave no certain find behind, and the time they take must stay linear in the
-- input: 20 us a byte on top of 50 ms (a rule that backtracked cubically took 6.8 s on
-- 1.5 KB). A run over budget is timed again, so a one-off pause (a GC cycle, a trace being
-- compiled, a busy machine) is not taken for a slow rule; a slow rule is slow twice.
local root = select(2, require("smg.core").paths())
local pii = dofile(root .. "/plugins/guardrails/pii.lua")
local injection = dofile(root .. "/plugins/guardrails/injection.lua")
local tool_scan = dofile(root .. "/plugins/guardrails/tool_scan.lua")
local monotime = require("smg").monotime

local function scan_all(data)
  local call = { arguments = { q = data }, state = {} }
  local v = pii.check_input(call, { additional_config = {} }, { action = "redact" })
  if v.redacted then
    local again = pii.find_all(v.redacted.q)
    for _, h in ipairs(again) do
      local s = v.redacted.q:sub(h.from, h.to)
      -- (A low-confidence find, a bare nine-digit number say, is reported and left alone.)
      assert(h.low or s:match("^<%u[%u_]*_%d+>$") or not pii.find_all(s)[1], "redaction left a value behind")
    end
    local back = pii.check_output(call, { text = v.redacted.q }, { additional_config = {} }, { action = "redact" })
    assert(back.redacted.text == data or #pii.find_all(data) > 0, "restore changed clean text")
  end
  injection.scan({ data }, { threshold = 1 }, {}, true)
  tool_scan.inspect({ name = "t", description = data })
  tool_scan.fingerprint({ name = data, description = data })
end

function M.guardrails(data)
  local budget = 0.05 + #data * 20e-6
  local t0 = monotime()
  scan_all(data)
  local took = monotime() - t0
  if took >= budget then
    t0 = monotime()
    scan_all(data)
    took = monotime() - t0
  end
  assert(took < budget, ("guardrails took %.3f s on %d bytes (twice)"):format(took, #data))
end

return M
