// Fault runs: an upstream SIGKILLed every 200 ms under 8 concurrent callers for 10 s, a
// client that disconnects in the middle of an SSE response, and 500 slowloris
// connections. Every call gets a result or a clear error before its timeout, none hangs,
// and the gateway's memory stays flat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import {
  ECHO, FAULTY, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf, sleep, rawSession, post,
} from './helpers.mjs';

const rssKb = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);

test('an upstream SIGKILLed every 200 ms under 8 callers: every call ends in time, none hangs, RSS flat', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('faulty', FAULTY, { restart_backoff_max: 0.2, max_restarts: 1000 })],
    { mode: 'aggregate' }, { timeout_settings: { tool_execution_timeout: 5, discovery_timeout: 3 } }));
  await withGateway(cfg, async (gw) => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => httpClient(gw.url)));
    const pidOf = async () => Number(textOf(await clients[0].callTool({ name: 'faulty__pid', arguments: {} })));
    await pidOf();
    const rss0 = rssKb(gw.proc.pid);
    const deadline = Date.now() + 10000;
    let ok = 0;
    let failed = 0;
    let slowest = 0;
    const killer = (async () => {
      while (Date.now() < deadline) {
        await sleep(200);
        try {
          process.kill(await pidOf(), 'SIGKILL');
        } catch { /* down already, or the call failed: the next round kills again */ }
      }
    })();
    const callers = clients.map(async (c, i) => {
      while (Date.now() < deadline) {
        const t0 = Date.now();
        try {
          const r = await c.callTool({ name: 'faulty__echo', arguments: { message: `m${i}` } }, undefined, { timeout: 15000 });
          assert.equal(textOf(r), `m${i}`);
          ok++;
        } catch (e) {
          assert.match(e.message, /unavailable|did not answer|restart|killed|exited/, e.message);
          failed++;
        }
        slowest = Math.max(slowest, Date.now() - t0);
      }
    });
    await Promise.all([killer, ...callers]);
    assert.ok(ok > 100, `calls that succeeded between kills: ${ok} (failed ${failed})`);
    assert.ok(slowest < 6000, `every call ended before its timeout (slowest ${slowest} ms)`);
    const rss1 = rssKb(gw.proc.pid);
    assert.ok(rss1 < rss0 + 20 * 1024, `RSS ${rss0} -> ${rss1} kB`);
    for (const c of clients) await c.close();
  });
});

test('a client that disconnects mid-SSE does not disturb the gateway', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate' }));
  await withGateway(cfg, async (gw) => {
    for (let i = 0; i < 20; i++) {
      const sid = await rawSession(gw.url);
      const ac = new AbortController();
      const res = await fetch(gw.url, { method: 'POST', signal: ac.signal, headers: { 'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sid },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call',
        params: { name: 'echo__sleep', arguments: { seconds: 0.3 }, _meta: { progressToken: 'p' } } }) });
      const reader = res.body.getReader();
      await reader.read().catch(() => null);
      ac.abort();
    }
    await sleep(600);
    const c = await httpClient(gw.url);
    assert.equal(textOf(await c.callTool({ name: 'echo__echo', arguments: { message: 'fine' } })), 'fine');
    await c.close();
  });
});

test('500 slowloris connections do not stop a real client', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate', limits: { request_timeout: 2 } }));
  await withGateway(cfg, async (gw) => {
    const { port } = new URL(gw.url);
    const socks = [];
    for (let i = 0; i < 500; i++) {
      const s = net.connect(Number(port), '127.0.0.1');
      s.on('error', () => {});
      s.resume(); // read what we get (the 408), so the close is seen
      s.write('POST /mcp HTTP/1.1\r\nHost: localhost\r\n');
      socks.push(s);
    }
    await sleep(300);
    const t0 = Date.now();
    const sid = await rawSession(gw.url);
    const r = await post(gw.url, { jsonrpc: '2.0', id: 2, method: 'tools/call',
      params: { name: 'echo__echo', arguments: { message: 'through' } } }, { 'Mcp-Session-Id': sid });
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 < 2000, `served in ${Date.now() - t0} ms beside 500 slow connections`);
    // Past the per-address share of untrusted connections some were refused (429) at once;
    // the rest are cut by the request timeout. Count those already gone too.
    const closed = await new Promise((resolve) => {
      let n = 0;
      const done = () => { if (++n === socks.length) resolve(true); };
      for (const s of socks) { if (s.destroyed) done(); else s.on('close', done); }
      setTimeout(() => resolve(n), 5000);
    });
    assert.equal(closed, true, 'the slow connections were cut off by the request timeout');
  });
});

