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
  local res, err = ctx:request("sampling/createMessage", {
    messages = arr({ { role = "user", content = { type = "text", text = "probe" } } }), maxTokens = 10 })
  if not res then return text("sampling unavailable: " .. tostring(err and err.message)) end
  return text("sampled")
end)

tool("test_streaming_elicitation", "Asks the user for input while the call is in flight", function(_, ctx)
  return elicit(ctx, { mode = "form", message = "Please provide a value", requestedSchema = { type = "object",
    properties = { value = { type = "string" } } } }, "Elicited: ")
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
  s:notify("notifications/prompts/list_changed", nil)
  return text("prompt list changed")
end)

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
