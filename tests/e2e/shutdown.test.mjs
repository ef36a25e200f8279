// Every way smg stops, with files changing beside the config (each change wakes a file
// watch, whose C callback must never reach a closing Lua state) and calls in flight. The
// documented exit codes: 0 after a drain (SIGTERM, SIGINT, stdin EOF for --stdio), 1 when
// it cannot start (bad config, listen failed), 130 for a second SIGINT during the drain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, closeSync, writeFileSync, readFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMG, ECHO, gatewayConfig, luaServer, httpClient, textOf, sleep } from './helpers.mjs';

// A directory of its own: the config, smg's log file, and a file rewritten every 2 ms.
function workdir(cfgDoc) {
  const dir = mkdtempSync(join(tmpdir(), 'smg-shutdown-'));
  const config = join(dir, 'config.json');
  writeFileSync(config, typeof cfgDoc === 'string' ? cfgDoc : JSON.stringify(cfgDoc));
  let n = 0;
  const churn = setInterval(() => writeFileSync(join(dir, 'churn.txt'), String(n++)), 2);
  return { dir, config, stop: () => clearInterval(churn) };
}

// Starts smg with its stderr in a file beside the config (the log write itself is file
// activity the watch sees). Resolves { proc, exited, log() }.
function launch(w, extra = []) {
  const logPath = join(w.dir, 'smg.log');
  const fd = openSync(logPath, 'w');
  const proc = spawn(SMG, ['serve', '--config', w.config, ...extra], { stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig)));
  const log = () => readFileSync(logPath, 'utf8');
  return { proc, exited, log };
}

async function serving(run) {
  for (let i = 0; i < 200; i++) {
    const m = run.log().match(/serving MCP on (http:\/\/[^ ]+) /);
    if (m) return m[1];
    await sleep(25);
  }
  throw new Error('smg did not start:\n' + run.log());
}

const servers = [luaServer('echo', ECHO)];

test('a failed listen exits 1, also while files change beside the config', async () => {
  const blocker = createServer();
  await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
  const w = workdir(gatewayConfig(servers, { port: blocker.address().port, mode: 'aggregate' }));
  try {
    for (let i = 0; i < 5; i++) {
      const run = launch(w);
      assert.equal(await run.exited, 1, run.log());
      assert.match(run.log(), /address already in use/);
    }
  } finally {
    w.stop();
    blocker.close();
  }
});

test('a bad config exits 1 and names the problem', async () => {
  const w = workdir('{"gateway": {"port": "eighty"}}');
  try {
    const run = launch(w);
    assert.equal(await run.exited, 1, run.log());
    assert.match(run.log(), /gateway\.port/);
  } finally {
    w.stop();
  }
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  test(`${signal} under load drains the calls in flight and exits 0`, async () => {
    const w = workdir(gatewayConfig(servers, { mode: 'aggregate', shutdown_grace: 5 }));
    try {
      const run = launch(w);
      const url = await serving(run);
      const clients = await Promise.all(Array.from({ length: 8 }, () => httpClient(url)));
      let done = 0;
      let failed = 0;
      let stopping = false;
      const loops = clients.map(async (c) => {
        while (!stopping) {
          try {
            await c.callTool({ name: 'echo__sleep', arguments: { seconds: 0.05 } });
            done++;
          } catch {
            failed++;
            break;
          }
        }
      });
      await sleep(400);
      run.proc.kill(signal);
      assert.equal(await run.exited, 0, run.log());
      stopping = true;
      await Promise.all(loops);
      assert.ok(done > 8, `calls completed under load: ${done}`);
      assert.match(run.log(), /stopped/);
    } finally {
      w.stop();
    }
  });
}

// A 2026-07-28 request runs on a session of its own that no table of sessions lists: the
// drain must still wait for it.
test('SIGTERM drains a 2026-07-28 request in flight', async () => {
  const w = workdir(gatewayConfig(servers, { mode: 'aggregate', shutdown_grace: 10 }));
  try {
    const run = launch(w);
    const url = await serving(run);
    const V = '2026-07-28';
    const meta = { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {} };
    const call = fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
        'MCP-Protocol-Version': V, 'Mcp-Method': 'tools/call', 'Mcp-Name': 'echo__sleep' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call',
        params: { name: 'echo__sleep', arguments: { seconds: 1 }, _meta: meta } }),
    }).then(async (res) => ({ status: res.status, body: await res.json() }));
    await sleep(300);
    run.proc.kill('SIGTERM');
    const r = await call;
    assert.equal(r.status, 200);
    assert.equal(r.body.result?.isError ?? false, false, JSON.stringify(r.body));
    assert.equal(await run.exited, 0, run.log());
    assert.match(run.log(), /draining 1 call\(s\)/);
  } finally {
    w.stop();
  }
});

test('a second SIGINT during the drain exits 130 at once', async () => {
  const w = workdir(gatewayConfig(servers, { mode: 'aggregate', shutdown_grace: 30 }));
  try {
    const run = launch(w);
    const url = await serving(run);
    const c = await httpClient(url);
    const slow = c.callTool({ name: 'echo__sleep', arguments: { seconds: 20 } }).catch(() => 'failed');
    await sleep(200);
    run.proc.kill('SIGINT');
    await sleep(200);
    const t0 = Date.now();
    run.proc.kill('SIGINT');
    assert.equal(await run.exited, 130, run.log());
    assert.ok(Date.now() - t0 < 3000, 'did not wait for the drain');
    await slow;
  } finally {
    w.stop();
  }
});
