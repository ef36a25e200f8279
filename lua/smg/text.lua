-- smg.text: text scanning that cannot be made slow. Guardrails run on the one event loop,
-- on text an attacker writes; a Lua pattern with two adjacent unbounded runs
-- ("ignore%s+%a*%s*%a*%s*previous") backtracks cubically, and one 24 KB argument froze
-- every tenant for 13 s. So scanning here is built from linear pieces:
--   fold(s)        lower-cased, runs of blanks collapsed to one space (a line break kept
--                  as one "\n"): after it no `%s*` in a rule can match more than one byte;
--                  invisible characters dropped, full-width and look-alike letters folded
--   phrases(rules) word-sequence rules ("ignore", up to 4 other words, "previous",
--                  "instructions") matched over the words of a text in linear time
--   slices(v, fn)  every key, string and number of a JSON value joined into slices of at
--                  most SLICE bytes (a phrase split across two values is still one
--                  phrase), fn called per slice; between slices the scan yields to the
--                  loop, so a 50 MB payload delays no one else
local async = require "smg.async"

local M = {}

M.SLICE = 64 * 1024
local OVERLAP = 512 -- bytes of one slice repeated at the start of the next
local MAX_WALK = 1024

-- Look-alikes folded to the ASCII letter a reader takes them for: Cyrillic and Greek
-- letters (UTF-8 pairs) that render like Latin ones.
local CONFUSABLE = {}
for pair, ascii in pairs({
  -- Cyrillic а е о р с у х і ѕ ј һ ԁ and capitals А В Е К М Н О Р С Т Х У
  ["\208\176"] = "a", ["\208\181"] = "e", ["\208\190"] = "o", ["\209\128"] = "p", ["\209\129"] = "c",
  ["\209\131"] = "y", ["\209\133"] = "x", ["\209\150"] = "i", ["\209\149"] = "s", ["\209\152"] = "j",
  ["\210\187"] = "h", ["\212\129"] = "d",
  ["\208\144"] = "a", ["\208\146"] = "b", ["\208\149"] = "e", ["\208\154"] = "k", ["\208\156"] = "m",
  ["\208\157"] = "h", ["\208\158"] = "o", ["\208\160"] = "p", ["\208\161"] = "c", ["\208\162"] = "t",
  ["\208\165"] = "x", ["\208\163"] = "y",
  -- Greek ο α ε ι κ ν ρ τ υ χ and capitals Ο Α Β Ε Η Ι Κ Μ Ν Ρ Τ Χ Υ Ζ
  ["\206\191"] = "o", ["\206\177"] = "a", ["\206\181"] = "e", ["\206\185"] = "i", ["\206\186"] = "k",
  ["\206\189"] = "v", ["\207\129"] = "p", ["\207\132"] = "t", ["\207\133"] = "u", ["\207\135"] = "x",
  ["\206\159"] = "o", ["\206\145"] = "a", ["\206\146"] = "b", ["\206\149"] = "e", ["\206\151"] = "h",
  ["\206\153"] = "i", ["\206\154"] = "k", ["\206\156"] = "m", ["\206\157"] = "n", ["\206\161"] = "p",
  ["\206\164"] = "t", ["\206\167"] = "x", ["\206\165"] = "y", ["\206\150"] = "z",
}) do CONFUSABLE[pair] = ascii end

local function fullwidth_lo(c) return string.char(c:byte() - 0x60) end -- U+FF01..FF3F
local function fullwidth_hi(c) return string.char(c:byte() - 0x20) end -- U+FF40..FF5E

-- What a reader sees, not what the bytes say: invisible characters (zero-width, bidi
-- controls, soft hyphen, BOM) dropped, full-width forms and look-alike letters folded to
-- ASCII. Only text with non-ASCII bytes pays for it.
local function unconfuse(s)
  s = s:gsub("\226\128[\139-\143\170-\174]", ""):gsub("\226\129[\160-\164\166-\169]", "")
    :gsub("\239\187\191", ""):gsub("\194\173", "")
  s = s:gsub("\239\188([\129-\191])", fullwidth_lo):gsub("\239\189([\128-\158])", fullwidth_hi)
    :gsub("\227\128\128", " ")
  return (s:gsub("[\206-\212][\128-\191]", CONFUSABLE))
end
M.unconfuse = unconfuse

function M.fold(s)
  if s:find("[\128-\255]") then s = unconfuse(s) end
  s = s:lower():gsub("[ \t\r\f\v]+", " ")
  return (s:gsub(" ?\n[\n ]*", "\n"))
end

