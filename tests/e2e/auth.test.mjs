// local_apikey auth end to end: API key -> project -> mcp_config, from any of the three
// headers; invalid and disabled keys get 401; a session cannot be used with another
// identity's key; keys never reach the log; stdio takes the key from the environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ECHO, INIT, luaServer, writeConfig, withGateway, httpClient, stdioClient, post, textOf,
} from './helpers.mjs';

const KEY_A = 'key-alpha-0123456789abcdef0123456789';
const KEY_B = 'key-beta-0123456789abcdef01234567890';
const KEY_OFF = 'key-disabled-0123456789abcdef012345';

function authConfig() {
  return writeConfig({
    plugins: { auth: { provider: 'local_apikey', config: {} } },
    mcp_configs: {
      ca: { mcp_config_name: 'a', mcp_config: [luaServer('alpha', ECHO)] },
      cb: { mcp_config_name: 'b', mcp_config: [luaServer('beta', ECHO)] },
    },
    projects: { pa: { project_name: 'A', mcp_config_id: 'ca', users: ['ua'] }, pb: { project_name: 'B', mcp_config_id: 'cb', users: ['ub'] } },
    users: { ua: { email: 'a@example.com' }, ub: { email: 'b@example.com' } },
    apikeys: { [KEY_A]: { project_id: 'pa', user_id: 'ua' }, [KEY_B]: { project_id: 'pb', user_id: 'ub' },
      [KEY_OFF]: { project_id: 'pa', user_id: 'ua', disabled: true } },
    gateway: { port: 0, mode: 'aggregate' },
  });
}

test('API keys select the project config; bad keys get 401; sessions stay with their identity', async () => {
  await withGateway(authConfig(), async (gw) => {
    let r = await post(gw.url, INIT);
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate'), /^Bearer realm="smg"/);
    assert.match(r.json.error.message, /missing API key/);
    r = await post(gw.url, INIT, { 'X-API-Key': 'wrong-key-000000000000000' });
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /invalid API key/);
    r = await post(gw.url, INIT, { Authorization: `Bearer ${KEY_OFF}` });
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /disabled/);

    const a = await httpClient(gw.url, { headers: { 'X-API-Key': KEY_A } });
    const b = await httpClient(gw.url, { headers: { Authorization: `Bearer ${KEY_B}` } });
    const c = await httpClient(gw.url, { headers: { apikey: KEY_A } });
    assert.ok((await a.listTools()).tools.every((t) => t.name.startsWith('alpha__')));
    assert.ok((await b.listTools()).tools.every((t) => t.name.startsWith('beta__')));
    assert.equal(textOf(await c.callTool({ name: 'alpha__echo', arguments: { message: 'c' } })), 'c');
    await assert.rejects(b.callTool({ name: 'alpha__echo', arguments: { message: 'x' } }), /unknown tool/);

    // A's session id with B's key is refused.
    const sidA = a.transport?.sessionId ?? a._transport?.sessionId;
    assert.ok(sidA, 'session id');
    r = await post(gw.url, { jsonrpc: '2.0', id: 5, method: 'ping' }, { 'Mcp-Session-Id': sidA, 'X-API-Key': KEY_B });
    assert.equal(r.status, 403);
    r = await post(gw.url, { jsonrpc: '2.0', id: 6, method: 'ping' }, { 'Mcp-Session-Id': sidA });
    assert.equal(r.status, 401, 'every request is authenticated, not only initialize');
    r = await post(gw.url, { jsonrpc: '2.0', id: 7, method: 'ping' }, { 'Mcp-Session-Id': sidA, 'X-API-Key': KEY_A });
    assert.equal(r.status, 200);

    for (const k of [KEY_A, KEY_B, KEY_OFF]) assert.ok(!gw.logs().includes(k), 'no key in the log');
    await a.close(); await b.close(); await c.close();
  });
});

test('stdio takes the key from SMG_API_KEY', async () => {
  const cfg = authConfig();
  const { client } = await stdioClient(cfg, { env: { SMG_API_KEY: KEY_B } });
  const { tools } = await client.listTools();
  assert.ok(tools.length > 0 && tools.every((t) => t.name.startsWith('beta__')));
  await client.close();
  await assert.rejects(stdioClient(cfg, { env: { SMG_API_KEY: 'nope-nope-nope-nope' } }), /Unauthorized: invalid API key/);
});