test('an upstream answering with a 100 MB line: the call fails at once, others are served meanwhile, memory comes back',
  async () => {
    const cfg = writeConfig(gatewayConfig([luaServer('faulty', FAULTY), luaServer('echo', ECHO)], { mode: 'aggregate' },
      { timeout_settings: { tool_execution_timeout: 60 } }));
    await withGateway(cfg, async (gw) => {
      const c = await httpClient(gw.url);
      const other = await httpClient(gw.url);
      await c.callTool({ name: 'echo__echo', arguments: { message: 'warm' } });
      const rss0 = rssKb(gw.proc.pid);
      for (const idLast of [false, true]) {
        const t0 = Date.now();
        let served = 0;
        let slowest = 0;
        let done = false;
        const meanwhile = (async () => {
          while (!done) {
            const t = Date.now();
            assert.equal(textOf(await other.callTool({ name: 'echo__echo', arguments: { message: 'x' } })), 'x');
            slowest = Math.max(slowest, Date.now() - t);
            served++;
          }
        })();
        const err = await c.callTool({ name: 'faulty__huge_reply', arguments: { mb: 100, id_last: idLast } },
          undefined, { timeout: 30000 }).then(() => null, (e) => e);
        done = true;
        await meanwhile;
        assert.ok(err, 'the call failed');
        assert.match(err.message, /longer than limits\.max_message_bytes/);
        assert.ok(Date.now() - t0 < 20000, `failed after ${Date.now() - t0} ms, not at the 60 s timeout`);
        assert.ok(served > 5 && slowest < 1000, `${served} calls served meanwhile, slowest ${slowest} ms`);
      }
      // The 64 MiB the line filled before it was dropped is given back.
      const rss1 = rssKb(gw.proc.pid);
      assert.ok(rss1 < rss0 + 32 * 1024, `RSS ${rss0} -> ${rss1} kB`);
      assert.equal(textOf(await c.callTool({ name: 'faulty__echo', arguments: { message: 'still up' } })), 'still up');
      await c.close();
      await other.close();
    });
  });

test('an upstream flooding stdout with 1,000,000 notifications (100 MB): its call completes, others are served, nothing piles up',
  async () => {
    const cfg = writeConfig(gatewayConfig([luaServer('faulty', FAULTY), luaServer('echo', ECHO)], { mode: 'aggregate' }));
    await withGateway(cfg, async (gw) => {
      const c = await httpClient(gw.url);
      const other = await httpClient(gw.url);
      await other.callTool({ name: 'echo__echo', arguments: { message: 'warm' } });
      const rss0 = rssKb(gw.proc.pid);
      let done = false;
      let slowest = 0;
      let served = 0;
      const meanwhile = (async () => {
        while (!done) {
          const t = Date.now();
          await other.callTool({ name: 'echo__echo', arguments: { message: 'x' } });
          slowest = Math.max(slowest, Date.now() - t);
          served++;
        }
      })();
      const r = await c.callTool({ name: 'faulty__stdout_flood', arguments: { lines: 1000000 } }, undefined,
        { timeout: 60000 });
      done = true;
      await meanwhile;
      assert.equal(textOf(r), 'flooded');
      assert.ok(served > 5 && slowest < 1000, `${served} calls served during the flood, slowest ${slowest} ms`);
      const rss1 = rssKb(gw.proc.pid);
      // 100 MB went through; what stays is the Lua heap's slack, not the flood.
      assert.ok(rss1 < rss0 + 64 * 1024, `the flood is not buffered: RSS ${rss0} -> ${rss1} kB`);
      await c.close();
      await other.close();
    });
  });
