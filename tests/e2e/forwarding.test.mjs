// Forwarding of what is not a plain request/response: client cancellation reaches the
// upstream with the id it knows, and an upstream's list_changed refreshes the aggregated
// view and reaches the client's GET stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { join } from 'node:path';
import { ECHO, FAULTY, FIXTURES, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf, sleep } from './helpers.mjs';

const cfg = () => writeConfig(gatewayConfig([luaServer('echo', ECHO), luaServer('faulty', FAULTY)], { mode: 'aggregate' }));

test('a cancelled call is cancelled upstream too', async () => {
  await withGateway(cfg(), async (gw) => {
    const client = await httpClient(gw.url);
    const ac = new AbortController();
    const t0 = Date.now();
    const p = client.callTool({ name: 'faulty__slow', arguments: {} }, undefined, { signal: ac.signal });
    await sleep(200);
    ac.abort('user gave up');
    await assert.rejects(p);
    await sleep(200);
    assert.equal(textOf(await client.callTool({ name: 'faulty__cancellations', arguments: {} })), '1');
    assert.ok(Date.now() - t0 < 1500, 'did not wait for the slow call');
    // The session is healthy afterwards.
    assert.equal(textOf(await client.callTool({ name: 'echo__echo', arguments: { message: 'ok' } })), 'ok');
    await client.close();
  });
});

test('list_changed from an upstream refreshes the aggregated list and reaches the client', async () => {
  await withGateway(cfg(), async (gw) => {
    const client = await httpClient(gw.url);
    const watcher = await httpClient(gw.url, { name: 'watcher' });
    let notified = 0;
    watcher.setNotificationHandler(ToolListChangedNotificationSchema, () => { notified++; });
    const before = (await watcher.listTools()).tools.map((t) => t.name);
    assert.ok(!before.includes('faulty__fresh'));
    await sleep(300); // the watcher's GET stream is open
    await client.callTool({ name: 'faulty__add_tool', arguments: { name: 'fresh' } });
    for (let i = 0; i < 40 && notified === 0; i++) await sleep(50);
    assert.ok(notified >= 1, 'the other session was told');
    const after = (await watcher.listTools()).tools.map((t) => t.name);
    assert.ok(after.includes('faulty__fresh'), 'the cached list was refreshed');
    assert.equal(textOf(await watcher.callTool({ name: 'faulty__fresh', arguments: {} })), 'fresh');
    await client.close();
    await watcher.close();
  });
});

test('an HTTP upstream GET stream that drops is resumed with Last-Event-ID', async () => {
  const { spawn } = await import('node:child_process');
  const fixture = spawn(process.execPath, [join(FIXTURES, 'servers/dropping_get.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve) => fixture.stdout.once('data', (d) => resolve(String(d).trim())));
  try {
    const cfg = gatewayConfig([{ server_name: 'up', config: { url } }], { mode: 'aggregate' });
    await withGateway(writeConfig(cfg), async (gw) => {
      const c = await httpClient(gw.url);
      assert.deepEqual((await c.listTools()).tools.map((t) => t.name), ['up__noop']);
      let seen = [];
      for (let i = 0; i < 100 && seen.length < 3; i++) {
        seen = await (await fetch(url.replace('/mcp', '/seen'))).json();
        if (seen.length < 3) await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(seen.slice(0, 3), [null, 'ev-1', 'ev-2']);
      await c.close();
    });
  } finally {
    fixture.kill();
  }
});
