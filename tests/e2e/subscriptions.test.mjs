// Resource subscriptions through a shared upstream, counted: two 2025 clients and a 2026
// listen stream watch URIs of one upstream; it is asked once per URI, told to stop when
// the last watcher leaves (unsubscribe, DELETE, the listen stream closing), and every
// watcher hears of a change. With a 2025 upstream (resources/subscribe) and a 2026-only
// one (its listen stream is opened again with resourceSubscriptions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { FIXTURES, SMG, writeConfig, withGateway, httpClient, textOf, sleep } from './helpers.mjs';

const WATCHED = join(FIXTURES, 'servers/watched.lua');
const V = '2026-07-28';
const META = { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {} };

async function until(what, cond, ms = 5000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

// A raw 2026 listen stream: its messages as they arrive, and a way to close it.
async function listen(url, uris) {
  const ac = new AbortController();
  const res = await fetch(url, { method: 'POST', signal: ac.signal, headers: { 'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': V, 'Mcp-Method': 'subscriptions/listen' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 'L1', method: 'subscriptions/listen',
    params: { notifications: { resourceSubscriptions: uris }, _meta: META } }) });
  const messages = [];
  (async () => {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const data = buf.slice(0, i).split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n');
          buf = buf.slice(i + 2);
          if (data.trim()) messages.push(JSON.parse(data));
        }
      }
    } catch { /* closed */ }
  })();
  return { messages, close: () => ac.abort() };
}

for (const era of ['legacy', 'modern']) {
  test(`subscriptions to a ${era === 'legacy' ? '2025' : '2026-only'} upstream are counted per URI`, async () => {
    const cfg = writeConfig({ mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'w',
      config: { command: SMG, args: ['run', WATCHED], env: era === 'modern' ? { SMG_FIXTURE_ERA: 'modern' } : {} },
      era }] } }, gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
    await withGateway(cfg, async (gw) => {
      const heard = { a: [], b: [] };
      const a = await httpClient(gw.url, { name: 'a' });
      const b = await httpClient(gw.url, { name: 'b' });
      for (const [name, c] of [['a', a], ['b', b]]) {
        c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => { heard[name].push(n.params.uri); });
      }
      const watching = async () => textOf(await a.callTool({ name: 'w__watching', arguments: {} }));
      const touch = (uri) => a.callTool({ name: 'w__touch', arguments: { uri } });
      await a.subscribeResource({ uri: 'watch://a' });
      await b.subscribeResource({ uri: 'watch://a' });
      await until('the upstream watches a', async () => (await watching()) === 'watch://a');
      await sleep(300); // the GET streams are open
      await touch('watch://a');
      await until('both heard of a', () => heard.a.length === 1 && heard.b.length === 1);
      // One of two leaves: the upstream still watches for the other.
      await a.unsubscribeResource({ uri: 'watch://a' });
      assert.equal(await watching(), 'watch://a');
      await touch('watch://a');
      await until('b heard again', () => heard.b.length === 2);
      assert.equal(heard.a.length, 1, 'a left');
      // A 2026 listen stream watches b: the upstream is asked for b too.
      const l = await listen(gw.url, ['watch://b', 'watch://nobody']);
      await until('the upstream watches b', async () => (await watching()) === 'watch://a,watch://b');
      await touch('watch://b');
      await until('the listen stream heard of b', () => l.messages.some((m) => m.method === 'notifications/resources/updated'));
      const upd = l.messages.find((m) => m.method === 'notifications/resources/updated');
      assert.equal(upd.params.uri, 'watch://b');
      assert.equal(upd.params._meta['io.modelcontextprotocol/subscriptionId'], 'L1');
      assert.equal(l.messages[0].method, 'notifications/subscriptions/acknowledged', 'the acknowledgement came first');
      assert.equal(heard.b.length, 2, 'b (the client) did not watch b (the resource)');
      // The last watchers go: the stream closes, b's session ends.
      l.close();
      await until('b released', async () => (await watching()) === 'watch://a');
      await b.transport.terminateSession();
      await until('a released', async () => (await watching()) === '');
      await a.close();
      await b.close();
    });
  });
}
