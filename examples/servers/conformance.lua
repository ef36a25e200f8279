-- The upstream the official MCP conformance suite needs (docs: ../shared conformance
-- fixture notes): every tool, resource and prompt name its server scenarios call, with the
-- behaviour they expect. smg fronts it in passthrough mode, so the suite checks the
-- gateway's forwarding of each feature — ids, notifications, sampling, elicitation.
local Server = require "smg.mcp.server"
local json = require("smg").json
local arr = json.array

local PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
local WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

local s = Server.new({
  name = "mcp-conformance-test-server", version = "1.0.0",
  -- SMG_FIXTURE_ERA=modern: a 2026-07-28-only server (the gateway then translates for
  -- 2025 clients); otherwise dual-era.
  modern_only = os.getenv("SMG_FIXTURE_ERA") == "modern",
  capabilities = { tools = { listChanged = true }, resources = { subscribe = true, listChanged = true },
    prompts = { listChanged = true }, logging = {}, completions = {} },
})

local function text(t) return { content = arr({ { type = "text", text = t } }) } end

local function tool(name, description, handler, schema)
  s:tool({ name = name, description = description, handler = handler,
    inputSchema = schema or { type = "object", properties = {} } })
end

tool("test_simple_text", "Tests simple text content response", function()
  return text("This is a simple text response for testing.")
end)

tool("test_image_content", "Tests image content response", function()
  return { content = arr({ { type = "image", data = PNG, mimeType = "image/png" } }) }
end)

tool("test_audio_content", "Tests audio content response", function()
  return { content = arr({ { type = "audio", data = WAV, mimeType = "audio/wav" } }) }
end)

tool("test_embedded_resource", "Tests embedded resource content response", function()
  return { content = arr({ { type = "resource", resource = { uri = "test://embedded-resource",
    mimeType = "text/plain", text = "This is an embedded resource content." } } }) }
end)

tool("test_multiple_content_types", "Tests response with multiple content types (text, image, resource)", function()
  return { content = arr({
    { type = "text", text = "Multiple content types test:" },
    { type = "image", data = PNG, mimeType = "image/png" },
    { type = "resource", resource = { uri = "test://mixed-content-resource", mimeType = "application/json",
      text = '{"test":"data","value":123}' } },
  }) }
end)

tool("test_tool_with_logging", "Tests tool that emits log messages during execution", function(_, ctx)
  ctx:log("info", "Tool execution started")
  ctx:sleep(0.05)
  ctx:log("info", "Tool processing data")
  ctx:sleep(0.05)
  ctx:log("info", "Tool execution completed")
  return text("Tool with logging executed successfully")
end)

tool("test_tool_with_progress", "Tests tool that reports progress notifications", function(_, ctx)
  for i, p in ipairs({ 0, 50, 100 }) do
    ctx:progress(p, 100, ("Completed step %d of 100"):format(p))
    if i < 3 then ctx:sleep(0.05) end
  end
  return text(tostring(ctx.progress_token or 0))
end)

tool("test_error_handling", "Tests error response handling", function()
  error("This tool intentionally returns an error for testing", 0)
end)

tool("test_reconnection", "Tests SSE stream disconnection and client reconnection (SEP-1699)", function(_, ctx)
  ctx:sleep(0.1)
  return text("Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.")
end)

tool("test_sampling", "Tests server-initiated sampling (LLM completion request)", function(args, ctx)
  local res, err = ctx:request("sampling/createMessage", {
    messages = arr({ { role = "user", content = { type = "text", text = args.prompt } } }), maxTokens = 100 })
  if not res then return text("Sampling not supported or error: " .. tostring(err and err.message)) end
  local reply = (res.content and res.content.text) or "No response"
  return text("LLM response: " .. reply)
end, { type = "object", properties = { prompt = { type = "string", description = "The prompt to send to the LLM" } },
  required = arr({ "prompt" }) })

local function elicit(ctx, params, prefix)
  local res, err = ctx:request("elicitation/create", params)
  if not res then return text("Elicitation not supported or error: " .. tostring(err and err.message)) end
  return text(("%saction=%s, content=%s"):format(prefix, tostring(res.action), json.encode(res.content or {})))
end

