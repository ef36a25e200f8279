// Upstream OAuth (oauth_config, client credentials) end to end against a local
// authorization server and an OAuth-protected MCP server (tests/fixtures/servers/
// oauth_server.mjs): the gateway's own token reaches the server, the client's never does;
// one token request for a burst of calls during a refresh; a 401 drops the token and the
// call is retried once; transient failures are retried, refusals are not; a stdio server
// gets the token in its environment; mutual TLS with certificates made by openssl here;
// instances share a token through Redis; the token never appears in the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, FIXTURES, SMG, writeConfig, withGateway, startSmg, httpClient, textOf, sleep } from './helpers.mjs';

const SERVER = join(FIXTURES, 'servers/oauth_server.mjs');
const SECRET = 'client-secret-0123456789abcdef';

async function authServer(args = []) {
  const p = spawn(process.execPath, [SERVER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [port, plainPort] = await new Promise((res, rej) => {
    p.stdout.on('data', (d) => {
      const m = /listening (\d+)(?: (\d+))?/.exec(String(d));
      if (m) res([Number(m[1]), Number(m[2] ?? m[1])]);
    });
    p.on('exit', (c) => rej(new Error(`oauth server exited ${c}`)));
  });
  const scheme = args.includes('--tls') ? 'https' : 'http';
  const base = `${scheme}://127.0.0.1:${port}`;
  const plainBase = `http://127.0.0.1:${plainPort}`;
  const ctl = (body) => fetch(`${plainBase}/_control`, { method: 'POST', body: JSON.stringify(body) });
  const stats = async () => (await fetch(`${plainBase}/_stats`)).json();
  return { base, plainBase, ctl, stats, stop: () => p.kill() };
}

const oauth = (base, extra = {}) => ({ enabled: true, OAUTH_VERSION: '2.0', OAUTH_TOKEN_URL: `${base}/token`,
  OAUTH_CLIENT_ID: 'smg-client', OAUTH_CLIENT_SECRET: SECRET, OAUTH_SCOPE: 'mcp:tools',
  OAUTH_REVOCATION_URL: `${base}/revoke`, ...extra });

const config = (base, extra = {}, gateway = {}, common = {}) => writeConfig({
  common_mcp_gateway_config: common,
  mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'prot', config: { url: `${base}/mcp` },
    oauth_config: oauth(base, extra) }] } },
  gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c', ...gateway },
});

test('the gateway\'s token reaches the server, the client\'s never; refreshed once for a burst; 401 retried', async () => {
  const as = await authServer();
  try {
    await withGateway(config(as.base, { OAUTH_TOKEN_EXPIRY_BUFFER: 1 }), async (gw) => {
      const c = await httpClient(gw.url, { headers: { Authorization: 'Bearer the-clients-own-token' } });
      const who = async () => textOf(await c.callTool({ name: 'prot__whoami', arguments: {} }));
      const first = await who();
      assert.match(first, /^Bearer tok-1-/);
      let s = await as.stats();
      assert.equal(s.tokenRequests, 1);
      assert.equal(s.clientAuth[0].method, 'client_secret_basic');
      assert.match(s.clientAuth[0].correlation, /^[0-9a-f]{16}$/, 'a correlation id');
      assert.ok(!s.auth.some((a) => a.includes('the-clients-own-token')), 'the client\'s token is never forwarded');
      assert.equal(await who(), first, 'cached');
      assert.equal((await as.stats()).tokenRequests, 1);
      // The server drops the token: 401, a new token, the call retried once and served.
      await as.ctl({ rejectCurrent: true });
      const second = await who();
      assert.match(second, /^Bearer tok-2-/);
      assert.match(gw.logs(), /refused the OAuth token \(401\)/);
      // A token that lives 2 s with a 1 s buffer is due for refresh after 1 s: a burst of
      // 100 calls then, while the token endpoint is slow, causes one token request.
      await as.ctl({ lifetime: 2, delay: 300 });
      await as.ctl({ rejectCurrent: true });
      await who(); // tok-3 (lifetime 2 s), via the 401 path
      const before = (await as.stats()).tokenRequests;
      await sleep(1100); // past expires - min(buffer, life/2)
      const c2 = await httpClient(gw.url); // (a session takes 64 calls in flight)
      const all = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? who()
        : c2.callTool({ name: 'prot__whoami', arguments: {} }).then(textOf))));
      assert.equal((await as.stats()).tokenRequests, before + 1, 'one token request for 100 calls');
      await c2.close();
      assert.equal(new Set(all).size, 1);
      // The token never appears whole in the log.
      for (const t of [first, second, ...all]) assert.ok(!gw.logs().includes(t.slice(7)), 'token masked in logs');
      await c.close();
    });
  } finally {
    as.stop();
  }
});

