-- smg.pins: the approved definitions of what upstreams offer (tools, prompts, resources,
-- resource templates, server instructions), kept across restarts in a JSON file
-- (gateway.pins_path) that `smg pins list|approve|reject` edits. A record: { server,
-- name, kind = "tool" | "prompt" | "resource" | "template" | "instructions" (absent:
-- "tool", as files of api_minor 1 have it), fingerprint = approved definition's hash,
-- status = "approved" | "pending" | "rejected", pending = the hash waiting for a decision,
-- reason = "changed" | "new", seen = first sight (seconds), changed = when it last went
-- pending }. Its id, as the CLI names it: server/name for a tool, server/kind:name else
-- (a tool name cannot hold ':').
--
-- The gateway configures the file; without one (specs, `smg run`) records live in memory.
-- Writes go to a temporary file on libuv's thread pool, then replace the file in one
-- rename, so a reader (the CLI, the next start) never sees half of it. The gateway
-- watches the file: a decision made with the CLI applies to running sessions at once.
local core = require "smg.core"

local M = {}

local function key(server, name, kind)
  if kind == nil or kind == "tool" then return tostring(server) .. "\0" .. tostring(name) end
  return tostring(server) .. "\0" .. kind .. "\0" .. tostring(name)
end

-- The CLI's name of a record.
function M.id(r)
  if r.kind == nil or r.kind == "tool" then return tostring(r.server) .. "/" .. tostring(r.name) end
  return ("%s/%s:%s"):format(tostring(r.server), r.kind, tostring(r.name))
end

local records = {}   -- "server\0name" -> record
local path = nil     -- the file, or nil (memory only)
local writing, again = false, false
local disk = nil     -- the file's text as we last read or wrote it

-- Called when decisions made elsewhere (the CLI) were taken in; the gateway sets it.
M.on_change = nil

local function read_text(file)
  local f = io.open(file, "rb")
  if not f then return "" end
  local t = f:read("*a")
  f:close()
  return t
end

-- A temporary name of its own for every writer, so two never write the same file.
local function tmp_name(file)
  return ("%s.tmp.%d.%s"):format(file, core.getpid(), core.hex(core.random_bytes(4)))
end

-- The records a pins file's text holds (empty text: none). Returns records | nil, err.
local function parse(text, file)
  if text == "" then return {} end
  local doc, err = core.json_decode(text)
  local list = type(doc) == "table" and (doc.items or doc.tools) -- "tools": version 1 files
  if type(list) ~= "table" then
    return nil, file .. ": not a pins file (" .. tostring(err or "no items") .. ")"
  end
  local out = {}
  for _, r in ipairs(list) do
    if type(r) == "table" and r.server and r.name then out[key(r.server, r.name, r.kind)] = r end
  end
  return out
end

-- Takes in the decisions (records with a newer `decided`) of the file's current text.
-- Returns true when one was taken.
local function merge(text)
  local theirs = parse(text, path)
  if not theirs then return false end
  local taken = false
  for k, r in pairs(theirs) do
    local mine = records[k]
    if r.decided and (not mine or (mine.decided or 0) < r.decided) then
      records[k] = r
      taken = true
    end
  end
  return taken
end

-- The records in `file` (a missing file is an empty store). Returns records | nil, err.
function M.read(file) return parse(read_text(file), file) end

-- The file's text for `recs` (sorted: diffs of it stay readable).
function M.encode(recs)
  local list = setmetatable({}, core.json_array_mt)
  for _, r in pairs(recs) do list[#list + 1] = r end
  table.sort(list, function(a, b) return M.id(a) < M.id(b) end)
  return core.json_encode({ version = 2, items = list }) .. "\n"
end

-- Writes `text` to `file` atomically: a 0600 temporary beside it, then a rename.
-- Synchronous: for the CLI.
function M.write_sync(file, text)
  local tmp = tmp_name(file)
  local fd, err = core.open_private(tmp, true, false)
  if not fd then return nil, err end
  local f, ferr = io.open("/proc/self/fd/" .. fd, "w")
  core.close_fd(fd)
  if not f then return nil, ferr end
  f:write(text)
  f:close()
  local ok, rerr = os.rename(tmp, file)
  if not ok then return nil, rerr end
  return true
end

local function flush()
  if not path then return end
  if writing then
    again = true
    return
  end
  writing = true
  local target = path
  local tmp = tmp_name(target)
  local fd, err = core.open_private(tmp, true, true)
  if not fd then
    writing = false
    core.log(3, "pins: cannot write " .. tmp .. ": " .. tostring(err))
    return
  end
  local text = M.encode(records)
  core.fs_append(fd, text, function(n, werr)
    core.close_fd(fd)
    local now = read_text(target)
    if disk and now ~= disk and merge(now) then
      -- Someone (`smg pins`) decided meanwhile: this text is stale. Write again with the
      -- decisions taken in, and let the gateway apply them.
      os.remove(tmp)
      disk = now
      writing = false
      if M.on_change then M.on_change() end
      return flush()
    end
    if n == #text then
      local ok, rerr = os.rename(tmp, target)
      if ok then
        disk = text
      else
        core.log(3, "pins: cannot replace " .. target .. ": " .. tostring(rerr))
      end
    else
      os.remove(tmp)
      core.log(3, "pins: writing " .. tmp .. " failed: " .. tostring(werr or "short write"))
    end
    writing = false
    if again then
      again = false
      flush()
    end
  end)
end

-- Uses `file` from now on (nil: memory only). Returns true | nil, err (the previous
-- store stays when the file cannot be read).
function M.configure(file)
  if file == path then return true end
  if not file then
    path = nil
    return true
  end
  local text = read_text(file)
  local recs, err = parse(text, file)
  if not recs then return nil, err end
  records, path, disk = recs, file, text
  return true
end

-- Re-reads the file (after the CLI changed it). Returns true when something changed.
-- (While a write of ours is in flight it waits: that write takes the decisions in when
-- it finds the file changed under it.)
function M.reload()
  if not path or writing then return false end
  local text = read_text(path)
  if text == disk then return false end
  local recs = parse(text, path)
  if not recs then return false end
  local changed = M.encode(records) ~= M.encode(recs)
  records, disk = recs, text
  return changed
end

function M.path() return path end

-- `kind` defaults to "tool".
function M.get(server, name, kind) return records[key(server, name, kind)] end

function M.put(server, name, rec, kind)
  rec.server, rec.name = server, name
  if kind ~= nil and kind ~= "tool" then rec.kind = kind end
  records[key(server, name, kind)] = rec
  flush()
end

-- Whether `server` has any record of `kind` (its list of that kind was seen before).
function M.known(server, kind)
  kind = kind or "tool"
  for _, r in pairs(records) do if r.server == server and (r.kind or "tool") == kind then return true end end
  return false
end

function M.all()
  local list = {}
  for _, r in pairs(records) do list[#list + 1] = r end
  return list
end

-- Forgets everything in memory (specs).
function M.reset()
  records, path = {}, nil
end

return M