tool("test_elicitation", "Tests server-initiated elicitation (user input request)", function(args, ctx)
  return elicit(ctx, { mode = "form", message = args.message, requestedSchema = { type = "object",
    properties = { response = { type = "string", description = "User's response" } }, required = arr({ "response" }) } },
    "User response: ")
end, { type = "object", properties = { message = { type = "string", description = "The message to show the user" } },
  required = arr({ "message" }) })

tool("test_elicitation_sep1034_defaults", "Tests elicitation with default values per SEP-1034", function(_, ctx)
  return elicit(ctx, { mode = "form", message = "Please review and update the form fields with defaults",
    requestedSchema = { type = "object", required = arr({}), properties = {
      name = { type = "string", description = "User name", default = "John Doe" },
      age = { type = "integer", description = "User age", default = 30 },
      score = { type = "number", description = "User score", default = 95.5 },
      status = { type = "string", description = "User status", enum = arr({ "active", "inactive", "pending" }), default = "active" },
      verified = { type = "boolean", description = "Verification status", default = true },
    } } }, "Elicitation completed: ")
end)

tool("test_elicitation_sep1330_enums", "Tests elicitation with enum schema improvements per SEP-1330", function(_, ctx)
  local function opts(...) local t = arr({}) for i, v in ipairs({ ... }) do t[i] = v end return t end
  return elicit(ctx, { mode = "form", message = "Please select options from the enum fields",
    requestedSchema = { type = "object", required = arr({}), properties = {
      untitledSingle = { type = "string", description = "Select one option", enum = opts("option1", "option2", "option3") },
      titledSingle = { type = "string", description = "Select one option with titles", oneOf = opts(
        { const = "value1", title = "First Option" }, { const = "value2", title = "Second Option" },
        { const = "value3", title = "Third Option" }) },
      legacyEnum = { type = "string", description = "Select one option (legacy)", enum = opts("opt1", "opt2", "opt3"),
        enumNames = opts("Option One", "Option Two", "Option Three") },
      untitledMulti = { type = "array", description = "Select multiple options", minItems = 1, maxItems = 3,
        items = { type = "string", enum = opts("option1", "option2", "option3") } },
      titledMulti = { type = "array", description = "Select multiple options with titles", minItems = 1, maxItems = 3,
        items = { anyOf = opts({ const = "value1", title = "First Choice" }, { const = "value2", title = "Second Choice" },
          { const = "value3", title = "Third Choice" }) } },
    } } }, "Elicitation completed: ")
end)

tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)", function(args)
  return text("JSON Schema 2020-12 tool called with: " .. json.encode(args))
end, { ["$schema"] = "https://json-schema.org/draft/2020-12/schema", type = "object",
  ["$defs"] = { address = { type = "object", properties = { street = { type = "string" }, city = { type = "string" } } } },
  properties = { name = { type = "string" }, address = { ["$ref"] = "#/$defs/address" } },
  additionalProperties = false })

-- The 2026-07-28 scenarios' diagnostic tools (server-stateless). Through a gateway that
-- translates, a 2025 server's requests and notifications are what a 2026 client sees.
tool("test_missing_capability", "Needs the client's sampling capability (a -32021 probe)", function(_, ctx)
  local probe = { method = "sampling/createMessage", params = {
    messages = arr({ { role = "user", content = { type = "text", text = "probe" } } }), maxTokens = 10 } }
  if ctx.modern then
    if ctx:client_capabilities().sampling == nil then
      return nil, { code = -32021, message = "Missing required client capability: sampling",
        data = { requiredCapabilities = { sampling = {} } } }
    end
    if ctx.input_responses == nil then return ctx:input_required({ probe = probe }) end
    return text("sampled")
  end
  local res, err = ctx:request(probe.method, probe.params)
  if not res then return text("sampling unavailable: " .. tostring(err and err.message)) end
  return text("sampled")
end)

tool("test_streaming_elicitation", "Asks the user for input while the call is in flight", function(_, ctx)
  local params = { mode = "form", message = "Please provide a value", requestedSchema = { type = "object",
    properties = { value = { type = "string" } } } }
  if ctx.modern then
    if ctx.input_responses == nil then
      return ctx:input_required({ value = { method = "elicitation/create", params = params } })
    end
    return text("Elicited: " .. json.encode(ctx.input_responses))
  end
  return elicit(ctx, params, "Elicited: ")
end)

