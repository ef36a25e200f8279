-- A small declarative schema checker: validates a decoded JSON document, fills defaults,
-- and reports every problem with the path of the offending key (e.g.
-- "mcp_configs.cfg1.mcp_config[2].config.command: expected string, got number").
-- Used for the config file and for plugin config schemas.
local M = {}

local nearest -- (below)

local function typeof(v)
  local t = type(v)
  if t == "table" then
    return getmetatable(v) == require("smg").json.array_mt and "array" or (next(v) ~= nil and #v > 0 and "array" or "object")
  end
  if t == "userdata" then return "null" end -- smg.json.null
  return t
end
M.typeof = typeof

-- Paths name array entries from 0, as the JSON's own readers (and the seed's) count.
local function join(path, key)
  if type(key) == "number" then return path .. "[" .. (key - 1) .. "]" end
  if path == "" then return key end
  return path .. "." .. key
end

local function copy_default(d)
  if type(d) ~= "table" then return d end
  local out = {}
  for k, v in pairs(d) do out[k] = copy_default(v) end
  return setmetatable(out, getmetatable(d))
end

-- node fields: type ("string"|"number"|"integer"|"boolean"|"object"|"array"|"any"|{...}),
-- fields (object members), values (schema of map values), items (array items),
-- required, default, enum, min, max, pattern, nullable, unknown ("warn"|"error"|"allow")
local function check(node, v, path, errs, warns)
  local nerr = #errs
  if v == nil or typeof(v) == "null" then
    if v ~= nil and node.nullable then return v end
    if node.required then
      errs[#errs + 1] = path .. ": required"
      return nil
    end
    if node.default ~= nil then v = copy_default(node.default) else return nil end
  end
  local want = node.type or "any"
  local got = typeof(v)
  if want == "integer" then
    if got ~= "number" or v ~= math.floor(v) then
      errs[#errs + 1] = ("%s: expected integer, got %s"):format(path, got)
      return nil
    end
  elseif want == "object" and got == "array" and #v == 0 then -- luacheck: ignore 542
    -- an empty table is fine for an object, and for an array
  elseif want == "array" and got == "object" and next(v) == nil then -- luacheck: ignore 542
  elseif want ~= "any" and got ~= want then
    errs[#errs + 1] = ("%s: expected %s, got %s"):format(path, want, got)
    return nil
  end
  if node.enum then
    local ok = false
    for _, e in ipairs(node.enum) do if e == v then ok = true end end
    if not ok then
      errs[#errs + 1] = ("%s: must be one of %s, got %s"):format(path, table.concat(node.enum, ", "), tostring(v))
      return nil
    end
  end
  if (want == "number" or want == "integer") then
    if node.min and v < node.min then errs[#errs + 1] = ("%s: must be >= %s"):format(path, node.min) end
    if node.max and v > node.max then errs[#errs + 1] = ("%s: must be <= %s"):format(path, node.max) end
  end
  if want == "string" and node.pattern and not v:match(node.pattern) then
    errs[#errs + 1] = ("%s: %q does not match %s"):format(path, v, node.pattern_desc or node.pattern)
  end
  if want == "object" then
    if node.fields then
      for k, sub in pairs(node.fields) do
        v[k] = check(sub, v[k], join(path, k), errs, warns)
      end
    end
    for k, sub in pairs(v) do
      if not (node.fields and node.fields[k]) then
        if node.values then
          v[k] = check(node.values, sub, join(path, tostring(k)), errs, warns)
        elseif node.fields and node.unknown ~= "allow" then
          -- A key one or two typing slips from a known one (deny_tool for deny_tools) is an
          -- error even where unknown keys only warn: a misspelt security setting must not
          -- silently do nothing.
          local near = type(k) == "string" and nearest(k, node.fields)
          local list = (node.unknown == "error" or near) and errs or warns
          list[#list + 1] = join(path, tostring(k)) .. ": unknown key" .. (near and (" (did you mean " .. near .. "?)") or "")
        end
      end
    end
  elseif want == "array" and node.items then
    for i = 1, #v do v[i] = check(node.items, v[i], join(path, i), errs, warns) end
  end
  if node.check and #errs == nerr then
    local msg = node.check(v)
    if msg then errs[#errs + 1] = path .. ": " .. msg end
  end
  return v
end

-- Edit distance of a and b, or 3 once it is over 2 (only small distances matter).
local function distance(a, b)
  if math.abs(#a - #b) > 2 then return 3 end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur, best = { [0] = i }, i
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if cur[j] < best then best = cur[j] end
    end
    if best > 2 then return 3 end
    prev = cur
  end
  return prev[#b]
end

-- The known field `k` is most likely a misspelling of (distance 1 or 2, and the key is
-- long enough for that to mean something), or nil.
nearest = function(k, fields)
  if #k < 5 then return nil end
  local best, bd = nil, 3
  for name in pairs(fields) do
    local d = distance(k:lower(), name)
    if d < bd then best, bd = name, d end
  end
  return best
end

-- Returns the document with defaults applied, plus the error and warning lists.
function M.validate(node, doc, root_name)
  local errs, warns = {}, {}
  local out = check(node, doc, root_name or "", errs, warns)
  return out, errs, warns
end

return M
