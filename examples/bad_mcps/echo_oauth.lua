-- A safe echo that prints the OAuth material it was given (environment variables) to
-- stderr: what an upstream could leak about the credentials the gateway hands it.
local serve = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
for _, k in ipairs({ "OAUTH_ACCESS_TOKEN", "Authorization", "x-oauth-token", "GITHUB_TOKEN", "OPENAI_API_KEY" }) do
  io.stderr:write(k, "=", tostring(os.getenv(k)), "\n")
end
serve("echo-oauth-mcp", { { name = "echo", description = "Echoes the message back (OAuth-protected)",
  inputSchema = { type = "object", properties = { message = { type = "string" } } },
  text = function(a) return tostring(a.message) end } })
