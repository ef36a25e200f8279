// Bad input and failing upstreams: each gets the right HTTP status and JSON-RPC error,
// is logged, and never disturbs other clients, whose calls keep succeeding meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SMG, ECHO, FAULTY, INIT, MCP_HEADERS, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, post,
  rawSession, textOf, pidAlive, sleep,
} from './helpers.mjs';

const servers = [luaServer('echo', ECHO), luaServer('faulty', FAULTY)];
const config = () => writeConfig(gatewayConfig(servers, { mode: 'aggregate', limits: { max_body_bytes: 65536 } },
  { timeout_settings: { tool_execution_timeout: 1.5 } }));

// A client that keeps calling while the bad input happens; it must see no error.
async function bystander(url) {
  const client = await httpClient(url, { name: 'bystander' });
  let stop = false;
  let calls = 0;
  const loop = (async () => {
    while (!stop) {
      const r = await client.callTool({ name: 'echo__echo', arguments: { message: `b${calls}` } });
      assert.equal(textOf(r), `b${calls}`);
      calls++;
      await sleep(5);
    }
  })();
  return { async finish() { stop = true; await loop; await client.close(); return calls; } };
}

test('malformed requests get the right status and JSON-RPC error', async () => {
  await withGateway(config(), async (gw) => {
    const b = await bystander(gw.url);
    const sid = await rawSession(gw.url);
    const S = { 'Mcp-Session-Id': sid };
    let r = await post(gw.url, '{"jsonrpc":"2.0", "id": 1, "method": ', S);
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, -32700);
    r = await post(gw.url, { jsonrpc: '2.0', id: 2 }, S);
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, -32600);
    r = await post(gw.url, { jsonrpc: '1.0', id: 2, method: 'ping' }, S);
    assert.equal(r.json.error.code, -32600);
    r = await post(gw.url, { jsonrpc: '2.0', id: null, method: 'ping' }, S);
    assert.equal(r.json.error.code, -32600, 'null id is not allowed');
    r = await post(gw.url, [{ jsonrpc: '2.0', id: 3, method: 'ping' }], S);
    assert.equal(r.status, 400, 'batches need 2025-03-26');
    r = await post(gw.url, { jsonrpc: '2.0', id: 4, method: 'ping' }, { ...S, 'Content-Type': 'text/plain' });
    assert.equal(r.status, 415);
    r = await post(gw.url, { jsonrpc: '2.0', id: 5, method: 'ping' }, { ...S, Accept: 'application/json' });
    assert.equal(r.status, 406);
    r = await post(gw.url, { jsonrpc: '2.0', id: 6, method: 'ping' });
    assert.equal(r.status, 400, 'missing session id');
    r = await post(gw.url, { jsonrpc: '2.0', id: 7, method: 'ping' }, { 'Mcp-Session-Id': 'no-such-session' });
    assert.equal(r.status, 404, 'unknown session id');
    r = await post(gw.url, { jsonrpc: '2.0', id: 8, method: 'ping' }, { ...S, 'MCP-Protocol-Version': '1999-01-01' });
    assert.equal(r.status, 400, 'unsupported protocol version');
    r = await post(gw.url, { jsonrpc: '2.0', id: 9, method: 'nope/nope' }, S);
    assert.equal(r.json.error.code, -32601);
    r = await post(gw.url, { jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'echo__nope' } }, S);
    assert.equal(r.json.error.code, -32602);
    r = await post(gw.url, { ...INIT, params: { capabilities: {} } });
    assert.equal(r.json.error.code, -32602, 'initialize without protocolVersion');
    assert.equal(r.headers.get('mcp-session-id'), null, 'no session for a failed initialize');
    const big = 'x'.repeat(100000);
    r = await post(gw.url, { jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'echo__echo', arguments: { message: big } } }, S);
    assert.equal(r.status, 413, 'oversized body');
    r = await post(gw.url, { jsonrpc: '2.0', id: 12, method: 'ping' }, { ...S, Origin: 'https://evil.example' });
    assert.equal(r.status, 403, 'bad Origin');
    r = await post(gw.url, { jsonrpc: '2.0', id: 13, method: 'ping' }, { ...S, Origin: 'http://localhost:3000' });
    assert.equal(r.status, 403, 'a page on another local port is another origin');
    r = await post(gw.url, { jsonrpc: '2.0', id: 13, method: 'ping' }, { ...S, Origin: gw.origin });
    assert.equal(r.status, 200, 'our own origin is fine');
    assert.equal(r.headers.get('access-control-allow-origin'), null, 'same-origin needs no CORS');
    r = await post(gw.url, { jsonrpc: '2.0', id: 13, method: 'ping' }, { ...S, 'Content-Type': 'text/plain; x=application/json' });
    assert.equal(r.status, 415, 'the media type is parsed, not searched for');
    r = await post(gw.url, { jsonrpc: '2.0', id: 13, method: 'ping' }, { ...S, 'Content-Type': 'Application/JSON ; charset=utf-8' });
    assert.equal(r.status, 200, 'parameters and case do not matter');
    r = await post(gw.url, { jsonrpc: '2.0', id: 13, method: 'ping' }, { ...S, Accept: 'application/json;q=0, text/event-stream' });
    assert.equal(r.status, 406, 'q=0 means not acceptable');
    r = await post(gw.url, { jsonrpc: '2.0', id: 13, method: 'ping' }, { ...S, Accept: 'application/*, text/*' });
    assert.equal(r.status, 200, 'media ranges');
    let res = await fetch(gw.url, { method: 'PUT', headers: MCP_HEADERS, body: '{}' });
    assert.equal(res.status, 405);
    res = await fetch(gw.origin + '/elsewhere');
    assert.equal(res.status, 404);
    res = await fetch(gw.url, { method: 'GET', headers: { Accept: 'text/event-stream' } });
    assert.equal(res.status, 400, 'GET without session');
    // DELETE ends the session; it is unknown afterwards.
    res = await fetch(gw.url, { method: 'DELETE', headers: S });
    assert.equal(res.status, 200);
    r = await post(gw.url, { jsonrpc: '2.0', id: 14, method: 'ping' }, S);
    assert.equal(r.status, 404);
    assert.ok((await b.finish()) > 0);
  });
});

