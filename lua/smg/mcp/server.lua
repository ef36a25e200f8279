-- A small MCP server framework for servers written in Lua and run by `smg run` over stdio
-- (the bundled example servers, the conformance fixture, test fixtures). Each request runs
-- in its own coroutine, so handlers can sleep, report progress, log, and ask the client
-- for sampling or elicitation while other requests proceed.
local smg = require "smg"
local core = require "smg.core"
local async = require "smg.async"
local rpc = require "smg.mcp.jsonrpc"
local version = require "smg.mcp.version"
local json = smg.json

local LOG_LEVELS = { debug = 0, info = 1, notice = 2, warning = 3, error = 4, critical = 5,
  alert = 6, emergency = 7 }

local Server = {}
Server.__index = Server

-- opts: name, version, title, instructions, capabilities (defaults derived from what is
-- registered), page_size (tools/list pagination). Set server.on_notification(method,
-- params) to see the client's notifications other than cancellation.
function Server.new(opts)
  return setmetatable({
    info = { name = opts.name or "smg-lua-server", version = opts.version or "1.0.0", title = opts.title },
    instructions = opts.instructions,
    capabilities = opts.capabilities,
    tools = {},
    tools_list = {}, resources = {}, resource_list = {}, templates = {}, prompts = {}, prompt_list = {},
    completer = nil,
    pending = {},          -- our requests to the client: id -> future
    running = {},          -- client request id -> ctx (for cancellation)
    next_id = 0,
    log_level = nil,       -- nil until logging/setLevel: send everything
    subscriptions = {},
    client = nil,
    write = function(line) core.stdio_write(line .. "\n") end,
  }, Server)
end

