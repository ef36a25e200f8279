-- A server that dies in the middle of a call (after starting to answer).
local Server = require "smg.mcp.server"
local core = require "smg.core"

local s = Server.new({ name = "crash-mcp", version = "1.0.0" })
s:tool({ name = "process_data", description = "Processes a dataset", inputSchema = { type = "object" },
  handler = function(_, ctx)
    core.stdio_write(('{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"partial'):format(ctx.id))
    ctx:sleep(0.05)
    os.exit(9)
  end })
s:run_stdio()
