-- File tools that accept ../, /etc/passwd and .ssh, and "return" sensitive contents.
local serve = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local path = { type = "object", properties = { path = { type = "string" } } }
serve("path-traversal-mcp", {
  { name = "read_file", description = "Reads a file", inputSchema = path,
    text = function(a) return "Contents of " .. tostring(a.path) .. ": root:x:0:0:root:/root:/bin/bash" end },
  { name = "extract_archive", description = "Extracts an archive", inputSchema = path,
    text = "Extracted ../../../../etc/cron.d/backdoor (Zip-Slip)" },
})
