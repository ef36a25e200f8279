-- A small MCP server framework for servers written in Lua and run by `smg run` over stdio
-- (the bundled example servers, the conformance fixture, test fixtures). Each request runs
-- in its own coroutine, so handlers can sleep, report progress, log, and ask the client
-- for sampling or elicitation while other requests proceed.
--
-- Dual-era, as the 2026-07-28 revision allows: an initialize selects the 2025 rules for
-- the connection; a request carrying the 2026 per-request _meta is served statelessly
-- (server/discover, resultType and caching hints, subscriptions/listen, and handlers that
-- ask for input with ctx:input_required instead of ctx:request).
local smg = require "smg"
local core = require "smg.core"
local async = require "smg.async"
local rpc = require "smg.mcp.jsonrpc"
local version = require "smg.mcp.version"
local modern = require "smg.mcp.modern"
local json = smg.json

local LOG_LEVELS = { debug = 0, info = 1, notice = 2, warning = 3, error = 4, critical = 5,
  alert = 6, emergency = 7 }

local Server = {}
Server.__index = Server

-- opts: name, version, title, instructions, capabilities (defaults derived from what is
-- registered), page_size (tools/list pagination), modern_only (no initialize: a
-- 2026-07-28-only server). Set server.on_notification(method,
-- params) to see the client's notifications other than cancellation.
function Server.new(opts)
  return setmetatable({
    info = { name = opts.name or "smg-lua-server", version = opts.version or "1.0.0", title = opts.title },
    instructions = opts.instructions,
    capabilities = opts.capabilities,
    modern_only = opts.modern_only or false,
    tools = {},
    tools_list = {}, resources = {}, resource_list = {}, templates = {}, prompts = {}, prompt_list = {},
    completer = nil,
    pending = {},          -- our requests to the client: id -> future
    running = {},          -- client request id -> ctx (for cancellation)
    next_id = 0,
    log_level = nil,       -- nil until logging/setLevel: send everything
    subscriptions = {},
    listens = {},          -- 2026 listen streams: request id -> { filter, uris }
    state_key = core.random_bytes(32), -- seals implicit requestState (Ctx:request)
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
function Server:tools_changed() self:changed("notifications/tools/list_changed", nil) end

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

local LISTEN_FILTER = { ["notifications/tools/list_changed"] = "toolsListChanged",
  ["notifications/prompts/list_changed"] = "promptsListChanged",
  ["notifications/resources/list_changed"] = "resourcesListChanged" }

-- A list or resource change: to a 2025 client as it is, to every 2026 listen stream that
-- asked for it, tagged with its subscriptionId.
function Server:changed(method, params)
  if self.client then self:notify(method, params) end
  for id, l in pairs(self.listens) do
    local want = LISTEN_FILTER[method]
    if (want and l.filter[want] == true) or (method == "notifications/resources/updated" and l.uris[params.uri]) then
      local p = {}
      for k, v in pairs(params or {}) do p[k] = v end
      p._meta = { [modern.META_SUBSCRIPTION] = id }
      self:notify(method, p)
    end
  end
end

-- Sends notifications/resources/updated to a subscribed client.
function Server:resource_updated(uri)
  if self.subscriptions[uri] then self:notify("notifications/resources/updated", { uri = uri }) end
  for id, l in pairs(self.listens) do
    if l.uris[uri] then self:notify("notifications/resources/updated", { uri = uri, _meta = { [modern.META_SUBSCRIPTION] = id } }) end
  end
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
  local floor = s.log_level
  if self.modern then floor = LOG_LEVELS[self.modern.log_level_name or ""] or math.huge end
  if floor and (LOG_LEVELS[level] or 0) < floor then return end
  s:notify("notifications/message", { level = level, data = data, logger = logger })
end

function Ctx:progress(progress, total, message)
  if self.progress_token == nil then return end
  self.server:notify("notifications/progress", { progressToken = self.progress_token,
    progress = progress, total = total, message = message })
end

-- Asks the client (sampling, elicitation, roots). On a 2025 connection: a request to the
-- client, answered while the handler waits. On a 2026-07-28 request there is no such
-- thing; the handler is made to work anyway by re-execution: the k-th ask of a run is
-- answered from the retry's inputResponses (key "r<k>") or from the answers of earlier
-- rounds, which travel sealed in requestState; an ask with no answer yet ends the run with
-- input_required for it. So a handler written for 2025 serves 2026 clients unchanged, as
-- long as what it does before its last ask can be done again.
local InputNeeded = {}

function Ctx:request(method, params, timeout)
  if not self.modern then return self.server:request(method, params, timeout) end
  self.asks = self.asks + 1
  local key = "r" .. self.asks
  local answer = self.answers[key]
  if answer ~= nil then return answer end
  error(setmetatable({ key = key, request = { method = method, params = params } }, InputNeeded), 0)
end

-- requestState for implicit rounds, sealed by this process: the answers so far, the key
-- this round asks (the only one a retry may answer) and a digest of the arguments (a
-- retry must repeat the call it continues).
local function seal_answers(self, ctx, answers, asked)
  local payload = smg.crypto.b64url_encode(json.encode({ m = ctx.method, n = ctx.name, a = answers, q = asked,
    d = ctx.digest, exp = smg.now() + 600 }))
  return payload .. "." .. core.hex(smg.crypto.hmac_sha256(self.state_key, payload))
end

-- The answers a requestState carries and the key it asked, or nil, why.
local function open_answers(self, ctx, state)
  local payload, mac = tostring(state):match("^([%w_%-]+)%.(%x+)$")
  if not payload or not smg.secure_equal(mac, core.hex(smg.crypto.hmac_sha256(self.state_key, payload))) then
    return nil, "requestState failed its integrity check"
  end
  local st = json.decode(smg.crypto.b64decode(payload) or "")
  if type(st) ~= "table" or st.m ~= ctx.method or st.n ~= ctx.name or st.d ~= ctx.digest
    or (st.exp or 0) < smg.now() then
    return nil, "requestState does not belong to this request"
  end
  return type(st.a) == "table" and st.a or {}, st.q
end

-- Turns a run that stopped at an unanswered ask into input_required. Returns the result,
-- or nil when `e` is not such a stop.
local function input_needed(self, ctx, e)
  if getmetatable(e) ~= InputNeeded then return nil end
  return ctx:input_required({ [e.key] = e.request }, seal_answers(self, ctx, ctx.answers, e.key))
end

-- The client's capabilities: the request's (2026) or the session's (2025).
function Ctx:client_capabilities()
  if self.modern then return self.modern.client_caps end
  return self.server.client and self.server.client.capabilities or {}
end

-- 2026-07-28 multi-round-trip: the result that asks the client for input. The retry comes
-- back with ctx.input_responses (key -> the client's answer) and ctx.request_state (as
-- handed out: the handler must check its integrity).
function Ctx:input_required(input_requests, request_state)
  return { resultType = "input_required", inputRequests = input_requests, requestState = request_state }
end
function Ctx:sleep(s) async.sleep(s) end

local function text_result(text, is_error)
  return { content = json.array({ { type = "text", text = text } }), isError = is_error or nil }
end
Server.text_result = text_result

local handlers = {}

function handlers.initialize(self, params)
  if self.modern_only then
    return nil, { code = modern.UNSUPPORTED_VERSION, message = "Unsupported protocol version: this server speaks "
      .. modern.VERSION .. " only", data = { supported = version.MODERN, requested = params.protocolVersion } }
  end
  self.client = { capabilities = params.capabilities or {}, info = params.clientInfo,
    protocol_version = version.negotiate(params.protocolVersion) }
  return { protocolVersion = self.client.protocol_version, capabilities = capabilities(self),
    serverInfo = self.info, instructions = self.instructions }
end

function handlers.ping() return {} end

handlers["server/discover"] = function(self)
  return { supportedVersions = self.modern_only and version.MODERN or version.ALL, capabilities = capabilities(self),
    instructions = self.instructions, serverInfo = self.info }
end

-- 2026 listen: the acknowledgement, then tagged changes until notifications/cancelled.
handlers["subscriptions/listen"] = function(self, params, ctx)
  local filter = type(params.notifications) == "table" and params.notifications or {}
  local uris = {}
  for _, u in ipairs(type(filter.resourceSubscriptions) == "table" and filter.resourceSubscriptions or {}) do
    uris[u] = true
  end
  local key = ctx.id
  self.listens[key] = { filter = filter, uris = uris }
  self:notify("notifications/subscriptions/acknowledged", { notifications = filter,
    _meta = { [modern.META_SUBSCRIPTION] = key } })
  while not ctx.cancelled do async.sleep(0.5) end
  self.listens[key] = nil
  return nil, { code = rpc.INTERNAL_ERROR, message = "cancelled" }
end

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
  if not ok and getmetatable(res) == InputNeeded then error(res, 0) end -- handle_request answers it
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
  local ctx_modern
  if modern.is_modern(msg, nil) then
    local v, caps, _, level = modern.check(msg, nil)
    if not v then
      local refused = caps
      return self:send(rpc.error(msg.id, refused.code, refused.message, refused.data))
    end
    ctx_modern = { client_caps = caps, log_level_name = level }
  elseif msg.method == "server/discover" or msg.method == "subscriptions/listen" then
    -- A 2026 method without the 2026 _meta: unknown to the 2025 rules.
    return self:send(rpc.error(msg.id, rpc.METHOD_NOT_FOUND, "Method not found: " .. msg.method))
  end
  local h = self.extra_methods and self.extra_methods[msg.method] or handlers[msg.method]
  if not h or msg.method == "__list" then
    self:send(rpc.error(msg.id, rpc.METHOD_NOT_FOUND, "Method not found: " .. msg.method))
    return
  end
  local params = msg.params or {}
  local meta = type(params._meta) == "table" and params._meta or {}
  local ctx = setmetatable({ server = self, id = msg.id, progress_token = meta.progressToken,
    cancelled = false, modern = ctx_modern or false, input_responses = ctx_modern and params.inputResponses or nil,
    request_state = ctx_modern and params.requestState or nil, method = msg.method,
    name = params.name or params.uri, asks = 0, answers = {}, digest = false }, Ctx)
  if ctx_modern then
    -- Answers of earlier implicit rounds (requestState, sealed) and of this retry
    -- (inputResponses: only for the key the last round asked, never overriding a sealed
    -- one). A requestState that is not ours is left to the handler (explicit input_required).
    ctx.digest = smg.hash(json.canonical(type(params.arguments) == "table" and params.arguments or {}))
    if type(params.requestState) == "string" then
      local earlier, asked = open_answers(self, ctx, params.requestState)
      for k, v in pairs(earlier or {}) do ctx.answers[k] = v end
      local answer = type(asked) == "string" and type(params.inputResponses) == "table" and params.inputResponses[asked]
      if answer ~= nil and answer ~= false and ctx.answers[asked] == nil then ctx.answers[asked] = answer end
    end
  end
  local key = tostring(msg.id)
  self.running[key] = ctx
  async.spawn(function()
    local ok, res, err = pcall(h, self, params, ctx)
    self.running[key] = nil
    if ctx.cancelled then return end
    if not ok and ctx_modern then
      local asked = input_needed(self, ctx, res)
      if asked then ok, res = true, asked end
    end
    if not ok then
      self:send(rpc.error(msg.id, rpc.INTERNAL_ERROR, tostring(res)))
    elseif res == nil then
      err = err or { code = rpc.INTERNAL_ERROR, message = "no result" }
      self:send(rpc.error(msg.id, err.code, err.message, err.data))
    else
      if ctx_modern then
        res = modern.finish(msg.method, res, self.info, { ttl_ms = 0, scope = "public" })
      end
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