test('a 2025-03-26 session may send JSON-RPC batches', async () => {
  await withGateway(config(), async (gw) => {
    const sid = await rawSession(gw.url, '2025-03-26');
    const r = await post(gw.url, [
      { jsonrpc: '2.0', id: 'a', method: 'ping' },
      { jsonrpc: '2.0', id: 'b', method: 'tools/call', params: { name: 'echo__echo', arguments: { message: 'batched' } } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
    ], { 'Mcp-Session-Id': sid });
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(r.json));
    const byId = Object.fromEntries(r.json.map((m) => [m.id, m]));
    assert.deepEqual(byId.a.result, {});
    assert.equal(byId.b.result.content[0].text, 'batched');
  });
});

test('raw HTTP/1.1 abuse: garbage, huge headers, keep-alive pipelining', async () => {
  const net = await import('node:net');
  await withGateway(config(), async (gw) => {
    const { port } = new URL(gw.url);
    const exchange = (payload) => new Promise((resolve) => {
      const s = net.connect(Number(port), '127.0.0.1');
      let got = '';
      s.on('data', (d) => { got += d; });
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      s.write(payload);
      setTimeout(() => s.end(), 300);
    });
    assert.match(await exchange('GARBAGE\r\n\r\n'), /^HTTP\/1.1 400/);
    assert.match(await exchange(`GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`), /^HTTP\/1.1 431/);
    const two = await exchange('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\nGET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert.equal((two.match(/HTTP\/1.1 200/g) || []).length, 2, 'both pipelined requests answered');
    assert.match(await exchange('GET /health HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n'), /^HTTP\/1.1 400/,
      'two Host headers');
    assert.match(await exchange('GET /health HTTP/1.1\r\n\r\n'), /^HTTP\/1.1 400/, 'HTTP/1.1 without Host');
    // Same-origin depends on each request's Host: a refusal for one Host is not remembered for another.
    const metricsWith = (host) => exchange(`GET /metrics HTTP/1.1\r\nHost: ${host}:${port}\r\nOrigin: http://localhost:${port}\r\n\r\n`);
    assert.match(await metricsWith('127.0.0.1'), /^HTTP\/1.1 403/, 'another host name is another origin');
    assert.match(await metricsWith('localhost'), /^HTTP\/1.1 200/, 'same origin');
  });
});

test('a client that sends half a request is cut off after the request timeout', async () => {
  const net = await import('node:net');
  const cfg = writeConfig(gatewayConfig(servers, { mode: 'aggregate', limits: { request_timeout: 0.5 } }));
  await withGateway(cfg, async (gw) => {
    const { port } = new URL(gw.url);
    const b = await bystander(gw.url);
    const t0 = Date.now();
    const got = await new Promise((resolve) => {
      const s = net.connect(Number(port), '127.0.0.1');
      let data = '';
      s.on('data', (d) => { data += d; });
      s.on('close', () => resolve(data));
      s.write('POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{"jsonrpc"');
    });
    const elapsed = Date.now() - t0;
    assert.match(got, /^HTTP\/1.1 408/);
    assert.ok(elapsed >= 400 && elapsed < 3000, `closed after ${elapsed} ms`);
    assert.ok((await b.finish()) > 0, 'others were served meanwhile');
  });
});

test('upstream crash mid-call: clear error, restart, next call works', async () => {
  await withGateway(config(), async (gw) => {
    const b = await bystander(gw.url);
    const client = await httpClient(gw.url);
    const pid1 = Number(textOf(await client.callTool({ name: 'faulty__pid', arguments: {} })));
    const r = await client.callTool({ name: 'faulty__crash', arguments: {} }).then(() => null, (e) => e);
    assert.ok(r, 'the crashed call failed');
    assert.match(r.message, /upstream faulty is unavailable: process exited with status 3/);
    const pid2 = Number(textOf(await client.callTool({ name: 'faulty__pid', arguments: {} })));
    assert.notEqual(pid1, pid2, 'restarted');
    assert.ok(!pidAlive(pid1), 'the crashed process was reaped');
    assert.match(gw.logs(), /upstream faulty down \(process exited with status 3\); restarting/);
    assert.ok((await b.finish()) > 0);
    await client.close();
  });
});

test('upstream hang hits the tool timeout; the gateway keeps serving', async () => {
  await withGateway(config(), async (gw) => {
    const b = await bystander(gw.url);
    const client = await httpClient(gw.url);
    const t0 = Date.now();
    const err = await client.callTool({ name: 'faulty__hang', arguments: {} }, undefined, { timeout: 10000 })
      .then(() => null, (e) => e);
    const elapsed = Date.now() - t0;
    assert.ok(err, 'the hanging call failed');
    assert.match(err.message, /did not answer tools\/call within 1.5s/);
    assert.ok(elapsed >= 1400 && elapsed < 5000, `timed out after ${elapsed} ms`);
    // The same upstream still answers other calls.
    assert.equal(textOf(await client.callTool({ name: 'faulty__echo', arguments: { message: 'alive' } })), 'alive');
    assert.ok((await b.finish()) > 10);
    await client.close();
  });
});

test('upstream that prints garbage: the garbage is dropped and logged, calls succeed', async () => {
  await withGateway(config(), async (gw) => {
    const client = await httpClient(gw.url);
    for (let i = 0; i < 3; i++) {
      assert.equal(textOf(await client.callTool({ name: 'faulty__garbage', arguments: {} })), 'after garbage');
    }
    assert.match(gw.logs(), /upstream faulty wrote a line that is not a JSON-RPC message to stdout \(dropped\)/);
    await client.close();
  });
});

test('an undecodable answer (invalid UTF-8, JSON nested too deep) fails its call at once', async () => {
  await withGateway(config(), async (gw) => {
    const client = await httpClient(gw.url);
    for (const kind of ['utf8', 'deep']) {
      const t0 = Date.now();
      const err = await client.callTool({ name: 'faulty__bad_reply', arguments: { kind } }).then(() => null, (e) => e);
      assert.ok(err, `${kind}: the call failed`);
      assert.match(err.message, /not valid JSON-RPC/, kind);
      assert.ok(Date.now() - t0 < 2000, `${kind}: failed at once, not at the tool timeout`);
    }
    assert.equal(textOf(await client.callTool({ name: 'faulty__echo', arguments: { message: 'still' } })), 'still');
    await client.close();
  });
});

test('upstream stderr is escaped, truncated and rate-limited; stdio upstreams get a minimal environment', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('faulty', FAULTY, { config: { command: SMG, args: ['run', FAULTY],
    env: { OWN: 'mine' }, inherit_env: ['SMG_E2E_SHARED*'] } })], { mode: 'aggregate' }));
  await withGateway(cfg, async (gw) => {
    const client = await httpClient(gw.url);
    const env = async (name) => textOf(await client.callTool({ name: 'faulty__env', arguments: { name } }));
    assert.equal(await env('OTHER_SERVER_TOKEN'), '<unset>', 'smg\'s own environment is not passed on');
    assert.equal(await env('OWN'), 'mine');
    assert.equal(await env('SMG_E2E_SHARED_X'), 'yes', 'inherit_env prefixes');
    assert.notEqual(await env('PATH'), '<unset>');
    assert.equal(textOf(await client.callTool({ name: 'faulty__stderr_flood', arguments: { lines: 5000 } })), 'flooded');
    await sleep(300);
    const logs = gw.logs();
    assert.match(logs, /\[faulty\] \\x1b\[31mred\\x0dOVERWRITE/, 'control bytes escaped');
    assert.ok(!/\x1b\[31m/.test(logs), 'no raw escape sequence reaches the log');
    const lines = (logs.match(/flood line/g) || []).length;
    assert.ok(lines > 50 && lines < 1000, `rate-limited: ${lines} of 5000 lines logged`);
    await sleep(1200);
    assert.match(gw.logs(), /stderr line\(s\) dropped \(rate limit\)/);
    await client.close();
  }, { env: { OTHER_SERVER_TOKEN: 'secret', SMG_E2E_SHARED_X: 'yes' } });
});

test('a dead upstream command fails calls with a clear error, other servers work', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO),
    { server_name: 'ghost', config: { command: '/nonexistent/mcp-server', args: [] }, restart_backoff_max: 0.2 }],
  { mode: 'aggregate' }, { timeout_settings: { discovery_timeout: 2 } }));
  await withGateway(cfg, async (gw) => {
    const client = await httpClient(gw.url);
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'echo__echo'), 'the live server is listed');
    assert.ok(!tools.some((t) => t.name.startsWith('ghost__')));
    const err = await client.callTool({ name: 'ghost__x', arguments: {} }).then(() => null, (e) => e);
    assert.match(err.message, /upstream ghost (is unavailable|did not answer)/);
    await client.close();
  });
});
