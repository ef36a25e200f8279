-- Local PII detection: emails, phone numbers, payment cards (Luhn-checked), national ids
-- (US SSN, UK NINO), IBANs (mod-97-checked), IP addresses and secrets/API keys. On input it
-- redacts what it finds into per-call placeholders (<EMAIL_1>, ...) so the upstream never
-- sees the values, and on output it puts the originals back where the upstream echoed the
-- placeholders (de-anonymization). With additional_config.action = "block" it blocks
-- instead. PII the upstream itself returns is redacted (or blocked) on output too.
local smg = require "smg"

local M = {
  name = "pii",
  kind = "guardrail",
  version = "1.0.0",
  priority = 300,
  cpu_only = true, -- never waits for I/O: runs on the caller's coroutine (docs/plugin-api.md) -- before other guardrails, so they and the upstream see placeholders
  description = "Detects and redacts personal data and secrets; restores placeholders on output",
  schema = {
    types = { type = "array", items = { type = "string", enum = { "email", "phone", "credit_card", "national_id",
      "iban", "ip_address", "secret" } }, description = "types to detect (default: all)" },
    action = { type = "string", enum = { "redact", "block" }, default = "redact",
      description = "default action; a policy's additional_config.action overrides it" },
  },
}

local function luhn(digits)
  local sum, alt = 0, false
  for i = #digits, 1, -1 do
    local d = digits:byte(i) - 48
    if alt then
      d = d * 2
      if d > 9 then d = d - 9 end
    end
    sum = sum + d
    alt = not alt
  end
  return sum % 10 == 0
end

local function iban_ok(s)
  s = s:gsub("%s", ""):upper()
  if #s < 15 or #s > 34 then return false end
  local r = s:sub(5) .. s:sub(1, 4)
  local rem = 0
  for ch in r:gmatch(".") do
    local v = ch:match("%d") and tonumber(ch) or (ch:byte() - 55)
    if v < 0 or v > 35 then return false end
    rem = (rem * (v >= 10 and 100 or 10) + v) % 97
  end
  return rem == 1
end

local near

