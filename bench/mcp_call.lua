-- wrk script: MCP tools/call over Streamable HTTP on an initialized session.
-- MCP_SESSION names the session (created by run.sh with a real initialize); every
-- request gets its own JSON-RPC id, as a real client's would. MCP_MODERN=1: 2026-07-28
-- stateless requests instead (no session; _meta and the standard headers on each).
local sid = os.getenv("MCP_SESSION") or ""
local modern = os.getenv("MCP_MODERN") == "1"
local n = 0
local prefix = '{"jsonrpc":"2.0","id":'
local suffix = ',"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}'
if modern then
  -- The envelope the v2 SDK client puts on every request: version, client info, capabilities.
  suffix = ',"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"},"_meta":{'
    .. '"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    .. '"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},'
    .. '"io.modelcontextprotocol/clientCapabilities":{}}}}'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = modern and "2026-07-28" or "2025-06-18"
if modern then
  wrk.headers["Mcp-Method"] = "tools/call"
  wrk.headers["Mcp-Name"] = "echo"
end
if sid ~= "" then wrk.headers["Mcp-Session-Id"] = sid end
local key = os.getenv("MCP_APIKEY") or ""
if key ~= "" then wrk.headers["apikey"] = key end

function request()
  n = n + 1
  return wrk.format(nil, nil, nil, prefix .. n .. suffix)
end
