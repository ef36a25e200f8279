-- The config store: the one way the CLI (and, with the admin API, the REST routes) change
-- the config file, so that no writer ever loses another's update and no reader ever sees
-- half a file. A change is a read-modify-write under an exclusive lock on
-- `<config>.lock`:
--   1. read and decode the file as it is now (not as it was when the command started),
--   2. apply the change to the document,
--   3. validate the result exactly as `smg serve` would (a change that would make the
--      config invalid is refused, and nothing is written),
--   4. keep the previous file as `<config>.bak.1` (older ones shift up to `.bak.N`),
--   5. write the new text durably: a 0600 temporary, fsync, rename over the file, fsync of
--      the directory (core.write_durable).
-- The document is written with sorted keys and two-space indentation: a file people
-- also edit by hand stays readable and diffs stay small.
--
-- Synchronous: for the CLI. (A running gateway reloads on its own when the file changes.)
local core = require "smg.core"
local json = require("smg").json
local config = require "smg.config"

local M = {}

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The text a document is written as.
function M.encode(doc)
  return assert(core.json_pretty(json.canonical(doc))) .. "\n"
end

-- Shifts <path>.bak.1 .. .bak.(n-1) up by one and keeps `text` as <path>.bak.1 (0600).
local function backup(path, text, n)
  if n <= 0 then return true end
  os.remove(("%s.bak.%d"):format(path, n))
  for i = n - 1, 1, -1 do
    local from = ("%s.bak.%d"):format(path, i)
    if exists(from) then os.rename(from, ("%s.bak.%d"):format(path, i + 1)) end
  end
  return core.write_durable(path .. ".bak.1", text)
end

local function update_locked(path, change, backups)
  local text = read(path)
  if not text then return nil, path .. ": no config file (`smg generate-config` writes one)" end
  local doc, derr = json.decode(text)
  if type(doc) ~= "table" or json.is_array(doc) then
    return nil, path .. ": not a JSON object (" .. tostring(derr or "an array") .. "); fix it by hand first"
  end
  local result, err, code = change(doc)
  if result == nil then return nil, err, code end
  local out = M.encode(doc)
  local cfg, errs = config.parse(out, path)
  if not cfg then return nil, "refused: the change would make the config invalid: " .. table.concat(errs, "; ") end
  local ok, berr = backup(path, text, backups or cfg.gateway.config_backups)
  if not ok then return nil, "cannot keep a backup: " .. tostring(berr) end
  local wok, werr = core.write_durable(path, out)
  if not wok then return nil, werr end
  return result
end

-- Applies change(doc) to the config file at `path` (see above). change returns a result
-- (anything but nil) to write, or nil, err to leave the file alone. `backups`: how many
-- previous versions to keep (default: the config's gateway.config_backups, 5).
-- Returns result | nil, err[, exit code the change gave].
function M.update(path, change, backups)
  local lock, lerr = core.lock_file(path .. ".lock")
  if not lock then return nil, lerr end
  local ok, result, err, code = pcall(update_locked, path, change, backups)
  core.close_fd(lock)
  if not ok then return nil, tostring(result) end
  return result, err, code
end

-- Writes `doc` as a new config at `path` (validated first; the previous file, if any, is
-- kept as a backup). Returns true | nil, err.
function M.create(path, doc, backups)
  local lock, lerr = core.lock_file(path .. ".lock")
  if not lock then return nil, lerr end
  local out = M.encode(doc)
  local cfg, errs = config.parse(out, path)
  local ok, err = cfg ~= nil, errs and table.concat(errs, "; ")
  if ok then
    local old = read(path)
    if old then ok, err = backup(path, old, backups or cfg.gateway.config_backups) end
    if ok then ok, err = core.write_durable(path, out) end
  end
  core.close_fd(lock)
  if not ok then return nil, err end
  return true
end

-- The document at `path` (decoded, unvalidated) | nil, err: what commands read.
function M.read(path)
  local text = read(path)
  if not text then return nil, path .. ": no config file (`smg generate-config` writes one)" end
  local doc, err = json.decode(text)
  if type(doc) ~= "table" then return nil, path .. ": " .. tostring(err) end
  return doc
end

return M
