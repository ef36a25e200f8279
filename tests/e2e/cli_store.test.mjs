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
  for (const args of [['serve', '--help'], ['audit', '--help'], ['--help']]) {
    r = spawnSync(SMG, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, args.join(' '));
    assert.match(r.stdout, /^usage: smg/);
  }
  // Usage errors exit 2: no command, an unknown serve option, the seed's --docker.
  for (const args of [[], ['serve', '--bogus'], ['--docker', 'user', 'list']]) {
    r = spawnSync(SMG, args, { encoding: 'utf8' });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
  }
  assert.match(r.stderr, /--docker.*drop the flag/);
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

test('config commands: configs, servers, policies, export and import, settings', () => {
  const cfg = seedConfig();
  const dir = cfg.replace(/[^/]+$/, '');
  let r = run(cfg, 'config', 'add', '--config-name', 'work');
  assert.equal(r.status, 0, r.stderr);
  const id = r.stdout.match(/^mcp_config_id: (\S+)$/m)[1];
  r = run(cfg, 'config', 'add-server', '--config-name', 'work', '--server-name', 'files', '--server-command', 'npx',
    '--args', '-y,@modelcontextprotocol/server-filesystem,/tmp', '--env', '{"API_TOKEN":"sekrit-token-value-123"}',
    '--description', 'files');
  assert.equal(r.status, 0, r.stderr);
  let s = doc(cfg).mcp_configs[id].mcp_config[0];
  assert.deepEqual(s.config.args, ['-y', '@modelcontextprotocol/server-filesystem', '/tmp']);
  assert.equal(s.input_guardrails_policy.enabled, false, 'the seed writes the policies out, off');
  assert.equal(s.tool_guardrails_policy.block.length, 9);
  // A server name the schema refuses is refused, and nothing is written.
  const before = readFileSync(cfg, 'utf8');
  r = run(cfg, 'config', 'add-server', '--config-name', 'work', '--server-name', 'bad name!', '--server-command', 'x');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /refused: the change would make the config invalid: .*server_name/);
  assert.equal(readFileSync(cfg, 'utf8'), before);
  for (const name of ['my.server', 'x'.repeat(49)]) {
    r = run(cfg, 'config', 'add-server', '--config-name', 'work', '--server-name', name, '--server-command', 'x');
    assert.equal(r.status, 1, name);
    assert.match(r.stderr, /server_name: .*(no '\.'|at most 48)/);
  }
  // Malformed flag values are usage errors (2), and nothing is written.
  for (const bad of [['--env', 'notjson'], ['--args', '["a"'], ['--tools', 'x'], ['--env', '[1]']]) {
    r = run(cfg, 'config', 'add-server', '--config-name', 'work', '--server-name', 'two', '--server-command', 'x', ...bad);
    assert.equal(r.status, 2, `${bad.join(' ')}: ${r.stderr}`);
    assert.equal(readFileSync(cfg, 'utf8'), before);
  }
  r = run(cfg, 'config', 'update-server', '--config-name', 'work', '--server-name', 'files', '--args', 'a, b ,,c');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(doc(cfg).mcp_configs[id].mcp_config[0].config.args, ['a', 'b', 'c'], 'spaces around commas dropped');
  r = run(cfg, 'config', 'get-server', '--config-name', 'work', '--server-name', 'files');
  assert.ok(!r.stdout.includes('sekrit-token-value-123'), 'env secrets masked');
  r = run(cfg, 'config', 'get-server', '--config-name', 'work', '--server-name', 'files', '--show-secrets');
  assert.ok(r.stdout.includes('sekrit-token-value-123'), '--show-secrets shows them');
  r = run(cfg, 'config', 'update-server-guardrails', '--config-name', 'work', '--server-name', 'files',
    '--input-policy', '{"enabled":true,"policy_name":"strict","guardrails":["pii"],"block":["pii"]}');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(doc(cfg).mcp_configs[id].mcp_config[0].input_guardrails_policy.policy_name, 'strict');
  r = run(cfg, 'config', 'update-server-input-guardrails', '--config-name', 'work', '--server-name', 'files', '--policy', 'not json');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--policy: not JSON/);
  // Export and import under a new name.
  const out = `${dir}export-${process.pid}.json`;
  assert.equal(run(cfg, 'config', 'export', '--config-name', 'work', '--output-file', out).status, 0);
  assert.equal(statSync(out).mode & 0o777, 0o600);
  r = run(cfg, 'config', 'import', '--input-file', out, '--config-name', 'work2');
  assert.equal(r.status, 0, r.stderr);
  const id2 = r.stdout.match(/^mcp_config_id: (\S+)$/m)[1];
  assert.equal(doc(cfg).mcp_configs[id2].mcp_config[0].server_name, 'files');
  // A config a project uses cannot be removed.
  assert.equal(run(cfg, 'project', 'create', '--project-name', 'p').status, 0);
  assert.equal(run(cfg, 'project', 'assign-config', '--project-name', 'p', '--config-name', 'work').status, 0);
  r = run(cfg, 'config', 'remove', '--config-name', 'work');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /used by p/);
  assert.equal(run(cfg, 'config', 'remove', '--config-name', 'work2').status, 0);
  r = run(cfg, 'config', 'list', '--json');
  assert.deepEqual(JSON.parse(r.stdout).map((c) => c.mcp_config_name).sort(), ['default_config', 'work']);
  // Settings: the Enkrypt key is masked unless asked for; telemetry goes to OTLP/HTTP.
  assert.equal(run(cfg, 'config', 'set-enkrypt-api-key', '--api-key', 'ek-0123456789abcdef').status, 0);
  assert.match(run(cfg, 'config', 'get-enkrypt-api-key').stdout, /api_key: \*\*\*\*cdef/);
  assert.match(run(cfg, 'config', 'get-enkrypt-api-key', '--show-secrets').stdout, /ek-0123456789abcdef/);
  assert.equal(run(cfg, 'config', 'configure-telemetry', '--enabled', 'true', '--url', 'http://127.0.0.1:4318').status, 0);
  assert.equal(doc(cfg).plugins.telemetry.provider, 'otlp');
  assert.equal(run(cfg, 'config', 'configure-telemetry', '--enabled', 'false').status, 0);
  assert.equal(doc(cfg).plugins.telemetry, undefined);
  // The seed's validate of one mcp_config, and smg's of the whole file.
  assert.equal(run(cfg, 'config', 'validate', '--config-name', 'work').status, 0);
  assert.equal(spawnSync(SMG, ['config', 'validate', cfg], { encoding: 'utf8' }).status, 0);
  r = spawnSync(SMG, ['config', '--help'], { encoding: 'utf8' });
  for (const verb of ['add-server', 'update-server-guardrails', 'configure-telemetry', 'show']) assert.match(r.stdout, new RegExp(verb));
});

