// The admin REST API beside a running gateway: the seed's routes with its {message, data,
// timestamp} answers, Bearer admin_apikey auth (constant-time compare, /health open, no
// CORS), stable error codes, the seed's broken routes working, exports confined to the
// admin files directory, API keys in URL paths never logged, an OpenAPI document that
// matches what is served, concurrent writes that lose nothing, and changes that reach the
// gateway at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync, writeFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { SMG, ECHO, luaServer, writeConfig, withGateway } from './helpers.mjs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const ADMIN = 'admin-key-0123456789abcdef0123456789abcdef';

function config() {
  return writeConfig({
    mcp_configs: { main: { mcp_config_name: 'main_config', mcp_config: [luaServer('echo', ECHO, {
      input_guardrails_policy: { enabled: true, policy_name: 'p', guardrails: ['tool_scan'], block: ['tool_changed'] } })] } },
    projects: {}, users: {}, apikeys: {},
    plugins: { auth: { provider: 'local_apikey' } },
    admin_apikey: ADMIN,
    gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'main', admin: { port: 0 } },
  });
}

async function withAdmin(fn) {
  const cfg = config();
  await withGateway(cfg, async (gw) => {
    let base;
    for (let i = 0; i < 50 && !base; i++) {
      const m = gw.logs().match(/admin API on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) base = m[1];
      else await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(base, 'the admin API started');
    const api = async (method, path, body, key = ADMIN, headers = {}) => {
      const res = await fetch(base + path, { method, headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}),
        ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers }, body: body ? JSON.stringify(body) : undefined });
      const text = await res.text();
      let json;
      try { json = JSON.parse(text); } catch { json = text; }
      return { status: res.status, body: json };
    };
    await fn({ gw, cfg, base, api });
  });
}

test('auth, health, no CORS, answers in the seed shape, stable errors', async () => {
  await withAdmin(async ({ api }) => {
    let r = await api('GET', '/health', null, null);
    assert.equal(r.status, 200);
    assert.ok(r.body.version && r.body.config_path);
    // The OAuth callback needs no admin key, but only a state the gateway issued redeems.
    r = await api('GET', '/oauth/callback?code=c&state=forged', null, null);
    assert.equal(r.status, 400);
    assert.match(r.body, /unknown or expired state/);
    assert.equal((await api('POST', '/oauth/callback?state=forged', null, null)).status, 405);
    r = await api('GET', '/api/v1/oauth/pending');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data, []);
    r = await api('GET', '/api/v1/users', null, null);
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'unauthorized');
    r = await api('GET', '/api/v1/users', null, 'wrong');
    assert.equal(r.status, 401);
    r = await api('GET', '/api/v1/users', null, ADMIN, { Origin: 'http://evil.example' });
    assert.equal(r.status, 403, 'no browser origin is served');
    r = await api('GET', '/api/v1/users');
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), ['data', 'message', 'timestamp']);
    r = await api('POST', '/api/v1/users', { email: 'not an email' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_request');
    r = await api('GET', '/api/v1/users/nobody@example.com');
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'not_found');
    r = await api('POST', '/api/v1/users', { email: 'a@example.com', colour: 'red' });
    assert.equal(r.status, 400);
    assert.match(r.body.detail, /unknown field "colour"/);
    r = await api('PATCH', '/api/v1/users');
    assert.equal(r.status, 405);
    r = await api('DELETE', '/health', null, null);
    assert.equal(r.status, 405);
    // Errors name the request's fields, not the CLI's flags.
    r = await api('POST', '/api/v1/users', {});
    assert.equal(r.status, 400);
    assert.match(r.body.detail, /^email is required/);
    r = await api('GET', '/api/v1/nothing-here');
    assert.equal(r.status, 404);
  });
});

test('20 parallel POST /users leave 20 users', async () => {
  await withAdmin(async ({ api, cfg }) => {
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => api('POST', '/api/v1/users', { email: `p${i}@example.com` })));
    for (const r of rs) assert.equal(r.status, 201, JSON.stringify(r.body));
    const users = JSON.parse(readFileSync(cfg, 'utf8')).users;
    assert.equal(Object.keys(users).length, 20);
  });
});