test('transient token failures are retried (2 s, 4 s...), a refusal is not; a stdio server gets the token in its env',
  async () => {
    const as = await authServer();
    try {
      await as.ctl({ failNext: 1, failStatus: 503 });
      const envServer = join(ROOT, 'tests/fixtures/servers/env_echo.lua');
      const cfg = writeConfig({
        mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [
          { server_name: 'prot', config: { url: `${as.base}/mcp` }, oauth_config: oauth(as.base) },
          { server_name: 'local', config: { command: SMG, args: ['run', envServer] },
            oauth_config: oauth(as.base, { OAUTH_USE_BASIC_AUTH: false }) },
          { server_name: 'bad', config: { url: `${as.base}/mcp` },
            oauth_config: oauth(as.base, { OAUTH_CLIENT_SECRET: 'wrong-secret-0000000000' }) },
        ] } },
        gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' },
      });
      await withGateway(cfg, async (gw) => {
        const c = await httpClient(gw.url);
        const t0 = Date.now();
        assert.match(textOf(await c.callTool({ name: 'prot__whoami', arguments: {} })), /^Bearer tok-/);
        assert.match(gw.logs(), /oauth prot: token request failed .*HTTP 503.*retrying in 2s/);
        const env = JSON.parse(textOf(await c.callTool({ name: 'local__env', arguments: {} })));
        assert.match(env.ENKRYPT_ACCESS_TOKEN, /^tok-/);
        assert.equal(env.AUTHORIZATION, `Bearer ${env.ENKRYPT_ACCESS_TOKEN}`);
        assert.equal(env.OAUTH_TOKEN_TYPE, 'Bearer');
        const s = await as.stats();
        assert.ok(s.clientAuth.some((a) => a.method === 'client_secret_post'), 'client_secret_post for that server');
        // A wrong secret: refused at once (no retries), the server unavailable with the reason.
        const n = s.tokenRequests;
        const r = await c.callTool({ name: 'bad__whoami', arguments: {} }).catch((e) => e);
        assert.match(String(r.message ?? JSON.stringify(r)), /invalid_client|unknown tool|not available|Unknown/i);
        assert.ok(Date.now() - t0 < 15000);
        assert.match(gw.logs(), /oauth bad: no token .*invalid_client/);
        assert.ok((await as.stats()).tokenRequests - n <= 2, 'a refusal is not retried');
        await c.close();
      });
    } finally {
      as.stop();
    }
  });

test('mutual TLS to the token endpoint with certificates made by openssl', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smg-mtls-'));
  const ossl = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test-ca');
  for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'smg-client']]) {
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    const ext = join(dir, `${name}.ext`);
    execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${ext}`]);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`,
      '-days', '1', '-extfile', ext);
  }
  const as = await authServer(['--tls', '--key', join(dir, 'server.key'), '--cert', join(dir, 'server.pem'), '--ca', join(dir, 'ca.pem')]);
  try {
    const mtls = { OAUTH_VERSION: '2.1', OAUTH_TOKEN_URL: `${as.base}/token`, OAUTH_REVOCATION_URL: `${as.base}/revoke`,
      OAUTH_USE_MTLS: true, OAUTH_CLIENT_CERT_PATH: join(dir, 'client.pem'), OAUTH_CLIENT_KEY_PATH: join(dir, 'client.key'),
      OAUTH_CA_BUNDLE_PATH: join(dir, 'ca.pem') };
    // Tokens from the TLS endpoint (client certificate, the test CA trusted); the MCP
    // endpoint of the same process over plain HTTP.
    const cfg = writeConfig({ mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'prot',
      config: { url: `${as.plainBase}/mcp` }, oauth_config: oauth(as.base, mtls) }] } },
    gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
    await withGateway(cfg, async (gw) => {
      const c = await httpClient(gw.url);
      assert.match(textOf(await c.callTool({ name: 'prot__whoami', arguments: {} })), /^Bearer tok-1-/);
      const s = await as.stats();
      assert.equal(s.clientAuth[0].cert, 'smg-client', 'the client certificate was presented');
      await c.close();
    });
    // Without the client certificate the TLS handshake fails: no token, a clear error.
    const noCert = writeConfig({ mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'prot',
      config: { url: `${as.plainBase}/mcp` }, oauth_config: oauth(as.base, { ...mtls, OAUTH_USE_MTLS: false }) }] } },
    gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
    await withGateway(noCert, async (gw) => {
      const c = await httpClient(gw.url);
      await c.callTool({ name: 'prot__whoami', arguments: {} }).catch(() => {});
      for (let i = 0; i < 40 && !/oauth prot: token request failed/.test(gw.logs()); i++) await sleep(50);
      assert.match(gw.logs(), /oauth prot: token request failed \(token endpoint unreachable/);
      await c.close();
    });
  } finally {
    as.stop();
  }
});

