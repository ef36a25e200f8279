-- Where messages to a client go. A POST stream answers one HTTP request: it replies with
-- plain JSON when the answer is all there is, and upgrades itself to SSE the moment a
-- notification or server request has to go out first. A GET stream is a standalone SSE
-- stream. A stdio stream writes lines to stdout.
local core = require "smg.core"
local sse = require "smg.sse"
local version = require "smg.mcp.version"

local M = {}

local SSE_HEADERS = { ["Content-Type"] = "text/event-stream", ["Cache-Control"] = "no-cache, no-transform",
  ["X-Accel-Buffering"] = "no" }

local function merged(base, extra)
  local h = {}
  for k, v in pairs(base) do h[k] = v end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

local JSON_HEADER = "Content-Type: application/json\r\n"

-- Resumability: every SSE stream of an HTTP session gets an id, every event an id
-- "<stream>_<seq>", and the last RING events of each stream are kept, so a client whose
-- connection dropped can GET with Last-Event-ID and receive what it missed on that stream
-- (never another stream's events). A POST stream whose connection died keeps collecting
-- its request's messages, up to the final response, for such a resume.
local RING = 128

local function start_sse(self)
  self.req:stream_start(200, merged(SSE_HEADERS, self.headers))
  self.mode = "sse"
  local session = self.session
  if session then
    self.sid = session:register_stream(self)
    self.events = {}
    if version.priming(session.protocol_version) then
      -- The priming event: an id to resume from before anything else is sent.
      self.req:write("id: " .. self.sid .. "_0\nretry: 2000\ndata: \n\n")
    end
  end
end

local function emit(self, data)
  local id
  if self.sid then
    self.seq = self.seq + 1
    id = self.sid .. "_" .. self.seq
    local ev = self.events
    ev[#ev + 1] = { self.seq, data }
    if #ev > RING then table.remove(ev, 1) end
  end
  if self.req:alive() then return self.req:write(sse.event(data, id)) and true or false end
  return self.sid ~= nil -- kept for a resume
end

-- What a POST stream starts as, shared: every request has one, so it holds only what
-- differs (a write lands in the stream itself).
local Post = { kind = "post", mode = "pending", closed = false, seq = 0, on_end = false, status_of = false }
Post.__index = Post

-- `on_end` (optional): called with the stream once it has ended (replied or closed);
-- `status_of(err)` (optional): the HTTP status of an error reply that is still plain JSON.
function M.post(req, headers, session, on_end, status_of)
  return setmetatable({ req = req, headers = headers, session = session, on_end = on_end, status_of = status_of },
    Post)
end

-- Still a place for this request's messages: connected, or resumable after a drop.
function Post:open()
  return not self.closed and (self.req:alive() or (self.mode == "sse" and self.sid ~= nil))
end

-- An intermediate message (notification or server request) related to this request.
function Post:send(line)
  if not self:open() then return false end
  if self.mode == "pending" then start_sse(self) end
  return emit(self, line)
end

-- The final response; closes the stream. `status`: the HTTP status when the response is
-- still plain JSON (a 2026-07-28 error's), else 200.
function Post:reply(line, status)
  if self.closed then return false end
  self.closed = true
  if self.on_end then self:on_end() end
  if self.mode == "pending" then
    if not self.req:alive() then return false end
    -- The common case (no extra headers) uses one preformatted header line.
    local h = self.headers and merged({ ["Content-Type"] = "application/json" }, self.headers) or JSON_HEADER
    return self.req:respond(status or 200, h, line) and true or false
  end
  emit(self, line)
  if self.req:alive() then return self.req:finish() and true or false end
  return true
end

-- Ends without a response (the request was cancelled).
function Post:close()
  if self.closed then return end
  self.closed = true
  if self.on_end then self:on_end() end
  if not self.req:alive() then return end
  if self.mode == "pending" then self.req:stream_start(200, merged(SSE_HEADERS, self.headers)) end
  self.req:finish()
end

local Get = {}
Get.__index = Get

function M.get(req, headers, session)
  local s = setmetatable({ kind = "get", req = req, closed = false, seq = 0, headers = headers,
    session = session }, Get)
  req:stream_start(200, merged(SSE_HEADERS, headers))
  if session then
    s.sid = session:register_stream(s)
    s.events = {}
  end
  -- A comment line flushes the headers through proxies and tells the client we're live.
  req:write(": stream open\n\n")
  return s
end

-- GET with Last-Event-ID: replays what followed that event on its stream and continues
-- the stream on this request. Returns the stream, or nil when the id is unknown.
function M.resume(session, req, last_id, headers)
  local sid, seq = tostring(last_id):match("^(%d+)_(%d+)$")
  local s = sid and session.resumable[sid]
  if not s then return nil end
  seq = tonumber(seq)
  if s.req ~= req and s.req:alive() and not s.closed then
    s.req:finish() -- one connection per stream: the new one takes over
  end
  s.req = req
  s.mode = "sse"
  req:stream_start(200, merged(SSE_HEADERS, headers))
  for _, ev in ipairs(s.events) do
    if ev[1] > seq then req:write(sse.event(ev[2], sid .. "_" .. ev[1])) end
  end
  if s.closed then req:finish() end
  return s
end

function Get:open() return not self.closed and self.req:alive() end

function Get:send(line)
  if not self:open() then return false end
  return emit(self, line)
end

function Get:close()
  if self.closed then return end
  self.closed = true
  if self.req:alive() then self.req:finish() end
end

-- stdio: one stream for everything; replies and notifications are just lines.
local Stdio = {}
Stdio.__index = Stdio
local stdio_stream = setmetatable({ closed = false }, Stdio)
function M.stdio() return stdio_stream end
function Stdio:open() return not self.closed end
function Stdio:send(line)
  if self.closed then return false end
  core.stdio_write(line .. "\n")
  return true
end
Stdio.reply = Stdio.send
function Stdio:close() end

-- Collects the replies of a 2025-03-26 batch and answers them as one JSON array.
local Batch = {}
Batch.__index = Batch

function M.batch(inner, expected)
  return setmetatable({ inner = inner, expected = expected, replies = {} }, Batch)
end
function Batch:open() return self.inner:open() end
function Batch:send(line) return self.inner:send(line) end
function Batch:reply(line)
  self.replies[#self.replies + 1] = line
  if #self.replies == self.expected then
    return self.inner:reply("[" .. table.concat(self.replies, ",") .. "]")
  end
  return true
end
function Batch:close()
  self.expected = self.expected - 1
  if self.expected <= #self.replies then
    if #self.replies == 0 then return self.inner:close() end
    self.inner:reply("[" .. table.concat(self.replies, ",") .. "]")
  end
end

return M