local function ipv4_ok(s)
  for o in s:gmatch("%d+") do
    if tonumber(o) > 255 or (#o > 1 and o:sub(1, 1) == "0") then return false end
  end
  return true
end

local function digits_of(s) return (s:gsub("%D", "")) end

-- IPv6 as RFC 4291 writes it: eight groups of one to four hex digits, or fewer with one
-- "::". Times (10:30:00), timestamps and MAC addresses (six groups, no "::") are not.
local function ipv6_ok(s)
  local compressed = select(2, s:gsub("::", "::"))
  if compressed > 1 or s:find(":::", 1, true) then return false end
  local groups = 0
  for g in (s .. ":"):gmatch("([^:]*):") do
    if g ~= "" then
      if #g > 4 or g:find("%X") then return false end
      groups = groups + 1
    end
  end
  if compressed == 1 then return groups >= 1 and groups <= 7 end
  return groups == 8
end

-- A number glued into a longer token (a UUID's last group, "#1234567890", "v2-0123456789")
-- is an identifier, not a phone or a card.
local function standalone(text, a, b)
  local before, after = text:sub(a - 1, a - 1), text:sub(b + 1, b + 1)
  if before:find("[%w#_/]") or after:find("[%w_]") then return false end
  if before == "-" and text:sub(a - 2, a - 2):find("%w") then return false end
  if after == "-" and text:sub(b + 2, b + 2):find("%w") then return false end
  return true
end

local function ssn_ok(s)
  local d = digits_of(s)
  local a = d:sub(1, 3)
  return a ~= "000" and a ~= "666" and a:sub(1, 1) ~= "9" and d:sub(4, 5) ~= "00" and d:sub(6) ~= "0000"
end

-- The first of `words` in the 40 bytes before position a (lower-cased), or nil.
function near(text, a, words)
  local before = text:sub(math.max(1, a - 40), a - 1):lower()
  for _, w in ipairs(words) do if before:find(w, 1, true) then return w end end
  return nil
end

-- A detector's `low`: the find is uncertain (annotated, not redacted) unless one of
-- `words` stands just before it.
local function unless_near(words) return function(text, a) return near(text, a, words) == nil end end

-- A detector's `gate` (a literal, or DIGIT) and a pattern's entry in `needs` must occur in
-- the text before its patterns run: most strings carry no digit and no "@", and then most
-- detectors cost one byte scan instead of a pattern search each.
local DIGIT = {}

-- Detectors, tried in order; each finds candidates with a Lua pattern and may veto one.
-- Earlier detectors win over later ones on the same text (a card is not also a phone).
local DETECTORS = {
  { type = "secret", patterns = {
    "%-%-%-%-%-BEGIN [%u ]*PRIVATE KEY%-%-%-%-%-[%w%s%+/=]+%-%-%-%-%-END [%u ]*PRIVATE KEY%-%-%-%-%-",
    "eyJ[%w_%-]+%.eyJ[%w_%-]+%.[%w_%-]+",          -- JWT
    "sk%-[%w_%-][%w_%-][%w_%-][%w_%-][%w_%-]+",     -- OpenAI-style
    "AKIA[%u%d][%u%d][%u%d][%u%d][%u%d][%u%d][%u%d][%u%d][%u%d][%u%d][%u%d][%u%d][%u%d][%u%d][%u%d][%u%d]",
    "gh[pousr]_[%w][%w][%w][%w][%w][%w][%w][%w][%w][%w]+", -- GitHub
    "xox[baprs]%-[%w%-]+",                           -- Slack
    "AIza[%w_%-][%w_%-][%w_%-][%w_%-][%w_%-]+",      -- Google
    "[sr]k_live_[%w][%w][%w][%w][%w][%w][%w][%w]+",  -- Stripe
    "://[^/%s:@]+:[^/%s@]+@",                         -- password in a URL
  }, needs = { "-----BEGIN", "eyJ", "sk-", "AKIA", "gh", "xox", "AIza", "k_live_", "://" }, check = function(s)
    return #s >= 20 or s:find("^://") ~= nil
  end },
  { type = "email", gate = "@", find = function(text, init)
    -- From each "@" outwards: a pattern that starts with the local part would rescan the
    -- same run of word characters from every position (quadratic on long words).
    while true do
      local at = text:find("@", init, true)
      if not at then return nil end
      local a = at
      while a > 1 and at - a < 64 and text:sub(a - 1, a - 1):match("[%w%.%%%+%-_]") do a = a - 1 end
      local domain = a < at and text:match("^[%w%-]+%.[%w%.%-]*%a%a", at + 1)
      if domain then return a, at + #domain end
      init = at + 1
    end
  end },
  { type = "iban", gate = DIGIT, patterns = { "%u%u%d%d[%s]?[%u%d][%u%d%s]+[%u%d]" }, check = iban_ok },
  { type = "credit_card", gate = DIGIT, patterns = { "%d[%d%s%-]+%d", "%d%d%d%d%.%d%d%d%d%.%d%d%d%d%.%d+" },
    context = standalone, check = function(s)
    local d = digits_of(s)
    return #d >= 13 and #d <= 19 and not s:find("[%s%-][%s%-]") and luhn(d)
  end },
  { type = "national_id", gate = DIGIT, patterns = { "%d%d%d%-%d%d%-%d%d%d%d" }, check = ssn_ok },
  -- Without dashes an SSN is any nine-digit number: certain only next to a word that says so.
  { type = "national_id", gate = DIGIT, patterns = { "%f[%d]%d%d%d%d%d%d%d%d%d%f[%D]", "%f[%d]%d%d%d %d%d %d%d%d%d%f[%D]" },
    context = standalone, check = ssn_ok, low = unless_near({ "ssn", "social security", "ss#", "tax id", "taxpayer" }) },
  { type = "national_id", gate = DIGIT, patterns = { "%f[%w][A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]%s?%d%d%s?%d%d%s?%d%d%s?[A-D]%f[%W]" } },
  -- 1.2.3.4 or 2.14.3.0 is as often a version as an address (and 8.8.8.8 is nobody's):
  -- below 10.x, certain only after a word that says address.
  { type = "ip_address", gate = DIGIT, patterns = { "%f[%d]%d+%.%d+%.%d+%.%d+%f[%D]" }, check = ipv4_ok,
    low = function(text, a)
      return text:find("^%d%.", a) ~= nil and near(text, a, { "ip", "addr", "host", "server", "client" }) == nil
    end },
  { type = "ip_address", gate = ":", patterns = { "%f[%x:]%x*:%x*:[%x:]*%x%f[^%x:]" }, check = ipv6_ok },
  -- A bare run of ten or more digits is as often an id or a Unix time as a phone number.
  { type = "phone", gate = DIGIT, patterns = { "%+?%(?%d[%d%s%-%.%(%)]+%d" }, context = standalone, check = function(s)
    local d = digits_of(s)
    return #d >= 10 and #d <= 15 and not s:find("%d%.%d+%.%d")
  end, low = function(text, a, b)
    return text:sub(a, b):find("^%d+$") ~= nil and
      near(text, a, { "phone", "tel", "mobile", "cell", "call", "fax", "whatsapp", "sms" }) == nil
  end },
}

local function wanted(config)
  if not config.types then return nil end
  local set = {}
  for _, t in ipairs(config.types) do set[t] = true end
  return set
end

-- Finds PII in `text`: list of {type, from, to}, non-overlapping, in text order. Every
-- detector collects its candidates in one pass; one sort and one sweep then settle
-- overlaps, so the cost stays O(n log n) in the number of candidates however much PII a
-- payload carries.
local NO_PATTERN = { false }

local function by_position(x, y)
  if x.from ~= y.from then return x.from < y.from end
  return x.rank < y.rank
end

-- No finds: one shared (read-only) list, so a clean string allocates nothing.
local NONE = setmetatable({}, { __newindex = function() error("NONE is read only", 2) end })

-- Overlapping candidates merge into one span (so no part of any detected value is left
-- behind), named by the strongest detector among them; a span is uncertain only when
-- every part of it is.
local function settle(cands)
  if #cands == 0 then return NONE end
  table.sort(cands, by_position)
  local hits = {}
  for _, c in ipairs(cands) do
    local last = hits[#hits]
    if not last or c.from > last.to then
      hits[#hits + 1] = { type = c.type, from = c.from, to = c.to, rank = c.rank, low = c.low }
    else
      if c.to > last.to then last.to = c.to end
      if c.rank < last.rank then last.type, last.rank = c.type, c.rank end
      if not c.low then last.low = nil end
    end
  end
  return hits
end

local function find_ascii(text, only)
  local digits = text:find("%d") ~= nil
  -- Every detector needs a digit, an "@", a ":" or 20 bytes (a secret): a word, a key, a
  -- short label costs three searches.
  if not digits and #text < 20 and not text:find("@", 1, true) and not text:find(":", 1, true) then return NONE end
  local cands = {}
  for rank, d in ipairs(DETECTORS) do
    local g = d.gate
    if (not only or only[d.type]) and (not g or (g == DIGIT and digits) or (g ~= DIGIT and text:find(g, 1, true))) then
      for i, pat in ipairs(d.patterns or NO_PATTERN) do
        local init = d.needs and not text:find(d.needs[i], 1, true) and #text + 1 or 1
        while true do
          local a, b
          if d.find then a, b = d.find(text, init) else a, b = text:find(pat, init) end
          if not a then break end
          if (not d.check or d.check(text:sub(a, b))) and (not d.context or d.context(text, a, b)) then
            cands[#cands + 1] = { type = d.type, from = a, to = b, rank = rank, low = d.low and d.low(text, a, b) or nil }
          end
          init = b + 1
        end
      end
    end
  end
  return settle(cands)
end

-- A token whose decoded text (percent, hex, base64: smg.text.decoded) holds PII is PII
-- as a whole.
local function decoded_hit(d, a, b, st)
  local h = find_ascii(d, st.only)
  if #h > 0 then
    st.cands = st.cands or {}
    st.cands[#st.cands + 1] = { type = h[1].type, from = a, to = b, rank = 0, low = h[1].low }
  end
end

-- Finds PII in `text` as a reader sees it: list of {type, from, to, low}, non-overlapping,
-- in text order, offsets into `text`. The detectors run on the normalized text (full-width
-- digits, "＠", zero-width characters inside a value: smg.text.normalize) and on the
-- decoded text of encoded tokens; every detector collects its candidates in one pass, and
-- one sort and one sweep settle overlaps, so the cost stays O(n log n) in the number of
-- candidates however much PII a payload carries.
local DECODING = { only = nil, cands = nil } -- (decoded_hit's state; nothing in it yields)

local function find_all(text, only)
  local norm, segs = smg.text.normalize(text)
  local hits = find_ascii(norm, only)
  DECODING.only, DECODING.cands = only, nil
  smg.text.decoded(norm, decoded_hit, DECODING)
  local extra = DECODING.cands
  DECODING.cands = nil
  if extra then
    for _, h in ipairs(hits) do extra[#extra + 1] = h end
    hits = settle(extra)
  end
  if segs then
    for _, h in ipairs(hits) do h.from, h.to = smg.text.raw_span(segs, h.from, h.to) end
  end
  return hits
end
M.find_all = find_all

-- Replaces every hit with a placeholder, reusing one per distinct value within the call.
local function redact(text, hits, vault)
  local out, pos = {}, 1
  for _, h in ipairs(hits) do
    local value = text:sub(h.from, h.to)
    local ph = vault.by_value[value]
    if not ph then
      vault.n[h.type] = (vault.n[h.type] or 0) + 1
      ph = ("<%s_%d>"):format(h.type:upper(), vault.n[h.type])
      vault.by_value[value], vault.by_placeholder[ph] = ph, value
    end
    out[#out + 1] = text:sub(pos, h.from - 1)
    out[#out + 1] = ph
    pos = h.to + 1
  end
  out[#out + 1] = text:sub(pos)
  return table.concat(out)
end

local function vault_of(call)
  local v = call.state.pii
  if not v then
    v = { by_value = {}, by_placeholder = {}, n = {} }
    call.state.pii = v
  end
  return v
end

local function action(policy, config)
  local a = type(policy.additional_config) == "table" and policy.additional_config.action
  return (a == "block" or a == "redact") and a or config.action
end

-- Pieces a long text is scanned in, with a checkpoint between them: small enough that
-- the worst text (a run of "1.1.1.1...") takes about a millisecond a piece.
local SLICE = 8 * 1024

-- Where to end the slice of `s` that starts at `at`: at a line break near SLICE bytes on,
-- else a space (no detected value spans a line break; few span a space), else right there.
-- Bytes a card or phone number may be written with: a cut inside a run of them could
-- split one number into two harmless halves.
local NUMBERISH = {}
for c in ("0123456789 -.()+"):gmatch(".") do NUMBERISH[c:byte()] = true end

local function cut(s, at)
  local stop = at + SLICE - 1
  if stop >= #s then return #s end
  local c
  for i = stop, math.max(at, stop - 4096), -1 do
    local b = s:byte(i)
    if b == 10 then
      c = i
      break
    end
    if b == 32 and not c then c = i end
  end
  c = c or stop
  -- Move the cut back to before a number-shaped run that crosses it (at most 64 bytes:
  -- no card or phone number is longer), so the whole run goes to the next piece.
  if NUMBERISH[s:byte(c + 1)] and NUMBERISH[s:byte(c)] then
    local i = c
    while i > at and c - i < 64 and NUMBERISH[s:byte(i)] do i = i - 1 end
    if c - i < 64 and i > at then c = i end
  end
  return c
end

-- One scan's state: { only, vault, restore, violations, seen, since }. The functions below
-- take it rather than close over it: LuaJIT does not compile closure creation, and this
-- runs twice on every guarded call.
local function pending(st, text)
  local hits = find_all(text, st.only)
  if not st.restore or not st.vault or #hits == 0 then return hits end
  -- Values we put back are the caller's own; only new PII counts on output.
  local fresh, by_value = {}, st.vault.by_value
  for _, h in ipairs(hits) do
    if not by_value[text:sub(h.from, h.to)] then fresh[#fresh + 1] = h end
  end
  return fresh
end

local MAX_PASSES = 8

local function one(st, s)
  local vault = st.vault
  if st.restore and vault and next(vault.by_placeholder) then
    s = s:gsub("<%u[%u_]*_%d+>", vault.by_placeholder)
  end
  local hits = pending(st, s)
  if #hits == 0 then return s end
  -- Redacting can expose a value a greedy candidate had hidden (a phone number whose run
  -- reached into an email), so scan again until nothing certain is left (a few passes for
  -- any real text). An uncertain find (low confidence: a bare nine-digit number, 1.2.3.4)
  -- is reported and left in place. Text built so that every pass exposes more (the
  -- fuzzer made one) is replaced whole: nothing of it can be trusted to be clean.
  for pass = 1, MAX_PASSES + 1 do
    if pass > MAX_PASSES then
      for _, h in ipairs(hits) do
        if not h.low then return "<REDACTED>" end
      end
      break
    end
    local sure = {}
    for _, h in ipairs(hits) do
      local seen_as = h.low and h.type .. "?" or h.type
      if not st.seen[seen_as] then
        st.seen[seen_as] = true
        st.violations[#st.violations + 1] = { type = "pii", detail = h.type, confidence = h.low and "low" or nil }
      end
      if not h.low then sure[#sure + 1] = h end
    end
    if #sure == 0 then break end
    st.sure = true
    vault = vault or vault_of(st.call) -- made on the first redaction: most calls need none
    st.vault = vault
    s = redact(s, sure, vault)
    hits = pending(st, s)
    if #hits == 0 then break end
  end
  return s
end

-- Large payloads go in slices with a checkpoint between them: the loop keeps serving
-- others, and a scan whose hook timed out stops (smg.checkpoint raises).
local function each(s, st)
  st.since = st.since + #s + 64 -- a string costs something however short it is
  if st.since >= SLICE then
    st.since = 0
    smg.checkpoint()
  end
  if #s <= SLICE then return one(st, s) end
  local parts, at = {}, 1
  while at <= #s do
    local stop = cut(s, at)
    parts[#parts + 1] = one(st, s:sub(at, stop))
    at = stop + 1
    if at <= #s then smg.checkpoint() end
  end
  return table.concat(parts)
end

-- Copies `v` with PII redacted in every string value, every object key (a key is text an
-- upstream sees too) and every integer long enough to be a card, phone or id number (a
-- card number sent as a JSON number is still a card number; it comes back as its
-- placeholder, a string).
local MAX_DEPTH = 1024

-- Exempt paths (a policy's additional_config.exempt_paths): "ticket.id", "items.*.mac",
-- or "TOOL:path" for one tool (or method, for messages other than tool calls), relative
-- to what is scanned (a tool's arguments or result, a message's params or result). A
-- value there, and everything under it, is left alone: a ticket id the tool needs intact.
local compiled = setmetatable({}, { __mode = "k" })
local function exemptions(policy, scope)
  local list = type(policy) == "table" and type(policy.additional_config) == "table"
    and policy.additional_config.exempt_paths
  if type(list) ~= "table" or #list == 0 then return nil end
  local all = compiled[list]
  if not all then
    all = {}
    for _, p in ipairs(list) do
      local only, path = tostring(p):match("^([^:]+):(.+)$")
      path = path or tostring(p)
      local segs = {}
      for seg in path:gmatch("[^%.]+") do segs[#segs + 1] = seg end
      all[#all + 1] = { only = only, segs = segs }
    end
    compiled[list] = all
  end
  local mine = {}
  for _, e in ipairs(all) do if not e.only or e.only == scope then mine[#mine + 1] = e.segs end end
  return #mine > 0 and mine or nil
end

local function exempt(st, depth)
  local path = st.path
  for _, segs in ipairs(st.exempt) do
    if #segs == depth then
      local ok = true
      for i = 1, depth do
        if segs[i] ~= "*" and segs[i] ~= tostring(path[i]) then
          ok = false
          break
        end
      end
      if ok then return true end
    end
  end
  return false
end

-- Returns `v` itself when nothing in it changed (most calls: no copy at all), else a
-- copy with the changes.
local function walk(v, st, depth)
  local t = type(v)
  if t == "string" then return each(v, st) end
  if t == "number" then
    if v == math.floor(v) and math.abs(v) >= 1e8 and math.abs(v) < 2 ^ 53 then
      local digits = ("%d"):format(v)
      local r = one(st, digits)
      if r ~= digits then return r end
    end
    return v
  end
  if t ~= "table" then return v end
  if depth > MAX_DEPTH then error("value nested deeper than " .. MAX_DEPTH .. " levels", 0) end
  local changes -- { old key, new key, new value }, ...
  local path = st.exempt and st.path
  for k, x in pairs(v) do
    local skip = false
    if path then
      path[depth + 1] = type(k) == "number" and k - 1 or k -- JSON arrays count from 0
      skip = exempt(st, depth + 1)
    end
    if not skip then
      local nk = type(k) == "string" and each(k, st) or k
      local nx = walk(x, st, depth + 1)
      if nk ~= k or nx ~= x then
        changes = changes or {}
        changes[#changes + 1] = { k, nk, nx }
      end
    end
  end
  if path then path[depth + 1] = nil end
  if not changes then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = x end
  for _, c in ipairs(changes) do
    if c[1] ~= c[2] then out[c[1]] = nil end
    out[c[2]] = c[3]
  end
  return setmetatable(out, getmetatable(v))
end

-- Scans (and, when redacting, rewrites) `value`. `policy` and `scope` (the tool or
-- method) select the exempt paths.
local function scan(value, call, config, restore, policy, scope)
  local st = { only = wanted(config), call = call, vault = call.state.pii, restore = restore, violations = {}, seen = {},
    since = 0,
    exempt = exemptions(policy, scope), path = {} }
  local out = walk(value, st, 0)
  return out, st.violations, st.sure
end

-- The verdict on a scan: certain finds are redacted (or block); uncertain ones only
-- annotate (they are in the violations, the audit log records them).
local function verdict(out, violations, sure, policy, config)
  if #violations == 0 then return nil end
  if not sure then return { allowed = true, violations = violations } end
  if action(policy, config) == "block" then return { allowed = false, violations = violations } end
  return { allowed = true, violations = violations, redacted = out }
end

local ALLOWED = { allowed = true } -- (read only: the gateway never changes a verdict)

function M.check_input(call, policy, config)
  local out, violations, sure = scan(call.arguments, call, config, false, policy, call.name)
  return verdict(out, violations, sure, policy, config) or ALLOWED
end

-- Every other message kind (api_minor 1): what an upstream sends (resources, prompts,
-- completions, errors, notifications, its sampling and elicitation requests) is redacted
-- like a tool result, and what goes to it (prompt and completion arguments, the client's
-- answers to its requests) like tool arguments. Tool calls are check_input/check_output's.
-- Each message is its own call: no placeholder crosses from one to another.
M.messages = { "c2s:request", "c2s:result", "s2c:request", "s2c:notification", "s2c:result !tools/call", "s2c:error" }

function M.on_message(msg, policy, config)
  local payload = msg.payload
  if msg.method == "tools/call" then
    -- The arguments were check_input's; the request's _meta is text the upstream reads too.
    if msg.point ~= "c2s:request" or type(payload) ~= "table" or type(payload._meta) ~= "table" then return nil end
    -- The progress token is the client's handle for its progress notifications: left as is.
    local token = payload._meta.progressToken
    local rest = {}
    for k, v in pairs(payload._meta) do if k ~= "progressToken" then rest[k] = v end end
    local meta, violations, sure = scan(rest, { state = {} }, config, false, policy, "_meta")
    meta.progressToken = token
    local out = {}
    for k, v in pairs(payload) do out[k] = v end
    out._meta = meta
    return verdict(out, violations, sure, policy, config)
  end
  local out, violations, sure = scan(payload, { state = {} }, config, false, policy, msg.method)
  return verdict(out, violations, sure, policy, config)
end

function M.check_output(call, result, policy, config)
  local out, violations, sure = scan(result, call, config, true, policy, call.name)
  if sure and action(policy, config) == "block" then return { allowed = false, violations = violations } end
  -- Nothing certain found and nothing put back: the result goes on as it came.
  if not sure and not (call.state.pii and next(call.state.pii.by_placeholder)) then
    return #violations > 0 and { allowed = true, violations = violations } or ALLOWED
  end
  return { allowed = true, violations = violations, redacted = out }
end

return M
