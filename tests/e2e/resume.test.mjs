// SSE resumability: a client whose POST stream dropped mid-call reconnects with GET and
// Last-Event-ID and receives exactly what it missed on that stream, final result included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ECHO, MCP_HEADERS, gatewayConfig, luaServer, writeConfig, withGateway, rawSession } from './helpers.mjs';

// Reads SSE events from a fetch body until `until(event)` is true; returns them.
async function readEvents(body, until) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const events = [];
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = { id: undefined, data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) ev.id = line.slice(4);
        if (line.startsWith('data: ')) ev.data += line.slice(6);
      }
      if (ev.id === undefined && ev.data === '') continue;
      events.push(ev);
      if (until(ev)) { await reader.cancel(); return events; }
    }
  }
  return events;
}

test('a dropped POST stream resumes with GET and Last-Event-ID', async () => {
  await withGateway(writeConfig(gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate' })), async (gw) => {
    const sid = await rawSession(gw.url);
    const ac = new AbortController();
    const res = await fetch(gw.url, { method: 'POST', signal: ac.signal,
      headers: { ...MCP_HEADERS, 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call',
        params: { name: 'echo__sleep', arguments: { seconds: 0.6 }, _meta: { progressToken: 'p' } } }) });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const first = await readEvents(res.body, (ev) => ev.data.includes('notifications/progress'));
    assert.equal(first[0].data, '', 'a priming event (id, empty data) comes first');
    assert.match(first[0].id, /^\d+_0$/);
    const last = first[first.length - 1];
    assert.equal(JSON.parse(last.data).params.progress, 0);
    ac.abort(); // the connection drops mid-call
    await new Promise((r) => setTimeout(r, 800)); // the call finishes meanwhile
    const again = await fetch(gw.url, { headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid,
      'MCP-Protocol-Version': '2025-11-25', 'Last-Event-ID': last.id } });
    assert.equal(again.status, 200);
    const rest = await readEvents(again.body, (ev) => ev.data.includes('"result"'));
    const msgs = rest.map((ev) => JSON.parse(ev.data));
    assert.equal(msgs.length, 2, 'the second progress and the result, nothing replayed twice');
    assert.equal(msgs[0].params.progress, 0.6);
    assert.equal(msgs[1].id, 7);
    assert.equal(msgs[1].result.content[0].text, 'slept 0.6s');
    // An unknown id gets a fresh stream with nothing replayed.
    const fresh = await fetch(gw.url, { headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid,
      'Last-Event-ID': '999_1' } });
    assert.equal(fresh.status, 200);
    await fresh.body.cancel();
  });
});
