// Isolation between tenants and against hostile peers: per-identity and per-peer session
// limits (429 with Retry-After, the others keep working), idle and never-used session
// expiry, per-session upstreams bounded per identity, /health and smg_upstream_up, the
// non-loopback bind that needs auth, exact CORS origins, allow/deny in passthrough, and
// `config show` masking every secret it prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import {
  SMG, ECHO, FAULTY, INIT, gatewayConfig, luaServer, writeConfig, withGateway, startSmg, httpClient, post, rawSession,
  textOf, sleep,
} from './helpers.mjs';

const KEY_A = 'key-alpha-0123456789abcdef0123456789';
const KEY_B = 'key-beta-0123456789abcdef01234567890';

function authConfig(limits, serverExtra = {}) {
  return writeConfig({
    plugins: { auth: { provider: 'local_apikey', config: {} } },
    mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [luaServer('echo', ECHO, serverExtra)] } },
    projects: { pa: { project_name: 'A', mcp_config_id: 'c' }, pb: { project_name: 'B', mcp_config_id: 'c' } },
    users: { ua: { email: 'a@example.com' }, ub: { email: 'b@example.com' } },
    apikeys: { [KEY_A]: { project_id: 'pa', user_id: 'ua' }, [KEY_B]: { project_id: 'pb', user_id: 'ub' } },
    gateway: { port: 0, mode: 'aggregate', limits },
  });
}

test('one identity filling its session quota gets 429; another identity still gets in', async () => {
  await withGateway(authConfig({ max_sessions_per_identity: 3 }), async (gw) => {
    for (let i = 0; i < 3; i++) {
      const r = await post(gw.url, INIT, { 'X-API-Key': KEY_A });
      assert.equal(r.status, 200);
    }
    const r = await post(gw.url, INIT, { 'X-API-Key': KEY_A });
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get('retry-after')) > 0, 'Retry-After');
    assert.equal(r.json.error.data.limit, 'max_sessions_per_identity');
    const other = await httpClient(gw.url, { headers: { 'X-API-Key': KEY_B } });
    assert.equal(textOf(await other.callTool({ name: 'echo__echo', arguments: { message: 'b' } })), 'b');
    await other.close();
    const metrics = await (await fetch(gw.origin + '/metrics')).text();
    assert.match(metrics, /smg_limit_refusals_total\{limit="sessions_per_identity"\} 1/);
  });
});

test('sessions that never made a call expire quickly; used ones stay until their idle timeout', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO)],
    { mode: 'aggregate', limits: { unused_session_timeout: 1, session_idle_timeout: 60 } }));
  await withGateway(cfg, async (gw) => {
    const unused = await rawSession(gw.url);
    const used = await rawSession(gw.url);
    const call = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo__echo', arguments: { message: 'x' } } };
    assert.equal((await post(gw.url, call, { 'Mcp-Session-Id': used })).status, 200);
    await sleep(3000);
    assert.equal((await post(gw.url, { ...call, id: 3 }, { 'Mcp-Session-Id': unused })).status, 404, 'unused: expired');
    assert.equal((await post(gw.url, { ...call, id: 4 }, { 'Mcp-Session-Id': used })).status, 200, 'used: kept');
  });
});

test('per-session upstreams are bounded per identity and released when the session ends', async () => {
  await withGateway(authConfig({ max_session_upstreams_per_identity: 2 }, { sharing: 'per_session' }), async (gw) => {
    const h = { 'X-API-Key': KEY_A };
    const a = await httpClient(gw.url, { headers: h });
    const b = await httpClient(gw.url, { headers: h });
    assert.equal(textOf(await a.callTool({ name: 'echo__echo', arguments: { message: 'a' } })), 'a');
    assert.equal(textOf(await b.callTool({ name: 'echo__echo', arguments: { message: 'b' } })), 'b');
    const c = await httpClient(gw.url, { headers: h });
    const refused = await c.callTool({ name: 'echo__echo', arguments: { message: 'c' } }).then(() => null, (e) => e);
    assert.match(String(refused && refused.message), /Too many per-session upstreams/);
    const other = await httpClient(gw.url, { headers: { 'X-API-Key': KEY_B } });
    assert.equal(textOf(await other.callTool({ name: 'echo__echo', arguments: { message: 'o' } })), 'o',
      'another identity is not affected');
    await a.transport.terminateSession();
    await a.close();
    assert.equal(textOf(await c.callTool({ name: 'echo__echo', arguments: { message: 'c' } })), 'c', 'released');
    for (const x of [b, c, other]) await x.close();
  });
});

test('/health reports each upstream and answers 503 when none can serve; smg_upstream_up', async () => {
  const ghost = { server_name: 'ghost', config: { command: '/nonexistent/mcp-server', args: [] }, restart_backoff_max: 0.2 };
  let cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO), ghost], { mode: 'aggregate' }));
  await withGateway(cfg, async (gw) => {
    await sleep(800);
    const res = await fetch(gw.origin + '/health');
    assert.equal(res.status, 200);
    const doc = await res.json();
    assert.equal(doc.status, 'degraded');
    const by = Object.fromEntries(doc.upstreams.map((u) => [u.server, u]));
    assert.equal(by.echo.state, 'ready');
    assert.equal(by.ghost.state, 'down');
    assert.match(by.ghost.reason, /nonexistent|no such file|ENOENT/i);
    const metrics = await (await fetch(gw.origin + '/metrics')).text();
    assert.match(metrics, /smg_upstream_up\{server="echo"\} 1/);
    assert.match(metrics, /smg_upstream_up\{server="ghost"\} 0/);
  });
  cfg = writeConfig(gatewayConfig([ghost], { mode: 'aggregate' }));
  await withGateway(cfg, async (gw) => {
    await sleep(800);
    const res = await fetch(gw.origin + '/health');
    assert.equal(res.status, 503);
    assert.equal((await res.json()).status, 'down');
  });
});