test('two instances share one token through Redis, sealed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smg-oauth-redis-'));
  const port = 21000 + Math.floor(Math.random() * 20000);
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir], { stdio: 'ignore' });
  const as = await authServer();
  try {
    for (let i = 0; i < 100; i++) {
      try { if (execFileSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).trim() === 'PONG') break; } catch { /* starting */ }
      await sleep(50);
    }
    const common = { enkrypt_mcp_use_external_cache: true, enkrypt_cache_host: '127.0.0.1', enkrypt_cache_port: port };
    const a = await startSmg(config(as.base, {}, {}, common));
    const b = await startSmg(config(as.base, {}, {}, common));
    try {
      for (const gw of [a, b]) {
        const c = await httpClient(gw.url);
        assert.match(textOf(await c.callTool({ name: 'prot__whoami', arguments: {} })), /^Bearer tok-1-/);
        await c.close();
      }
      assert.equal((await as.stats()).tokenRequests, 1, 'the second instance took the shared token');
      const dump = execFileSync('redis-cli', ['-p', String(port), '--scan'], { encoding: 'utf8' });
      for (const k of dump.trim().split('\n').filter(Boolean)) {
        const v = execFileSync('redis-cli', ['-p', String(port), 'GET', k], { encoding: 'utf8' });
        assert.ok(!v.includes('tok-1-'), 'Redis never holds the token in clear');
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  } finally {
    as.stop();
    redis.kill();
  }
});

