// The two-level cache against a real redis-server on a random loopback port: two
// instances share discovered lists through Redis (hashed, namespaced keys), and Redis
// killed and restarted under load costs no call, one warning, and is used again after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeConfig, gatewayConfig, luaServer, ECHO, startSmg, httpClient, textOf, sleep } from './helpers.mjs';

function startRedis(port, dir) {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir], { stdio: 'ignore' });
  return proc;
}

async function waitRedis(port) {
  for (let i = 0; i < 100; i++) {
    try { if (execFileSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).trim() === 'PONG') return; } catch { /* starting */ }
    await sleep(50);
  }
  throw new Error('redis-server did not start');
}

const keys = (port, pattern) => execFileSync('redis-cli', ['-p', String(port), '--scan', '--pattern', pattern],
  { encoding: 'utf8' }).trim().split('\n').filter(Boolean);

async function metric(gw, name, labels) {
  const text = await (await fetch(new URL('/metrics', gw.url))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('two instances share lists through Redis; Redis killed and restarted under load loses no call', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smg-cache-redis-'));
  const port = 21000 + Math.floor(Math.random() * 20000);
  let redis = startRedis(port, dir);
  await waitRedis(port);
  const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate', cache: { near_ttl: 0.2 } },
    { enkrypt_mcp_use_external_cache: true, enkrypt_cache_host: '127.0.0.1', enkrypt_cache_port: port }));
  const a = await startSmg(cfg);
  const b = await startSmg(cfg);
  try {
    const ca = await httpClient(a.url);
    assert.ok((await ca.listTools()).tools.some((t) => t.name === 'echo__echo'));
    const shared = keys(port, 'smg:c:d:*');
    assert.ok(shared.length >= 1, 'the tools list is in Redis');
    for (const k of shared) assert.match(k, /^smg:c:d:[0-9a-f]{16}:[0-9a-f]{16}:[0-9a-f]{64}$/);
    const raw = execFileSync('redis-cli', ['-p', String(port), 'GET', shared[0]], { encoding: 'utf8' });
    assert.ok(raw.includes('echo'), 'the value is the list');

    // The other instance's first list comes from Redis, not from its upstream.
    const cb = await httpClient(b.url);
    assert.ok((await cb.listTools()).tools.some((t) => t.name === 'echo__echo'));
    assert.ok(await metric(b, 'smg_cache_lookups_total', 'level="l2"') >= 1, 'B read the list from Redis');
    await cb.close();

    // Load: four clients list and call for ~4 s; Redis is killed at 1 s, back at 2.5 s.
    const clients = [ca, ...(await Promise.all([1, 2, 3].map(() => httpClient(a.url))))];
    let ok = 0;
    const failures = [];
    const until = Date.now() + 4000;
    const loops = clients.map(async (c, i) => {
      while (Date.now() < until) {
        try {
          const tools = await c.listTools();
          assert.ok(tools.tools.length >= 1);
          const r = await c.callTool({ name: 'echo__echo', arguments: { message: `c${i}` } });
          assert.equal(textOf(r), `c${i}`);
          ok++;
        } catch (e) {
          failures.push(String(e));
        }
      }
    });
    await sleep(1000);
    redis.kill('SIGKILL');
    await sleep(1500);
    redis = startRedis(port, dir);
    await Promise.all(loops);
    assert.deepEqual(failures, [], 'no call failed while Redis was gone');
    assert.ok(ok > 50, `calls went on (${ok})`);
    const warnings = a.logs().split('\n').filter((l) => l.includes('WARN') && l.includes(`127.0.0.1:${port} unavailable`));
    assert.equal(warnings.length, 1, `one warning per outage:\n${warnings.join('\n')}`);
    assert.ok(await metric(a, 'smg_cache_lookups_total', 'level="l1_stale"') >= 1, 'stale L1 copies served while down');

    // Back: the lists land in Redis again once L1's copies are no longer fresh.
    let back = [];
    for (let i = 0; i < 50 && back.length === 0; i++) {
      await ca.listTools();
      back = keys(port, 'smg:c:d:*');
      if (back.length === 0) await sleep(100);
    }
    assert.ok(back.length >= 1, 'Redis is used again after the restart');
    assert.match(a.logs(), new RegExp(`redis 127.0.0.1:${port} connected[\\s\\S]*unavailable[\\s\\S]*connected`));
    for (const c of clients) await c.close();
  } catch (e) {
    e.message += `\n--- A ---\n${a.logs().slice(-4000)}`;
    throw e;
  } finally {
    await a.stop();
    await b.stop();
    redis.kill('SIGKILL');
  }
});
