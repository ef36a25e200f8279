// The plugin runtime, end to end: hooks yield instead of blocking the loop, several
// guardrails run by priority, and config and plugin files hot-reload under load without
// failing a call (a broken plugin leaves the running version in place).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECHO, FIXTURES, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf, sleep, post, rawSession } from './helpers.mjs';

const PLUGINS = join(FIXTURES, 'plugins');
const policy = (extra = {}) => ({ enabled: true, policy_name: 'p', block: [], additional_config: {}, ...extra });

test('a guardrail sleeping 1 s on one call holds up none of 100 others', async () => {
  const cfg = gatewayConfig([luaServer('s', ECHO, { enable_tool_guardrails: true,
    input_guardrails_policy: policy({ guardrails: ['sleepy'], additional_config: { seconds: 1 } }) })], { mode: 'aggregate' });
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    const c2 = await httpClient(gw.url); // (a session takes 64 calls in flight; a slow build may have them all)
    const t0 = Date.now();
    let slowDoneAt = 0;
    const slow = c.callTool({ name: 's__echo', arguments: { message: 'slow' } }).then((r) => { slowDoneAt = Date.now(); return r; });
    const fast = await Promise.all(Array.from({ length: 100 }, (_, i) =>
      (i % 2 ? c : c2).callTool({ name: 's__echo', arguments: { message: `m${i}` } }).then((r) => ({ r, at: Date.now() }))));
    fast.forEach(({ r }, i) => assert.equal(textOf(r), `m${i}`));
    assert.equal(slowDoneAt, 0, 'all 100 calls finished while the slow guardrail was still waiting');
    assert.equal(textOf(await slow), 'slow');
    assert.ok(slowDoneAt - t0 >= 1000, 'the slow call did wait for its guardrail');
    await c.close();
    await c2.close();
  }, { env: { SMG_PLUGIN_PATH: PLUGINS } });
});

// A plugin dir of our own, so the test can drop files into it.
function pluginDir() {
  const dir = mkdtempSync(join(tmpdir(), 'smg-plugins-'));
  for (const k of ['auth', 'guardrails', 'telemetry']) mkdirSync(join(dir, k));
  return dir;
}

const blockingPlugin = (word, priority = 50) => `
return { name = "my_policy", kind = "guardrail", version = "1.0.${priority}", priority = ${priority},
  check_input = function(call)
    local text = require("smg").json.encode(call.arguments)
    if text:find("${word}", 1, true) then return { allowed = false, violations = { { type = "word_${word}" } } } end
    return { allowed = true }
  end }
`;

// Writes a file the way editors do: a temp file renamed over the target.
function saveFile(path, text) {
  writeFileSync(path + '.tmp', text);
  renameSync(path + '.tmp', path);
}

