-- smg.text: text scanning that cannot be made slow. Guardrails run on the one event loop,
-- on text an attacker writes; a Lua pattern with two adjacent unbounded runs
-- ("ignore%s+%a*%s*%a*%s*previous") backtracks cubically, and one 24 KB argument froze
-- every tenant for 13 s. So scanning here is built from linear pieces:
--   fold(s)        lower-cased, runs of blanks collapsed to one space (a line break kept
--                  as one "\n"): after it no `%s*` in a rule can match more than one byte;
--                  invisible characters dropped, full-width and look-alike letters folded
--   phrases(rules) word-sequence rules ("ignore", up to 4 other words, "previous",
--                  "instructions") matched over the words of a text in linear time
--   normalize(s)   what fold reads, with a map back to the original bytes (for redaction)
--   decoded(s, fn) the percent-, hex- and base64-encoded text inside a string, decoded
--   literals(list) which of many plain strings occur in a text, in one pass
--   slices(v, fn)  every key, string and number of a JSON value joined into slices of at
--                  most SLICE bytes (a phrase split across two values is still one
--                  phrase), fn called per slice; between slices the scan yields to the
--                  loop, so a 50 MB payload delays no one else
local async = require "smg.async"
local core = require "smg.core"

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

-- The byte loop is C's (core.fold: lower-case ASCII, blank runs to one space, a line
-- break with the blanks around it to one "\n"); Lua character classes cost 10 ns a byte.
function M.fold(s)
  if not core.is_ascii(s) then s = unconfuse(s) end
  return core.fold(s)
end

---------------------------------------------------------------------------- with offsets
-- normalize(s): what unconfuse(s) gives (invisible characters dropped, full-width forms
-- and look-alike letters folded), and a map back to `s`, for a scanner that must rewrite
-- the original text where it found something in the normalized one (pii redacts
-- "ａｌｉｃｅ＠example.com" and "al<U+200B>ice@example.com" whole). Returns s, nil when `s`
-- is all ASCII (nothing to map). The map is a list of segments { n = start in the
-- normalized text, r = start in s, nlen, rlen }: ASCII runs map byte for byte, each other
-- character is one segment.
local byte, sub = string.byte, string.sub

local function utf8_len(b)
  if b >= 0xF0 and b <= 0xF7 then return 4 end
  if b >= 0xE0 then return 3 end
  if b >= 0xC2 and b <= 0xDF then return 2 end
  return 1
end

-- The ASCII (or "") a non-ASCII character reads as, or nil to keep it.
local function folded_char(ch)
  local b1, b2, b3 = byte(ch, 1, 3)
  if #ch == 2 then
    if b1 == 0xC2 and b2 == 0xAD then return "" end -- soft hyphen
    return CONFUSABLE[ch]
  elseif #ch == 3 then
    if b1 == 0xE2 and b2 == 0x80 and ((b3 >= 0x8B and b3 <= 0x8F) or (b3 >= 0xAA and b3 <= 0xAE)) then return "" end
    if b1 == 0xE2 and b2 == 0x81 and ((b3 >= 0xA0 and b3 <= 0xA4) or (b3 >= 0xA6 and b3 <= 0xA9)) then return "" end
    if b1 == 0xEF and b2 == 0xBB and b3 == 0xBF then return "" end -- BOM
    if b1 == 0xE3 and b2 == 0x80 and b3 == 0x80 then return " " end -- ideographic space
    if b1 == 0xEF and b2 == 0xBC and b3 >= 0x81 then return string.char(b3 - 0x60) end
    if b1 == 0xEF and b2 == 0xBD and b3 <= 0x9E then return string.char(b3 - 0x20) end
  elseif #ch == 4 and b1 == 0xF3 and b2 == 0xA0 then
    return "" -- the tags block (U+E0000..E007F): invisible
  end
  return nil
end

function M.normalize(s)
  if core.is_ascii(s) then return s, nil end
  local out, segs, n, i, len = {}, {}, 1, 1, #s
  while i <= len do
    local j = s:find("[\128-\255]", i) or len + 1
    if j > i then -- an ASCII run
      out[#out + 1] = sub(s, i, j - 1)
      segs[#segs + 1] = { n = n, r = i, nlen = j - i, rlen = j - i, ascii = true }
      n = n + (j - i)
    end
    if j > len then break end
    local cl = utf8_len(byte(s, j))
    local ch = sub(s, j, j + cl - 1)
    local f = folded_char(ch) or ch
    out[#out + 1] = f
    segs[#segs + 1] = { n = n, r = j, nlen = #f, rlen = cl, ascii = f == ch }
    n = n + #f
    i = j + cl
  end
  return table.concat(out), segs
end

-- The segment holding normalized byte p (segments with nlen 0 hold none).
local function seg_at(segs, p)
  local lo, hi = 1, #segs
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if segs[mid].n <= p then lo = mid else hi = mid - 1 end
  end
  while segs[lo] and segs[lo].nlen == 0 do lo = lo + 1 end
  return segs[lo]
end

-- The span of `s` that normalized bytes a..b came from (a character folded into a..b is
-- taken whole; invisible characters between them come along).
function M.raw_span(segs, a, b)
  local sa, sb = seg_at(segs, a), seg_at(segs, b)
  local from = sa.ascii and sa.rlen == sa.nlen and sa.r + (a - sa.n) or sa.r
  local to = sb.ascii and sb.rlen == sb.nlen and sb.r + (b - sb.n) or sb.r + sb.rlen - 1
  return from, to
end

---------------------------------------------------------------------------- encodings
-- decoded(s, fn, arg): fn(text, from, to, arg) for every token of `s` (a run without
-- blanks or quotes) that is obviously encoded text: percent-escapes (john%40example.com),
-- or 16+ bytes of hex or base64 (either alphabet) that decode to printable text. A
-- scanner runs its rules on the decoded text too, so encoding a value does not hide it.
-- Hashes, UUIDs and random tokens decode to binary and are passed over. Linear: each
-- token is decoded once, and most strings fail the first two searches.

local function hexchar(h) return string.char(tonumber(h, 16)) end

local function printable(d) return #d > 0 and not d:find("[%z\1-\8\11\12\14-\31\127]") end

function M.decoded(s, fn, arg)
  if not (s:find("%", 1, true) and s:find("%%%x%x")) and not core.b64_run(s, 16) then return end
  for a, tok, b in s:gmatch("()([^%s\"'<>()%[%]{},;&?]+)()") do
    local d
    local eq = tok:find("=[^=]") -- a query's name=value: the value is the token
    if eq then a, tok = a + eq, tok:sub(eq + 1) end
    if tok:find("%%%x%x") then
      d = tok:gsub("%%(%x%x)", hexchar)
      if not printable(d) then d = nil end
    elseif #tok >= 16 then
      if #tok % 2 == 0 and not tok:find("%X") then
        d = tok:gsub("%x%x", hexchar)
      elseif tok:find("^[%w+/_%-]+=*$") then
        d = core.b64decode(tok)
      end
      if d and not printable(d) then d = nil end
    end
    if d and d ~= tok then fn(d, a, b - 1, arg) end
  end
end

---------------------------------------------------------------------------- literals
-- literals(list) -> a matcher whose :scan(text, hits) sets hits[i] = true for every
-- list[i] (a plain string, 1 to 64 bytes; at most 256) that occurs in text, in one pass
-- (C). A rule set with a literal each rule needs asks once instead of once per rule.
M.literals = core.literals

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
  local first = self.first
  local words, n = core.words(text) -- text:gmatch("[%w']+"), in C

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
