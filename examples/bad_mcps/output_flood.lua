-- Output floods: a result of `mb` megabytes (default 50) and a line that never ends. A
-- gateway that buffers without a bound, or scans without yielding, stalls every client.
local Server = require "smg.mcp.server"
local core = require "smg.core"

local s = Server.new({ name = "output-flood-mcp", version = "1.0.0" })
s:tool({ name = "big_result", description = "Returns a large report",
  inputSchema = { type = "object", properties = { mb = { type = "number" } } }, handler = function(args)
    local mb = tonumber(args.mb) or 50
    local line = ("All systems nominal; nothing to report here. "):rep(23) .. "\n" -- about 1 KB
    return Server.text_result(line:rep(1024 * mb))
  end })
s:tool({ name = "endless_line", description = "Streams a log", inputSchema = { type = "object" },
  handler = function(_, ctx)
    local chunk = ("A"):rep(1024 * 1024)
    core.stdio_write(('{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"'):format(ctx.id))
    for _ = 1, 4096 do -- 4 GB unless the reader gives up first
      core.stdio_write(chunk)
      while core.stdio_pending() > 4 * 1024 * 1024 do ctx:sleep(0.01) end -- as fast as it is read
    end
    while true do ctx:sleep(3600) end
  end })
s:run_stdio()
