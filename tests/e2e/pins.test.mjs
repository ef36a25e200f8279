// Tool pins kept across restarts and decided on with the CLI: a rug pull (a definition
// that changes after the first listing) hides the tool and refuses its calls until
// `smg pins approve` takes the new definition, which a running gateway applies at once
// (sessions are told tools/list_changed); `reject` keeps it out; a restart remembers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { statSync, readFileSync } from 'node:fs';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { SMG, FIXTURES, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf, sleep } from './helpers.mjs';

const SHIFTY = join(FIXTURES, 'servers/shifty.lua');
const pol = { enabled: true, policy_name: 'p', additional_config: {}, guardrails: ['tool_scan'], block: ['tool_poisoning', 'tool_changed'] };
const pins = (...args) => spawnSync(SMG, ['pins', ...args], { encoding: 'utf8' });
const names = async (c) => (await c.listTools()).tools.map((t) => t.name).sort();

async function until(fn, ms = 3000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await sleep(50);
  }
}

test('a rug pull waits for approval; approve and reject from the CLI apply at once; pins survive a restart', async () => {
  const cfgPath = writeConfig(gatewayConfig([luaServer('shifty', SHIFTY, { enable_tool_guardrails: true,
    input_guardrails_policy: pol, output_guardrails_policy: { ...pol, enabled: false } })], { mode: 'aggregate' }));
  const pinsPath = cfgPath.replace(/\.json$/, '.pins.json');
  await withGateway(cfgPath, async (gw) => {
    const c = await httpClient(gw.url);
    let told = 0;
    c.setNotificationHandler(ToolListChangedNotificationSchema, () => { told++; });
    assert.deepEqual(await names(c), ['shifty__fetch', 'shifty__rug_pull']);
    const prompts = async () => (await c.listPrompts()).prompts.map((p) => p.name);
    assert.deepEqual(await prompts(), ['shifty__summarize'], 'the first prompts list is pinned as it is');
    await until(() => { try { return statSync(pinsPath).size > 0; } catch { return false; } });
    assert.equal(statSync(pinsPath).mode & 0o777, 0o600);
    let r = pins('list', '--config', cfgPath);
    assert.match(r.stdout, /approved +shifty\/fetch/);
    await c.callTool({ name: 'shifty__rug_pull', arguments: {} });
    assert.ok(await until(async () => !(await names(c)).includes('shifty__fetch')), 'the changed tool is hidden');
    const refused = await c.callTool({ name: 'shifty__fetch', arguments: { url: 'http://a' } });
    assert.equal(refused.isError, true);
    await until(() => /pending/.test(pins('list', '--config', cfgPath).stdout));
    r = pins('list', '--config', cfgPath);
    assert.match(r.stdout, /pending +shifty\/fetch  \(changed\)/);
    // Approving from the CLI: the running gateway rereads the pins and tells the session.
    const before = told;
    r = pins('approve', 'shifty/fetch', '--config', cfgPath);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(await until(() => told > before), 'tools/list_changed after the approval');
    assert.ok((await names(c)).includes('shifty__fetch'), 'the approved tool is back');
    assert.equal(textOf(await c.callTool({ name: 'shifty__fetch', arguments: { url: 'http://b' } })), 'fetched http://b');
    // The prompt changed too: hidden, refused, pending under its own id, approved alone.
    assert.ok(await until(async () => !(await prompts()).includes('shifty__summarize')), 'the changed prompt is hidden');
    await assert.rejects(c.getPrompt({ name: 'shifty__summarize', arguments: { text: 'x' } }), /tool_changed/);
    assert.match(pins('list', '--config', cfgPath).stdout, /pending +shifty\/prompt:summarize  \(changed\)/);
    r = pins('approve', 'shifty/prompt:summarize', '--config', cfgPath);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(await until(async () => (await prompts()).includes('shifty__summarize')), 'the approved prompt is back');
    const got = await c.getPrompt({ name: 'shifty__summarize', arguments: { text: 'x' } });
    assert.equal(got.messages[0].content.text, 'Summarize: x');
    // Rejecting takes it out again.
    r = pins('reject', 'shifty/fetch', '--config', cfgPath);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(await until(async () => !(await names(c)).includes('shifty__fetch')), 'the rejected tool is hidden');
    await c.close();
  });
  // A restart keeps the decisions: the honest definition the server offers again after a
  // restart does not match the approved one, and the rejection stands anyway.
  await withGateway(cfgPath, async (gw) => {
    const c = await httpClient(gw.url);
    assert.deepEqual(await names(c), ['shifty__rug_pull']);
    await c.close();
  });
  const doc = JSON.parse(readFileSync(pinsPath, 'utf8'));
  assert.equal(doc.items.find((t) => t.name === 'fetch').status, 'rejected');
  const bad = pins('approve', 'shifty/nope', '--config', cfgPath);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /no pin named shifty\/nope/);
});
