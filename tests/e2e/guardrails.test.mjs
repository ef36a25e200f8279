// Guardrail plugins around tool calls, end to end: the keyword plugin blocks on input and
// on output per server policy, in aggregate and meta modes; a guardrail that cannot be
// loaded fails closed for the servers that use guardrails and leaves the others alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ECHO, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf } from './helpers.mjs';

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