test('a non-loopback bind without auth refuses to start unless --insecure', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate', host: '0.0.0.0' }));
  const run = (args) => new Promise((resolve) => {
    const p = spawn(SMG, ['serve', '--config', cfg, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
      if (/serving MCP on/.test(err) && !p.signalled) p.signalled = p.kill('SIGTERM');
    });
    p.on('exit', (code) => resolve({ code, err }));
  });
  const refused = await run([]);
  assert.equal(refused.code, 1);
  assert.match(refused.err, /refusing to serve 0\.0\.0\.0 without authentication/);
  const allowed = await run(['--insecure']);
  assert.equal(allowed.code, 0, allowed.err);
  assert.match(allowed.err, /serving MCP on http:\/\/0\.0\.0\.0:/);
});

test('CORS answers only exactly configured origins', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO)],
    { mode: 'aggregate', allowed_origins: ['https://app.example'] }));
  await withGateway(cfg, async (gw) => {
    let r = await post(gw.url, INIT, { Origin: 'https://app.example' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
    r = await post(gw.url, INIT, { Origin: 'https://app.example.evil' });
    assert.equal(r.status, 403);
    r = await post(gw.url, INIT, { Origin: 'http://localhost:9999' });
    assert.equal(r.status, 403);
  });
});

test('allow_tools / deny_tools hold in passthrough mode', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('faulty', FAULTY, { deny_tools: ['env', 'crash'] })],
    { mode: 'passthrough' }));
  await withGateway(cfg, async (gw) => {
    const client = await httpClient(gw.url);
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('echo'));
    assert.ok(!names.includes('env') && !names.includes('crash'), names.join(','));
    const err = await client.callTool({ name: 'env', arguments: { name: 'PATH' } }).then(() => null, (e) => e);
    assert.match(String(err && err.message), /Unknown tool: env/);
    await client.close();
  });
});

test('config show masks API keys, URL credentials and query values, secret flags and secret-shaped values', () => {
  const cfg = writeConfig({
    apikeys: { 'smg-0123456789abcdef0123456789abcdef': { project_id: 'p' } },
    projects: { p: { mcp_config_id: 'm' } },
    mcp_configs: { m: { mcp_config: [
      { server_name: 's', config: { command: 'x', args: ['--token', 'abcd1234secretvalue', '--api-key=zzzzzzzzzzzzzzzz',
        '--verbose', 'ghp_abcdefghijklmnopqrstuvwxyz0123'], env: { SOME_VAR: 'sk-abcdefghijklmnopqrstuvwx' } } },
      { server_name: 'r', config: { url: 'https://user:hunter2@example.com/mcp?access=abc123&x=1' } },
    ] } },
  });
  const out = execFileSync(SMG, ['config', 'show', cfg]).toString();
  for (const secret of ['0123456789abcdef0123456789ab', 'abcd1234secret', 'zzzzzzzzzzzz', 'ghp_abcdefgh', 'sk-abcdefgh',
    'hunter2', 'abc123']) {
    assert.ok(!out.includes(secret), `${secret} is masked in: ${out}`);
  }
  const doc = JSON.parse(out);
  assert.deepEqual(Object.keys(doc.apikeys), ['****cdef']);
  assert.equal(doc.mcp_configs.m.mcp_config[0].config.args[2], '--api-key=****zzzz');
  assert.equal(doc.mcp_configs.m.mcp_config[0].config.args[3], '--verbose', 'plain flags are kept');
  assert.equal(doc.mcp_configs.m.mcp_config[1].config.url, 'https://user:****@example.com/mcp?access=****&x=****');
});

test('200 undeleted sessions on a per_session HTTP upstream do not starve a new client', async () => {
  const back = await startSmg(writeConfig(gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate' })));
  try {
    const cfg = writeConfig(gatewayConfig([{ server_name: 'remote', config: { url: back.url }, sharing: 'per_session' }],
      { mode: 'aggregate', limits: { max_session_upstreams_per_identity: 400 } }));
    await withGateway(cfg, async (gw) => {
      const call = (id) => ({ jsonrpc: '2.0', id, method: 'tools/call',
        params: { name: 'remote__echo__echo', arguments: { message: 'hi' } } });
      for (let i = 0; i < 200; i++) {
        const sid = await rawSession(gw.url); // and never DELETEd, like the SDK's close()
        const r = await post(gw.url, call(2), { 'Mcp-Session-Id': sid });
        assert.equal(r.status, 200, r.text);
      }
      await sleep(500); // every upstream session's GET stream is open by now
      const client = await httpClient(gw.url);
      const t0 = Date.now();
      assert.equal(textOf(await client.callTool({ name: 'remote__echo__echo', arguments: { message: 'new' } })), 'new');
      assert.ok(Date.now() - t0 < 1000, `the new client's call took ${Date.now() - t0} ms`);
      await client.close();
    });
  } finally {
    await back.stop();
  }
});