test('revocation (RFC 7009) through the admin API and at shutdown; the metrics in the seed\'s shape', async () => {
  const as = await authServer();
  const ADMIN = 'admin-key-0123456789abcdef0123456789abcdef';
  try {
    const cfg = writeConfig({ admin_apikey: ADMIN,
      mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'prot', config: { url: `${as.base}/mcp` },
        oauth_config: oauth(as.base, { OAUTH_REVOKE_ON_SHUTDOWN: true }) }] } },
      gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c', admin: { port: 0 } } });
    const gw = await startSmg(cfg);
    let stopped = false;
    try {
      let base;
      for (let i = 0; i < 50 && !base; i++) {
        base = gw.logs().match(/admin API on (http:\/\/127\.0\.0\.1:\d+)/)?.[1];
        if (!base) await sleep(50);
      }
      const api = async (method, path, body) => {
        const r = await fetch(base + path, { method, headers: { Authorization: `Bearer ${ADMIN}`,
          'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
        return { status: r.status, body: await r.json() };
      };
      const c = await httpClient(gw.url);
      const who = async () => textOf(await c.callTool({ name: 'prot__whoami', arguments: {} }));
      const t1 = (await who()).slice(7);
      let m = await api('GET', '/api/v1/oauth/metrics');
      assert.equal(m.body.data.token_acquisitions_success, 1, JSON.stringify(m.body));
      assert.equal(m.body.data.active_tokens, 1);
      const r = await api('POST', '/api/v1/oauth/revoke', { server_name: 'prot' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual((await as.stats()).revoked, [t1]);
      const t2 = (await who()).slice(7);
      assert.notEqual(t2, t1, 'a new token after the revocation');
      assert.equal((await api('POST', '/api/v1/oauth/revoke', { server_name: 'nope' })).status, 400);
      m = await api('GET', '/api/v1/oauth/metrics');
      assert.equal(m.body.data.revocations, 1);
      // The CLI asks the running gateway through the same API.
      const cli = (...a) => spawnSync(SMG, ['oauth', ...a, '--config', cfg], { encoding: 'utf8' });
      let r2 = cli('revoke', '--server-name', 'prot');
      assert.equal(r2.status, 0, r2.stderr);
      assert.match(r2.stdout, /revoked the token for prot/);
      assert.deepEqual((await as.stats()).revoked, [t1, t2]);
      r2 = cli('metrics');
      assert.equal(r2.status, 0, r2.stderr);
      assert.match(r2.stdout, /0 token\(s\) active; 2 acquired .* 2 revoked/);
      const t3 = (await who()).slice(7);
      await c.close();
      assert.equal(await gw.stop(), 0);
      stopped = true;
      assert.deepEqual((await as.stats()).revoked, [t1, t2, t3], 'revoked at shutdown');
    } finally {
      if (!stopped) await gw.stop();
    }
  } finally {
    as.stop();
  }
});

test('private_key_jwt (RFC 7523): a client assertion signed with the configured key, RSA and EC', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smg-pkjwt-'));
  const ossl = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
  for (const [name, alg] of [['rsa', 'RS256'], ['ec', 'ES256']]) {
    if (name === 'rsa') ossl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${name}.key`);
    else ossl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
    ossl('pkey', '-in', `${name}.key`, '-pubout', '-out', `${name}.pub`);
    const as = await authServer(['--jwt-key', join(dir, `${name}.pub`)]);
    try {
      const cfg = config(as.base, { OAUTH_TOKEN_ENDPOINT_AUTH: 'private_key_jwt', OAUTH_CLIENT_SECRET: undefined,
        OAUTH_CLIENT_ASSERTION_KEY_PATH: join(dir, `${name}.key`), OAUTH_CLIENT_ASSERTION_ALG: alg });
      await withGateway(cfg, async (gw) => {
        const c = await httpClient(gw.url);
        assert.match(textOf(await c.callTool({ name: 'prot__whoami', arguments: {} })), /^Bearer tok-1-/, gw.logs());
        assert.equal((await as.stats()).clientAuth[0].method, `private_key_jwt/${alg}`);
        await c.close();
      });
    } finally {
      as.stop();
    }
  }
  // A key of the wrong kind for the algorithm: refused at once, the reason in the log.
  const as = await authServer(['--jwt-key', join(dir, 'rsa.pub')]);
  try {
    const cfg = config(as.base, { OAUTH_TOKEN_ENDPOINT_AUTH: 'private_key_jwt', OAUTH_CLIENT_SECRET: undefined,
      OAUTH_CLIENT_ASSERTION_KEY_PATH: join(dir, 'ec.key'), OAUTH_CLIENT_ASSERTION_ALG: 'RS256' });
    await withGateway(cfg, async (gw) => {
      const c = await httpClient(gw.url);
      await c.callTool({ name: 'prot__whoami', arguments: {} }).catch(() => {});
      assert.match(gw.logs(), /oauth prot: no token .*client assertion: the key is not a PEM RSA private key/);
      assert.equal((await as.stats()).tokenRequests, 0);
      await c.close();
    });
  } finally {
    as.stop();
  }
});

test('the MCP authorization flow: 401 challenge, PRM, authorization server metadata, resource, step-up', async () => {
  const as = await authServer();
  const discover = (extra = {}) => writeConfig({
    mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'prot', config: { url: `${as.base}/mcp` },
      oauth_config: { enabled: true, OAUTH_CLIENT_ID: 'smg-client', OAUTH_CLIENT_SECRET: SECRET,
        OAUTH_ALLOW_PRIVATE_NETWORKS: true, ...extra } }] } },
    gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
  try {
    await withGateway(discover(), async (gw) => {
      const c = await httpClient(gw.url);
      assert.match(textOf(await c.callTool({ name: 'prot__whoami', arguments: {} })), /^Bearer tok-1-/);
      let s = await as.stats();
      assert.deepEqual(s.metadataFetches, ['/.well-known/oauth-protected-resource/mcp',
        '/.well-known/oauth-authorization-server/as'], 'the challenge\'s resource_metadata, then RFC 8414 with the path');
      assert.equal(s.clientAuth[0].resource, `${as.base}/mcp`, 'RFC 8707 resource on the token request');
      assert.equal(s.clientAuth[0].scope, 'mcp:read', 'the challenge\'s scope');
      assert.equal(s.clientAuth[0].method, 'client_secret_post', 'what the metadata lists for a secret');
      // 403 insufficient_scope: a token with the union of scopes, then the call goes through.
      assert.match(textOf(await c.callTool({ name: 'prot__admin', arguments: {} })), /^Bearer tok-2-/);
      s = await as.stats();
      assert.equal(s.clientAuth[1].scope, 'mcp:read mcp:admin');
      // The token is refused under five calls at once: one discovery, one token request.
      // (A slow token endpoint: the other calls' 401s come while the first is being served.)
      await as.ctl({ rejectCurrent: true, delay: 300 });
      const before = await as.stats();
      const texts = await Promise.all([1, 2, 3, 4, 5].map(() => c.callTool({ name: 'prot__whoami', arguments: {} })));
      assert.ok(texts.every((t) => /^Bearer tok-/.test(textOf(t))), JSON.stringify(texts));
      s = await as.stats();
      assert.equal(s.metadataFetches.length - before.metadataFetches.length, 2, 'PRM and AS metadata fetched once');
      assert.equal(s.tokenRequests - before.tokenRequests, 1, 'one new token for all five');
      await as.ctl({ delay: 0 });
      await c.close();
    });

    // The step-up is bounded: a server that keeps refusing scopes the token already has gets
    // no further token (and never more than OAUTH_MAX_STEP_UPS in one request).
    await as.ctl({ scope: 'mcp:read' }); // the authorization server never grants mcp:admin
    await withGateway(discover({ OAUTH_MAX_STEP_UPS: 2 }), async (gw) => {
      const c = await httpClient(gw.url);
      await c.callTool({ name: 'prot__whoami', arguments: {} }); // authorized (401, token) before counting
      const before = (await as.stats()).tokenRequests;
      const r = await c.callTool({ name: 'prot__admin', arguments: {} }).catch((e) => ({ isError: true, error: e }));
      assert.equal(r.isError, true);
      assert.equal((await as.stats()).tokenRequests - before, 1, 'one step-up (the union of scopes), no more');
      assert.match(gw.logs(), /still asks for scope "mcp:read mcp:admin", which the token already has/);
      await c.close();
    });
    await as.ctl({ scope: null });

    // Metadata that names another resource, or an issuer other than the one asked for, is refused.
    for (const [ctl, why] of [[{ prmResource: 'https://elsewhere.example/mcp' }, /names https:\/\/elsewhere.example\/mcp, not this server/],
      [{ issuer: 'https://evil.example/as' }, /names issuer https:\/\/evil.example\/as/]]) {
      await as.ctl({ prmResource: null, issuer: null, ...ctl });
      await withGateway(discover(), async (gw) => {
        const c = await httpClient(gw.url);
        await c.callTool({ name: 'prot__whoami', arguments: {} }).catch(() => {});
        for (let i = 0; i < 40 && !why.test(gw.logs()); i++) await sleep(50);
        assert.match(gw.logs(), why);
        await c.close();
      });
    }
    await as.ctl({ prmResource: null, issuer: null });

    // SSRF: without OAUTH_ALLOW_PRIVATE_NETWORKS the metadata on a loopback address is not fetched.
    const fetches = (await as.stats()).metadataFetches.length;
    await withGateway(discover({ OAUTH_ALLOW_PRIVATE_NETWORKS: false }), async (gw) => {
      const c = await httpClient(gw.url);
      await c.callTool({ name: 'prot__whoami', arguments: {} }).catch(() => {});
      for (let i = 0; i < 40 && !/refused a plain HTTP URL|refused to connect/.test(gw.logs()); i++) await sleep(50);
      assert.match(gw.logs(), /refused a plain HTTP URL|refused to connect to 127\.0\.0\.1/);
      await c.close();
    });
    assert.equal((await as.stats()).metadataFetches.length, fetches, 'nothing fetched');
  } finally {
    as.stop();
  }
});

test('the authorization code grant: a person authorizes each tenant\'s server; tenants never share the token', async () => {
  const as = await authServer();
  const KEY_A = 'key-alpha-0123456789abcdef0123456789';
  const KEY_B = 'key-beta-0123456789abcdef01234567890';
  const ADMIN = 'admin-key-0123456789abcdef0123456789';
  // Two tenants with the same server and the same pre-registered client.
  const server = () => ({ server_name: 'prot', config: { url: `${as.base}/mcp` }, oauth_config: { enabled: true,
    OAUTH_GRANT_TYPE: 'authorization_code', OAUTH_CLIENT_ID: 'smg-client', OAUTH_CLIENT_SECRET: SECRET,
    OAUTH_ALLOW_PRIVATE_NETWORKS: true } });
  const cfg = writeConfig({
    admin_apikey: ADMIN,
    plugins: { auth: { provider: 'local_apikey', config: {} } },
    mcp_configs: { a: { mcp_config_name: 'a', mcp_config: [server()] },
      b: { mcp_config_name: 'b', mcp_config: [server()] } },
    projects: { pa: { project_name: 'A', mcp_config_id: 'a' }, pb: { project_name: 'B', mcp_config_id: 'b' } },
    users: { ua: { email: 'a@example.com' }, ub: { email: 'b@example.com' } },
    apikeys: { [KEY_A]: { project_id: 'pa', user_id: 'ua' }, [KEY_B]: { project_id: 'pb', user_id: 'ub' } },
    gateway: { port: 0, mode: 'aggregate', admin: { port: 0 } },
  });
  try {
    await withGateway(cfg, async (gw) => {
      for (let i = 0; i < 40 && !/admin API on/.test(gw.logs()); i++) await sleep(50);
      const admin = /admin API on (http:\S+)/.exec(gw.logs())[1];
      const pending = async () => (await (await fetch(`${admin}/api/v1/oauth/pending`,
        { headers: { Authorization: `Bearer ${ADMIN}` } })).json()).data;
      const whoami = async (key) => {
        const c = await httpClient(gw.url, { headers: { 'X-API-Key': key } });
        try {
          return textOf(await c.callTool({ name: 'prot__whoami', arguments: {} }));
        } catch (e) {
          return `error: ${e.message}`;
        } finally {
          await c.close();
        }
      };
      // The person at the browser, as `user`, for the tenant's pending authorization.
      const authorize = async (configId, user) => {
        let p;
        for (let i = 0; i < 60 && !p; i++) {
          p = (await pending()).find((x) => x.config_id === configId);
          if (!p) await sleep(50);
        }
        assert.ok(p, `an authorization is pending for ${configId}`);
        const at = await fetch(`${p.authorization_url}&login_hint=${user}`, { redirect: 'manual' });
        const cb = await fetch(at.headers.get('location'), { redirect: 'manual' });
        assert.equal(cb.status, 200, await cb.text());
        assert.equal(cb.headers.get('x-content-type-options'), 'nosniff');
      };
      const until = async (key, re) => {
        let got;
        for (let i = 0; i < 60 && !re.test(got = await whoami(key)); i++) await sleep(100);
        return got;
      };
      assert.doesNotMatch(await whoami(KEY_A), /^Bearer/, 'nothing before a person authorized');
      await authorize('a', 'alice');
      assert.match(await until(KEY_A, /^Bearer/), /^Bearer ctok-alice-/);
      // Tenant b configures the same server and client: it must not get alice's token.
      assert.doesNotMatch(await whoami(KEY_B), /^Bearer/, 'tenant b has no token of its own yet');
      assert.ok((await pending()).some((x) => x.config_id === 'b'), 'tenant b waits for its own authorization');
      await authorize('b', 'bob');
      assert.match(await until(KEY_B, /^Bearer/), /^Bearer ctok-bob-/);
      assert.match(await whoami(KEY_A), /^Bearer ctok-alice-/, 'tenant a keeps its own');
      const s = await as.stats();
      assert.ok(s.authorizations.every((a) => a.code_challenge_method === 'S256' && a.resource === `${as.base}/mcp`));
      assert.ok(!gw.logs().includes('rtok-'), 'refresh tokens never logged');
    });
  } finally {
    as.stop();
  }
});

test('token exchange (RFC 8693): each caller\'s validated token is exchanged, never passed upstream', async () => {
  const { generateKeyPairSync, sign } = await import('node:crypto');
  const { writeFileSync } = await import('node:fs');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dir = mkdtempSync(join(tmpdir(), 'smg-xchg-'));
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] }));
  const b64url = (b) => Buffer.from(b).toString('base64url');
  const jwt = (sub) => {
    const h = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'k1' }));
    const p = b64url(JSON.stringify({ iss: 'https://idp.example.test', aud: 'http://127.0.0.1/mcp', sub,
      exp: Math.floor(Date.now() / 1000) + 300 }));
    return `${h}.${p}.${b64url(sign('sha256', Buffer.from(`${h}.${p}`), rsa.privateKey))}`;
  };
  const as = await authServer();
  try {
    const cfg = writeConfig({
      plugins: { auth: { provider: 'jwt', config: { issuer: 'https://idp.example.test', audience: 'http://127.0.0.1/mcp',
        jwks_file: jwks, mcp_config_id: 'c' } } },
      mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'prot', config: { url: `${as.base}/mcp` },
        sharing: 'per_session', oauth_config: oauth(as.base, { OAUTH_GRANT_TYPE: 'token_exchange',
          OAUTH_RESOURCE: `${as.base}/mcp` }), enable_tool_guardrails: true,
        input_guardrails_policy: { enabled: true, policy_name: 'probe', block: [], guardrails: ['identity_probe'],
          additional_config: {} } }] } },
      gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
    await withGateway(cfg, async (gw) => {
      const alice = jwt('alice');
      const a = await httpClient(gw.url, { headers: { Authorization: `Bearer ${alice}` } });
      const b = await httpClient(gw.url, { headers: { Authorization: `Bearer ${jwt('bob')}` } });
      assert.match(textOf(await a.callTool({ name: 'prot__whoami', arguments: {} })), /^Bearer xtok-alice-/);
      assert.match(textOf(await b.callTool({ name: 'prot__whoami', arguments: {} })), /^Bearer xtok-bob-/);
      const s = await as.stats();
      const exchanges = s.clientAuth.filter((x) => x.subject);
      assert.equal(exchanges.length, 2, 'one exchange per caller');
      assert.equal(exchanges.find((x) => x.subject === alice)?.resource, `${as.base}/mcp`);
      assert.ok(!s.auth.some((h) => h.includes(alice)), 'the caller\'s own token never reaches the server');
      assert.ok(!gw.logs().includes(alice), 'nor the log');
      // A 2026-07-28 request (stateless: its per_session upstream lives in the identity's home).
      const carol = jwt('carol');
      const r = await fetch(gw.url, { method: 'POST', headers: { 'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call',
        'Mcp-Name': 'prot__whoami', Authorization: `Bearer ${carol}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'prot__whoami', arguments: {},
        _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }) });
      assert.match(await r.text(), /Bearer xtok-carol-/, 'exchanged for a 2026 caller too');
      const seen = /identity keys: (\S*)/.exec(gw.logs());
      assert.ok(seen, 'the guardrail ran');
      assert.match(seen[1], /user_id/, 'it sees who called');
      assert.doesNotMatch(seen[1], /subject_token/, 'but never the caller\'s token');
      await a.close();
      await b.close();
    }, { env: { SMG_PLUGIN_PATH: join(FIXTURES, 'plugins') } });
    // A config that would share one upstream between callers is refused at load.
    const bad = writeConfig({ mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'prot',
      config: { url: `${as.base}/mcp` }, oauth_config: oauth(as.base, { OAUTH_GRANT_TYPE: 'token_exchange' }) }] } } });
    const r = spawnSync(SMG, ['config', 'validate', '--config', bad], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, /token_exchange gives each caller its own token: set sharing to per_session/);
  } finally {
    as.stop();
  }
});