test('a server the CLI adds reaches a running gateway and its clients hear list_changed', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('one', ECHO)], { mode: 'aggregate' }));
  await withGateway(cfg, async (gw) => {
    const { httpClient } = await import('./helpers.mjs');
    const { ToolListChangedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
    const c = await httpClient(gw.url);
    let told = 0;
    c.setNotificationHandler(ToolListChangedNotificationSchema, () => { told++; });
    assert.ok((await c.listTools()).tools.every((t) => !t.name.startsWith('two__')));
    const r = run(cfg, 'config', 'add-server', '--config-id', 'test', '--server-name', 'two', '--server-command',
      SMG, '--args', 'version');
    assert.equal(r.status, 0, r.stderr);
    // Point it at the echo server instead: update-server changes command and args.
    const u = run(cfg, 'config', 'update-server', '--config-id', 'test', '--server-name', 'two', '--server-command', SMG,
      '--args', `run,${ECHO}`);
    assert.equal(u.status, 0, u.stderr);
    let names = [];
    for (let i = 0; i < 60 && !names.includes('two__echo'); i++) {
      await sleep(50);
      names = (await c.listTools()).tools.map((t) => t.name);
    }
    assert.ok(names.includes('two__echo'), `the new server's tools are listed: ${names}`);
    assert.ok(told > 0, 'the session was told the list changed');
    await c.close();
  });
});