tool("test_logging_tool", "Logs while it runs", function(_, ctx)
  ctx:log("info", "logging tool ran")
  return text("logged")
end)

local added = 0
tool("test_trigger_tool_change", "Adds a tool, so that the tool list changes", function()
  added = added + 1
  tool("dynamic_tool_" .. added, "Added by test_trigger_tool_change", function() return text("dynamic") end)
  s:tools_changed()
  return text("tool list changed")
end)

tool("test_trigger_prompt_change", "Adds a prompt, so that the prompt list changes", function()
  added = added + 1
  s:prompt({ name = "dynamic_prompt_" .. added, description = "Added by test_trigger_prompt_change",
    get = function() return { messages = arr({ { role = "user", content = { type = "text", text = "dynamic" } } }) } end })
  s:changed("notifications/prompts/list_changed", nil)
  return text("prompt list changed")
end)

-- 2026-07-28 multi-round-trip (SEP-2322): tools that answer input_required and finish on
-- the retry. requestState is integrity-protected (HMAC-SHA256 under a key of this
-- process) and bound to the tool, the round and an expiry, as the spec asks.
local smg = require "smg"
local STATE_KEY = smg.random_hex(32)

local function seal(tool_name, round)
  local payload = smg.crypto.b64url_encode(json.encode({ t = tool_name, r = round, exp = smg.now() + 600 }))
  return payload .. "." .. smg.hash(STATE_KEY .. payload)
end

-- The round a requestState proves, or nil, why.
local function opened(state, tool_name)
  if type(state) ~= "string" then return nil, "requestState is missing" end
  local payload, mac = state:match("^([%w_%-]+)%.(%x+)$")
  if not payload or not smg.secure_equal(mac, smg.hash(STATE_KEY .. payload)) then
    return nil, "requestState failed its integrity check"
  end
  local st = json.decode(smg.crypto.b64decode(payload) or "")
  if type(st) ~= "table" or st.t ~= tool_name or (st.exp or 0) < smg.now() then return nil, "requestState is not valid here" end
  return st.r
end

local function bad_state(why) return nil, { code = -32602, message = "Invalid params: " .. why } end

local ELICIT_NAME = { method = "elicitation/create", params = { message = "What is your name?",
  requestedSchema = { type = "object", properties = { name = { type = "string" } }, required = arr({ "name" }) } } }
local SAMPLE = { method = "sampling/createMessage", params = { messages = arr({ { role = "user",
  content = { type = "text", text = "What is the capital of France?" } } }), maxTokens = 100 } }
local ROOTS = { method = "roots/list", params = {} }
local NEEDS = { ["elicitation/create"] = "elicitation", ["sampling/createMessage"] = "sampling", ["roots/list"] = "roots" }

-- The answers to `keys` when the retry carries them all, else nil (ask again). Answers
-- that are not objects are a client error.
local function answers(ctx, keys)
  local r = ctx.input_responses
  if r == nil then return nil end
  if type(r) ~= "table" then return nil, { code = -32602, message = "Invalid params: inputResponses must be an object" } end
  for _, k in ipairs(keys) do
    if type(r[k]) ~= "table" then return nil end
  end
  return r
end

-- Asks for `requests` (key -> request): refused with -32021 when the client has not
-- declared what one of them needs.
local function ask(ctx, requests, state)
  local caps = ctx:client_capabilities()
  for _, req in pairs(requests) do
    local need = NEEDS[req.method]
    if type(caps) ~= "table" or caps[need] == nil then
      return nil, { code = -32021, message = "Missing required client capability: " .. need,
        data = { requiredCapabilities = { [need] = {} } } }
    end
  end
  return ctx:input_required(requests, state)
end

local function mrtr_tool(name, description, fn) tool(name, description, function(args, ctx)
  if not ctx.modern then return text(name .. " needs a 2026-07-28 client") end
  return fn(args, ctx)
end) end

mrtr_tool("test_input_required_result_elicitation", "Asks for a name (input_required), then greets", function(_, ctx)
  local r, err = answers(ctx, { "user_name" })
  if err then return nil, err end
  if not r then return ask(ctx, { user_name = ELICIT_NAME }) end
  local content = type(r.user_name.content) == "table" and r.user_name.content or {}
  return text(("Hello, %s!"):format(tostring(content.name or "stranger")))
end)

