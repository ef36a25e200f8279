// Stdio upstreams started through `smg sandbox-exec`: no_new_privs, resource limits and,
// with network: false, no network at all (not even the gateway on loopback). Limits hold:
// a server starved by its own keeps failing to start while the others serve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURES, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf } from './helpers.mjs';

const INTROSPECT = join(FIXTURES, 'servers/introspect.lua');

test('a sandboxed server runs with no_new_privs, its limits and no network', async () => {
  const cfg = gatewayConfig([
    luaServer('boxed', INTROSPECT, { sandbox: { open_files: 64, cpu_seconds: 600, network: false } }),
    luaServer('free', INTROSPECT),
  ], { mode: 'aggregate' });
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    const boxed = (await c.callTool({ name: 'boxed__confinement', arguments: {} })).structuredContent;
    assert.deepEqual({ ...boxed, address_space: undefined }, { no_new_privs: '1', open_files: '64', address_space: undefined, cpu_seconds: '600' });
    const free = (await c.callTool({ name: 'free__confinement', arguments: {} })).structuredContent;
    assert.notEqual(free.open_files, '64');
    const port = new URL(gw.url).port;
    assert.equal(textOf(await c.callTool({ name: 'boxed__connect', arguments: { port } })), 'unreachable');
    assert.equal(textOf(await c.callTool({ name: 'free__connect', arguments: { port } })), 'connected');
    await c.close();
  });
});

test('a server whose limits starve it never comes up; the others serve', async () => {
  // A memory limit below what the server needs to start (the memory limit is checked
  // here rather than read back: ASan builds reserve more address space than any limit).
  const cfg = gatewayConfig([luaServer('starved', INTROSPECT, { sandbox: { memory_mb: 16 } }), luaServer('ok', INTROSPECT)],
    { mode: 'aggregate' });
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    const names = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('ok__confinement'));
    assert.ok(!names.includes('starved__confinement'), 'the starved server never came up');
    await c.close();
  });
});
