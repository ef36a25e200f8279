-- Poisoning and rug-pull defence for everything a server offers: tools, prompts,
-- resources, resource templates and its instructions. At discovery it reads every
-- definition for hidden instructions (<IMPORTANT>-style tags, "do not tell the user",
-- requests to read credentials or send data elsewhere), invisible or bidirectional
-- Unicode, and pins a hash of each; when a pinned item later changes (a rug pull), or an
-- item appears that was not there at first sight, it is reported, and with the policy's
-- block list naming "tool_changed" it is hidden and its use (tools/call, prompts/get,
-- resources/read) refused. Poisoned items are hidden when "tool_poisoning" is blocked.
-- Pins live in smg.pins: kept across reloads and restarts, and decided on with
-- `smg pins list|approve|reject`.
local smg = require "smg"
local json = smg.json

local M = {
  name = "tool_scan",
  kind = "guardrail",
  version = "1.0.0",
  priority = 250,
  cpu_only = true, -- pins are in memory (written in the background): nothing here waits
  description = "Flags poisoned tool descriptions and pins tool definitions against rug pulls",
  schema = {
    pin_ttl = { type = "number", default = 0, min = 0,
      description = "unused since pins are kept across restarts (smg.pins); accepted for old configs" },
  },
}

-- Rules run on folded text (smg.text.fold: lower-cased, blank runs collapsed, so `%s*`
-- and `%s+` match at most one byte) and never put two unbounded runs side by side;
-- phrases with filler words between key words are word-sequence rules (smg.text.phrases).
local PHRASES = {
  { "concealment", { "do|don't|dont", "not", "*1", "tell|inform|mention", "*2", "user" } },
  { "concealment", { "don't|dont", "*1", "tell|inform|mention", "*2", "user" } },
  { "concealment", { "do", "not", "mention" } },
  { "concealment", { "without", "telling|informing|notifying" } },
  { "concealment", { "user", "must", "not", "know|see|notice" } },
  { "instruction_override", { "ignore|disregard|override", "*4", "instructions|rules|guidelines" } },
  { "instruction_override", { "before", "using", "this", "tool" } },
  { "instruction_override", { "you", "must", "first" } },
  { "instruction_override", { "always", "call|use|run|choose|pick|select|prefer", "this", "tool" } },
  { "instruction_override", { "must", "use|call|choose", "this", "tool" } },
  { "exfiltration", { "send|upload|post|forward|exfiltrate", "*6", "to", "http|https" } },
  { "exfiltration", { "upload", "*6", "to" } },
  { "exfiltration", { "base64", "encode" } },
}

local SUSPICIOUS = {
  { "hidden_tag", "< ?important ?>" }, { "hidden_tag", "< ?system ?>" }, { "hidden_tag", "< ?instructions? ?>" },
  { "hidden_tag", "< ?secret ?>" }, { "hidden_tag", "<!%-%-" },
  { "concealment", "secretly" },
  { "credential_access", "~/%.ssh" }, { "credential_access", "id_rsa" }, { "credential_access", "%.env%f[%W]" },
  { "credential_access", "/etc/passwd" }, { "credential_access", "api[_ ]?keys?" }, { "credential_access", "credentials" },
  { "credential_access", "mcp%.json" },
  { "exfiltration", "https?://[%w%.%-]+/[%w%./%-_?=&]*" },
  { "exfiltration", "base64encode" },
  { "exfiltration", "webhook" },
}

