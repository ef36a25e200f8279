// Rate limits (gateway.rate_limits): token buckets per key (every request of one
// identity) and per tool (tools/call of one identity to one tool, or everyone's with
// scope "global"); a refusal is a JSON-RPC error naming the limit with retry_after, and a
// count in smg_limit_refusals_total. With the external cache on a real redis-server, two
// gateways share one bucket per key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECHO, SMG, luaServer, writeConfig, withGateway, startSmg, post, sleep } from './helpers.mjs';

const KEY_A = 'key-alpha-0123456789abcdef0123456789';
const KEY_B = 'key-beta-0123456789abcdef01234567890';

function config(rateLimits, common = {}) {
  return writeConfig({
    plugins: { auth: { provider: 'local_apikey', config: {} } },
    common_mcp_gateway_config: common,
    mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [luaServer('echo', ECHO)] } },
    projects: { p: { project_name: 'P', mcp_config_id: 'c', users: ['ua', 'ub'] } },
    users: { ua: { email: 'a@example.com' }, ub: { email: 'b@example.com' } },
    apikeys: { [KEY_A]: { project_id: 'p', user_id: 'ua' }, [KEY_B]: { project_id: 'p', user_id: 'ub' } },
    gateway: { port: 0, mode: 'aggregate', rate_limits: rateLimits },
  });
}

async function session(url, key) {
  const r = await post(url, { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'rl', version: '1' } } }, { 'X-API-Key': key });
  assert.equal(r.status, 200, r.text);
  const sid = r.headers.get('mcp-session-id');
  await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'Mcp-Session-Id': sid, 'X-API-Key': key });
  let id = 10;
  return (method, params) => post(url, { jsonrpc: '2.0', id: ++id, method, params }, { 'Mcp-Session-Id': sid, 'X-API-Key': key })
    .then((res) => res.json);
}

const echo = (call, msg) => call('tools/call', { name: 'echo__echo', arguments: { message: msg } });

test('per_key: a burst then refusals with retry_after; another key is unaffected; tokens come back', async () => {
  await withGateway(config({ per_key: { rate: 2, burst: 4 } }), async (gw) => {
    const a = await session(gw.url, KEY_A); // initialize: 1 token of 4
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await a('tools/list', {}));
    const refused = results.filter((r) => r.error);
    assert.ok(refused.length >= 2 && refused.length <= 4, `${refused.length} of 6 refused`);
    const e = refused[0].error;
    assert.equal(e.data.limit, 'rate_limits.per_key');
    assert.ok(e.data.retry_after >= 1);
    assert.match(e.message, /Rate limit exceeded/);
    const b = await session(gw.url, KEY_B);
    assert.ok((await b('tools/list', {})).result, 'another key has its own bucket');
    await sleep(1100); // 2 tokens a second
    assert.ok((await a('tools/list', {})).result, 'tokens come back at the configured rate');
    const metrics = await (await fetch(new URL('/metrics', gw.url))).text();
    assert.match(metrics, /smg_limit_refusals_total\{limit="rate_limits.per_key"\} [1-9]/);
  });
});

test('per_tool: one tool limited per identity, a global rule shared by all, an exemption', async () => {
  await withGateway(config({
    per_tool: { rate: 0.01, burst: 2 },
    tools: [
      { server: 'echo', tool: 'add', rate: 0 },                       // exempt
      { server: 'echo', tool: 'sleep', rate: 0.01, burst: 1, scope: 'global' },
    ],
  }), async (gw) => {
    const a = await session(gw.url, KEY_A);
    const b = await session(gw.url, KEY_B);
    assert.ok((await echo(a, 'x')).result);
    assert.ok((await echo(a, 'x')).result);
    const third = await echo(a, 'x');
    assert.equal(third.error.data.limit, 'rate_limits.per_tool');
    assert.match(third.error.message, /echo\/echo/);
    assert.ok((await echo(b, 'x')).result, 'per identity: B has its own echo bucket');
    for (let i = 0; i < 5; i++) {
      assert.ok((await a('tools/call', { name: 'echo__add', arguments: { a: 1, b: 2 } })).result, 'add is exempt');
    }
    assert.ok((await a('tools/call', { name: 'echo__sleep', arguments: { seconds: 0 } })).result);
    const shared = await b('tools/call', { name: 'echo__sleep', arguments: { seconds: 0 } });
    assert.equal(shared.error.data.limit, 'rate_limits.per_tool', 'the global bucket is shared by A and B');
  });
});

test('config validate names a bad rate-limit key', () => {
  const bad = writeConfig({ mcp_configs: { c: { mcp_config: [luaServer('echo', ECHO)] } },
    gateway: { rate_limits: { per_key: { rate: -1 }, tools: [{ tool: 'x', scope: 'everyone' }] } } });
  let out = '';
  try {
    execFileSync(SMG, ['config', 'validate', bad],
      { stdio: 'pipe' });
  } catch (e) { out = String(e.stdout) + String(e.stderr); }
  assert.match(out, /gateway\.rate_limits\.per_key\.rate/);
  assert.match(out, /gateway\.rate_limits\.tools\[0\]\.scope: must be one of identity, global/);
});

test('with Redis, two gateways share one bucket per key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smg-redis-'));
  const port = 21000 + Math.floor(Math.random() * 20000);
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir], { stdio: 'ignore' });
  try {
    await sleep(300);
    const common = { enkrypt_mcp_use_external_cache: true, enkrypt_cache_host: '127.0.0.1', enkrypt_cache_port: port };
    const cfg = config({ per_key: { rate: 0.01, burst: 5 } }, common);
    const g1 = await startSmg(cfg);
    const g2 = await startSmg(cfg);
    try {
      const a1 = await session(g1.url, KEY_A); // 1 token
      const a2 = await session(g2.url, KEY_A); // 2
      assert.ok((await a1('tools/list', {})).result); // 3
      assert.ok((await a2('tools/list', {})).result); // 4
      assert.ok((await a1('tools/list', {})).result); // 5
      const r = await a2('tools/list', {});
      assert.equal(r.error && r.error.data.limit, 'rate_limits.per_key', 'the sixth request, on the other gateway, is refused');
      const b = await session(g2.url, KEY_B);
      assert.ok((await b('tools/list', {})).result);
    } finally {
      assert.equal(await g1.stop(), 0);
      assert.equal(await g2.stop(), 0);
    }
  } finally {
    redis.kill('SIGTERM');
  }
});

test('with Redis gone, the local buckets still limit', async () => {
  const common = { enkrypt_mcp_use_external_cache: true, enkrypt_cache_host: '127.0.0.1', enkrypt_cache_port: 1 };
  await withGateway(config({ per_key: { rate: 0.01, burst: 3 } }, common), async (gw) => {
    const a = await session(gw.url, KEY_A);
    assert.ok((await a('tools/list', {})).result);
    assert.ok((await a('tools/list', {})).result);
    const r = await a('tools/list', {});
    assert.equal(r.error && r.error.data.limit, 'rate_limits.per_key');
  });
});