function Server:tool(def)
  assert(def.name and def.handler, "tool needs name and handler")
  local entry = { name = def.name, title = def.title, description = def.description,
    inputSchema = def.inputSchema or { type = "object", properties = {} },
    outputSchema = def.outputSchema, annotations = def.annotations, _meta = def._meta }
  self.tools_list[#self.tools_list + 1] = entry
  self.tools = self.tools or {}
  self.tools[def.name] = def
end

-- Tells the client the tool list changed (after tools were added or removed).
function Server:tools_changed() self:notify("notifications/tools/list_changed", nil) end

function Server:resource(def)
  self.resource_list[#self.resource_list + 1] = { uri = def.uri, name = def.name, title = def.title,
    description = def.description, mimeType = def.mimeType }
  self.resources[def.uri] = def
end

-- def.uriTemplate with {var} placeholders; def.read(uri, vars, ctx)
function Server:resource_template(def)
  local names = {}
  local pattern = "^" .. def.uriTemplate:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("{(%w+)}", function(n)
    names[#names + 1] = n
    return "([^/]+)"
  end) .. "$"
  def.pattern, def.vars = pattern, names
  self.templates[#self.templates + 1] = def
end

function Server:prompt(def)
  self.prompt_list[#self.prompt_list + 1] = { name = def.name, title = def.title,
    description = def.description, arguments = def.arguments and json.array(def.arguments) or nil }
  self.prompts[def.name] = def
end

function Server:completion(fn) self.completer = fn end

function Server:send(line) self.write(line) end

function Server:notify(method, params) self:send(rpc.notification(method, params)) end

-- Sends notifications/resources/updated to a subscribed client.
function Server:resource_updated(uri)
  if self.subscriptions[uri] then self:notify("notifications/resources/updated", { uri = uri }) end
end

-- Server -> client request; yields until the answer: result | nil, error
function Server:request(method, params, timeout)
  self.next_id = self.next_id + 1
  local id = "srv-" .. self.next_id
  local f = async.future()
  self.pending[id] = f
  self:send(rpc.request(id, method, params))
  local res, err = f:wait(timeout or 60)
  self.pending[id] = nil
  if err == "timeout" then return nil, { code = rpc.INTERNAL_ERROR, message = "request timed out" } end
  return res, err
end

local function capabilities(self)
  if self.capabilities then return self.capabilities end
  local caps = { logging = {} }
  if #self.tools_list > 0 then caps.tools = { listChanged = true } end
  if #self.resource_list > 0 or #self.templates > 0 then caps.resources = { subscribe = true, listChanged = true } end
  if #self.prompt_list > 0 then caps.prompts = { listChanged = true } end
  if self.completer then caps.completions = {} end
  return caps
end

-- The per-request context handlers receive.
local Ctx = {}
Ctx.__index = Ctx

function Ctx:log(level, data, logger)
  local s = self.server
  if s.log_level and (LOG_LEVELS[level] or 0) < s.log_level then return end
  s:notify("notifications/message", { level = level, data = data, logger = logger })
end

function Ctx:progress(progress, total, message)
  if self.progress_token == nil then return end
  self.server:notify("notifications/progress", { progressToken = self.progress_token,
    progress = progress, total = total, message = message })
end

function Ctx:request(method, params, timeout) return self.server:request(method, params, timeout) end
function Ctx:sleep(s) async.sleep(s) end

local function text_result(text, is_error)
  return { content = json.array({ { type = "text", text = text } }), isError = is_error or nil }
end
Server.text_result = text_result

local handlers = {}

function handlers.initialize(self, params)
  self.client = { capabilities = params.capabilities or {}, info = params.clientInfo,
    protocol_version = version.negotiate(params.protocolVersion) }
  return { protocolVersion = self.client.protocol_version, capabilities = capabilities(self),
    serverInfo = self.info, instructions = self.instructions }
end

function handlers.ping() return {} end

function handlers.__list(list, key, params, page_size)
  local start = 1
  if params and params.cursor ~= nil then
    start = tonumber(params.cursor)
    if not start or start < 1 or start > #list + 1 then
      return nil, { code = rpc.INVALID_PARAMS, message = "Invalid cursor" }
    end
  end
  local stop = page_size and math.min(#list, start + page_size - 1) or #list
  local page = json.array({})
  for i = start, stop do page[#page + 1] = list[i] end
  local res = { [key] = page }
  if stop < #list then res.nextCursor = tostring(stop + 1) end
  return res
end

handlers["tools/list"] = function(self, params)
  return handlers.__list(self.tools_list, "tools", params, self.page_size)
end

handlers["tools/call"] = function(self, params, ctx)
  local def = self.tools and self.tools[params.name]
  if not def then return nil, { code = rpc.INVALID_PARAMS, message = "Unknown tool: " .. tostring(params.name) } end
  local ok, res, err = pcall(def.handler, params.arguments or {}, ctx)
  if not ok then return text_result(tostring(res):gsub("^[^:]+:%d+: ", ""), true) end
  if res == nil and err then return nil, err end
  return res
end

handlers["resources/list"] = function(self, params)
  return handlers.__list(self.resource_list, "resources", params, self.page_size)
end

handlers["resources/templates/list"] = function(self)
  local out = json.array({})
  for _, t in ipairs(self.templates) do
    out[#out + 1] = { uriTemplate = t.uriTemplate, name = t.name, title = t.title,
      description = t.description, mimeType = t.mimeType }
  end
  return { resourceTemplates = out }
end

handlers["resources/read"] = function(self, params, ctx)
  local uri = params.uri
  local def = self.resources[uri]
  if def then return def.read(uri, ctx) end
  for _, t in ipairs(self.templates) do
    local caps = { tostring(uri):match(t.pattern) }
    if #caps > 0 then
      local vars = {}
      for i, n in ipairs(t.vars) do vars[n] = caps[i] end
      return t.read(uri, vars, ctx)
    end
  end
  return nil, { code = rpc.RESOURCE_NOT_FOUND, message = "Resource not found", data = { uri = uri } }
end

handlers["resources/subscribe"] = function(self, params)
  self.subscriptions[params.uri] = true
  return {}
end

handlers["resources/unsubscribe"] = function(self, params)
  self.subscriptions[params.uri] = nil
  return {}
end

handlers["prompts/list"] = function(self, params)
  return handlers.__list(self.prompt_list, "prompts", params, self.page_size)
end

handlers["prompts/get"] = function(self, params, ctx)
  local def = self.prompts[params.name]
  if not def then return nil, { code = rpc.INVALID_PARAMS, message = "Unknown prompt: " .. tostring(params.name) } end
  local args = params.arguments or {}
  for _, a in ipairs(def.arguments or {}) do
    if a.required and args[a.name] == nil then
      return nil, { code = rpc.INVALID_PARAMS, message = "Missing required argument: " .. a.name }
    end
  end
  return def.get(args, ctx)
end

handlers["completion/complete"] = function(self, params, ctx)
  if not self.completer then return nil, { code = rpc.METHOD_NOT_FOUND, message = "Method not found" } end
  return { completion = self.completer(params.ref, params.argument, params.context, ctx) }
end

handlers["logging/setLevel"] = function(self, params)
  local lvl = LOG_LEVELS[params.level]
  if not lvl then return nil, { code = rpc.INVALID_PARAMS, message = "Invalid log level" } end
  self.log_level = lvl
  return {}
end

-- Hook for servers that add methods: server.methods["x/y"] = function(self, params, ctx) end
Server.methods = handlers

function Server:handle_request(msg)
  local h = self.extra_methods and self.extra_methods[msg.method] or handlers[msg.method]
  if not h or msg.method == "__list" then
    self:send(rpc.error(msg.id, rpc.METHOD_NOT_FOUND, "Method not found: " .. msg.method))
    return
  end
  local params = msg.params or {}
  local meta = type(params._meta) == "table" and params._meta or {}
  local ctx = setmetatable({ server = self, id = msg.id, progress_token = meta.progressToken,
    cancelled = false }, Ctx)
  local key = tostring(msg.id)
  self.running[key] = ctx
  async.spawn(function()
    local ok, res, err = pcall(h, self, params, ctx)
    self.running[key] = nil
    if ctx.cancelled then return end
    if not ok then
      self:send(rpc.error(msg.id, rpc.INTERNAL_ERROR, tostring(res)))
    elseif res == nil then
      err = err or { code = rpc.INTERNAL_ERROR, message = "no result" }
      self:send(rpc.error(msg.id, err.code, err.message, err.data))
    else
      self:send(rpc.result(msg.id, res))
    end
  end)
end

function Server:handle_line(line)
  local msg, err = json.decode(line)
  if msg == nil then
    self:send(rpc.error(nil, rpc.PARSE_ERROR, "Parse error: " .. err))
    return
  end
  local kind, why = rpc.kind(msg)
  if not kind then
    self:send(rpc.error(type(msg) == "table" and msg.id or nil, rpc.INVALID_REQUEST, why))
  elseif kind == "request" then
    self:handle_request(msg)
  elseif kind == "response" then
    local f = self.pending[msg.id]
    if f then
      if msg.error then f:set(nil, msg.error) else f:set(msg.result) end
    end
  elseif msg.method == "notifications/cancelled" then
    local ctx = msg.params and self.running[tostring(msg.params.requestId)]
    if ctx then
      ctx.cancelled = true
      self.cancellations = (self.cancellations or 0) + 1
    end
  elseif self.on_notification then
    self.on_notification(msg.method, msg.params)
  end
end

-- Serves over this process's stdin/stdout until stdin closes.
function Server:run_stdio()
  core.stdio_start(function(line) self:handle_line(line) end, function()
    core.stdio_close()
    -- The MCP stdio rule: a server exits when its stdin closes, work in flight or not.
    if self.on_close then self.on_close() else core.stop(0) end
  end)
end

return Server
