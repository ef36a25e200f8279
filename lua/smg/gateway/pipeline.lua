-- The message pipeline: every message between a client session and an upstream passes
-- here, in both directions, through the hook points of gateway/hooks.lua, the tool
-- guardrails, the timeout budgets and the discovery cache.
--
-- It is also the routers' whole view of the gateway (`r` in lua/smg/router/): a router
-- decides which server a message is for and what it looks like there, then asks the
-- pipeline to carry it. The interface:
--   r:servers(session), r:server(session, name)   the session's view of the current version
--   r:setting(name), r:gateway_info()              gateway settings (separator, tool_prefix...)
--   r:ready(session, spec) -> init | nil, err      the upstream started (its InitializeResult)
--   r:status(session, spec) -> describe()          state, transport, restarts, server_info
--   r:forward(session, spec, method, params, call) -> result | nil, err
--   r:discover(session, spec, method) -> items | nil, err, source ("cache" | "discovery")
--   r:cached(session, spec, method[, up]) -> items | nil  without fetching
--   r:screen(session, spec, method, result)        s2c:result on a result the router built
--   r:screen_list(session, spec, list, items)      the discovery guardrails on one page
--   r:broadcast(session, method, params, capability)  to the session's own ready upstreams
--   r:cache_status(session), r:clear_cache(session, opts), r:timeout_stats()
--
-- Its `events` member is the sink the upstream clients report to (upstream/client.lua:
-- ready, down, notification, request). It is an object of its own so that its method
-- names never collide with the routing interface's (r:ready is a different question).
local smg = require "smg"
local async = require "smg.async"
local rpc = require "smg.mcp.jsonrpc"
local modern = require "smg.mcp.modern"
local param_headers = require "smg.mcp.param_headers"
local tasks = require "smg.gateway.tasks"
local subscriptions = require "smg.gateway.subscriptions"
local hooks = require "smg.gateway.hooks"
local guardrails = require "smg.gateway.guardrails"
local registration = require "smg.gateway.registration"
local telemetry = require "smg.gateway.telemetry"
local Budgets = require "smg.gateway.budgets"
local Client = require "smg.upstream.client"
local parking = require "smg.gateway.parking"
local cache_status = require "smg.gateway.cache_status"
local json = smg.json
local log = smg.log

local Pipeline = {}
Pipeline.__index = Pipeline

local Events = {}
Events.__index = Events

function Pipeline.new(gw)
  local self = setmetatable({ gw = gw }, Pipeline)
  self.events = setmetatable({ pipeline = self, gw = gw }, Events)
  return self
end

---------------------------------------------------------------------------- the view
function Pipeline:servers(session)
  local gw = self.gw
  local id
  if session then id = session.config_id else id = gw.default_config_id end
  local mc = id and gw.cfg.mcp_configs[id]
  return mc and mc.mcp_config or {}
end

function Pipeline:server(session, name)
  for _, s in ipairs(self:servers(session)) do
    if s.server_name == name then return s end
  end
  return nil
end

function Pipeline:setting(name) return self.gw.cfg.gateway[name] end

function Pipeline:gateway_info()
  return { name = self.gw.cfg.gateway.server_name, title = "smg secure MCP gateway", version = smg.version }
end

-- The upstream client serving `spec` for this session: the shared one, or its own.
function Pipeline:upstream(session, spec)
  local gw = self.gw
  -- A 2026-07-28 request has no session to own a process: its identity's home does.
  if spec.sharing == "per_session" and session and session.stateless then
    return gw.pool:session_client(gw:home_of(session), spec, { sampling = {}, elicitation = {}, roots = {} })
  end
  if spec.sharing == "per_session" and session then
    local caps = {}
    for _, c in ipairs({ "sampling", "elicitation", "roots" }) do
      if session:client_supports(c) then caps[c] = session.client_caps[c] end
    end
    return gw.pool:session_client(session, spec, caps)
  end
  return gw.pool:shared_client(session and session.config_id or gw.default_config_id, spec)
end

