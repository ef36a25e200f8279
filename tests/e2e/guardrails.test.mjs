// Guardrail plugins around tool calls, end to end: the keyword plugin blocks on input and
// on output per server policy, in aggregate and meta modes; a guardrail that cannot be
// loaded fails closed for the servers that use guardrails and leaves the others alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ECHO, FIXTURES, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf, sleep } from './helpers.mjs';

const policy = (enabled, keywords, extra = {}) => ({ enabled, policy_name: 'test policy',
  additional_config: { keywords }, block: [], ...extra });

function config(mode, provider = 'keyword') {
  const cfg = gatewayConfig([
    luaServer('guarded', ECHO, { enable_tool_guardrails: true,
      input_guardrails_policy: policy(true, ['forbidden']), output_guardrails_policy: policy(true, ['leak']) }),
    luaServer('open', ECHO),
  ], { mode });
  cfg.plugins = { guardrails: { provider, config: { keywords: ['drop table'] } } };
  return writeConfig(cfg);
}

test('keyword guardrail blocks input and output in aggregate mode', async () => {
  await withGateway(config('aggregate'), async (gw) => {
    const c = await httpClient(gw.url);
    assert.equal(textOf(await c.callTool({ name: 'guarded__echo', arguments: { message: 'fine' } })), 'fine');
    let r = await c.callTool({ name: 'guarded__echo', arguments: { message: 'this is FORBIDDEN' } });
    assert.equal(r.isError, true);
    assert.match(textOf(r), /Blocked by guardrail keyword \(input, policy test policy\): keyword_detected/);
    assert.ok(!textOf(r).toLowerCase().includes('forbidden'), 'the matched text is not echoed');
    r = await c.callTool({ name: 'guarded__echo', arguments: { message: 'please DROP TABLE x' } });
    assert.equal(r.structuredContent.guardrail, 'keyword', 'plugin-level keywords apply too');
    r = await c.callTool({ name: 'guarded__echo', arguments: { message: 'a leak' } });
    assert.equal(r.structuredContent.direction, 'output');
    // A server without guardrails is untouched.
    assert.equal(textOf(await c.callTool({ name: 'open__echo', arguments: { message: 'forbidden leak' } })), 'forbidden leak');
    assert.match(gw.logs(), /guardrail keyword blocked input of guarded\/echo: keyword_detected/);
    await c.close();
  });
});

test('secure_call_tools reports guardrail blocks per call in meta mode', async () => {
  await withGateway(config('meta'), async (gw) => {
    const c = await httpClient(gw.url);
    const r = await c.callTool({ name: 'enkrypt_secure_call_tools', arguments: { server_name: 'guarded',
      tool_calls: [{ name: 'echo', args: { message: 'ok' } }, { name: 'echo', args: { message: 'forbidden' } }] } });
    const [a, b] = r.structuredContent.results;
    assert.equal(a.status, 'success');
    assert.equal(b.status, 'blocked');
    assert.equal(r.structuredContent.summary.failed, 1);
    await c.close();
  });
});

test('a guardrail provider that cannot load fails closed', async () => {
  await withGateway(config('aggregate', 'no_such_guardrail'), async (gw) => {
    const c = await httpClient(gw.url);
    const r = await c.callTool({ name: 'guarded__echo', arguments: { message: 'fine' } });
    assert.equal(r.isError, true);
    assert.match(textOf(r), /guardrail_unavailable/);
    assert.equal(textOf(await c.callTool({ name: 'open__echo', arguments: { message: 'fine' } })), 'fine');
    assert.match(gw.logs(), /plugin not loaded: no guardrail plugin "no_such_guardrail"/);
    await c.close();
  });
});

const SHIFTY = join(FIXTURES, 'servers/shifty.lua');

test('pii redacts arguments before the upstream and restores them in the result', async () => {
  const withPolicy = (name, output) => luaServer(name, ECHO, { enable_tool_guardrails: true,
    input_guardrails_policy: { ...policy(true, []), guardrails: ['pii'] },
    output_guardrails_policy: { ...policy(output, []), guardrails: ['pii'] } });
  const cfg = gatewayConfig([withPolicy('roundtrip', true), withPolicy('oneway', false)], { mode: 'aggregate' });
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    const msg = 'mail bob@example.com, card 4111 1111 1111 1111';
    // Without the output policy the client sees what the upstream received: placeholders.
    assert.equal(textOf(await c.callTool({ name: 'oneway__echo', arguments: { message: msg } })),
      'mail <EMAIL_1>, card <CREDIT_CARD_1>');
    // With it, the placeholders the upstream echoed come back as the caller's values.
    assert.equal(textOf(await c.callTool({ name: 'roundtrip__echo', arguments: { message: msg } })), msg);
    assert.ok(!gw.logs().includes('bob@example.com'), 'the value never reaches the log');
    await c.close();
  });
});

