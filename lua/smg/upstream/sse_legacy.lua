-- The HTTP+SSE upstream transport of protocol 2024-11-05, for remote servers that predate
-- Streamable HTTP: a GET opens an SSE stream whose first `endpoint` event names the URL to
-- POST messages to; every message from the server, responses included, then arrives on
-- that stream. The client routes responses by id, so nothing is attributed per POST. When
-- the stream ends the upstream is down and the client restarts it with backoff.
local smg = require "smg"
local core = require "smg.core"
local async = require "smg.async"
local sse = require "smg.sse"
local log = smg.log

local Legacy = {}
Legacy.__index = Legacy

function Legacy.new(client)
  return setmetatable({ client = client, endpoint = nil, get = nil, posts = {}, open_ = false }, Legacy)
end

local function header_list(self, extra)
  local h = {}
  for k, v in pairs(self.client.spec.config.headers or {}) do h[#h + 1] = k .. ": " .. v end
  for _, x in ipairs(extra) do h[#h + 1] = x end
  return h
end

-- The endpoint event's URL, resolved against the stream's URL; only the same origin is
-- accepted (a server must not redirect our messages elsewhere).
local function resolve(base, ref)
  local origin = base:match("^(https?://[^/]+)")
  if ref:match("^https?://") then
    if ref:match("^(https?://[^/]+)") ~= origin then return nil end
    return ref
  end
  if ref:sub(1, 1) == "/" then return origin .. ref end
  return (base:match("^(.*/)") or (origin .. "/")) .. ref
end

-- Opens the stream and waits for the endpoint event. Yields. Returns true | nil, err.
function Legacy:open()
  local c = self.client
  local url = c.spec.config.url
  local ready = async.future()
  local status = 0
  self.open_ = true
  local parser = sse.parser(function(data, event)
    if event == "endpoint" then
      local ep = resolve(url, data)
      if not ep then
        log.error(("upstream %s: endpoint %s is not on the server's origin"):format(c.name, data))
        return ready:set(nil, "endpoint on another origin")
      end
      self.endpoint = ep
      ready:set(true)
    elseif event == "message" then
      c:on_payload(data, nil)
    end
  end, c.limits.max_message_bytes)
  local call
  call = core.http_request({ method = "GET", url = url, timeout_ms = 0, stream = true,
    headers = header_list(self, { "Accept: text/event-stream" }) },
  function(st) status = st end,
  function(chunk)
    if status ~= 200 then return end
    local ok, perr = parser:feed(chunk)
    if not ok then log.warn(("upstream %s: %s"):format(c.name, perr)) end
  end,
  function(e)
    if self.get ~= call then return end
    self.get = nil
    local why = e or (status == 200 and "SSE stream closed" or ("HTTP " .. status))
    if not ready:set(nil, why) and self.open_ then
      -- The stream carried the session: without it nothing more arrives.
      c:_down(why)
    end
  end)
  if not call then return nil, "cannot open the SSE stream" end
  self.get = call
  local t = c.timeouts and c.timeouts.connectivity_timeout or 10
  local ok, err = ready:wait(math.max(t, 5))
  if not ok then
    self:close()
    return nil, "no endpoint event from the SSE stream: " .. tostring(err)
  end
  return true
end

-- POSTs one message to the endpoint; the answer arrives on the stream.
function Legacy:send(line, entry)
  if not self.open_ or not self.endpoint then return nil, "not connected" end
  local c = self.client
  local key = {}
  local status = 0
  local call, err = core.http_request({ method = "POST", url = self.endpoint, body = line, timeout_ms = 0,
    headers = header_list(self, { "Content-Type: application/json" }) },
  function(st) status = st end, nil,
  function(e)
    self.posts[key] = nil
    if e or status >= 300 then c:fail_request(entry, ("upstream %s: %s"):format(c.name, e or ("HTTP " .. status)), status) end
  end)
  if not call then return nil, err end
  self.posts[key] = call
  return true
end

function Legacy:initialized() end

function Legacy:close()
  self.open_ = false
  self.endpoint = nil
  if self.get then
    local g = self.get
    self.get = nil
    g:cancel()
  end
  for k, call in pairs(self.posts) do
    call:cancel()
    self.posts[k] = nil
  end
end

return Legacy