-- A 2026 request reaching a per_session server needs its identity's home, which counts
-- as a session: refused past the session limits. nil | err.
local function home_refused(self, session, spec)
  if spec.sharing == "per_session" and session and session.stateless and not session.home then
    return self.gw:home_refusal(session)
  end
  return nil
end

function Pipeline:ready(session, spec)
  local refused = home_refused(self, session, spec)
  if refused then return nil, refused end
  local up = self:upstream(session, spec)
  local ok, err = up:ensure_ready(self.gw.timeouts.discovery_timeout)
  if not ok then return nil, err end
  return up.init
end

function Pipeline:status(session, spec) return self:upstream(session, spec):describe() end

---------------------------------------------------------------------------- carrying
-- How a blocked message is answered: a tools/call gets an isError result (the seed's
-- shape, which clients show to the model); anything else a JSON-RPC error.
local function blocked_answer(self, spec, method, b, call)
  if call then call.blocked = b.guardrail end
  if method == "tools/call" then
    return guardrails.blocked(spec, b.point:sub(1, 3) == "c2s" and "input" or "output", b.guardrail, b.violations)
  end
  return nil, { code = rpc.SERVER_ERROR, message = ("Blocked by guardrail %s (%s): %s"):format(b.guardrail, b.point,
    table.concat(b.violations, ", ")), data = { reason = "guardrail", guardrail = b.guardrail, point = b.point,
    violations = json.array(b.violations) } }
end