test('tool_scan hides a poisoned tool and catches a rug pull', async () => {
  const pol = { ...policy(true, []), guardrails: ['tool_scan'], block: ['tool_poisoning', 'tool_changed'] };
  const cfg = gatewayConfig([luaServer('shifty', SHIFTY, { enable_tool_guardrails: true,
    input_guardrails_policy: pol, output_guardrails_policy: { ...pol, enabled: false } })], { mode: 'aggregate' });
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    let names = (await c.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, ['shifty__fetch', 'shifty__rug_pull']);
    assert.match(gw.logs(), /guardrail tool_scan flagged shifty\/weather at discovery: tool_poisoning/);
    assert.equal(textOf(await c.callTool({ name: 'shifty__fetch', arguments: { url: 'http://a' } })), 'fetched http://a');
    await c.callTool({ name: 'shifty__rug_pull', arguments: {} });
    // The change is seen at the next discovery; from then on the tool is hidden and refused.
    for (let i = 0; i < 50; i++) {
      names = (await c.listTools()).tools.map((t) => t.name);
      if (!names.includes('shifty__fetch')) break;
      await sleep(20);
    }
    assert.deepEqual(names, ['shifty__rug_pull']);
    const r = await c.callTool({ name: 'shifty__fetch', arguments: { url: 'http://a' } });
    assert.equal(r.isError, true);
    assert.deepEqual(r.structuredContent.violations, ['tool_changed']);
    await c.close();
  });
});

test("the seed's async guardrail modes: input checked alongside the call, output reported after", async () => {
  const cfg = gatewayConfig([luaServer('s', ECHO, { enable_tool_guardrails: true,
    input_guardrails_policy: { ...policy(true, ['forbidden']), guardrails: ['keyword', 'sleepy'], additional_config: { keywords: ['forbidden'], seconds: 1 } },
    output_guardrails_policy: { ...policy(true, ['leak']), guardrails: ['keyword'] } })],
  { mode: 'aggregate' }, { enkrypt_async_input_guardrails_enabled: true, enkrypt_async_output_guardrails_enabled: true });
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    // A 1 s guardrail and a 1 s tool overlap: well under the 2 s they take in turn.
    const t0 = Date.now();
    assert.equal(textOf(await c.callTool({ name: 's__sleep', arguments: { seconds: 1, message: 'slow' } })), 'slept 1s');
    assert.ok(Date.now() - t0 < 1900, `input check ran alongside the call (${Date.now() - t0} ms)`);
    const r = await c.callTool({ name: 's__echo', arguments: { message: 'forbidden' } });
    assert.equal(r.structuredContent.guardrail, 'keyword', 'a violation still replaces the result');
    // Output: returned at once, the violation reported afterwards.
    assert.equal(textOf(await c.callTool({ name: 's__echo', arguments: { message: 'a leak' } })), 'a leak');
    for (let i = 0; i < 50 && !/flagged the output of s\/echo after it was returned/.test(gw.logs()); i++) await sleep(20);
    assert.match(gw.logs(), /guardrail keyword flagged the output of s\/echo after it was returned/);
    await c.close();
  }, { env: { SMG_PLUGIN_PATH: join(FIXTURES, 'plugins') } });
});

test('1 MB payloads built to be slow to scan never stall other tenants', async () => {
  const guarded = { enabled: true, policy_name: 'p', block: [], guardrails: ['pii', 'injection'], additional_config: {} };
  const server = (name) => luaServer(name, ECHO, { enable_tool_guardrails: true, input_guardrails_policy: guarded,
    output_guardrails_policy: guarded });
  const cfg = gatewayConfig([server('s'), server('t')], { mode: 'aggregate', limits: { max_body_bytes: 8 * 1024 * 1024 } },
    { timeout_settings: { guardrail_timeout: 60, tool_execution_timeout: 60 } });
  await withGateway(writeConfig(cfg), async (gw) => {
    const attacker = await httpClient(gw.url);
    const others = await Promise.all(Array.from({ length: 4 }, () => httpClient(gw.url)));
    const MB = 1024 * 1024;
    const payloads = ['disregard' + ' '.repeat(MB), '1.'.repeat(MB / 2), 'ignore ' + ' \t'.repeat(MB / 2) + 'x'];
    let done = false;
    let scanned = 0;
    const attack = (async () => {
      for (const message of payloads) {
        const r = await attacker.callTool({ name: 't__echo', arguments: { message } }, undefined, { timeout: 60000 });
        assert.ok(!r.isError || /Blocked/.test(textOf(r)));
        scanned++;
      }
      done = true;
    })();
    const lat = [];
    await Promise.all(others.map(async (c, k) => {
      for (let i = 0; !done; i++) {
        const t0 = Date.now();
        assert.equal(textOf(await c.callTool({ name: 's__echo', arguments: { message: `hi ${k} ${i}` } })), `hi ${k} ${i}`);
        lat.push(Date.now() - t0);
      }
    }));
    await attack;
    lat.sort((a, b) => a - b);
    assert.equal(scanned, 3);
    assert.ok(lat.length > 20, `${lat.length} calls served meanwhile`);
    // Before the scans sliced and yielded, one such payload froze every tenant for seconds.
    assert.ok(lat[lat.length - 1] < 500, `slowest call beside the attack: ${lat[lat.length - 1]} ms`);
    for (const c of [attacker, ...others]) await c.close();
  });
});
