// The seed's user and project commands on the config store: concurrent writers never lose
// an update (20 parallel `smg user create` leave 20 users), a change that would make the
// config invalid is refused and writes nothing, every write keeps a rotating 0600 backup,
// usage errors exit 2 and failures 1, keys are masked unless --show-secrets, and a running
// gateway takes a new API key at once (hot reload of the file the CLI wrote).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync, existsSync } from 'node:fs';
import { SMG, ECHO, gatewayConfig, luaServer, writeConfig, withGateway, textOf, sleep } from './helpers.mjs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const seedConfig = () => writeConfig({
  mcp_configs: { default: { mcp_config_name: 'default_config', mcp_config: [luaServer('echo', ECHO)] } },
  projects: {}, users: {}, apikeys: {},
});
const run = (cfg, ...args) => spawnSync(SMG, [...args, '--config', cfg], { encoding: 'utf8' });
const runAsync = (cfg, ...args) => new Promise((resolve) => {
  const p = spawn(SMG, [...args, '--config', cfg]);
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  p.on('close', (status) => resolve({ status, stdout: out, stderr: err }));
});
const doc = (cfg) => JSON.parse(readFileSync(cfg, 'utf8'));

test('20 parallel user creates leave 20 users; every write is validated, backed up and 0600', async () => {
  const cfg = seedConfig();
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => runAsync(cfg, 'user', 'create',
    '--email', `user${i}@example.com`)));
  for (const r of results) {
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^user_id: [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/m);
  }
  const users = Object.values(doc(cfg).users).map((u) => u.email).sort();
  assert.equal(users.length, 20, 'no update lost');
  assert.equal(new Set(users).size, 20);
  assert.equal(statSync(cfg).mode & 0o777, 0o600);
  for (let i = 1; i <= 5; i++) assert.equal(statSync(`${cfg}.bak.${i}`).mode & 0o777, 0o600, `backup ${i}`);
  assert.ok(!existsSync(`${cfg}.bak.6`), 'five backups kept');
  assert.equal(Object.keys(JSON.parse(readFileSync(`${cfg}.bak.1`, 'utf8')).users).length, 19, 'bak.1 is the previous version');
  // The config still validates as `smg serve` sees it.
  const v = spawnSync(SMG, ['config', 'validate', cfg], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
});

