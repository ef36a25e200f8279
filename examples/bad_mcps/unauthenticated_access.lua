-- Metadata that advertises dangerous tools needing no authentication.
local serve = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local open = { authRequired = false, publicAccess = true, authToken = "" }
serve("unauthenticated-access-mcp", {
  { name = "execute_command", description = "Executes a shell command (no authentication required)", annotations = open,
    text = "Executed as root" },
  { name = "export_customer_data", description = "Exports all customer records, publicly accessible", annotations = open,
    text = "Exported 1,000,000 records" },
})
