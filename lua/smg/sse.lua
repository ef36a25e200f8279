-- Incremental Server-Sent Events parsing (text/event-stream), for responses from remote
-- MCP servers, and event formatting for our own streams.
local M = {}

local Parser = {}
Parser.__index = Parser

-- on_event(data, event_type, id) is called once per complete event that carries data.
function M.parser(on_event, max_event)
  return setmetatable({ buf = "", on_event = on_event, max = max_event or 64 * 1024 * 1024,
    last_id = nil, retry = nil }, Parser)
end

local function dispatch(self, block)
  local data, ev, id = {}, nil, nil
  for line in (block .. "\n"):gmatch("(.-)\r?\n") do
    if line ~= "" and line:sub(1, 1) ~= ":" then
      local field, value = line:match("^([^:]*):? ?(.*)$")
      if field == "data" then data[#data + 1] = value
      elseif field == "event" then ev = value
      elseif field == "id" then id = value
      elseif field == "retry" then self.retry = tonumber(value) end
    end
  end
  if id then self.last_id = id end
  if #data > 0 then
    local d = table.concat(data, "\n")
    if d ~= "" then self.on_event(d, ev or "message", id) end
  end
end

-- Returns false, err when an event grows past the limit.
function Parser:feed(chunk)
  local buf = self.buf .. chunk
  while true do
    local s, e = buf:find("\r?\n\r?\n")
    if not s then break end
    dispatch(self, buf:sub(1, s - 1))
    buf = buf:sub(e + 1)
  end
  self.buf = buf
  if #buf > self.max then return false, "SSE event too large" end
  return true
end

function M.event(data, id)
  if id then return "event: message\nid: " .. id .. "\ndata: " .. data .. "\n\n" end
  return "event: message\ndata: " .. data .. "\n\n"
end

return M
