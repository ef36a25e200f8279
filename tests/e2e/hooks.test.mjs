// The message pipeline's eight hook points, end to end: a fixture guardrail
// (tests/fixtures/plugins/guardrails/recorder.lua) subscribed to every point rewrites
// "SECRET" to "[<point>]" and blocks a message carrying "BLOCK-<point>"; a fixture upstream
// (tests/fixtures/servers/hooked.lua) sends every kind of message and reports what it
// received. Each test proves its point both ways: the receiver sees the rewrite, and a
// message meant to be stopped there never arrives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  ElicitRequestSchema, CreateMessageRequestSchema, ListRootsRequestSchema,
  LoggingMessageNotificationSchema, ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { FIXTURES, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf, sleep, post } from './helpers.mjs';

const PLUGINS = join(FIXTURES, 'plugins');
const HOOKED = join(FIXTURES, 'servers/hooked.lua');
const policy = { enabled: true, policy_name: 'p', block: [], guardrails: ['recorder'], additional_config: {} };
const server = (extra = {}) => luaServer('h', HOOKED, {
  sharing: 'per_session', enable_tool_guardrails: true,
  input_guardrails_policy: policy, output_guardrails_policy: policy, ...extra,
});

async function client(gw, answers) {
  const c = await httpClient(gw.url, { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } });
  c.seen = { sampling: [], elicitation: [], logs: [], listChanged: 0 };
  c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    const t = req.params.messages[0].content.text;
    c.seen.sampling.push(t);
    if (answers.sampling instanceof Error) throw answers.sampling;
    return { role: 'assistant', model: 'm', content: { type: 'text', text: answers.sampling ?? `reply to ${t}` } };
  });
  c.setRequestHandler(ElicitRequestSchema, async (req) => {
    c.seen.elicitation.push(req.params.message);
    if (answers.elicitation instanceof Error) throw answers.elicitation;
    return { action: 'accept', content: { answer: answers.elicitation ?? 'yes' } };
  });
  c.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: 'file:///tmp/x', name: answers.root ?? 'root' }] }));
  c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { c.seen.logs.push(n.params.data); });
  c.setNotificationHandler(ToolListChangedNotificationSchema, () => { c.seen.listChanged++; });
  return c;
}

const call = (c, name, args, opts) => c.callTool({ name: `h__${name}`, arguments: args }, undefined, opts);
const asked = (r) => JSON.parse(textOf(r));

function sawHook(gw, point, method) {
  assert.ok(gw.logs().includes(`hook ${point} ${method}`), `the recorder saw ${point} ${method}`);
}

const run = (fn, answers = {}, extra = {}) => withGateway(writeConfig(gatewayConfig([server(extra)], { mode: 'aggregate' })),
  async (gw) => {
    const c = await client(gw, answers);
    try { await fn(c, gw); } finally { await c.close(); }
  }, { env: { SMG_PLUGIN_PATH: PLUGINS } });

test('c2s:request rewrites and blocks a forwarded request; s2c:result rewrites and blocks the result', () => run(async (c, gw) => {
  assert.equal(textOf(await call(c, 'say', { text: 'SECRET' })), 'out:[c2s:request]');
  assert.equal(textOf(await call(c, 'say', { text: 'x', reply: 'S3CRET-OUT' })), '[s2c:result]-OUT');
  const inBlocked = await call(c, 'say', { text: 'BLOCK-c2s:request' });
  assert.equal(inBlocked.isError, true);
  assert.match(textOf(inBlocked), /recorder/);
  const outBlocked = await call(c, 'say', { text: 'x', reply: 'BLOCK-s2c:result' });
  assert.equal(outBlocked.isError, true);
  assert.doesNotMatch(JSON.stringify(outBlocked), /BLOCK-s2c:result/, 'the blocked result never reaches the client');
  // Discovery results pass s2c:result too.
  await c.listTools();
  sawHook(gw, 's2c:result', 'tools/list');
}));

test('s2c:notification rewrites progress and log messages; list_changed passes it', () => run(async (c, gw) => {
  const progress = [];
  const r = await call(c, 'chatter', { text: 'S3CRET' }, { onprogress: (p) => progress.push(p.message) });
  assert.equal(textOf(r), 'done');
  assert.deepEqual(progress, ['progress [s2c:notification]']);
  for (let i = 0; i < 50 && c.seen.logs.length === 0; i++) await sleep(20);
  assert.deepEqual(c.seen.logs, ['log [s2c:notification]']);
  // A progress notification meant to be stopped never reaches the client; the call still ends.
  const stopped = [];
  const r2 = await call(c, 'chatter', { text: 'BLOCK-s2c:notification' }, { onprogress: (p) => stopped.push(p) });
  assert.equal(textOf(r2), 'done');
  assert.deepEqual(stopped, []);
  await call(c, 'announce', {});
  for (let i = 0; i < 50 && c.seen.listChanged === 0; i++) await sleep(20);
  assert.equal(c.seen.listChanged, 1);
  sawHook(gw, 's2c:notification', 'notifications/tools/list_changed');
}));

test('s2c:request rewrites and blocks an upstream request to the client; c2s:result rewrites and blocks the answer',
  () => run(async (c) => {
    const ok = asked(await call(c, 'ask', { kind: 'sampling', text: 'S3CRET' }));
    assert.deepEqual(c.seen.sampling, ['[s2c:request]']);
    assert.equal(ok.result.content.text, 'reply to [s2c:request]');
    const refused = asked(await call(c, 'ask', { kind: 'sampling', text: 'BLOCK-s2c:request' }));
    assert.equal(c.seen.sampling.length, 1, 'the client was never asked');
    assert.match(refused.error.message, /refused by guardrail recorder/);
    const elicited = asked(await call(c, 'ask', { kind: 'elicitation', text: 'tell me' }));
    assert.equal(elicited.result.content.answer, 'yes');
    assert.deepEqual(c.seen.elicitation, ['tell me']);
  }));

