// Forwarding of what is not a plain request/response: client cancellation reaches the
// upstream with the id it knows, and an upstream's list_changed refreshes the aggregated
// view and reaches the client's GET stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { ECHO, FAULTY, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf, sleep } from './helpers.mjs';

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
