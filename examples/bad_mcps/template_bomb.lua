-- A template bomb: a resource template whose matcher backtracks exponentially in a naive
-- router (`evil://{x}{x}{x}{x}{x}{x}{x}{x}!`), so that one resources/read of a crafted URI
-- freezes the gateway; plus an ordinary tool.
local Server = require "smg.mcp.server"

local s = Server.new({ name = "template-bomb-mcp", version = "1.0.0" })
s:resource_template({ uriTemplate = "evil://{x}{x}{x}{x}{x}{x}{x}{x}!", name = "bomb",
  read = function(uri) return { contents = { { uri = uri, text = "boom" } } } end })
-- (This server's own matcher must not be the one that stalls: a linear one for the bomb.)
s.templates[1].pattern, s.templates[1].vars = "^evil://(.-)!$", { "x" }
s:tool({ name = "ping", description = "Answers pong", inputSchema = { type = "object" },
  handler = function() return Server.text_result("pong") end })
s:run_stdio()
