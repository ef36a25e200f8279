-- The bundled example upstream: an MCP server over stdio, written in Lua and run by the
-- smg binary itself (`smg run examples/servers/echo.lua`), so a fresh machine can try the
-- gateway without Python or Node.
local Server = require "smg.mcp.server"
local json = require("smg").json

local s = Server.new({ name = "smg-echo", version = "1.0.0",
  instructions = "Echo server bundled with smg: echo, add, and a slow tool for timeouts." })

s:tool({
  name = "echo",
  description = "Echoes the message back",
  inputSchema = { type = "object", properties = { message = { type = "string" } }, required = json.array({ "message" }) },
  annotations = { readOnlyHint = true },
  handler = function(args)
    return Server.text_result(tostring(args.message or ""))
  end,
})

s:tool({
  name = "add",
  description = "Adds two numbers",
  inputSchema = { type = "object", properties = { a = { type = "number" }, b = { type = "number" } },
    required = json.array({ "a", "b" }) },
  handler = function(args)
    local a, b = tonumber(args.a), tonumber(args.b)
    if not a or not b then return Server.text_result("a and b must be numbers", true) end
    return { content = json.array({ { type = "text", text = tostring(a + b) } }),
      structuredContent = { sum = a + b } }
  end,
})

s:tool({
  name = "sleep",
  description = "Waits the given number of seconds, reporting progress, then answers",
  inputSchema = { type = "object", properties = { seconds = { type = "number" } } },
  handler = function(args, ctx)
    local secs = tonumber(args.seconds) or 1
    ctx:progress(0, secs)
    ctx:sleep(secs)
    ctx:progress(secs, secs)
    return Server.text_result("slept " .. secs .. "s")
  end,
})

s:resource({
  uri = "echo://readme", name = "readme", mimeType = "text/plain",
  description = "What this server is",
  read = function(uri)
    return { contents = json.array({ { uri = uri, mimeType = "text/plain", text = "smg echo server" } }) }
  end,
})

s:prompt({
  name = "greet", description = "A greeting prompt",
  arguments = { { name = "name", description = "Who to greet", required = true } },
  get = function(args)
    return { messages = json.array({ { role = "user", content = { type = "text", text = "Say hello to " .. args.name } } }) }
  end,
})

s:run_stdio()