---------------------------------------------------------------------------- phrases
-- rules: list of { id = any, words = { "ignore|disregard", "*4", "previous|prior", "instructions" } }:
-- alternatives separated by "|", "*N" lets up to N other words stand before the next
-- element. A rule matches a text when its elements occur in order among the text's words
-- ([%w']+ runs of the folded text).
local Phrases = {}
Phrases.__index = Phrases

function M.phrases(rules)
  local self = setmetatable({ first = {}, rules = {} }, Phrases)
  for _, r in ipairs(rules) do
    local elems, gap = {}, 0
    for _, w in ipairs(r.words) do
      local n = w:match("^%*(%d+)$")
      if n then
        gap = tonumber(n)
      else
        local set = {}
        for alt in w:gmatch("[^|]+") do set[alt] = true end
        elems[#elems + 1] = { set = set, gap = gap }
        gap = 0
      end
    end
    assert(#elems > 0 and elems[1].gap == 0, "a phrase rule starts with a word")
    local rule = { id = r.id, elems = elems }
    self.rules[#self.rules + 1] = rule
    for alt in pairs(elems[1].set) do
      local list = self.first[alt]
      if not list then
        list = {}
        self.first[alt] = list
      end
      list[#list + 1] = rule
    end
  end
  return self
end

-- Whether elems[k..] match from word i on (elems[k] within its gap). Windows are small
-- constants, so this is bounded work per starting word.
local function follows(words, n, elems, k, i)
  local e = elems[k]
  if not e then return true end
  for j = i, math.min(n, i + e.gap) do
    if e.set[words[j]] and follows(words, n, elems, k + 1, j + 1) then return true end
  end
  return false
end

-- Adds the id of every rule that matches the folded `text` to the set `found`.
function Phrases:match(text, found)
  local words, n, first = {}, 0, self.first
  for w in text:gmatch("[%w']+") do
    n = n + 1
    words[n] = w
  end
  for i = 1, n do
    local list = first[words[i]]
    if list then
      for _, rule in ipairs(list) do
        if not found[rule.id] and follows(words, n, rule.elems, 2, i + 1) then found[rule.id] = true end
      end
    end
  end
  return found
end

---------------------------------------------------------------------------- slices
local function too_deep() error("value nested deeper than " .. MAX_WALK .. " levels", 0) end

-- Calls fn(slice) with the text of every key, string and number of `v` (joined by "\n")
-- in slices of about SLICE (64 KB) bytes, each starting with the last OVERLAP bytes of the one
-- before. Yields to the loop between slices when running in a coroutine.
-- (Module-level functions over a state table, not closures: LuaJIT does not compile
-- closure creation, and this runs on every guarded call.)
local function flush(st, last)
  local n = st.n
  if n == 0 then return end
  local buf = st.buf
  local text = n == 1 and buf[1] or table.concat(buf, "\n", 1, n)
  -- A consumer that folds returns the folded slice: the overlap is then taken from it, so
  -- padding (a thousand blanks or invisible characters between two words of a phrase)
  -- cannot push the first words out of what the next slice sees.
  local seen = st.fn(text, st.arg)
  for i = 1, n do buf[i] = nil end
  st.n, st.size = 0, 0
  if not last then
    buf[1] = (type(seen) == "string" and seen or text):sub(-OVERLAP)
    st.n, st.size = 1, #buf[1]
    async.checkpoint() -- a no-op outside a coroutine
  end
end

local function add(st, s)
  local n = st.n + 1
  st.n = n
  st.buf[n] = s
  st.size = st.size + #s + 1
  if st.size >= M.SLICE then flush(st, false) end
end

local function walk(st, x, depth)
  local t = type(x)
  if t == "string" then
    -- A huge single string is cut into slices too (with the same overlap).
    if #x > M.SLICE then
      for at = 1, #x, M.SLICE do add(st, x:sub(math.max(1, at - OVERLAP), at + M.SLICE - 1)) end
    else
      add(st, x)
    end
  elseif t == "number" then
    add(st, tostring(x))
  elseif t == "table" then
    if depth > MAX_WALK then too_deep() end
    -- Keys go in after the values of their table, so that values which follow each
    -- other (an array's items, an object's fields) stay next to each other.
    local keys
    for k, y in pairs(x) do
      if type(k) == "string" then
        keys = keys or {}
        keys[#keys + 1] = k
      end
      walk(st, y, depth + 1)
    end
    if keys then walk(st, table.concat(keys, "\n"), depth) end
  end
end

-- fn(slice, arg) for each slice; fn may return the slice as it read it (folded), and the
-- overlap is taken from that.
function M.slices(v, fn, arg)
  local st = { buf = {}, n = 0, size = 0, fn = fn, arg = arg }
  walk(st, v, 0)
  flush(st, true)
end

return M
