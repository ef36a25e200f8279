-- The audit log (gateway.audit.path): one JSON line per client request with who asked,
-- what (method, server, tool, the SHA-256 of the arguments), every guardrail's verdict, the
-- SHA-256 of the result, the outcome and the latency. Lines are hash-chained: each carries
-- `seq` and `prev`, the SHA-256 of the line before it (of "" for the very first), across
-- rotations too, so `smg audit verify` finds any line edited, deleted, inserted or moved.
-- Writes go through libuv's thread pool (core.fs_append): a slow disk never blocks the
-- loop. The file is created 0600 and never through a symbolic link.
local smg = require "smg"
local core = require "smg.core"
local metrics = require "smg.metrics"
local json = smg.json
local log = smg.log

local Audit = {}
Audit.__index = Audit

local MAX_PENDING = 64 * 1024 * 1024 -- bytes queued while the disk lags; past it lines are dropped

local lines_total = metrics.counter("smg_audit_lines_total", "Audit log lines written", {})
local dropped_total = metrics.counter("smg_audit_dropped_total",
  "Audit log lines dropped because writes fell behind or failed", {})

local function sha(s) return core.hex(core.sha256(s)) end
Audit.GENESIS = sha("")

-- The last line of the file at `path`, to continue its chain after a restart; its size;
-- and whether it ends in the middle of a line (a crash mid-write).
local function last_line(path)
  local f = io.open(path, "rb")
  if not f then return nil, 0, false end
  local size = f:seek("end")
  f:seek("set", math.max(0, size - 65536))
  local tail = f:read("*a")
  f:close()
  local torn = size > 0 and tail:sub(-1) ~= "\n"
  if torn then return tail:match("([^\n]+)\n[^\n]*$"), size, true end -- the last whole line
  return tail:match("([^\n]+)\n*$"), size, false
end

-- cfg: gateway.audit { path, max_bytes, keep }. Returns the log | nil, err.
function Audit.open(cfg)
  local last, size, torn = last_line(cfg.path)
  -- Right after a rotation the new file is empty: the chain goes on from the rotated one.
  if not last then last = last_line(cfg.path .. ".1") end
  local fd, bits = core.open_private(cfg.path, false, true)
  if not fd then return nil, "audit log: " .. bits end
  local self = setmetatable({ cfg = cfg, fd = fd, size = size, seq = 0, prev = Audit.GENESIS,
    queue = {}, qbytes = 0, writing = false }, Audit)
  -- A line cut off by a crash stays as it is (verify names it); the next record starts on
  -- a line of its own.
  if torn then self.queue[1], self.qbytes = "\n", 1 end
  if last then
    local rec = json.decode(last)
    if type(rec) == "table" and type(rec.seq) == "number" then
      self.seq, self.prev = rec.seq, sha(last)
    else
      log.warn(("audit log %s ends with a line that is not ours; starting a new chain after it"):format(cfg.path))
    end
  end
  return self
end