-- A message a guardrail stopped at a hook point (not a tool call's input or output):
-- nil, the error its requester gets.
local function withheld(code, message, b)
  return rpc.fail(code, message, { reason = "guardrail", guardrail = b.guardrail, point = b.point })
end

-- A 2026 upstream's input_required, for a client that cannot take one (a 2025 session):
-- each input request becomes a real request to the client (through the same guardrails
-- and capability checks as a 2025 upstream's), and the call is retried with the answers
-- and the upstream's requestState, for at most MAX_ROUNDS rounds.
local MAX_ROUNDS = 8

local function fulfil(self, up, res, call)
  local responses = {}
  for key, req in pairs(type(res.inputRequests) == "table" and res.inputRequests or {}) do
    if type(req) ~= "table" or type(req.method) ~= "string" or not Client.FORWARDED_REQUESTS[req.method] then
      return rpc.fail(rpc.INTERNAL_ERROR, ("upstream %s asked for input the gateway cannot relay (%s)"):format(up.name,
        tostring(type(req) == "table" and req.method)))
    end
    local answer, err = self.events:request(up, req.method, type(req.params) == "table" and req.params or {}, call)
    if answer == nil then return nil, err end
    responses[key] = answer
  end
  return responses
end

-- A 2026 client in front of a 2026 upstream: input_required passes through, but the
-- guardrails see what crosses, as they would see real requests and their answers: each
-- input request passes s2c:request, each of the retry's answers c2s:result (its method
-- read from its shape: the retry carries no record of what was asked).
local function answer_method(a)
  if type(a) ~= "table" then return nil end
  if a.action ~= nil then return "elicitation/create" end
  if a.roots ~= nil then return "roots/list" end
  if a.role ~= nil or a.model ~= nil or a.content ~= nil then return "sampling/createMessage" end
  return nil
end

local function screen_round(self, spec, point, items, session, call)
  local set, timeout = self.gw.plugins, self.gw.timeouts.guardrail_timeout
  if type(items) ~= "table" or not hooks.active(set, spec, point) then return items end
  local out = {}
  for key, item in pairs(items) do
    local method, payload = answer_method(item), item
    if point == "s2c:request" then
      method, payload = type(item) == "table" and item.method, type(item) == "table" and item.params or {}
    end
    out[key] = item
    if type(method) == "string" then
      local b
      b, payload = hooks.run(set, timeout, point, spec, method, payload, session, call)
      if b then
        return withheld(rpc.SERVER_ERROR, ("%s %s by guardrail %s"):format(method,
          point == "s2c:request" and "refused" or "answer withheld", b.guardrail), b)
      end
      out[key] = point == "s2c:request" and { method = method, params = payload } or payload
    end
  end
  return out
end

local function call_modern_both(self, session, up, method, params, opts)
  if type(params.inputResponses) == "table" then
    local answers, err = screen_round(self, up.spec, "c2s:result", params.inputResponses, session, opts.call)
    if not answers then return nil, err end
    if answers ~= params.inputResponses then params = rpc.with(params, { inputResponses = answers }) end
  end
  local res, err = up:call(method, params, opts)
  if type(res) ~= "table" then return res, err end
  -- (A task waiting for input carries its input requests too: tasks/get.)
  if (res.resultType == "input_required" or res.status == "input_required") and type(res.inputRequests) == "table" then
    local asked, serr = screen_round(self, up.spec, "s2c:request", res.inputRequests, session, opts.call)
    if not asked then return nil, serr end
    res.inputRequests = asked
  end
  if res.resultType == "task" then tasks.rewrite(self.gw, session, up.spec.server_name, res) end
  return res, err
end

local function call_translating(self, session, up, method, params, opts)
  if session.stateless and up.modern and type(params) == "table" then
    return call_modern_both(self, session, up, method, params, opts)
  end
  local res, err = up:call(method, params, opts)
  local rounds = 0
  while res ~= nil and type(res) == "table" and res.resultType == "input_required" and not session.stateless do
    rounds = rounds + 1
    if rounds > MAX_ROUNDS or opts.call.cancelled then
      return rpc.fail(rpc.INTERNAL_ERROR, ("upstream %s kept asking for input (%d rounds)"):format(up.name, MAX_ROUNDS))
    end
    local responses, ferr = fulfil(self, up, res, opts.call)
    if not responses then return nil, ferr end
    res, err = up:call(method, rpc.with(params, { inputResponses = responses, requestState = res.requestState }), opts)
  end
  if res ~= nil and not session.stateless and type(res) == "table" and res.resultType == "complete" then
    res.resultType = nil -- a 2026 field a 2025 client does not know
  end
  return res, err
end

-- Sends one request with its budget, and runs what came back through s2c:result or
-- s2c:error. Returns result | nil, err.
function Pipeline:send(session, spec, up, method, params, call)
  local gw = self.gw
  local budget, category = Budgets.of(gw.timeouts, method)
  local t0 = gw.budgets:begin()
  local res, err
  if call and session then
    res, err = call_translating(self, session, up, method, params, { timeout = budget, call = call })
  else
    res, err = up:call(method, params, { timeout = budget, call = call })
  end
  gw.budgets:done()
  local timed_out = err and type(err.data) == "table" and err.data.reason == "timeout"
  gw.budgets:record(gw.timeouts, category, smg.monotime() - t0, budget, timed_out)
  local set = gw.plugins
  if res ~= nil then
    local b
    b, res = hooks.run(set, gw.timeouts.guardrail_timeout, "s2c:result", spec, method, res, session, call)
    if b then return blocked_answer(self, spec, method, b, call) end
    return res
  end
  -- Only the upstream's own errors pass s2c:error; ours (timeout, unavailable, limits) carry a reason.
  local ours = err and type(err.data) == "table" and err.data.reason ~= nil
  if err and not ours and hooks.active(set, spec, "s2c:error") then
    local b
    b, err = hooks.run(set, gw.timeouts.guardrail_timeout, "s2c:error", spec, method, err, session, call)
    if b then return withheld(rpc.INTERNAL_ERROR, ("upstream error withheld by guardrail %s"):format(b.guardrail), b) end
  end
  return nil, err
end

-- A request to the upstream of `spec`: c2s:request, the tool guardrails for tools/call,
-- the call, then s2c:result / s2c:error.
function Pipeline:forward(session, spec, method, params, call)
  if method == "tools/call" then return self:call_tool(session, spec, params, call) end
  local gw = self.gw
  local refused = home_refused(self, session, spec)
  if refused then return nil, refused end
  local b
  b, params = hooks.run(gw.plugins, gw.timeouts.guardrail_timeout, "c2s:request", spec, method, params, session, call)
  if b then return blocked_answer(self, spec, method, b, call) end
  return self:send(session, spec, self:upstream(session, spec), method, params, call)
end

local function check_output_late(set, timeout, spec, info, res, verdicts)
  local late = guardrails.check(set, timeout, spec, "output", info, res, verdicts)
  if late then
    log.warn(("guardrail %s flagged the output of %s/%s after it was returned (async output mode)"):format(
      late.structuredContent.guardrail, spec.server_name, tostring(info.name)))
  end
end

-- (call_tool makes no closure: a function that does cannot be compiled past its returns,
-- LuaJIT has no trace for closing upvalues, and this is every tool call's path.)
-- A tools/call through the guardrails: input check, forward, output check, all on the
-- plugin set current when the call started. A guardrail may rewrite the arguments (say,
-- PII placeholders) before they are forwarded, and the result before it is returned.
function Pipeline:call_tool(session, spec, params, call)
  local gw = self.gw
  if call then call.server, call.tool = spec.server_name, params.name end
  local refused = home_refused(self, session, spec)
  if refused then return nil, refused end
  local up = self:upstream(session, spec)
  local mirrored = session and session.param_headers
  if mirrored or up.modern then
    -- Mcp-Param-* (2026): the client's checked against the body before any policy; the
    -- upstream's rebuilt from the arguments it is finally sent (upstream layer).
    local decls = param_headers.declarations(self:tool_schema(session, spec, params.name, up))
    if mirrored then
      local bad = param_headers.check(decls, params.arguments, mirrored)
      if bad then return nil, { code = modern.HEADER_MISMATCH, message = "Header mismatch: " .. bad } end
    end
    if call then call.param_decls = decls end
  end
  local limited = gw.rates:check_tool(session and session.identity_key or "stdio", spec.server_name, params.name)
  if limited then return nil, limited end
  if not spec.enable_tool_guardrails then return self:send(session, spec, up, "tools/call", params, call) end
  local set, timeout = gw.plugins, gw.timeouts.guardrail_timeout
  local common = gw.cfg.common_mcp_gateway_config
  local info = { server = spec.server_name, name = params.name, arguments = params.arguments or {},
    session_id = session.id, identity = session.identity, state = {} }
  -- Verdicts for the audit log go to the call record, out of the plugins' reach.
  local verdicts = call and call.verdicts or nil
  local res, err, blocked
  if common.enkrypt_async_input_guardrails_enabled then
    res, err, blocked = self:call_checking_in_parallel(session, spec, up, params, call, set, timeout, info, verdicts)
    if blocked then return self:guardrail_blocked(call, blocked) end
  else
    local args
    blocked, args = guardrails.check(set, timeout, spec, "input", info, info.arguments, verdicts)
    if blocked then return self:guardrail_blocked(call, blocked) end
    -- (Everything else the request carries, requestState, inputResponses, task, goes on.)
    if args ~= params.arguments then params = rpc.with(params, { arguments = args }) end
    local b
    b, params = hooks.run(set, timeout, "c2s:request", spec, "tools/call", params, session, call)
    if b then return blocked_answer(self, spec, "tools/call", b, call) end
    res, err = self:send(session, spec, up, "tools/call", params, call)
  end
  if not res then return nil, err end
  if common.enkrypt_async_output_guardrails_enabled then
    -- The seed's async output mode: the result goes back now; a violation found later is
    -- reported (log, metrics, telemetry) but can no longer stop this call.
    async.spawn(check_output_late, set, timeout, spec, info, res, verdicts)
    return res
  end
  blocked, res = guardrails.check(set, timeout, spec, "output", info, res, verdicts)
  if blocked then return self:guardrail_blocked(call, blocked) end
  return res
end

-- The seed's async input mode: the input check runs while the call is already on its way,
-- trading redaction (arguments cannot be rewritten any more) for latency; a violation
-- still replaces the result. Returns res, err, blocked.
local function check_input_into(verdict, set, timeout, spec, info, verdicts)
  verdict:set({ guardrails.check(set, timeout, spec, "input", info, info.arguments, verdicts) })
end

function Pipeline:call_checking_in_parallel(session, spec, up, params, call, set, timeout, info, verdicts)
  local verdict = async.future()
  async.spawn(check_input_into, verdict, set, timeout, spec, info, verdicts)
  local res, err = self:send(session, spec, up, "tools/call", params, call)
  local v = verdict:wait(timeout + 1)
  if not v then
    return nil, nil, guardrails.blocked(spec, "input", "async", { "guardrail_timeout" })
  end
  if v[1] then return nil, nil, v[1] end
  if v[2] ~= info.arguments then
    log.warn(("a guardrail rewrote the arguments of %s/%s, which async input mode cannot apply"):format(
      spec.server_name, tostring(params.name)))
  end
  return res, err, nil
end

function Pipeline:guardrail_blocked(call, blocked)
  if call then call.blocked = blocked.structuredContent.guardrail end
  return blocked
end

-- s2c:result on a result the router assembled from an upstream's data (the initialize
-- result a passthrough client sees, with the upstream's instructions, which are pinned
-- like a list of one: a drift withholds them until approved).
function Pipeline:screen(session, spec, method, result)
  local gw = self.gw
  local b, res = hooks.run(gw.plugins, gw.timeouts.guardrail_timeout, "s2c:result", spec, method, result, session, nil)
  if b then return blocked_answer(self, spec, method, b, nil) end
  if method == "initialize" and type(res) == "table" and type(res.instructions) == "string" then
    local kept = guardrails.discovery(gw.plugins, gw.timeouts.guardrail_timeout, spec,
      json.array({ { instructions = res.instructions } }), "instructions")
    if #kept == 0 then res.instructions = nil end
  end
  return res
end

-- The tools of a list whose Mcp-Param declarations are well formed; the others are left
-- out, as a client must (SEP-2243), with the reason logged.
local function well_formed(spec, tools)
  local out = json.array({})
  for _, t in ipairs(tools) do
    local why = type(t) == "table" and param_headers.malformed(t.inputSchema)
    if why then
      log.warn(("upstream %s: tool %s left out: %s"):format(spec.server_name, tostring(t.name), why))
    else
      out[#out + 1] = t
    end
  end
  return out
end

-- The discovery checks on one page of a list (`list`: tools, prompts, resources or
-- resourceTemplates): for tools the seed's registration checks first
-- (tool_guardrails_policy, server info validation), then the policy's providers.
function Pipeline:screen_list(session, spec, list, items)
  local gw = self.gw
  if list == "tools" then
    items = well_formed(spec, items)
    local up = self:upstream(session, spec)
    items = registration.screen(gw.plugins, gw.timeouts.guardrail_timeout, spec, items, up.init)
  end
  return guardrails.discovery(gw.plugins, gw.timeouts.guardrail_timeout, spec, items, list)
end

local LIST_KEY = { ["tools/list"] = "tools", ["prompts/list"] = "prompts", ["resources/list"] = "resources",
  ["resources/templates/list"] = "resourceTemplates" }

-- Cached discovery (tools/list and friends), all pages merged. Each fetched page passes
-- s2c:result; a tools list then the discovery guardrails. The upstream's 2026 caching
-- hints (the smallest ttlMs of its pages, "private" if any page says so) bound how long
-- and for whom the list is kept. Returns list | nil, err, source.
function Pipeline:discover(session, spec, method)
  local gw = self.gw
  local refused = home_refused(self, session, spec)
  if refused then return nil, refused end
  local up = self:upstream(session, spec)
  local hit = gw.discovery:get(up, method, session)
  if hit then return hit, nil, "cache" end
  local key = LIST_KEY[method]
  local all, cursor, pages, hints = json.array({}), nil, 0, {}
  repeat
    local res, err = self:send(session, spec, up, method, cursor and { cursor = cursor } or nil, nil)
    if not res then return nil, err end
    for _, item in ipairs(type(res[key]) == "table" and res[key] or {}) do all[#all + 1] = item end
    if type(res.ttlMs) == "number" and res.ttlMs >= 0 and res.ttlMs < (hints.ttl_ms or math.huge) then
      hints.ttl_ms = res.ttlMs
    end
    if res.cacheScope == "private" then hints.scope = "private" end
    cursor = res.nextCursor
    pages = pages + 1
  until cursor == nil or cursor == json.null or pages >= 100
  all = self:screen_list(session, spec, key, all)
  gw.discovery:put(up, method, all, gw.cfg.common_mcp_gateway_config.enkrypt_tool_cache_expiration * 3600, session,
    hints)
  return all, nil, "discovery"
end

function Pipeline:cached(session, spec, method, up)
  return self.gw.discovery:peek(up or self:upstream(session, spec), method, session)
end

-- Resource subscriptions, counted per upstream and URI (gateway/subscriptions.lua).
function Pipeline:subscribe(session, spec, uri, call) return subscriptions.subscribe(self, session, spec, uri, call) end
function Pipeline:unsubscribe(session, spec, uri, call)
  return subscriptions.unsubscribe(self, session, spec, uri, call)
end

-- The inputSchema of an upstream's tool (`up`: its client, when the caller has it), from
-- its cached tools list (listed on a miss).
local by_name = setmetatable({}, { __mode = "k" }) -- a tools list -> { name -> tool }
function Pipeline:tool_schema(session, spec, name, up)
  local list = self:cached(session, spec, "tools/list", up) or self:discover(session, spec, "tools/list")
  if type(list) ~= "table" then return nil end
  local index = by_name[list]
  if not index then
    index = {}
    for _, t in ipairs(list) do
      if type(t) == "table" and type(t.name) == "string" then index[t.name] = t end
    end
    by_name[list] = index
  end
  local tool = index[name]
  return tool and tool.inputSchema
end

-- To every ready upstream the session owns that declares `capability` (fire and forget).
function Pipeline:broadcast(session, method, params, capability)
  for _, up in pairs(self.gw.pool:clients_of(session)) do
    local caps = up.state == "ready" and up.init and up.init.capabilities
    if type(caps) == "table" and caps[capability] then
      async.spawn(function() up:call(method, params) end)
    end
  end
end

-- The cache status in the seed's shape ({gateway_specific, global}) for the session's
-- tenant, or for every tenant (`session` nil: the admin API), plus smg's own figures.
function Pipeline:cache_status(session)
  return cache_status.report(self, session)
end

-- Clears cached lists: `opts` { server_name, cache_type, config_id (admin only) }.
-- Returns { status, message, cleared }.
function Pipeline:clear_cache(session, opts)
  return cache_status.clear(self, session, opts)
end

function Pipeline:timeout_stats()
  local st = self.gw.budgets:snapshot(self.gw.timeouts)
  st.upstream_restarts = self.gw.stats.upstream_restarts
  return st
end

---------------------------------------------------------------------------- client -> upstream
-- A client notification other than initialized/cancelled: roots/list_changed goes to the
-- session's own upstreams (the only ones that saw its roots), through c2s:notification.
function Pipeline:client_notification(session, method, params)
  if method ~= "notifications/roots/list_changed" then return end
  local gw = self.gw
  for _, up in pairs(gw.pool:clients_of(session)) do
    local b = hooks.run(gw.plugins, gw.timeouts.guardrail_timeout, "c2s:notification", up.spec, method, params,
      session, nil)
    if not b then up:notify(method, nil) end
  end
end

---------------------------------------------------------------------------- upstream -> client
-- The upstream client events (see upstream/client.lua).
-- A restarted 2025 upstream has forgotten its resource subscriptions.
function Events:ready(up) subscriptions.restore(up) end

function Events:down(up, why)
  local gw = self.gw
  gw.stats.upstream_restarts = gw.stats.upstream_restarts + 1
  telemetry.upstream_down(gw, up, why)
  gw.discovery:invalidate(up)
end

-- Every session `up` serves: its owner, or the sessions of its mcp_config.
local function each_session_of(gw, up, fn, arg)
  local owner = up.session
  if owner and not owner.home then return fn(owner, arg) end
  -- A shared upstream serves its mcp_config's sessions; an identity's home upstream (for
  -- 2026-07-28 requests) that identity's listen streams.
  for _, s in pairs(gw.tenants.sessions) do
    if s.config_id == up.config_id and (not owner or s.identity_key == owner.identity_key) then fn(s, arg) end
  end
  if owner then return end
  local s = gw.stdio_session
  if s and s.config_id == up.config_id then fn(s, arg) end
end

local function tell_list_changed(s, method)
  if s.initialized then s:list_changed(method) end
end

local function tell_updated(s, arg)
  local owner = arg.up.session
  if (owner and not owner.home) or s.subscriptions[arg.params.uri] then
    s:notify("notifications/resources/updated", arg.params, nil)
  end
end

local LIST_CHANGED = { ["notifications/tools/list_changed"] = true, ["notifications/prompts/list_changed"] = true,
  ["notifications/resources/list_changed"] = true }

function Events:notification(up, method, params, call)
  local gw = self.gw
  local session = call and call.session or up.session
  local set = gw.plugins
  if hooks.active(set, up.spec, "s2c:notification") then
    local b
    b, params = hooks.run(set, gw.timeouts.guardrail_timeout, "s2c:notification", up.spec, method, params, session,
      call)
    if b then return end
  end
  if method == "notifications/progress" then
    if call and not call.cancelled then call.session:notify(method, params, call) end
  elseif method == "notifications/message" then
    -- Delivered only where it can be attributed: the call it belongs to, or the owner of a
    -- per-session upstream; a shared stdio upstream's log line goes to our log.
    if session then
      session:log_message(params, call)
    else
      log.debug(("upstream %s log: %s"):format(up.name, tostring(json.encode(params))))
    end
  elseif LIST_CHANGED[method] then
    gw.discovery:invalidate(up, method)
    if gw.mode ~= "meta" then each_session_of(gw, up, tell_list_changed, method) end
  elseif method == "notifications/resources/updated" and type(params.uri) == "string" then
    each_session_of(gw, up, tell_updated, { up = up, params = { uri = params.uri } })
  end
end

-- An upstream asks the client (sampling, elicitation, roots). Yields. Only a session the
-- request can be attributed to is asked; it must have declared the capability.
function Events:request(up, method, params, call)
  local gw = self.gw
  local session = call and call.session or up.session
  if not session then
    return rpc.fail(rpc.METHOD_NOT_FOUND, method .. " is not available: this upstream is shared by several clients")
  end
  local cap = Client.FORWARDED_REQUESTS[method]
  if session.stateless then
    -- 2026-07-28 has no server-to-client requests: without the capability the call fails
    -- with -32021; with it, the call is parked and the client answered with input_required.
    if not session:client_supports(cap) then
      if call then call.missing_capability = cap end
      return rpc.fail(rpc.METHOD_NOT_FOUND, "the client did not declare the " .. cap .. " capability")
    end
    if not call then
      return rpc.fail(rpc.METHOD_NOT_FOUND, method .. " cannot be tied to a 2026-07-28 client's call")
    end
  elseif not session:client_supports(cap) then
    return rpc.fail(rpc.METHOD_NOT_FOUND, "the client did not declare the " .. cap .. " capability")
  end
  local set, timeout = gw.plugins, gw.timeouts.guardrail_timeout
  local b
  b, params = hooks.run(set, timeout, "s2c:request", up.spec, method, params, session, call)
  if b then return withheld(rpc.SERVER_ERROR, ("%s refused by guardrail %s"):format(method, b.guardrail), b) end
  local res, err
  if session.stateless then
    res, err = parking.ask(gw, call, method, params)
  else
    res, err = session:request_client(method, params, call)
  end
  if res ~= nil then
    b, res = hooks.run(set, timeout, "c2s:result", up.spec, method, res, session, call)
  else
    b, err = hooks.run(set, timeout, "c2s:error", up.spec, method, err, session, call)
  end
  if b then
    return withheld(rpc.SERVER_ERROR, ("the client's answer to %s was withheld by guardrail %s"):format(method,
      b.guardrail), b)
  end
  return res, err
end

return Pipeline
