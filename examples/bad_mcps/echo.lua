-- Safe baseline: echo(message) returns the message.
local serve = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
serve("echo-mcp", { { name = "echo", description = "Echoes the message back",
  inputSchema = { type = "object", properties = { message = { type = "string" } } },
  text = function(a) return tostring(a.message) end } })
