// Remote upstreams that still speak the 2024-11-05 HTTP+SSE transport, played by
// supergateway (from npm) fronting the bundled echo server: smg detects them when the
// initialize POST is refused (or uses `transport: "sse"` when told), survives the server
// going away, and reconnects when it is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ROOT, SMG, ECHO, gatewayConfig, writeConfig, withGateway, httpClient, textOf, sleep } from './helpers.mjs';

const SUPERGATEWAY = join(ROOT, 'tests/node_modules/.bin/supergateway');

const freePort = () => new Promise((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

// Starts supergateway stdio->SSE on `port`; resolves once its SSE endpoint answers.
async function legacyServer(port) {
  const p = spawn(SUPERGATEWAY, ['--stdio', `${SMG} run ${ECHO}`, '--port', String(port), '--logLevel', 'none'],
    { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    try {
      const ctl = new AbortController();
      const r = await fetch(`http://127.0.0.1:${port}/sse`, { signal: ctl.signal });
      ctl.abort();
      if (r.status === 200) return p;
    } catch { /* not up yet */ }
    await sleep(50);
  }
  p.kill('SIGKILL');
  throw new Error('supergateway did not start');
}

const stop = (p) => new Promise((resolve) => { p.on('exit', resolve); p.kill('SIGTERM'); });

test('an HTTP+SSE upstream is detected, used, and reconnected after it restarts', async () => {
  const port = await freePort();
  let legacy = await legacyServer(port);
  const cfg = gatewayConfig([{ server_name: 'old', config: { url: `http://127.0.0.1:${port}/sse` } }], { mode: 'aggregate' });
  try {
    await withGateway(writeConfig(cfg), async (gw) => {
      const c = await httpClient(gw.url);
      assert.deepEqual((await c.listTools()).tools.map((t) => t.name).sort(), ['old__add', 'old__echo', 'old__sleep']);
      assert.equal(textOf(await c.callTool({ name: 'old__echo', arguments: { message: 'legacy' } })), 'legacy');
      assert.match(gw.logs(), /upstream old answered HTTP 404 to initialize; trying the HTTP\+SSE transport/);
      // The server goes away: calls fail with a clear error, and the gateway keeps serving.
      await stop(legacy);
      let r;
      for (let i = 0; i < 50; i++) {
        r = await c.callTool({ name: 'old__echo', arguments: { message: 'x' } }).catch((e) => e);
        if (r instanceof Error) break;
        await sleep(20);
      }
      assert.match(String(r), /upstream old is unavailable/);
      // It comes back on the same address: the gateway reconnects by itself.
      legacy = await legacyServer(port);
      let text;
      for (let i = 0; i < 100 && text !== 'back'; i++) {
        const res = await c.callTool({ name: 'old__echo', arguments: { message: 'back' } }).catch(() => null);
        text = res && textOf(res);
        if (text !== 'back') await sleep(100);
      }
      assert.equal(text, 'back');
      await c.close();
    });
  } finally {
    await stop(legacy);
  }
});

test('transport "sse" skips detection', async () => {
  const port = await freePort();
  const legacy = await legacyServer(port);
  const cfg = gatewayConfig([{ server_name: 'old', config: { url: `http://127.0.0.1:${port}/sse`, transport: 'sse' } }],
    { mode: 'aggregate' });
  try {
    await withGateway(writeConfig(cfg), async (gw) => {
      const c = await httpClient(gw.url);
      const r = await c.callTool({ name: 'old__add', arguments: { a: 2, b: 40 } });
      assert.deepEqual(r.structuredContent, { sum: 42 });
      assert.doesNotMatch(gw.logs(), /trying the HTTP\+SSE transport/);
      await c.close();
    });
  } finally {
    await stop(legacy);
  }
});
