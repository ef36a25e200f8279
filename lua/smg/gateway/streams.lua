-- Where messages to a client go. A POST stream answers one HTTP request: it replies with
-- plain JSON when the answer is all there is, and upgrades itself to SSE the moment a
-- notification or server request has to go out first. A GET stream is a standalone SSE
-- stream. A stdio stream writes lines to stdout.
local core = require "smg.core"
local sse = require "smg.sse"

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

local Post = {}
Post.__index = Post

function M.post(req, headers)
  return setmetatable({ req = req, mode = "pending", closed = false, headers = headers, seq = 0 }, Post)
end

function Post:open() return not self.closed and self.req:alive() end

function Post:_event(data)
  self.seq = self.seq + 1
  return self.req:write(sse.event(data))
end

-- An intermediate message (notification or server request) related to this request.
function Post:send(line)
  if not self:open() then return false end
  if self.mode == "pending" then
    self.req:stream_start(200, merged(SSE_HEADERS, self.headers))
    self.mode = "sse"
  end
  return self:_event(line) and true or false
end

-- The final response; closes the stream.
function Post:reply(line)
  if self.closed then return false end
  self.closed = true
  if not self.req:alive() then return false end
  if self.mode == "pending" then
    -- The common case (no extra headers) uses one preformatted header line.
    local h = self.headers and merged({ ["Content-Type"] = "application/json" }, self.headers) or JSON_HEADER
    return self.req:respond(200, h, line) and true or false
  end
  self:_event(line)
  return self.req:finish() and true or false
end

-- Ends without a response (the request was cancelled).
function Post:close()
  if self.closed then return end
  self.closed = true
  if not self.req:alive() then return end
  if self.mode == "pending" then self.req:stream_start(200, merged(SSE_HEADERS, self.headers)) end
  self.req:finish()
end

local Get = {}
Get.__index = Get

function M.get(req, headers)
  local s = setmetatable({ req = req, closed = false }, Get)
  req:stream_start(200, merged(SSE_HEADERS, headers))
  -- A comment line flushes the headers through proxies and tells the client we're live.
  req:write(": stream open\n\n")
  return s
end

function Get:open() return not self.closed and self.req:alive() end

function Get:send(line)
  if not self:open() then return false end
  return self.req:write(sse.event(line)) and true or false
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