-- Shadowing: a description that tells the model how to use some other tool ("when the
-- send_email tool is called, also BCC ...").
PHRASES[#PHRASES + 1] = { "shadowing", { "instead", "of", "*3", "tool" } }
PHRASES[#PHRASES + 1] = { "shadowing", { "when|whenever|before|after", "*6", "tool", "is|gets", "called|used|invoked|run" } }
PHRASES[#PHRASES + 1] = { "shadowing", { "always|also", "bcc|cc" } }

local phrase_rules = {}
for i, r in ipairs(PHRASES) do phrase_rules[i] = { id = i, words = r[2] } end
local phrases = smg.text.phrases(phrase_rules)

local function matches(text, r)
  if r.lead then return smg.find_near(text, r.lead, r[2]) end
  return text:find(r[2]) ~= nil
end

-- Zero-width, bidi controls, tags block: text a model reads and a human does not see.
local INVISIBLE = {
  "\226\128\139", "\226\128\140", "\226\128\141", "\226\128\142", "\226\128\143", -- U+200B..U+200F
  "\226\128\170", "\226\128\171", "\226\128\172", "\226\128\173", "\226\128\174", -- U+202A..U+202E
  "\226\129\160", "\226\129\166", "\226\129\167", "\226\129\168", "\226\129\169", -- U+2060, U+2066..2069
  "\239\187\191",                                                                   -- U+FEFF
  "\243\160\128",                                                                   -- U+E0000.. tags
}

-- Per list: the pin kind, the field that names an item, the fields a model reads.
local LISTS = {
  tools = { kind = "tool", id = "name", text = { "description", "title", "inputSchema", "outputSchema", "annotations" } },
  prompts = { kind = "prompt", id = "name", text = { "description", "title", "arguments" } },
  resources = { kind = "resource", id = "uri", text = { "name", "title", "description", "annotations" } },
  resourceTemplates = { kind = "template", id = "uriTemplate", text = { "name", "title", "description", "annotations" } },
  instructions = { kind = "instructions", id = false, text = { "instructions" } },
}
M.discovery = { "tools", "prompts", "resources", "resourceTemplates", "instructions" }

-- Everything a client or a model reads of a tool, so a change to any of it is a drift.
function M.fingerprint(tool)
  return smg.hash(json.canonical({ name = tool.name, description = tool.description, inputSchema = tool.inputSchema,
    outputSchema = tool.outputSchema, annotations = tool.annotations, title = tool.title, execution = tool.execution,
    icons = tool.icons, _meta = tool._meta }))
end

-- Any other item: all of it, less what changes without its meaning changing (a
-- resource's size).
local function fingerprint_of(item, list)
  if list == "tools" then return M.fingerprint(item) end
  local copy = {}
  for k, v in pairs(item) do if k ~= "size" then copy[k] = v end end
  return smg.hash(json.canonical(copy))
end

-- The MCP name rule (2025-11-25): 1 to 128 of A-Z a-z 0-9 _ - . ; anything else can
-- impersonate another tool in a client's list ("read_file " with a trailing space,
-- look-alike letters, control characters).
local function valid_name(name)
  return type(name) == "string" and #name >= 1 and #name <= 128 and not name:find("[^%w_%-%.]")
end

-- Findings for one item of `list` (default tools): list of reason strings.
function M.inspect(tool, list)
  local spec = LISTS[list or "tools"]
  local reasons, seen = {}, {}
  local function found(reason)
    if not seen[reason] then
      seen[reason] = true
      reasons[#reasons + 1] = reason
    end
  end
  if spec.kind == "tool" and not valid_name(tool.name) then found("invalid_name") end
  local parts = {}
  for i, f in ipairs(spec.text) do parts[i] = tool[f] or false end
  smg.text.slices(parts, function(raw)
    local text = smg.text.fold(raw)
    for _, r in ipairs(SUSPICIOUS) do
      if not seen[r[1]] and matches(text, r) then found(r[1]) end
    end
    for i in pairs(phrases:match(text, {})) do found(PHRASES[i][1]) end
    if not seen.invisible_unicode then
      for _, ch in ipairs(INVISIBLE) do
        if raw:find(ch, 1, true) then
          found("invisible_unicode")
          break
        end
      end
    end
    return text
  end)
  -- One weak signal (a URL, the word credentials) is common in honest tools; two are not.
  if #reasons == 1 and (reasons[1] == "exfiltration" or reasons[1] == "credential_access") then return {} end
  return reasons
end

local function blocks(policy, t)
  local list = policy.block or {}
  if #list == 0 then return true end
  for _, b in ipairs(list) do if b == t then return true end end
  return false
end

-- Pinning (smg.pins, kept across restarts): the first listing of a server's list pins
-- every item on it. Later, an item whose definition differs from its pin, or an item that
-- was not there when the list was first seen, is pending: reported as tool_changed and,
-- when the policy blocks that, hidden and refused until `smg pins approve` (or `reject`)
-- decides.
local function pin(server, kind, name, fp, first_sight)
  local rec = smg.pins.get(server, name, kind)
  local now = math.floor(smg.now())
  if not rec then
    if first_sight then
      smg.pins.put(server, name, { status = "approved", fingerprint = fp, seen = now }, kind)
      return nil
    end
    smg.pins.put(server, name, { status = "pending", pending = fp, reason = "new", seen = now, changed = now }, kind)
    return "new"
  end
  if rec.status == "rejected" then return "rejected" end
  if rec.fingerprint == fp then
    if rec.status ~= "approved" then -- the drift went away by itself
      rec.status, rec.pending, rec.reason = "approved", nil, nil
      smg.pins.put(server, name, rec, kind)
    end
    return nil
  end
  if rec.status ~= "pending" or rec.pending ~= fp then
    rec.status, rec.pending, rec.changed = "pending", fp, now
    rec.reason = rec.fingerprint and "changed" or "new"
    smg.pins.put(server, name, rec, kind)
  end
  return rec.reason
end

-- Cross-server shadowing: the tools other servers offer (their pins), by name, for a
-- description that names one of them and tells the model something about it. Names
-- shorter than 5 characters without a '_' ("echo", "fetch") are ordinary words.
local CUES = { "instead", "must", "always", "never", "before", "after", "when", "whenever", "also", "first",
  "ignore", "override", "replace", "redirect", "bcc", "don't", "not" }
local function other_tools(server)
  local names = {}
  for _, r in ipairs(smg.pins.all()) do
    local n = r.name
    if (r.kind == nil or r.kind == "tool") and r.server ~= server and type(n) == "string"
        and (#n >= 5 or n:find("_", 1, true)) then
      names[n:lower()] = r.server
    end
  end
  return names
end

local function shadows(tool, others)
  if not next(others) then return nil end
  local text = smg.text.fold(tostring(tool.description or "") .. " " .. json.text(tool.inputSchema or {}))
  local named
  for w in text:gmatch("[%w_%-%.]+") do
    if others[w] then
      named = w
      break
    end
    local tail = w:match("__([%w_%-%.]+)$") -- an aggregate's server__tool
    if tail and others[tail] then
      named = tail
      break
    end
  end
  if not named then return nil end
  for cue in text:gmatch("[%w']+") do
    for _, c in ipairs(CUES) do if cue == c then return named end end
  end
  return nil
end

function M.check_discovery(server, items, policy, config, list)
  list = list or "tools"
  local spec = LISTS[list]
  local kind = spec.kind
  local keep, violations = json.array({}), {}
  local first_sight = not smg.pins.known(server, kind)
  local others = kind == "tool" and other_tools(server) or {}
  for _, item in ipairs(items) do
    local name = spec.id and item[spec.id] or ""
    if type(name) ~= "string" then name = tostring(name) end
    local hide = false
    local reasons = M.inspect(item, list)
    local victim = kind == "tool" and shadows(item, others)
    if victim then
      reasons[#reasons + 1] = "shadowing:" .. others[victim] .. "/" .. victim
    end
    if #reasons > 0 then
      violations[#violations + 1] = { type = "tool_poisoning", tool = kind == "tool" and name or nil,
        item = smg.pins.id({ server = server, name = name, kind = kind }), detail = table.concat(reasons, ",") }
      if blocks(policy, "tool_poisoning") then hide = true end
    end
    local drift = pin(server, kind, name, fingerprint_of(item, list), first_sight)
    -- Hidden from the list is not enough: a client that knows the name could use it. The
    -- pin remembers the poisoning (across reloads and restarts, shown by `smg pins list`).
    local rec = smg.pins.get(server, name, kind)
    local poisoned = hide and table.concat(reasons, ",") or nil
    if rec and rec.poisoned ~= poisoned then
      rec.poisoned = poisoned
      smg.pins.put(server, name, rec, kind)
    end
    if drift then
      violations[#violations + 1] = { type = "tool_changed", tool = kind == "tool" and name or nil,
        item = smg.pins.id({ server = server, name = name, kind = kind }), detail = drift }
      if blocks(policy, "tool_changed") then hide = true end
    end
    if not hide then keep[#keep + 1] = item end
  end
  return { allowed = #violations == 0, violations = violations, tools = keep }
end

-- Using an item that is not approved is refused when the policy blocks tool_changed (the
-- client may still hold the old definition), and so is using a poisoned one (the client
-- may know its name).
local function refuse(server, kind, name, policy)
  local rec = smg.pins.get(server, name, kind)
  if rec and rec.status ~= "approved" and blocks(policy, "tool_changed") then
    return { allowed = false, violations = { { type = "tool_changed", tool = name, detail = rec.status } } }
  end
  if rec and rec.poisoned then
    return { allowed = false, violations = { { type = "tool_poisoning", tool = name } } }
  end
  return nil
end

local ALLOWED = { allowed = true } -- (read only: the gateway never changes a verdict)

function M.check_input(call, policy, config)
  return refuse(call.server, "tool", call.name, policy) or ALLOWED
end

-- prompts/get and resources/read (upstream names, after routing); nothing else passes.
M.messages = { "c2s:request prompts/get", "c2s:request resources/read" }

function M.on_message(msg, policy, config)
  local p = type(msg.payload) == "table" and msg.payload or {}
  if msg.method == "prompts/get" then return refuse(msg.server, "prompt", p.name, policy) end
  return refuse(msg.server, "resource", p.uri, policy)
end

return M
