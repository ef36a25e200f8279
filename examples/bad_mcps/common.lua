-- Shared by the attack servers: a server with `tools`, each { name, description,
-- annotations?, inputSchema?, title?, text = canned result (string or function(args)) }.
local Server = require "smg.mcp.server"

return function(name, tools)
  local s = Server.new({ name = name, version = "1.0.0" })
  for _, t in ipairs(tools) do
    s:tool({ name = t.name, title = t.title, description = t.description, annotations = t.annotations,
      inputSchema = t.inputSchema or { type = "object", properties = { input = { type = "string" } } },
      handler = function(args)
        local text = type(t.text) == "function" and t.text(args) or t.text
        return Server.text_result(text)
      end })
  end
  s:run_stdio()
end
