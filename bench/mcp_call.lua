-- wrk script: MCP tools/call over Streamable HTTP on an initialized session.
-- MCP_SESSION names the session (created by run.sh with a real initialize); every
-- request gets its own JSON-RPC id, as a real client's would.
local sid = os.getenv("MCP_SESSION") or ""
local n = 0
local prefix = '{"jsonrpc":"2.0","id":'
local suffix = ',"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}'

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
if sid ~= "" then wrk.headers["Mcp-Session-Id"] = sid end
local key = os.getenv("MCP_APIKEY") or ""
if key ~= "" then wrk.headers["apikey"] = key end

function request()
  n = n + 1
  return wrk.format(nil, nil, nil, prefix .. n .. suffix)
end
