// What clients are told when their view changes: a reload that changes a project's servers
// sends list_changed to that project's sessions and to no one else, a session follows its
// project to another mcp_config at once, and a flood of upstream list_changed reaches a
// client coalesced (at most one per kind per 250 ms).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  ECHO, FAULTY, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, stdioClient, textOf, sleep,
} from './helpers.mjs';

const KEY_A = 'key-alpha-0123456789abcdef0123456789';
const KEY_B = 'key-beta-0123456789abcdef01234567890';

function doc({ denyA = [], projectA = 'ca' } = {}) {
  return {
    plugins: { auth: { provider: 'local_apikey', config: {} } },
    mcp_configs: {
      ca: { mcp_config_name: 'a', mcp_config: [luaServer('alpha', ECHO, { deny_tools: denyA })] },
      cb: { mcp_config_name: 'b', mcp_config: [luaServer('beta', ECHO)] },
    },
    projects: { pa: { project_name: 'A', mcp_config_id: projectA }, pb: { project_name: 'B', mcp_config_id: 'cb' } },
    users: { ua: { email: 'a@example.com' }, ub: { email: 'b@example.com' } },
    apikeys: { [KEY_A]: { project_id: 'pa', user_id: 'ua' }, [KEY_B]: { project_id: 'pb', user_id: 'ub' } },
    gateway: { port: 0, mode: 'aggregate', reload_debounce: 0.05 },
  };
}

async function watched(url, key) {
  const c = await httpClient(url, { headers: { 'X-API-Key': key } });
  c.told = 0;
  c.setNotificationHandler(ToolListChangedNotificationSchema, () => { c.told++; });
  await c.listTools();
  return c;
}

const names = async (c) => (await c.listTools()).tools.map((t) => t.name);

test('a reload tells the sessions whose view changed, and only them; a session follows its project', async () => {
  const path = writeConfig(doc());
  await withGateway(path, async (gw) => {
    const a = await watched(gw.url, KEY_A);
    const b = await watched(gw.url, KEY_B);
    await sleep(300); // GET streams open
    writeFileSync(path, JSON.stringify(doc({ denyA: ['sleep'] })));
    for (let i = 0; i < 60 && a.told === 0; i++) await sleep(50);
    await sleep(400);
    assert.equal(a.told, 1, 'project A was told once');
    assert.equal(b.told, 0, 'project B saw no change and was told nothing');
    assert.ok(!(await names(a)).includes('alpha__sleep'), 'the new deny list applies to the open session');
    writeFileSync(path, JSON.stringify(doc({ denyA: ['sleep'], projectA: 'cb' })));
    for (let i = 0; i < 60 && a.told === 1; i++) await sleep(50);
    assert.equal(a.told, 2);
    const now = await names(a);
    assert.ok(now.includes('beta__echo') && !now.some((n) => n.startsWith('alpha__')), now.join(','));
    assert.equal(textOf(await a.callTool({ name: 'beta__echo', arguments: { message: 'moved' } })), 'moved');
    assert.equal(b.told, 0);
    await a.close();
    await b.close();
  });
});

test('a reload tells a stdio client too', async () => {
  const d = doc();
  delete d.plugins;
  d.gateway.mcp_config_id = 'ca';
  const path = writeConfig(d);
  const { client, transport } = await stdioClient(path);
  let told = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => { told++; });
  try {
    assert.ok((await names(client)).includes('alpha__sleep'));
    writeFileSync(path, JSON.stringify({ ...d, mcp_configs: { ...d.mcp_configs,
      ca: { mcp_config: [luaServer('alpha', ECHO, { deny_tools: ['sleep'] })] } } }));
    for (let i = 0; i < 60 && told === 0; i++) await sleep(50);
    assert.equal(told, 1);
    assert.ok(!(await names(client)).includes('alpha__sleep'));
  } finally {
    await transport.close();
  }
});

test('10,000 upstream list_changed reach a client as at most a few notifications', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('faulty', FAULTY)], { mode: 'aggregate' }));
  await withGateway(cfg, async (gw) => {
    const c = await httpClient(gw.url);
    let told = 0;
    c.setNotificationHandler(ToolListChangedNotificationSchema, () => { told++; });
    await sleep(300);
    assert.equal(textOf(await c.callTool({ name: 'faulty__list_changed_flood', arguments: { count: 10000 } })), 'announced');
    await sleep(800);
    assert.ok(told >= 1 && told <= 3, `told ${told} times`);
    assert.equal(textOf(await c.callTool({ name: 'faulty__echo', arguments: { message: 'ok' } })), 'ok');
    await c.close();
  });
});