-- Appends one record (a table; seq and prev are filled in here).
function Audit:record(rec)
  if self.closed then return end
  rec.seq, rec.prev = self.seq + 1, self.prev
  local line = json.encode(rec)
  if not line or self.qbytes + #line > MAX_PENDING then
    -- Dropped before it took a place in the chain: the chain stays whole, the loss counted.
    dropped_total:inc(1)
    return
  end
  self.seq, self.prev = rec.seq, sha(line)
  self.queue[#self.queue + 1] = line .. "\n"
  self.qbytes = self.qbytes + #line + 1
  lines_total:inc(1)
  self:flush()
end

function Audit:flush()
  if self.writing or #self.queue == 0 or self.closed or not self.fd then return end
  local data = table.concat(self.queue)
  self.queue, self.qbytes = {}, 0
  self.writing = true
  self:write(data)
end

-- The write in flight is done (or failed): the fd may be closed now if close() asked.
local function settle(self)
  self.writing = false
  if self.on_idle and #self.queue == 0 then self.on_idle() end
  if self.closed and self.fd then
    core.close_fd(self.fd)
    self.fd = nil
  end
end

function Audit:write(data)
  local ok, err = core.fs_append(self.fd, data, function(n, werr)
    if not n then
      -- The lines are lost; the chain will show the gap where they were (verify says so).
      log.error(("audit log %s: write failed: %s"):format(self.cfg.path, tostring(werr)))
      dropped_total:inc(select(2, data:gsub("\n", "")))
      return settle(self)
    end
    self.size = self.size + n
    if n < #data then return self:write(data:sub(n + 1)) end
    if not self.closed and self.size >= self.cfg.max_bytes then self:rotate() end
    settle(self)
    self:flush()
  end)
  if not ok then
    log.error(("audit log %s: write failed: %s"):format(self.cfg.path, tostring(err)))
    settle(self)
  end
end

-- path -> path.1 -> ... -> path.<keep>; the chain goes on in the new file.
function Audit:rotate()
  local p, keep = self.cfg.path, self.cfg.keep
  core.close_fd(self.fd)
  self.fd = nil
  os.remove(p .. "." .. keep)
  for i = keep - 1, 1, -1 do os.rename(p .. "." .. i, p .. "." .. (i + 1)) end
  os.rename(p, p .. ".1")
  local fd, err = core.open_private(p, false, true)
  if not fd then
    log.error("audit log: cannot open a new file after rotating: " .. tostring(err))
    self.closed = true
    return
  end
  self.fd, self.size = fd, 0
end

-- Waits (yields) until every queued line is on disk or `timeout` passes; then closes.
-- Waits (yields) until every queued line is on disk or `timeout` passes, then closes; a
-- write still in flight then closes the file itself when it completes.
function Audit:close(timeout)
  if self.writing or #self.queue > 0 then
    local f = smg.future()
    self.on_idle = function() if not self.writing and #self.queue == 0 then f:set(true) end end
    f:wait(timeout or 5)
  end
  self.closed = true
  if self.fd and not self.writing then
    core.close_fd(self.fd)
    self.fd = nil
  end
end

---------------------------------------------------------------------------- the record
-- SHA-256 of the canonical JSON of v; of the JSON as encoded past 256 KB, where sorting
-- every key of a huge result would hold the loop.
local BIG = 256 * 1024
local function digest(v)
  if v == nil then return nil end
  local enc = json.encode(v)
  if enc and #enc > BIG then return sha(enc) end
  return sha(json.canonical(v))
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. ("%.3fZ"):format(t % 1):sub(2)
end

-- One client request: session, the Call record, its params, what it returned.
function Audit:request(session, call, params, res, err, elapsed)
  local id = session.identity or {}
  self:record({
    time = iso(smg.now() - elapsed), session = session.id, project_id = id.project_id, user_id = id.user_id,
    method = call.method, request_id = call.id, server = call.server or nil, tool = call.tool or nil,
    args_sha256 = digest(call.method == "tools/call" and params.arguments or params),
    result_sha256 = digest(res), outcome = err and "error" or (call.blocked and "blocked") or "ok",
    error_code = err and err.code or nil, verdicts = call.verdicts or nil,
    ms = math.floor(elapsed * 1e6) / 1e3,
  })
end

---------------------------------------------------------------------------- verify
-- Checks files (oldest first) as one chain. Returns true, lines | false, message naming
-- the file and line where the chain breaks and how.
function Audit.verify(paths)
  local prev, seq, n = nil, nil, 0
  for _, path in ipairs(paths) do
    local f, err = io.open(path, "rb")
    if not f then return false, tostring(err) end
    local lineno = 0
    for line in f:lines() do
      lineno = lineno + 1
      n = n + 1
      local where = ("%s:%d"):format(path, lineno)
      local rec = json.decode(line)
      if type(rec) ~= "table" or type(rec.seq) ~= "number" or type(rec.prev) ~= "string" then
        f:close()
        return false, where .. ": not an audit record"
      end
      if seq and rec.seq ~= seq + 1 then
        f:close()
        return false, ("%s: sequence %d follows %d: %s"):format(where, rec.seq, seq,
          rec.seq <= seq and "a line was inserted or moved" or "a line is missing")
      end
      if prev and rec.prev ~= prev then
        f:close()
        return false, where .. ": does not chain to the line before it: that line was edited, or this one was"
      end
      if not prev and rec.seq == 1 and rec.prev ~= Audit.GENESIS then
        f:close()
        return false, where .. ": the first record does not start the chain"
      end
      prev, seq = sha(line), rec.seq
    end
    f:close()
  end
  return true, n, prev
end

return Audit
