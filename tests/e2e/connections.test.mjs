// Untrusted connections (no request on them has passed authentication yet) are bounded
// per address and in total, leaving a reserve for trusted ones; at a bound the oldest idle
// or slow one gives way to a new one, else the new one gets 429/503 with Retry-After. The
// header timeout cuts idle untrusted connections; trusted keep-alive ones stay. Several
// peers come from distinct loopback addresses (127.0.0.x).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ECHO, gatewayConfig, luaServer, writeConfig, withGateway, sleep, INIT } from './helpers.mjs';

// A raw connection from `from` that reads whole responses (Content-Length framed).
function connect(port, from = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    s.buf = '';
    s.waiters = [];
    s.on('error', () => {});
    s.on('data', (d) => {
      s.buf += d;
      for (;;) {
        const end = s.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = s.buf.slice(0, end);
        const len = Number((head.match(/content-length: *(\d+)/i) || [])[1] || 0);
        if (s.buf.length < end + 4 + len) return;
        const res = { status: Number(head.split(' ')[1]), head, body: s.buf.slice(end + 4, end + 4 + len) };
        s.buf = s.buf.slice(end + 4 + len);
        (s.waiters.shift() || (() => {}))(res);
      }
    });
    s.on('close', () => { for (const w of s.waiters.splice(0)) w(null); });
    s.on('connect', () => resolve(s));
  });
}

function request(s, method, path, body = '', headers = {}) {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  s.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n`
    + `Accept: application/json, text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`);
  return new Promise((resolve) => s.waiters.push(resolve));
}

// The first response on a fresh connection, or null when it closed without one.
const firstResponse = (s) => new Promise((resolve) => s.waiters.push(resolve));
const initialize = (s) => request(s, 'POST', '/mcp', JSON.stringify(INIT));
const openCount = (socks) => socks.filter((s) => !s.destroyed).length;

// A metric's value, read over `s` (a trusted connection when the untrusted share is full)
// or a fresh one.
async function metric(url, name, label = '', s = null) {
  const text = s ? (await request(s, 'GET', '/metrics')).body : await (await fetch(new URL('/metrics', url))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${label} `) || (label === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('one address past its share of untrusted connections: 429 with Retry-After, others unaffected, stale ones give way',
  async () => {
    const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate',
      limits: { max_untrusted_connections_per_peer: 40 } }));
    await withGateway(cfg, async (gw) => {
      const port = Number(new URL(gw.url).port);
      const flood = await Promise.all(Array.from({ length: 120 }, () => connect(port, '127.0.0.2')));
      const refused = [];
      await Promise.all(flood.map(async (s) => {
        const r = await Promise.race([firstResponse(s), sleep(1000).then(() => 'open')]);
        if (r && r !== 'open') refused.push(r);
      }));
      assert.ok(openCount(flood) <= 40, `${openCount(flood)} untrusted connections from one address stayed open`);
      assert.ok(refused.length >= 1 && refused.every((r) => r.status === 429 && /Retry-After: 1/i.test(r.head)),
        `refusals: ${refused.map((r) => r.status)}`);
      // Another address is not affected at all.
      const other = await connect(port, '127.0.0.1');
      assert.equal((await initialize(other)).status, 200);
      // The same address gets in too: its oldest idle connection gives way.
      const same = await connect(port, '127.0.0.2');
      assert.equal((await initialize(same)).status, 200);
      for (let i = 0; i < 50 && openCount(flood) > 39; i++) await sleep(20);
      assert.ok(openCount(flood) <= 39);
      assert.ok(await metric(gw.url, 'smg_limit_refusals_total', '{limit="max_untrusted_connections_per_peer"}') >= 1);
      assert.ok(await metric(gw.url, 'smg_connections_displaced_total') >= 1);
      for (const s of [...flood, other, same]) s.destroy();
    });
  });