mrtr_tool("test_input_required_result_sampling", "Asks the client's model, then reports its answer", function(_, ctx)
  local r, err = answers(ctx, { "capital_question" })
  if err then return nil, err end
  if not r then return ask(ctx, { capital_question = SAMPLE }) end
  local c = r.capital_question.content
  return text("Sampling response: " .. tostring(type(c) == "table" and c.text or "none"))
end)

mrtr_tool("test_input_required_result_list_roots", "Asks for the client's roots, then lists them", function(_, ctx)
  local r, err = answers(ctx, { "client_roots" })
  if err then return nil, err end
  if not r then return ask(ctx, { client_roots = ROOTS }) end
  local uris = {}
  for _, root in ipairs(type(r.client_roots.roots) == "table" and r.client_roots.roots or {}) do
    uris[#uris + 1] = tostring(root.uri)
  end
  return text("Roots: " .. table.concat(uris, ", "))
end)

mrtr_tool("test_input_required_result_request_state", "Round-trips an integrity-protected requestState", function(_, ctx)
  local r, err = answers(ctx, { "confirm" })
  if err then return nil, err end
  local name = "test_input_required_result_request_state"
  if not r then
    return ask(ctx, { confirm = { method = "elicitation/create", params = { message = "Please confirm",
      requestedSchema = { type = "object", properties = { ok = { type = "boolean" } }, required = arr({ "ok" }) } } } },
      seal(name, 1))
  end
  local round, why = opened(ctx.request_state, name)
  if round ~= 1 then return bad_state(why or "requestState is from another round") end
  return text("state-ok: the requestState came back intact")
end)

mrtr_tool("test_input_required_result_multiple_inputs", "Asks for a name, a sample and the roots at once", function(_, ctx)
  local keys = { "user_name", "greeting", "client_roots" }
  local r, err = answers(ctx, keys)
  if err then return nil, err end
  local name = "test_input_required_result_multiple_inputs"
  if not r then
    return ask(ctx, { user_name = ELICIT_NAME, greeting = { method = "sampling/createMessage", params = {
      messages = arr({ { role = "user", content = { type = "text", text = "Generate a greeting" } } }), maxTokens = 50 } },
      client_roots = ROOTS }, seal(name, 1))
  end
  local round, why = opened(ctx.request_state, name)
  if round ~= 1 then return bad_state(why or "requestState is from another round") end
  return text("Received all inputs: user_name, greeting, client_roots")
end)

mrtr_tool("test_input_required_result_multi_round", "Two rounds of questions, then the answer", function(_, ctx)
  local name = "test_input_required_result_multi_round"
  local r = type(ctx.input_responses) == "table" and ctx.input_responses or {}
  if ctx.request_state == nil or type(r.step1) ~= "table" and type(r.step2) ~= "table" then
    return ask(ctx, { step1 = { method = "elicitation/create", params = { message = "Step 1: What is your name?",
      requestedSchema = { type = "object", properties = { name = { type = "string" } }, required = arr({ "name" }) } } } },
      seal(name, 1))
  end
  local round, why = opened(ctx.request_state, name)
  if not round then return bad_state(why) end
  if round == 1 and type(r.step1) == "table" then
    return ask(ctx, { step2 = { method = "elicitation/create", params = { message = "Step 2: What is your favorite color?",
      requestedSchema = { type = "object", properties = { color = { type = "string" } }, required = arr({ "color" }) } } } },
      seal(name, 2))
  end
  if round == 2 and type(r.step2) == "table" then return text("Both steps completed") end
  return bad_state("inputResponses do not answer round " .. tostring(round))
end)

mrtr_tool("test_input_required_result_tampered_state", "Refuses a requestState that was altered", function(_, ctx)
  local name = "test_input_required_result_tampered_state"
  if ctx.input_responses == nil then
    return ask(ctx, { confirm = { method = "elicitation/create", params = { message = "Please confirm",
      requestedSchema = { type = "object", properties = { ok = { type = "boolean" } } } } } }, seal(name, 1))
  end
  local round, why = opened(ctx.request_state, name)
  if round ~= 1 then return bad_state(why or "requestState is from another round") end
  return text("state intact")
end)

mrtr_tool("test_input_required_result_capabilities", "Asks only for what the client declared", function(_, ctx)
  local caps = ctx:client_capabilities()
  local requests, any = {}, false
  if caps.sampling ~= nil then requests.capital_question, any = SAMPLE, true end
  if caps.elicitation ~= nil then requests.user_name, any = ELICIT_NAME, true end
  if caps.roots ~= nil then requests.client_roots, any = ROOTS, true end
  if ctx.input_responses ~= nil or not any then return text("capabilities respected") end
  return ctx:input_required(requests)
end)

s:prompt({ name = "test_input_required_result_prompt", description = "A prompt that asks for context first",
  get = function(_, ctx)
    if not (ctx and ctx.modern) then
      return { messages = arr({ { role = "user", content = { type = "text", text = "No context (2025 client)." } } }) }
    end
    local r, err = answers(ctx, { "user_context" })
    if err then return nil, err end
    if not r then
      return ask(ctx, { user_context = { method = "elicitation/create", params = {
        message = "What context should the prompt use?", requestedSchema = { type = "object",
          properties = { context = { type = "string" } }, required = arr({ "context" }) } } } })
    end
    local c = type(r.user_context.content) == "table" and r.user_context.content.context or "none"
    return { messages = arr({ { role = "user", content = { type = "text", text = "Context: " .. tostring(c) } } }) }
  end })

local function contents(uri, mime, field, value)
  return { contents = arr({ { uri = uri, mimeType = mime, [field] = value } }) }
end

s:resource({ uri = "test://static-text", name = "static-text", title = "Static Text Resource",
  description = "A static text resource for testing", mimeType = "text/plain",
  read = function(uri) return contents(uri, "text/plain", "text", "This is the content of the static text resource.") end })
s:resource({ uri = "test://static-binary", name = "static-binary", title = "Static Binary Resource",
  description = "A static binary resource (image) for testing", mimeType = "image/png",
  read = function(uri) return contents(uri, "image/png", "blob", PNG) end })
s:resource({ uri = "test://watched-resource", name = "watched-resource", title = "Watched Resource",
  description = "A resource that can be subscribed to", mimeType = "text/plain",
  read = function(uri) return contents(uri, "text/plain", "text", "Watched resource content") end })
s:resource_template({ uriTemplate = "test://template/{id}/data", name = "template", title = "Resource Template",
  description = "A resource template with parameter substitution", mimeType = "application/json",
  read = function(uri, vars)
    return contents(uri, "application/json", "text",
      json.encode({ id = vars.id, templateTest = true, data = "Data for ID: " .. vars.id }))
  end })

s:prompt({ name = "test_simple_prompt", title = "Simple Test Prompt", description = "A simple prompt without arguments",
  get = function()
    return { messages = arr({ { role = "user", content = { type = "text", text = "This is a simple prompt for testing." } } }) }
  end })
s:prompt({ name = "test_prompt_with_arguments", title = "Prompt With Arguments", description = "A prompt with required arguments",
  arguments = { { name = "arg1", description = "First test argument", required = true },
    { name = "arg2", description = "Second test argument", required = true } },
  get = function(a)
    return { messages = arr({ { role = "user", content = { type = "text",
      text = ("Prompt with arguments: arg1='%s', arg2='%s'"):format(a.arg1, a.arg2) } } }) }
  end })
s:prompt({ name = "test_prompt_with_embedded_resource", title = "Prompt With Embedded Resource",
  description = "A prompt that includes an embedded resource",
  arguments = { { name = "resourceUri", description = "URI of the resource to embed", required = true } },
  get = function(a)
    return { messages = arr({
      { role = "user", content = { type = "resource", resource = { uri = a.resourceUri, mimeType = "text/plain",
        text = "Embedded resource content for testing." } } },
      { role = "user", content = { type = "text", text = "Please process the embedded resource above." } } }) }
  end })
s:prompt({ name = "test_prompt_with_image", title = "Prompt With Image", description = "A prompt that includes image content",
  get = function()
    return { messages = arr({
      { role = "user", content = { type = "image", data = PNG, mimeType = "image/png" } },
      { role = "user", content = { type = "text", text = "Please analyze the image above." } } }) }
  end })

s:completion(function() return { values = arr({}), total = 0, hasMore = false } end)

s:run_stdio()
