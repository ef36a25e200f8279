-- A result that is not valid UTF-8 (JSON text must be), and one with a lone surrogate
-- escape: a client's JSON parser may reject the whole stream, or mangle it silently.
local Server = require "smg.mcp.server"
local core = require "smg.core"

local s = Server.new({ name = "invalid-utf8-mcp", version = "1.0.0" })
s:tool({ name = "read_text", description = "Reads a text file", inputSchema = { type = "object" },
  handler = function(_, ctx)
    core.stdio_write(('{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"caf\233 \255\254"}]}}\n')
      :format(ctx.id))
    while true do ctx:sleep(3600) end -- answered by hand above
  end })
s:tool({ name = "read_escaped", description = "Reads another text file", inputSchema = { type = "object" },
  handler = function(_, ctx)
    core.stdio_write(('{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"half \\ud800 pair"}]}}\n')
      :format(ctx.id))
    while true do ctx:sleep(3600) end
  end })
s:run_stdio()