test('untrusted connections cannot take the reserve; trusted keep-alive connections keep working', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate',
    limits: { max_connections: 100, reserved_connections: 30 } }));
  await withGateway(cfg, async (gw) => {
    const port = Number(new URL(gw.url).port);
    // 20 clients that made a request: trusted.
    const trusted = await Promise.all(Array.from({ length: 20 }, () => connect(port, '127.0.0.1')));
    for (const s of trusted) assert.equal((await initialize(s)).status, 200);
    // 70 idle connections from seven addresses: the untrusted share is 100 - 30 = 70.
    const idle = [];
    for (let a = 3; a < 10; a++) {
      idle.push(...await Promise.all(Array.from({ length: 10 }, () => connect(port, `127.0.0.${a}`))));
    }
    await sleep(100);
    assert.equal(openCount(idle), 70);
    assert.equal(await metric(gw.url, 'smg_untrusted_connections', '', trusted[0]), 70);
    // A new connection now displaces the oldest idle one (older than 250 ms) instead of
    // being refused.
    await sleep(300);
    const late = await connect(port, '127.0.0.20');
    assert.equal((await initialize(late)).status, 200);
    for (let i = 0; i < 50 && openCount(idle) > 69; i++) await sleep(20); // the close reaches us
    assert.equal(openCount(idle), 69);
    // Trusted connections were never at risk.
    for (const s of trusted.slice(0, 5)) assert.equal((await initialize(s)).status, 200);
    assert.equal(openCount(trusted), 20);
    for (const s of [...trusted, ...idle, late]) s.destroy();
  });
});

test('with the untrusted share full of fresh connections, a new one gets 503 with Retry-After', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate',
    limits: { max_connections: 40, reserved_connections: 20 } }));
  await withGateway(cfg, async (gw) => {
    const port = Number(new URL(gw.url).port);
    const admin = await connect(port);
    assert.equal((await initialize(admin)).status, 200);
    // Connections younger than 250 ms never give way (an honest burst is accepted before
    // any of it is read), so with the share (20) just filled the next one is refused.
    const fresh = await Promise.all(Array.from({ length: 20 }, (_, i) => connect(port, `127.0.1.${i + 1}`)));
    const extra = await connect(port, '127.0.2.1');
    // It sends its request at once, as clients do: the refusal must still arrive (the
    // request is drained, not left unread for the kernel to answer with a reset).
    extra.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${JSON.stringify(INIT).length}\r\n\r\n${JSON.stringify(INIT)}`);
    const r = await firstResponse(extra);
    assert.equal(r && r.status, 503);
    assert.match(r.head, /Retry-After: 1/i);
    assert.ok(await metric(gw.url, 'smg_limit_refusals_total', '{limit="max_connections"}', admin) >= 1);
    for (const s of [...fresh, admin]) s.destroy();
  });
});

test('header_timeout cuts idle untrusted connections; a trusted idle one stays', async () => {
  const cfg = writeConfig(gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate', limits: { header_timeout: 1 } }));
  await withGateway(cfg, async (gw) => {
    const port = Number(new URL(gw.url).port);
    const trusted = await connect(port);
    assert.equal((await initialize(trusted)).status, 200);
    const idle = await connect(port);
    const slow = await connect(port);
    slow.write('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const t0 = Date.now();
    const [a, b] = await Promise.all([firstResponse(idle), firstResponse(slow)]);
    const took = Date.now() - t0;
    assert.equal(a, null, 'an idle untrusted connection is closed without a response');
    assert.equal(b && b.status, 408);
    assert.ok(took >= 800 && took < 3000, `cut after ${took} ms`);
    await sleep(300);
    assert.equal(trusted.destroyed, false);
    assert.equal((await initialize(trusted)).status, 200, 'the trusted connection outlived the header timeout');
    assert.ok(await metric(gw.url, 'smg_header_timeouts_total') >= 2);
    trusted.destroy();
  });
});
