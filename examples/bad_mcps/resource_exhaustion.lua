-- Describes resource exhaustion (as the seed's does, nothing is consumed here; the real
-- floods, huge lines and bombs are in tests/fixtures/servers/faulty.lua).
local serve = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
serve("resource-exhaustion-mcp", {
  { name = "generate_thumbnail", description = "Generates a thumbnail", text = "Allocated 64 GB for a 100000x100000 thumbnail" },
  { name = "hash_password", description = "Hashes a password", text = "Ran 10^12 iterations" },
})