test('the seed routes that answered 500 work; exports stay in the files directory; keys in paths are not logged', async () => {
  await withAdmin(async ({ gw, cfg, api }) => {
    assert.equal((await api('POST', '/api/v1/users', { email: 'ada@example.com' })).status, 201);
    assert.equal((await api('POST', '/api/v1/projects', { project_name: 'alpha', mcp_config_name: 'ignored' })).status, 201);
    let r = await api('POST', '/api/v1/projects/alpha/assign-config', { config_name: 'main_config' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // The seed's POST /projects/{p}/users always answered 500.
    r = await api('POST', '/api/v1/projects/alpha/users', { email: 'ada@example.com' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    r = await api('POST', '/api/v1/users/ada%40example.com/api-keys', { project_name: 'alpha' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const key = r.body.data.api_key;
    // The key works against the gateway at once.
    const client = new Client({ name: 'admin-test', version: '1.0.0' });
    let listed;
    for (let i = 0; i < 40 && !listed; i++) {
      try {
        await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { apikey: key } } }));
        listed = await client.listTools();
      } catch { await new Promise((res) => setTimeout(res, 50)); }
    }
    assert.ok(listed && listed.tools.length > 0, 'the new key is accepted by the gateway');
    await client.close();
    // A key in the path: served, and only its mask is logged.
    r = await api('GET', `/api/v1/api-keys/${key}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(!gw.logs().includes(key), 'the key never reaches the log');
    assert.match(gw.logs(), new RegExp(`/api/v1/api-keys/\\*\\*\\*\\*${key.slice(-4)}`));
    // The seed's rotate (empty model) and delete-with-force (read a missing field).
    r = await api('POST', '/api/v1/api-keys/rotate', { api_key: key });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.data.new_api_key);
    r = await api('DELETE', '/api/v1/users/ada%40example.com', { force: true });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // add-server with an args list (the seed split a string and answered 500 for a list).
    r = await api('POST', '/api/v1/configs/main_config/servers', { server_name: 'files', server_command: 'npx',
      args: ['-y', '@scope/pkg,with,commas'], env: { A: 'b' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const server = JSON.parse(readFileSync(cfg, 'utf8')).mcp_configs.main.mcp_config.find((s) => s.server_name === 'files');
    assert.deepEqual(server.config.args, ['-y', '@scope/pkg,with,commas']);
    // Exports: in `data`, or a plain file name inside the files directory; never a server path.
    r = await api('POST', '/api/v1/configs/main_config/export', {});
    assert.equal(r.status, 200);
    assert.equal(r.body.data.mcp_config_name, 'main_config');
    r = await api('POST', '/api/v1/configs/main_config/export', { output_file: '/etc/evil.json' });
    assert.equal(r.status, 400);
    r = await api('POST', '/api/v1/configs/main_config/export', { output_file: '../evil.json' });
    assert.equal(r.status, 400);
    r = await api('POST', '/api/v1/configs/main_config/export', { output_file: 'main.json' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(existsSync(cfg.replace(/[^/]+$/, 'admin-files/main.json')));
    // Backup into `data`, then restore it from the body (the seed read a missing field).
    r = await api('POST', '/api/v1/system/backup', {});
    const backup = r.body.data.config;
    assert.equal((await api('POST', '/api/v1/users', { email: 'later@example.com' })).status, 201);
    r = await api('POST', '/api/v1/system/restore', { content: backup });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(!Object.values(JSON.parse(readFileSync(cfg, 'utf8')).users).some((u) => u.email === 'later@example.com'));
    // `{}` validates (every section has a default) but is no backup: refused, and the API
    // keeps working. A backup without admin_apikey keeps the current key.
    const before = readFileSync(cfg, 'utf8');
    r = await api('POST', '/api/v1/system/restore', { content: {} });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.detail, /not a config backup/);
    assert.equal(readFileSync(cfg, 'utf8'), before);
    const keyless = { ...backup };
    delete keyless.admin_apikey;
    r = await api('POST', '/api/v1/system/restore', { content: keyless });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.admin_apikey_kept, true);
    assert.equal((await api('GET', '/api/v1/users')).status, 200, 'the admin key still works');
    // A file that is read must be a regular file in the files directory, not a symlink out.
    const files = cfg.replace(/[^/]+$/, 'admin-files');
    writeFileSync(`/tmp/smg-e2e-outside-${process.pid}.json`, JSON.stringify(backup));
    try { unlinkSync(`${files}/link.json`); } catch { /* absent */ }
    symlinkSync(`/tmp/smg-e2e-outside-${process.pid}.json`, `${files}/link.json`);
    r = await api('POST', '/api/v1/system/restore', { input_file: 'link.json' });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.detail, /not a regular file/);
    unlinkSync(`/tmp/smg-e2e-outside-${process.pid}.json`);
    assert.match(gw.logs(), /admin API: POST \/api\/v1\/system\/restore -> 400/, 'the log names the HTTP status');
    // A change that would break the config is refused with 422 and writes nothing.
    r = await api('POST', '/api/v1/configs/main_config/servers', { server_name: 'bad name!', server_command: 'x' });
    assert.equal(r.status, 422);
    assert.equal(r.body.error.code, 'invalid_config');
  });
});

test('/openapi.json documents every route it serves, and serves every route it documents', async () => {
  await withAdmin(async ({ api }) => {
    const doc = (await api('GET', '/openapi.json', null, null)).body;
    assert.equal(doc.openapi, '3.1.0');
    let operations = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        operations++;
        if (path === '/health' || path === '/openapi.json' || path === '/oauth/callback') continue;
        // answered in process: covered below and in oauth.test.mjs
        if (path.startsWith('/api/v1/cache/') || path.startsWith('/api/v1/oauth/')) continue;
        const concrete = path.replace('{c}', 'main_config').replace('{p}', 'nope').replace('{u}', 'nobody@example.com')
          .replace('{s}', 'nope').replace('{key}', 'nokey');
        const r = await api(method.toUpperCase(), concrete, method === 'get' || method === 'delete' ? null : {});
        assert.notEqual(r.status, 405, `${method} ${path}`);
        assert.ok(!(r.status === 404 && /^no route/.test(r.body.detail || '')), `${method} ${path} is served`);
      }
    }
    assert.equal(operations, 67,
      "the seed's 57 routes (with /health), /openapi.json, pins (3), cache (2), oauth (3) and its callback");
  });
});

test('pins and the discovery cache through the API and `smg cache`', async () => {
  await withAdmin(async ({ gw, cfg, api }) => {
    const client = new Client({ name: 'cache-test', version: '1.0.0' });
    // Make a key through the API, list tools with it (fills the cache and the pins).
    await api('POST', '/api/v1/users', { email: 'c@example.com' });
    await api('POST', '/api/v1/projects', { project_name: 'c' });
    await api('POST', '/api/v1/projects/c/assign-config', { config_name: 'main_config' });
    await api('POST', '/api/v1/projects/c/users', { email: 'c@example.com' });
    const key = (await api('POST', '/api/v1/users/c%40example.com/api-keys', { project_name: 'c' })).body.data.api_key;
    for (let i = 0; i < 40; i++) {
      try {
        await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { apikey: key } } }));
        break;
      } catch { await new Promise((res) => setTimeout(res, 50)); }
    }
    await client.listTools();
    let r = await api('GET', '/api/v1/cache/status');
    assert.equal(r.status, 200);
    const tenant = Object.values(r.body.data.tenants).find((t) => t.tools.servers.echo?.exists);
    assert.ok(tenant, JSON.stringify(r.body.data));
    assert.ok(r.body.data.global.total_tool_caches >= 1);
    const cli = spawnSync(SMG, ['cache', 'status', '--config', cfg, '--json'], { encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    assert.ok(JSON.parse(cli.stdout).global.total_gateways >= 1);
    const text = spawnSync(SMG, ['cache', 'status', '--config', cfg], { encoding: 'utf8' });
    assert.match(text.stdout, /echo: \d+ tool\(s\) cached until/);
    const cleared = spawnSync(SMG, ['cache', 'clear', '--server-name', 'echo', '--config', cfg], { encoding: 'utf8' });
    assert.equal(cleared.status, 0, cleared.stderr);
    assert.match(cleared.stdout, /Cache cleared for server echo \([1-9]\d* list\(s\)\)/);
    r = await api('GET', '/api/v1/pins');
    assert.equal(r.status, 200);
    assert.ok(r.body.data.some((p) => p.server === 'echo' && p.status === 'approved'), 'first sight pinned');
    r = await api('POST', '/api/v1/pins/reject', { ids: ['echo/echo'] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data.pins, ['echo/echo']);
    r = await api('POST', '/api/v1/pins/approve', { ids: ['echo/nope'] });
    assert.equal(r.status, 404);
    await client.close();
  });
});
