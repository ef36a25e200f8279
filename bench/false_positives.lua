-- How often the bundled guardrails flag benign text (run: smg run bench/false_positives.lua
-- [DIR] [MAX_FILES]). The corpus: every README.md under DIR (default tests/node_modules:
-- real prose with code samples, the kind of text tools return), each file split into
-- paragraphs, plus generated everyday values (timestamps, UUIDs, versions, times, hashes,
-- URLs, prices, order numbers, Unix times, base64 and hex blobs). Prints, per detector,
-- the share of paragraphs and values it flags.
local smg = require "smg"
local core = require "smg.core"
local _, root = core.paths()
local dir = arg[1] or (root .. "/tests/node_modules")
local max_files = tonumber(arg[2]) or 400

local injection = dofile(root .. "/plugins/guardrails/injection.lua")
local pii = dofile(root .. "/plugins/guardrails/pii.lua")

local paragraphs = {}
local p = io.popen(("find %q -name README.md -size -200k 2>/dev/null | sort | head -n %d"):format(dir, max_files))
for path in p:lines() do
  local text = smg.read_file(path) or ""
  for para in (text .. "\n\n"):gmatch("(.-)\n%s*\n") do
    if #para > 40 then paragraphs[#paragraphs + 1] = para end
  end
end
p:close()

local values = {}
math.randomseed(1)
for i = 1, 2000 do
  local t = os.time() - i * 3607
  values[#values + 1] = os.date("!%Y-%m-%dT%H:%M:%SZ", t)
  values[#values + 1] = os.date("%H:%M:%S", t)
  values[#values + 1] = smg.random_hex(4) .. "-" .. smg.random_hex(2) .. "-4" .. smg.random_hex(2):sub(2) .. "-a"
    .. smg.random_hex(2):sub(2) .. "-" .. smg.random_hex(6)
  values[#values + 1] = ("v%d.%d.%d"):format(i % 7, i % 13, i % 101)
  values[#values + 1] = ("%d.%d.%d.%d"):format(i % 3, i % 10, i % 20, i % 50) -- version-like
  values[#values + 1] = smg.random_hex(20)
  values[#values + 1] = ("https://example.com/items/%d?page=%d"):format(i, i % 9)
  values[#values + 1] = ("$%d.%02d"):format(i * 3, i % 100)
  values[#values + 1] = ("order #%d shipped"):format(1000000000 + i * 7919)
  values[#values + 1] = ("created %d"):format(t)
  values[#values + 1] = smg.crypto.b64encode(("payload %d of the nightly export"):format(i))
  values[#values + 1] = smg.random_hex(16) .. smg.random_hex(16)
end

local function measure(list, input)
  local flagged = {}
  for _, s in ipairs(list) do
    for _, v in ipairs(injection.scan({ s }, { threshold = 1 }, {}, input)) do
      flagged[v.detail] = (flagged[v.detail] or 0) + 1
    end
    -- A certain find is redacted; a low-confidence one (1.2.3.4, a bare ten-digit number)
    -- is only annotated and leaves the call as it was: counted apart ("?").
    local seen = {}
    for _, h in ipairs(pii.find_all(s)) do
      local k = "pii:" .. h.type .. (h.low and " (annotated)" or "")
      if not seen[k] then
        seen[k] = true
        flagged[k] = (flagged[k] or 0) + 1
      end
    end
  end
  return flagged
end

local function report(name, list, input)
  local flagged = measure(list, input)
  print(("%s: %d items"):format(name, #list))
  local keys = {}
  for k in pairs(flagged) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do print(("  %-26s %6d  %6.2f %%"):format(k, flagged[k], 100 * flagged[k] / #list)) end
  if #keys == 0 then print("  nothing flagged") end
end

report("README paragraphs as tool results", paragraphs, false)
report("README paragraphs as tool arguments", paragraphs, true)
report("everyday values as tool arguments", values, true)
