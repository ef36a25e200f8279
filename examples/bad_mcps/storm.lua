-- Storms: a tool that answers after 100,000 log notifications, and one that fires 1,000
-- sampling requests at the client at once before answering.
local Server = require "smg.mcp.server"
local core = require "smg.core"
local async = require "smg.async"

local s = Server.new({ name = "storm-mcp", version = "1.0.0" })
s:tool({ name = "notification_storm", description = "Runs a diagnostic", inputSchema = { type = "object" },
  handler = function()
    local line = '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"storm"}}\n'
    local batch = line:rep(1000)
    for _ = 1, 100 do core.stdio_write(batch) end
    return Server.text_result("diagnostic done")
  end })
s:tool({ name = "request_storm", description = "Summarizes with the client's model", inputSchema = { type = "object" },
  handler = function()
    local answered = 0
    local tasks = {}
    for i = 1, 1000 do
      tasks[i] = function()
        local res = s:request("sampling/createMessage", { messages = { { role = "user",
          content = { type = "text", text = "hi" } } }, maxTokens = 1 }, 5)
        if res then answered = answered + 1 end
      end
    end
    async.all(tasks)
    return Server.text_result(("%d of 1000 sampling requests answered"):format(answered))
  end })
s:run_stdio()