test('users, projects and API keys: the seed flows, masking, and exit codes', () => {
  const cfg = seedConfig();
  let r = run(cfg, 'user', 'create', '--email', 'ada@example.com');
  assert.equal(r.status, 0, r.stderr);
  r = run(cfg, 'user', 'create', '--email', 'ada@example.com');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /a user with email ada@example.com exists/);
  r = run(cfg, 'user', 'create', '--email', 'not-an-email');
  assert.equal(r.status, 2);
  r = run(cfg, 'user', 'create');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--email is required/);
  r = run(cfg, 'user', 'frobnicate');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'user frobnicate'/);
  r = run(cfg, 'user', 'create', '--email', 'x@example.com', '--colour', 'red');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown flag --colour/);

  assert.equal(run(cfg, 'project', 'create', '--project-name', 'alpha').status, 0);
  r = run(cfg, 'project', 'assign-config', '--project-name', 'alpha', '--config-name', 'default_config');
  assert.equal(r.status, 0, r.stderr);
  // A key for a user outside the project is refused; inside, it is printed once, whole.
  r = run(cfg, 'user', 'generate-api-key', '--email', 'ada@example.com', '--project-name', 'alpha');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /is not in project alpha/);
  assert.equal(run(cfg, 'project', 'add-user', '--project-name', 'alpha', '--email', 'ada@example.com').status, 0);
  r = run(cfg, 'user', 'generate-api-key', '--email', 'ada@example.com', '--project-name', 'alpha');
  assert.equal(r.status, 0, r.stderr);
  const key = r.stdout.match(/^api_key: ([A-Za-z0-9_-]{48})$/m)[1];
  r = run(cfg, 'user', 'list-all-api-keys', '--json');
  const listed = JSON.parse(r.stdout);
  assert.equal(listed.length, 1);
  assert.equal(listed[0].api_key, `****${key.slice(-4)}`, 'masked');
  assert.ok(!r.stdout.includes(key));
  r = run(cfg, 'user', 'list-all-api-keys', '--json', '--show-secrets');
  assert.equal(JSON.parse(r.stdout)[0].api_key, key);
  // Rotate: the old key is gone, the new one works for the same user and project.
  r = run(cfg, 'user', 'rotate-api-key', '--api-key', key);
  assert.equal(r.status, 0, r.stderr);
  const fresh = r.stdout.match(/^new_api_key: (\S+)$/m)[1];
  const keys = doc(cfg).apikeys;
  assert.ok(!keys[key] && keys[fresh], 'rotated');
  assert.equal(run(cfg, 'user', 'get-api-key', '--api-key', key).status, 1);
  assert.equal(run(cfg, 'user', 'disable-api-key', '--api-key', fresh).status, 0);
  assert.equal(doc(cfg).apikeys[fresh].disabled, true);
  // A user with keys is deleted only with --force, which takes the keys and memberships too.
  r = run(cfg, 'user', 'delete', '--email', 'ada@example.com');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--force/);
  r = run(cfg, 'user', 'delete', '--email', 'ada@example.com', '--force', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).api_keys, 1);
  assert.deepEqual(doc(cfg).apikeys, {});
  assert.deepEqual(doc(cfg).projects[Object.keys(doc(cfg).projects)[0]].users, []);
  // Help at every level.
  r = spawnSync(SMG, ['user', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /rotate-api-key/);
  r = spawnSync(SMG, ['project', 'add-user', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--project-name VALUE/);
});

test('a change that would make the config invalid is refused and writes nothing', () => {
  const cfg = seedConfig();
  assert.equal(run(cfg, 'project', 'create', '--project-name', 'alpha').status, 0);
  const before = readFileSync(cfg, 'utf8');
  // A config id that does not exist: refused by the lookup.
  let r = run(cfg, 'project', 'assign-config', '--project-name', 'alpha', '--config-id', 'nope');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no config with id nope/);
  assert.equal(readFileSync(cfg, 'utf8'), before);
  // Without a config file the CLI says what to do, and never writes the embedded default.
  r = spawnSync(SMG, ['user', 'list'], { encoding: 'utf8', env: { ...process.env, HOME: '/nonexistent', SMG_CONFIG: '' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no config file/);
});

test('a running gateway takes a key the CLI made at once', async () => {
  const cfgObj = {
    ...gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate' }),
    plugins: { auth: { provider: 'local_apikey' } }, projects: {}, users: {}, apikeys: {},
  };
  const cfg = writeConfig(cfgObj);
  await withGateway(cfg, async (gw) => {
    assert.equal(run(cfg, 'user', 'create', '--email', 'live@example.com').status, 0);
    assert.equal(run(cfg, 'project', 'create', '--project-name', 'live').status, 0);
    assert.equal(run(cfg, 'project', 'assign-config', '--project-name', 'live', '--config-id', 'test').status, 0);
    assert.equal(run(cfg, 'project', 'add-user', '--project-name', 'live', '--email', 'live@example.com').status, 0);
    const r = run(cfg, 'user', 'generate-api-key', '--email', 'live@example.com', '--project-name', 'live');
    const key = r.stdout.match(/^api_key: (\S+)$/m)[1];
    let result;
    for (let i = 0; i < 40 && !result; i++) {
      const client = new Client({ name: 'cli-test', version: '1.0.0' });
      try {
        await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { apikey: key } } }));
        result = await client.callTool({ name: 'echo__echo', arguments: { message: 'via a fresh key' } });
      } catch {
        await sleep(50);
      } finally {
        await client.close().catch(() => {});
      }
    }
    assert.ok(result, 'the key works against the running gateway');
    assert.equal(textOf(result), 'via a fresh key');
  });
});
