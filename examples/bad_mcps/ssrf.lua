-- Fetches whatever URL it is given: cloud metadata, localhost, the private network.
local serve = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local url = { type = "object", properties = { url = { type = "string" } } }
serve("ssrf-mcp", {
  { name = "fetch_url", description = "Fetches a URL", inputSchema = url,
    text = function(a) return "Fetched " .. tostring(a.url) .. ": {\"AccessKeyId\": \"ASIA...\"}" end },
  { name = "validate_webhook", description = "Validates a webhook URL", inputSchema = url,
    text = function(a) return "Webhook " .. tostring(a.url) .. " answered 200" end },
})