test('c2s:result blocks the client\'s answer before the upstream sees it', () => run(async (c) => {
  const r = asked(await call(c, 'ask', { kind: 'sampling', text: 'q' }));
  assert.match(r.error.message, /withheld by guardrail recorder/);
  assert.doesNotMatch(JSON.stringify(r), /BLOCK-c2s:result/);
}, { sampling: 'BLOCK-c2s:result' }));

test('c2s:result rewrites a roots/list answer', () => run(async (c) => {
  const r = asked(await call(c, 'ask', { kind: 'roots' }));
  assert.equal(r.result.roots[0].name, 'my [c2s:result] root');
}, { root: 'my SECRET root' }));

test('c2s:error rewrites and blocks the client\'s error', async () => {
  await run(async (c) => {
    const r = asked(await call(c, 'ask', { kind: 'elicitation', text: 'q' }));
    assert.match(r.error.message, /nope \[c2s:error\]/);
  }, { elicitation: new Error('nope SECRET') });
  await run(async (c) => {
    const r = asked(await call(c, 'ask', { kind: 'elicitation', text: 'q' }));
    assert.match(r.error.message, /withheld by guardrail recorder/);
    assert.doesNotMatch(JSON.stringify(r), /BLOCK-c2s:error/);
  }, { elicitation: new Error('BLOCK-c2s:error') });
});

test('s2c:error rewrites and blocks an upstream JSON-RPC error', () => run(async (c) => {
  await assert.rejects(c.getPrompt({ name: 'h__fail', arguments: { why: 'x SECRET' } }),
    (e) => /failed: x \[c2s:request\]/.test(e.message));
  await assert.rejects(c.getPrompt({ name: 'h__fail', arguments: { why: 'S3CRET' } }),
    (e) => /failed: \[s2c:error\]/.test(e.message));
  await assert.rejects(c.getPrompt({ name: 'h__fail', arguments: { why: 'BLOCK-s2c:error' } }),
    (e) => /withheld by guardrail recorder/.test(e.message) && !/BLOCK-s2c:error/.test(e.message));
}));

test('c2s:notification sees the client\'s roots/list_changed, which reaches the upstream', () => run(async (c, gw) => {
  await call(c, 'roots_changed', {}); // the per-session upstream exists once a call made it
  await c.sendRootsListChanged();
  let n = '0';
  for (let i = 0; i < 50 && n === '0'; i++) { await sleep(20); n = textOf(await call(c, 'roots_changed', {})); }
  assert.equal(n, '1');
  sawHook(gw, 'c2s:notification', 'notifications/roots/list_changed');
}));

test('passthrough: the initialize result (instructions) passes s2c:result', () => withGateway(
  writeConfig(gatewayConfig([server({ sharing: 'shared' })], { mode: 'passthrough' })), async (gw) => {
    const c = await httpClient(gw.url);
    assert.equal(c.getInstructions(), 'instructions [s2c:result]');
    await c.close();
  }, { env: { SMG_PLUGIN_PATH: PLUGINS } }));

// 2026 client, 2026 upstream: input_required passes through, yet the guardrails see the
// input requests (s2c:request) and the retry's answers (c2s:result) as they would see
// real requests and their answers.
test('2026 both sides: input requests pass s2c:request, the retry\'s answers c2s:result', () => withGateway(
  writeConfig(gatewayConfig([server({ era: 'modern' })], { mode: 'aggregate' })), async (gw) => {
    const V = '2026-07-28';
    const meta = { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': { sampling: {} } };
    const h = { 'MCP-Protocol-Version': V, 'Mcp-Method': 'tools/call', 'Mcp-Name': 'h__ask' };
    const ask = (id, text, extra = {}) => post(gw.url, { jsonrpc: '2.0', id, method: 'tools/call',
      params: { name: 'h__ask', arguments: { kind: 'sampling', text }, _meta: meta, ...extra } }, h);
    let r = await ask(1, 'S3CRET');
    assert.equal(r.json.result.resultType, 'input_required', r.text);
    const req = r.json.result.inputRequests.r1;
    assert.equal(req.method, 'sampling/createMessage');
    assert.equal(req.params.messages[0].content.text, '[s2c:request]', 'the input request was rewritten');
    const answer = (text) => ({ r1: { role: 'assistant', model: 'm', content: { type: 'text', text } } });
    r = await ask(2, 'S3CRET', { requestState: r.json.result.requestState, inputResponses: answer('my SECRET') });
    // (The retry as a whole passed c2s:request first, which rewrote the answer before c2s:result saw it.)
    assert.equal(JSON.parse(r.json.result.content[0].text).result.content.text, 'my [c2s:request]', r.text);
    sawHook(gw, 's2c:request', 'sampling/createMessage');
    sawHook(gw, 'c2s:result', 'sampling/createMessage');
    // Blocked both ways: the client is never asked; the upstream never gets the answer.
    r = await ask(3, 'BLOCK-s2c:request');
    assert.match(r.json.error.message, /refused by guardrail recorder/, r.text);
    r = await ask(4, 'q');
    r = await ask(5, 'q', { requestState: r.json.result.requestState, inputResponses: answer('BLOCK-c2s:result') });
    assert.match(r.json.error.message, /answer withheld by guardrail recorder/, r.text);
  }, { env: { SMG_PLUGIN_PATH: PLUGINS } }));