test('generate-config, install into a client, system health-check, backup, restore and reset', async () => {
  const { mkdtempSync } = await import('node:fs');
  const home = mkdtempSync('/tmp/smg-home-');
  const env = { ...process.env, HOME: home, SMG_CONFIG: '', XDG_CONFIG_HOME: '', PATH: '/usr/bin:/bin' };
  const sh = (...args) => spawnSync(SMG, args, { encoding: 'utf8', env });
  let r = sh('generate-config');
  assert.equal(r.status, 0, r.stderr);
  const cfg = `${home}/.smg/config.json`;
  const key = r.stdout.match(/^gateway_key: (\S+)$/m)[1];
  assert.equal(statSync(cfg).mode & 0o777, 0o600);
  assert.equal(doc(cfg).admin_apikey.length, 256);
  assert.ok(!r.stdout.includes(doc(cfg).admin_apikey), 'the admin key is masked');
  assert.equal(sh('generate-config').status, 1, 'an existing config is kept');
  assert.equal(sh('config', 'validate', cfg).status, 0);
  // The generated config serves at once, with its key.
  await withGateway(cfg, async (gw) => {
    const client = new Client({ name: 'gen-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { apikey: key } } }));
    const { tools } = await client.listTools();
    assert.ok(tools.length > 0);
    await client.close();
  }, { args: ['--port', '0'] });
  // Install into Claude Desktop and Cursor: merged beside other servers, idempotent, backed up.
  const desktop = `${home}/.config/Claude/claude_desktop_config.json`;
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(`${home}/.config/Claude`, { recursive: true });
  writeFileSync(desktop, JSON.stringify({ mcpServers: { other: { command: 'other' } }, theme: 'dark' }));
  r = sh('install', '--client', 'claude-desktop');
  assert.equal(r.status, 0, r.stderr);
  const d = doc(desktop);
  assert.equal(d.theme, 'dark');
  assert.equal(d.mcpServers.other.command, 'other');
  assert.deepEqual(d.mcpServers.smg.args, ['serve', '--stdio', '--config', cfg]);
  assert.equal(d.mcpServers.smg.env.SMG_API_KEY, key);
  assert.ok(existsSync(`${desktop}.bak`));
  r = sh('install', '--client', 'claude-desktop');
  assert.match(r.stdout, /nothing to do/);
  r = sh('install', '--client', 'cursor');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(doc(`${home}/.cursor/mcp.json`).mcpServers.smg.env.SMG_API_KEY, key);
  r = sh('install', '--client', 'claude-code');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /claude mcp add --transport stdio --scope user/);
  assert.equal(sh('install', '--client', 'vscode').status, 2);
  // System: health, backup, restore (validated), reset (only with --confirm).
  r = sh('system', 'health-check', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).status, 'healthy');
  const bak = `${home}/backup.json`;
  assert.equal(sh('system', 'backup', '--output-file', bak).status, 0);
  assert.equal(sh('user', 'create', '--email', 'later@example.com').status, 0);
  r = sh('system', 'restore', '--input-file', bak);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!Object.values(doc(cfg).users).some((u) => u.email === 'later@example.com'), 'restored');
  writeFileSync(`${home}/broken.json`, '{"mcp_configs": {}, "gateway": {"port": "eighty"}}');
  r = sh('system', 'restore', '--input-file', `${home}/broken.json`);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /refused/);
  // Every section has a default, so `{}` validates: it must still not wipe the config.
  const before = readFileSync(cfg, 'utf8');
  for (const text of ['{}', '{"gateway": {}}', '[]']) {
    r = sh('system', 'restore', '--input', text);
    assert.equal(r.status, 2, `${text}: ${r.stderr}`);
    assert.match(r.stderr, /not a config backup|not a JSON object/);
    assert.equal(readFileSync(cfg, 'utf8'), before, 'nothing changed');
  }
  // A backup without admin_apikey keeps the current one (an API restoring it stays usable).
  const admin = doc(cfg).admin_apikey;
  const stripped = doc(cfg);
  delete stripped.admin_apikey;
  r = sh('system', 'restore', '--input', JSON.stringify(stripped));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /admin_apikey kept/);
  assert.equal(doc(cfg).admin_apikey, admin);
  assert.equal(sh('system', 'reset').status, 2, 'reset without --confirm is a usage error');
  r = sh('system', 'reset', '--confirm');
  assert.equal(r.status, 0, r.stderr);
  assert.notEqual(r.stdout.match(/^gateway_key: (\S+)$/m)[1], key, 'a fresh key');
  assert.equal(doc(cfg).admin_apikey, admin, 'reset keeps the admin key');
});