async function metric(gw, name) {
  const body = await (await fetch(gw.origin + '/metrics')).text();
  const m = body.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

async function waitFor(pred, what, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Calls `name` in `n` loops of raw JSON-RPC (the SDK client leaks an abort listener per
// call, which thousands of calls turn into noise) until stopped; counts answers and failures.
function load(url, name, n = 4) {
  const stats = { ok: 0, failed: [], stop: false };
  const loops = Array.from({ length: n }, async (_, k) => {
    const sid = await rawSession(url);
    const h = { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-11-25' };
    for (let i = 0; !stats.stop; i++) {
      try {
        const r = await post(url, { jsonrpc: '2.0', id: i, method: 'tools/call',
          params: { name, arguments: { message: `load ${k} ${i}` } } }, h);
        const res = r.json && r.json.result;
        if (r.status !== 200 || !res) stats.failed.push(`${r.status} ${r.text}`);
        else if (res.isError && !/Blocked by guardrail/.test(textOf(res))) stats.failed.push(textOf(res));
        else stats.ok++;
      } catch (e) {
        stats.failed.push(String(e));
      }
      if (stats.failed.length > 20) stats.stop = true; // no runaway loop on a dead gateway
    }
  });
  stats.done = async () => { stats.stop = true; await Promise.all(loops); return stats; };
  return stats;
}

test('a guardrail file dropped into plugins/ takes effect under load; a broken one is refused', async () => {
  const dir = pluginDir();
  const cfg = gatewayConfig([luaServer('s', ECHO, { enable_tool_guardrails: true,
    input_guardrails_policy: policy({ guardrails: ['my_policy'] }) }), luaServer('open', ECHO)],
  { mode: 'aggregate', reload_debounce: 0.02 });
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    // Named by the policy but not there yet: those calls fail closed, others are served.
    let r = await c.callTool({ name: 's__echo', arguments: { message: 'hello' } });
    assert.match(textOf(r), /guardrail my_policy .*guardrail_unavailable/);
    const bg = load(gw.url, 'open__echo');
    const file = join(dir, 'guardrails', 'my_policy.lua');
    saveFile(file, blockingPlugin('secret'));
    await waitFor(async () => !(await c.callTool({ name: 's__echo', arguments: { message: 'hello' } })).isError,
      'the new plugin to load');
    r = await c.callTool({ name: 's__echo', arguments: { message: 'my secret' } });
    assert.equal(r.structuredContent.guardrail, 'my_policy');
    assert.deepEqual(r.structuredContent.violations, ['word_secret']);
    // A broken version is refused; the running one keeps working.
    const gen = await metric(gw, 'smg_config_generation');
    saveFile(file, 'return { this is not lua');
    await waitFor(() => /reload \(changed: my_policy.lua\) refused/.test(gw.logs()), 'the refusal');
    assert.equal(await metric(gw, 'smg_config_generation'), gen);
    r = await c.callTool({ name: 's__echo', arguments: { message: 'my secret' } });
    assert.equal(r.structuredContent.guardrail, 'my_policy', 'previous version still runs');
    // An edit swaps in the new behaviour.
    saveFile(file, blockingPlugin('password', 60));
    await waitFor(async () => (await metric(gw, 'smg_config_generation')) > gen, 'the fixed plugin to load');
    assert.equal(textOf(await c.callTool({ name: 's__echo', arguments: { message: 'my secret' } })), 'my secret');
    r = await c.callTool({ name: 's__echo', arguments: { message: 'my password' } });
    assert.deepEqual(r.structuredContent.violations, ['word_password']);
    const stats = await bg.done();
    assert.deepEqual(stats.failed, []);
    assert.ok(stats.ok > 0);
    await c.close();
  }, { env: { SMG_PLUGIN_PATH: dir } });
});

test('100 reloads under continuous load fail no call', async () => {
  const dir = pluginDir();
  saveFile(join(dir, 'guardrails', 'my_policy.lua'), blockingPlugin('secret'));
  const make = (i) => gatewayConfig([
    luaServer('s', ECHO, { enable_tool_guardrails: true,
      input_guardrails_policy: policy({ guardrails: ['my_policy', 'sleepy'], policy_name: `v${i}`, additional_config: { seconds: 0.01 } }),
      // Every 10th version changes the server's process: the old one is retired after its calls.
      config: { command: cfgServer.config.command, args: cfgServer.config.args, env: { GEN: String(Math.floor(i / 10)) } } }),
  ], { mode: 'aggregate', reload_debounce: 0, watch: false });
  const cfgServer = luaServer('s', ECHO);
  const path = writeConfig(make(0));
  await withGateway(path, async (gw) => {
    const c = await httpClient(gw.url);
    const bg = load(gw.url, 's__echo', 8);
    const gen0 = await metric(gw, 'smg_config_generation');
    for (let i = 1; i <= 100; i++) {
      saveFile(path, JSON.stringify(make(i)));
      gw.proc.kill('SIGHUP');
      await waitFor(async () => (await metric(gw, 'smg_config_generation')) >= gen0 + i, `reload ${i}`);
    }
    const blocked = await c.callTool({ name: 's__echo', arguments: { message: 'secret' } });
    assert.match(textOf(blocked), /policy v100/);
    const stats = await bg.done();
    assert.deepEqual(stats.failed, [], 'no call failed');
    assert.ok(stats.ok >= 100, `calls kept flowing (${stats.ok})`);
    assert.equal(await metric(gw, 'smg_config_generation'), gen0 + 100);
    await c.close();
  }, { env: { SMG_PLUGIN_PATH: `${dir}:${PLUGINS}` } });
});

test('a plugin that calls os.exit fails its own call, not the gateway', async () => {
  const cfg = gatewayConfig([
    luaServer('bad', ECHO, { enable_tool_guardrails: true, input_guardrails_policy: policy({ guardrails: ['exiter'] }) }),
    luaServer('good', ECHO)], { mode: 'aggregate' });
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    const r = await c.callTool({ name: 'bad__echo', arguments: { message: 'x' } });
    assert.deepEqual(r.structuredContent.violations, ['guardrail_error']);
    assert.equal(textOf(await c.callTool({ name: 'good__echo', arguments: { message: 'still here' } })), 'still here');
    assert.match(gw.logs(), /os\.exit is not available inside the gateway/);
    await c.close();
  }, { env: { SMG_PLUGIN_PATH: PLUGINS } });
});

test('a folder plugin created while smg runs is picked up, and so are edits inside it', async () => {
  const dir = pluginDir();
  const cfg = gatewayConfig([luaServer('s', ECHO, { enable_tool_guardrails: true,
    input_guardrails_policy: policy({ guardrails: ['my_policy'] }) })], { mode: 'aggregate', reload_debounce: 0.02 });
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    const folder = join(dir, 'guardrails', 'my_policy');
    mkdirSync(folder);
    await sleep(100); // the folder alone: a reload that still fails closed
    saveFile(join(folder, 'init.lua'), blockingPlugin('secret'));
    await waitFor(async () => !(await c.callTool({ name: 's__echo', arguments: { message: 'hi' } })).isError, 'the folder plugin');
    assert.equal((await c.callTool({ name: 's__echo', arguments: { message: 'secret' } })).structuredContent.guardrail, 'my_policy');
    saveFile(join(folder, 'init.lua'), blockingPlugin('password', 70));
    await waitFor(async () => (await c.callTool({ name: 's__echo', arguments: { message: 'password' } })).isError,
      'the edit inside the folder');
    await c.close();
  }, { env: { SMG_PLUGIN_PATH: dir } });
});
