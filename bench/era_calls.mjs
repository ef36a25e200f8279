// Sends N tools/call requests of one era to an smg URL, 4 at a time over keep-alive
// connections, with the bodies bench/mcp_call.lua sends (2026: the v2 SDK's per-request
// envelope); checks each answer. Used by bench/era_instructions.sh.
//   node bench/era_calls.mjs URL N 2025|2026 [SESSION_ID]
import http from 'node:http';

const [url, n, era, sid] = [process.argv[2], Number(process.argv[3]), process.argv[4], process.argv[5]];
const modern = era === '2026';
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
  'MCP-Protocol-Version': modern ? '2026-07-28' : '2025-06-18' };
if (modern) Object.assign(headers, { 'Mcp-Method': 'tools/call', 'Mcp-Name': 'echo' });
else headers['Mcp-Session-Id'] = sid;
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
let next = 0;
let done = 0;
function one() {
  if (next >= n) return;
  const params = { name: 'echo', arguments: { message: 'hello' } };
  if (modern) params._meta = meta;
  const body = JSON.stringify({ jsonrpc: '2.0', id: ++next, method: 'tools/call', params });
  const req = http.request(url, { method: 'POST', headers, agent }, (res) => {
    let text = '';
    res.on('data', (d) => { text += d; });
    res.on('end', () => {
      if (!text.includes('hello')) {
        console.error('unexpected answer:', text);
        process.exit(1);
      }
      if (++done === n) agent.destroy();
      else one();
    });
  });
  req.end(body);
}
for (let i = 0; i < 4; i++) one();
