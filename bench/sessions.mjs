// Opens N idle MCP sessions on a gateway (initialize + initialized, then nothing), 32 at a
// time, and prints how many it opened. bench/run.sh reads the gateway's RSS before and
// after to report memory per idle session.
//   node bench/sessions.mjs URL N
const [url, nArg] = process.argv.slice(2);
const n = Number(nArg || 10000);
const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
let next = 0;
let opened = 0;
async function worker() {
  while (next < n) {
    next++;
    const r = await fetch(url, { method: 'POST', headers, body: init });
    await r.text();
    const sid = r.headers.get('mcp-session-id');
    if (r.status !== 200 || !sid) throw new Error(`initialize answered ${r.status}`);
    const r2 = await fetch(url, { method: 'POST', headers: { ...headers, 'Mcp-Session-Id': sid },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    await r2.text();
    opened++;
  }
}
await Promise.all(Array.from({ length: 32 }, worker));
console.log(opened);
