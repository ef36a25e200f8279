// Config replication (gateway.cluster) between two gateways with their own config files
// and one real redis-server: a change made on one with the CLI reaches the other's file
// and its running gateway (a key created on A works on B); each keeps its own `gateway`
// section; Redis never holds an API key in clear; a forged message is refused; an instance
// that was down catches up when it starts; an old message replayed into Redis is refused
// after a restart; a Redis that lost its keys does not set the revisions back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECHO, SMG, luaServer, writeConfig, startSmg, post, sleep } from './helpers.mjs';

const SECRET = 'cluster-secret-0123456789abcdef0123456789';
const KEY = 'key-alpha-0123456789abcdef0123456789';

function config(redisPort, adminPort) {
  return writeConfig({
    plugins: { auth: { provider: 'local_apikey', config: {} } },
    common_mcp_gateway_config: { enkrypt_mcp_use_external_cache: true, enkrypt_cache_host: '127.0.0.1',
      enkrypt_cache_port: redisPort },
    mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [luaServer('echo', ECHO)] } },
    projects: { p: { project_name: 'P', mcp_config_id: 'c', users: ['ua'] } },
    users: { ua: { email: 'a@example.com' } },
    apikeys: { [KEY]: { project_id: 'p', user_id: 'ua' } },
    gateway: { port: 0, mode: 'aggregate', admin: { port: adminPort }, cluster: { secret: SECRET } },
  });
}

const doc = (path) => JSON.parse(readFileSync(path, 'utf8'));
const cli = (cfg, ...args) => spawnSync(SMG, [...args, '--config', cfg], { encoding: 'utf8' });

async function until(what, cond, ms = 10000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

// Whether `key` opens a session and lists tools on the gateway at `url`.
async function listsTools(url, key) {
  const r = await post(url, { jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'cluster', version: '1' } } },
  { 'X-API-Key': key });
  if (r.status !== 200) return false;
  const sid = r.headers.get('mcp-session-id');
  const h = { 'Mcp-Session-Id': sid, 'X-API-Key': key };
  await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, h);
  return Boolean((await post(url, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }, h)).json?.result);
}

test('two gateways share their managed sections through Redis', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smg-cluster-'));
  const port = 21000 + Math.floor(Math.random() * 20000);
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir], { stdio: 'ignore' });
  const rcli = (...args) => execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).trim();
  const gws = [];
  try {
    await until('redis', () => { try { return rcli('PING') === 'PONG'; } catch { return false; } });
    const cfgA = config(port, 0);
    const cfgB = config(port, 0);
    const gA = await startSmg(cfgA);
    gws.push(gA);
    let gB = await startSmg(cfgB);
    gws.push(gB);
    await until('both subscribed', () => gA.logs().includes('cluster: config replication')
      && gB.logs().includes('cluster: config replication') && rcli('PUBSUB', 'NUMSUB', 'smg:config').endsWith('2'));

    // A user and a key made on A with the CLI: B's file gets them, B's gateway accepts the key.
    assert.equal(cli(cfgA, 'user', 'create', '--email', 'b@example.com').status, 0);
    assert.equal(cli(cfgA, 'project', 'add-user', '--project-name', 'P', '--email', 'b@example.com').status, 0);
    const r = cli(cfgA, 'user', 'generate-api-key', '--email', 'b@example.com', '--project-name', 'P', '--json');
    assert.equal(r.status, 0, r.stderr);
    const newKey = JSON.parse(r.stdout).api_key;
    await until('B has the new key', () => Boolean(doc(cfgB).apikeys[newKey]));
    assert.ok(Object.values(doc(cfgB).users).some((u) => u.email === 'b@example.com'));
    let served = false;
    for (let i = 0; i < 40 && !served; i++) {
      served = await listsTools(gB.url, newKey);
      if (!served) await sleep(100);
    }
    assert.ok(served, 'a key created on A works on B');
    assert.match(gB.logs(), /cluster: applied config revision \d+ from instance/);
    assert.equal(doc(cfgB).gateway.cluster.secret, SECRET, "B's own gateway section is kept");
    assert.ok(existsSync(`${cfgB}.bak.1`), 'B kept its previous file');

    // Redis holds the revision sealed: no key in clear.
    const latest = rcli('GET', 'smg:config:latest');
    assert.ok(latest.includes('"box"'));
    assert.ok(!latest.includes(newKey) && !latest.includes(KEY) && !latest.includes('b@example.com'));

    // A forged revision (no secret) is refused and changes nothing.
    const before = readFileSync(cfgB, 'utf8');
    const forged = JSON.stringify({ v: 1, seq: 1000, origin: 'attacker', box: Buffer.alloc(64, 7).toString('base64') });
    rcli('PUBLISH', 'smg:config', forged);
    await until('B refuses the forgery', () => /refused revision 1000/.test(gB.logs()));
    assert.equal(readFileSync(cfgB, 'utf8'), before);

    // B is down while A changes: B catches up when it starts.
    assert.equal(await gB.stop(), 0);
    gws.pop();
    const old = latest; // a revision B has already applied
    assert.equal(cli(cfgA, 'user', 'create', '--email', 'c@example.com').status, 0);
    await until('A published', () => rcli('GET', 'smg:config:latest') !== old);
    gB = await startSmg(cfgB);
    gws.push(gB);
    await until('B caught up', () => Object.values(doc(cfgB).users).some((u) => u.email === 'c@example.com'));

    // An old revision replayed into Redis is refused after a restart (B recorded its seq).
    assert.equal(await gB.stop(), 0);
    gws.pop();
    const now = readFileSync(cfgB, 'utf8');
    rcli('SET', 'smg:config:latest', old);
    gB = await startSmg(cfgB);
    gws.push(gB);
    await until('B subscribed again', () => gB.logs().includes('cluster: config replication'));
    await sleep(500);
    assert.equal(readFileSync(cfgB, 'utf8'), now, 'the replayed old revision is not applied');
    assert.ok(Object.values(doc(cfgB).users).some((u) => u.email === 'c@example.com'));

    // Redis loses its keys (restarted without persistence): the next revision is still
    // numbered above what the instances applied, so B takes it.
    rcli('FLUSHALL');
    assert.equal(cli(cfgA, 'user', 'create', '--email', 'd@example.com').status, 0);
    await until('B applied the change made after the reset',
      () => Object.values(doc(cfgB).users).some((u) => u.email === 'd@example.com'));
  } finally {
    for (const g of gws) assert.equal(await g.stop(), 0);
    redis.kill('SIGTERM');
  }
});
