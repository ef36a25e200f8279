// MCP 2026-07-28 downstream: the v2 SDK client (@modelcontextprotocol/client 2.4.0)
// pinned to 2026-07-28 and in auto mode lists and calls tools, reads resources and gets
// prompts through smg in aggregate mode, statelessly (no initialize, no session), in front
// of 2025-11-25 upstreams; the v1 client on the same /mcp still gets the 2025 rules. Raw
// requests check what the SDK hides: header validation, the revision's errors and statuses,
// 405 for GET/DELETE, subscriptions/listen (ack first, subscriptionId, the filter).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { ECHO, FAULTY, ROOT, SMG, luaServer, sleep, writeConfig, withGateway } from './helpers.mjs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';

const CONFORMANCE = join(ROOT, 'examples/servers/conformance.lua');
const V = '2026-07-28';
const META = { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {} };

function config(gateway = {}) {
  const conf26 = { server_name: 'conf26', config: { command: SMG, args: ['run', CONFORMANCE],
    env: { SMG_FIXTURE_ERA: 'modern' } } };
  const conf25 = luaServer('conf25', CONFORMANCE, { era: 'legacy', sharing: 'per_session' });
  return writeConfig({
    mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [luaServer('echo', ECHO), luaServer('conf', CONFORMANCE), conf26,
      conf25] } },
    gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c', ...gateway },
  });
}

async function post(url, body, headers = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

const H = (method, name) => ({ 'MCP-Protocol-Version': V, 'Mcp-Method': method, ...(name ? { 'Mcp-Name': name } : {}) });

// A 2026-only Streamable HTTP upstream written inline: `handle(msg, req, res, reply)`
// answers each POSTed message, reply(result) with a JSON-RPC result. Returns {url, close}.
async function inlineUpstream(handle) {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const msg = JSON.parse(body);
      const reply = (result) => { res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result })); };
      handle(msg, req, res, reply);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/mcp`, close: () => server.close() };
}

for (const mode of [{ pin: V }, 'auto']) {
  test(`v2 client (${JSON.stringify(mode)}) through smg, statelessly`, async () => {
    await withGateway(config(), async (gw) => {
      const client = new Client({ name: 'v2-e2e', version: '1.0.0' }, { versionNegotiation: { mode } });
      await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
      assert.equal(client.getNegotiatedProtocolVersion(), V);
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'echo__echo'));
      const r = await client.callTool({ name: 'echo__echo', arguments: { message: 'modern hello' } });
      assert.match(r.content[0].text, /modern hello/);
      const read = await client.readResource({ uri: 'test://static-text' });
      assert.match(read.contents[0].text, /static text resource/);
      const p = await client.getPrompt({ name: 'conf__test_simple_prompt' });
      assert.match(p.messages[0].content.text, /simple prompt/);
      await client.close();
      assert.ok(!/session .* initialized/.test(gw.logs()), 'no session was made');
    });
  });
}

test('v2 client pinned to 2026-07-28 over stdio', async () => {
  const client = new Client({ name: 'v2-stdio', version: '1.0.0' }, { versionNegotiation: { mode: { pin: V } } });
  await client.connect(new StdioClientTransport({ command: SMG, args: ['serve', '--stdio', '--config', config()],
    stderr: 'pipe' }));
  assert.equal(client.getNegotiatedProtocolVersion(), V);
  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === 'conf__test_simple_text'));
  const r = await client.callTool({ name: 'echo__echo', arguments: { message: 'stdio modern' } });
  assert.match(r.content[0].text, /stdio modern/);
  const p = await client.getPrompt({ name: 'conf__test_prompt_with_arguments', arguments: { arg1: 'a', arg2: 'b' } });
  assert.match(p.messages[0].content.text, /arg1='a'/);
  await client.close();
});

test('a 2026 client in front of a 2025 upstream: its sampling and elicitation requests become input_required', async () => {
  await withGateway(config(), async (gw) => {
    const client = new Client({ name: 'v2-park', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: V } }, capabilities: { sampling: {}, elicitation: { form: {} } } });
    const asked = [];
    client.setRequestHandler('sampling/createMessage', async () => {
      asked.push('sampling');
      return { role: 'assistant', content: { type: 'text', text: 'Lyon' }, model: 'm', stopReason: 'endTurn' };
    });
    client.setRequestHandler('elicitation/create', async (req) => {
      asked.push(req.params.message);
      return { action: 'accept', content: { response: 'yes' } };
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
    let r = await client.callTool({ name: 'conf25__test_sampling', arguments: { prompt: 'capital?' } });
    assert.match(r.content[0].text, /LLM response: Lyon/);
    r = await client.callTool({ name: 'conf25__test_elicitation', arguments: { message: 'Proceed?' } });
    assert.match(r.content[0].text, /User response: action=accept/);
    assert.deepEqual(asked, ['sampling', 'Proceed?']);
    await client.close();
    // A forged or foreign requestState is refused, not forwarded.
    const res = await post(gw.url, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'conf25__test_sampling',
      arguments: { prompt: 'x' }, requestState: 'smg1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', inputResponses: {}, _meta: META } },
    H('tools/call', 'conf25__test_sampling'));
    assert.equal(res.json.error.code, -32602, res.text);
  });
});

test('a 2026-only Streamable HTTP upstream: detected, no session, standard headers, Mcp-Param-* checked and rebuilt', async () => {
  const seen = [];
  const upstream = await inlineUpstream((msg, req, res, reply) => {
    seen.push({ method: msg.method, headers: req.headers });
    if (msg.method === 'server/discover') {
      return reply({ supportedVersions: [V], capabilities: { tools: {} }, serverInfo: { name: 'h26', version: '1' },
        resultType: 'complete', ttlMs: 60000, cacheScope: 'public' });
    }
    if (msg.method === 'tools/list') {
      return reply({ tools: [{ name: 'hdr', inputSchema: { type: 'object', properties: {
        region: { type: 'string', 'x-mcp-header': 'Region' }, note: { type: 'string' } } } }],
      resultType: 'complete', ttlMs: 60000, cacheScope: 'public' });
    }
    if (msg.method === 'tools/call') {
      return reply({ content: [{ type: 'text', text: `region=${req.headers['mcp-param-region']} `
        + `trace=${req.headers['mcp-param-trace']} note=${msg.params.arguments.note}` }], resultType: 'complete' });
    }
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } }));
  });
  const { url } = upstream;
  try {
    const pii = { enabled: true, policy_name: 'p', block: [], guardrails: ['pii'], additional_config: {} };
    const cfg = writeConfig({ mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'h26', config: { url },
      enable_tool_guardrails: true, input_guardrails_policy: pii }] } },
    gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
    await withGateway(cfg, async (gw) => {
      const call = (id, args, headers) => post(gw.url, { jsonrpc: '2.0', id, method: 'tools/call',
        params: { name: 'h26__hdr', arguments: args, _meta: META } }, { ...H('tools/call', 'h26__hdr'), ...headers });
      let r = await call(1, { region: 'eu-west' }, { 'Mcp-Param-Region': 'eu-west', 'Mcp-Param-Trace': 't1' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.result.content[0].text, 'region=eu-west trace=t1 note=undefined', 'undeclared ones pass on');
      // Checked against the body before anything else: missing, disagreeing, bad sentinel.
      const calls = () => seen.filter((x) => x.method === 'tools/call').length;
      const before = calls();
      for (const h of [{}, { 'Mcp-Param-Region': 'us-east' }, { 'Mcp-Param-Region': '=?base64?%%?=' }]) {
        r = await call(2, { region: 'eu-west' }, h);
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.error.code, -32020, r.text);
      }
      assert.equal(calls(), before, 'refused requests never reached the upstream');
      // The sentinel decoded; and what the upstream gets follows the arguments it is sent:
      // the pii guardrail redacted the e-mail address, so the header carries the placeholder.
      const mail = 'bob@example.com';
      r = await call(3, { region: mail, note: mail }, { 'Mcp-Param-Region': `=?base64?${Buffer.from(mail).toString('base64')}?=` });
      assert.equal(r.status, 200, r.text);
      assert.match(r.json.result.content[0].text, /^region=<EMAIL_1> trace=undefined/);
      assert.ok(!seen.some((x) => JSON.stringify(x.headers).includes(mail)), 'the address never reached the upstream');
      // A 2025 client's call: the gateway mirrors the declared argument itself.
      const v1 = new V1Client({ name: 'v1', version: '1' });
      await v1.connect(new V1Transport(new URL(gw.url)));
      const t = await v1.callTool({ name: 'h26__hdr', arguments: { region: 'ap-south' } });
      assert.match(t.content[0].text, /^region=ap-south /);
      await v1.close();
      const first = seen.find((x) => x.method === 'tools/call');
      assert.equal(first.headers['mcp-method'], 'tools/call');
      assert.equal(first.headers['mcp-name'], 'hdr', 'the upstream\'s own name, not the prefixed one');
      assert.equal(first.headers['mcp-protocol-version'], V);
      assert.equal(first.headers['mcp-session-id'], undefined);
      assert.match(gw.logs(), /upstream h26 ready .*2026-07-28 only/);
      // The list's caching hints: the upstream's TTL is more than the gateway vouches for.
      const l = await post(gw.url, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: META } }, H('tools/list'));
      assert.equal(l.json.result.ttlMs, 0);
    });
  } finally {
    upstream.close();
  }
});

test('the v1 client on the same endpoint keeps the 2025 rules', async () => {
  await withGateway(config(), async (gw) => {
    const client = new V1Client({ name: 'v1-e2e', version: '1.0.0' });
    await client.connect(new V1Transport(new URL(gw.url)));
    const r = await client.callTool({ name: 'echo__echo', arguments: { message: 'legacy' } });
    assert.match(r.content[0].text, /legacy/);
    assert.ok(!('resultType' in r), 'no 2026 fields on a 2025 session');
    await client.close();
  });
});

test('a 2025 client in front of a 2026 upstream: input_required becomes real requests to the client', async () => {
  await withGateway(config(), async (gw) => {
    for (let i = 0; i < 50 && !/upstream conf26 ready .*2026-07-28 only/.test(gw.logs()); i++) {
      await new Promise((res) => setTimeout(res, 20));
    }
    const client = new V1Client({ name: 'v1-mrtr', version: '1.0.0' },
      { capabilities: { sampling: {}, elicitation: {}, roots: {} } });
    const asked = [];
    const { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
    client.setRequestHandler(CreateMessageRequestSchema, async () => {
      asked.push('sampling');
      return { role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'm', stopReason: 'endTurn' };
    });
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(req.params.message);
      return { action: 'accept', content: { name: 'Ada', color: 'blue' } };
    });
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      asked.push('roots');
      return { roots: [{ uri: 'file:///work', name: 'work' }] };
    });
    await client.connect(new V1Transport(new URL(gw.url)));
    let r = await client.callTool({ name: 'conf26__test_input_required_result_sampling', arguments: {} });
    assert.match(r.content[0].text, /Sampling response: Paris/);
    r = await client.callTool({ name: 'conf26__test_input_required_result_multi_round', arguments: {} });
    assert.match(r.content[0].text, /Both steps completed/);
    r = await client.callTool({ name: 'conf26__test_input_required_result_multiple_inputs', arguments: {} });
    assert.match(r.content[0].text, /Received all inputs/);
    assert.ok(!('resultType' in r));
    assert.deepEqual(asked.slice(0, 3), ['sampling', 'Step 1: What is your name?', 'Step 2: What is your favorite color?']);
    assert.ok(asked.includes('roots'));
    // A 2025-style handler (ctx:request) on the 2026-only server: re-executed per round.
    r = await client.callTool({ name: 'conf26__test_sampling', arguments: { prompt: 'capital?' } });
    assert.match(r.content[0].text, /LLM response: Paris/);
    await client.close();
  });
});

test('aggregate: a resource URI two servers list is served by the first, or refused', async () => {
  await withGateway(config(), async (gw) => {
    const client = new V1Client({ name: 'v1-res', version: '1.0.0' });
    await client.connect(new V1Transport(new URL(gw.url)));
    const { resources } = await client.listResources();
    const uris = resources.map((r) => r.uri);
    assert.equal(uris.filter((u) => u === 'test://static-text').length, 1, 'listed once');
    assert.equal(new Set(uris).size, uris.length, 'no duplicates');
    const read = await client.readResource({ uri: 'test://static-text' });
    assert.match(read.contents[0].text, /static text resource/);
    await client.close();
    assert.match(gw.logs(), /resource test:\/\/static-text is listed by conf and conf26 and conf25: served by conf/);
  });
  await withGateway(config({ resource_collisions: 'refuse' }), async (gw) => {
    const client = new V1Client({ name: 'v1-res', version: '1.0.0' });
    await client.connect(new V1Transport(new URL(gw.url)));
    const { resources } = await client.listResources();
    assert.ok(!resources.some((r) => r.uri === 'test://static-text'));
    await assert.rejects(client.readResource({ uri: 'test://static-text' }), /several servers \(conf, conf26, conf25\)/);
    await client.close();
  });
});

test('raw 2026-07-28: validation, errors and statuses, discover, 405, listen', async () => {
  await withGateway(config(), async (gw) => {
    const call = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo__echo', arguments: { message: 'x' },
      _meta: META } };
    let r = await post(gw.url, call, H('tools/call', 'echo__echo'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.result.resultType, 'complete');
    assert.equal(r.headers.get('mcp-session-id'), null);
    // Mcp-Name that disagrees with the body: -32020, 400, the request's id.
    r = await post(gw.url, call, H('tools/call', 'echo__other'));
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, -32020);
    assert.equal(r.json.id, 7);
    r = await post(gw.url, call, { 'MCP-Protocol-Version': V });
    assert.equal(r.json.error.code, -32020, 'Mcp-Method is required');
    r = await post(gw.url, { ...call, params: { ...call.params, _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } } },
      { ...H('tools/call', 'echo__echo'), 'MCP-Protocol-Version': '2099-01-01' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, -32022);
    assert.equal(r.json.error.data.requested, '2099-01-01');
    r = await post(gw.url, { jsonrpc: '2.0', id: 8, method: 'tools/list', params: {} }, H('tools/list'));
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, -32602, '_meta is required');
    for (const m of ['ping', 'logging/setLevel', 'initialize', 'no/such']) {
      r = await post(gw.url, { jsonrpc: '2.0', id: 9, method: m, params: { _meta: META } }, H(m));
      assert.equal(r.status, 404, m);
      assert.equal(r.json.error.code, -32601, m);
    }
    // Discover: the revisions and the aggregate's capabilities, with caching hints.
    r = await post(gw.url, { jsonrpc: '2.0', id: 10, method: 'server/discover', params: { _meta: META } },
      H('server/discover'));
    assert.deepEqual(r.json.result.supportedVersions.slice(0, 2), [V, '2025-11-25']);
    assert.equal(r.json.result._meta['io.modelcontextprotocol/serverInfo'].name, 'smg', 'the gateway, in aggregate mode');
    assert.ok(r.json.result.capabilities.tools);
    assert.equal(typeof r.json.result.ttlMs, 'number');
    assert.ok(['public', 'private'].includes(r.json.result.cacheScope));
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(gw.url, { method, headers: { 'MCP-Protocol-Version': V, Accept: 'text/event-stream' } });
      assert.equal(res.status, 405, method);
    }
    // listen: the acknowledgement first; a tool-list change reaches it tagged; a stream
    // filtered to prompts does not get it.
    const open = async (filter) => {
      const ac = new AbortController();
      const res = await fetch(gw.url, { method: 'POST', signal: ac.signal, headers: { 'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream', ...H('subscriptions/listen') },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'L1', method: 'subscriptions/listen', params: { _meta: META, notifications: filter } }) });
      const reader = res.body.getReader();
      const frames = [];
      let buf = '';
      const pump = (async () => {
        const dec = new TextDecoder();
        for (;;) {
          let chunk;
          try { chunk = await reader.read(); } catch { return; }
          if (chunk.done) return;
          buf += dec.decode(chunk.value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const ev = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
            if (data) frames.push(JSON.parse(data));
          }
        }
      })();
      return { frames, close: () => { ac.abort(); return pump; } };
    };
    const sessions = async () => (await (await fetch(new URL('/health', gw.url))).json()).sessions;
    assert.equal(await sessions(), 0, 'stateless requests leave no session');
    const tools = await open({ toolsListChanged: true });
    const prompts = await open({ promptsListChanged: true });
    const until = async (cond) => { for (let i = 0; i < 100 && !cond(); i++) await new Promise((res) => setTimeout(res, 30)); };
    await until(() => tools.frames.length > 0 && prompts.frames.length > 0);
    assert.equal(tools.frames[0].method, 'notifications/subscriptions/acknowledged');
    r = await post(gw.url, { jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'conf__test_trigger_tool_change',
      arguments: {}, _meta: META } }, H('tools/call', 'conf__test_trigger_tool_change'));
    assert.equal(r.status, 200, r.text);
    await until(() => tools.frames.some((f) => f.method === 'notifications/tools/list_changed'));
    const changed = tools.frames.find((f) => f.method === 'notifications/tools/list_changed');
    assert.ok(changed, JSON.stringify(tools.frames));
    assert.equal(changed.params._meta['io.modelcontextprotocol/subscriptionId'], 'L1');
    await new Promise((res) => setTimeout(res, 300));
    assert.ok(!prompts.frames.some((f) => f.method === 'notifications/tools/list_changed'), 'the filter holds');
    assert.equal(await sessions(), 2, 'a listen stream is a session while it is open');
    await tools.close();
    await prompts.close();
    // Closed streams free their sessions at once.
    for (let i = 0; i < 50 && await sessions() > 0; i++) await new Promise((res) => setTimeout(res, 20));
    assert.equal(await sessions(), 0);
  });
});

test('parking: requestState is bound to the call it continues (params digest), and answers it once', async () => {
  await withGateway(config(), async (gw) => {
    const meta = { ...META, 'io.modelcontextprotocol/clientCapabilities': { sampling: {} } };
    const params = { name: 'conf25__test_sampling', arguments: { prompt: 'capital?' }, _meta: meta };
    const h = H('tools/call', 'conf25__test_sampling');
    let r = await post(gw.url, { jsonrpc: '2.0', id: 1, method: 'tools/call', params }, h);
    assert.equal(r.json.result.resultType, 'input_required', r.text);
    const state = r.json.result.requestState;
    assert.equal(r.json.result.inputRequests.r1.method, 'sampling/createMessage');
    const answer = { r1: { role: 'assistant', content: { type: 'text', text: 'Nice' }, model: 'm', stopReason: 'endTurn' } };
    // The same state on a call with other arguments: refused, the parked call untouched.
    r = await post(gw.url, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { ...params,
      arguments: { prompt: 'something else' }, requestState: state, inputResponses: answer } }, h);
    assert.equal(r.json.error.code, -32602, r.text);
    // The real retry (its _meta may differ: capabilities are not part of the binding).
    r = await post(gw.url, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { ...params, _meta: { ...meta,
      'io.modelcontextprotocol/clientCapabilities': { sampling: {}, roots: {} } }, requestState: state, inputResponses: answer } }, h);
    assert.match(r.json.result.content[0].text, /LLM response: Nice/, r.text);
    // Replayed: the parked call is gone.
    r = await post(gw.url, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { ...params, requestState: state,
      inputResponses: answer } }, h);
    assert.equal(r.json.error.code, -32602, r.text);
  });
});

test('aggregate lists longer than gateway.page_size are paginated with gateway cursors', async () => {
  await withGateway(config({ page_size: 2 }), async (gw) => {
    const v1 = new V1Client({ name: 'v1-pages', version: '1.0.0' });
    await v1.connect(new V1Transport(new URL(gw.url)));
    const v2 = new Client({ name: 'v2-pages', version: '1.0.0' }, { versionNegotiation: { mode: { pin: V } } });
    await v2.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
    const id = (x) => x.name + '|' + (x.uri || '');
    for (const [list, key] of [['listTools', 'tools'], ['listResources', 'resources'], ['listPrompts', 'prompts']]) {
      // The v1 client pages by hand.
      const all = [];
      let cursor, pages = 0;
      do {
        const page = await v1[list](cursor ? { cursor } : undefined);
        assert.ok(page[key].length <= 2, `${key}: a page holds at most page_size items`);
        all.push(...page[key].map(id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 100);
      assert.ok(pages > 1, `${key}: more than one page`);
      assert.equal(new Set(all).size, all.length, `${key}: no item twice`);
      if (key === 'tools') {
        assert.ok(all.includes('echo__echo|') && all.includes('conf26__test_input_required_result_sampling|'));
      }
      // The v2 client follows the cursors itself (2026-07-28, statelessly): the same list.
      assert.deepEqual((await v2[list]())[key].map(id), all, `${key}: the v2 client's list`);
    }
    await assert.rejects(v1.listTools({ cursor: 'not-ours' }), /invalid cursor/);
    await assert.rejects(v1.listTools({ cursor: 'g1.100000' }), /invalid cursor/);
    await v1.close();
    await v2.close();
  });
});

test('meta mode with 2026 clients: the gateway tools, calls to 2025 and 2026 upstreams, sampling answered', async () => {
  await withGateway(config({ mode: 'meta' }), async (gw) => {
    const client = new Client({ name: 'v2-meta', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: V } }, capabilities: { sampling: {} } });
    client.setRequestHandler('sampling/createMessage', async () =>
      ({ role: 'assistant', content: { type: 'text', text: 'Oslo' }, model: 'm', stopReason: 'endTurn' }));
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
    assert.equal(client.getNegotiatedProtocolVersion(), V);
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'enkrypt_secure_call_tools'));
    const servers = await client.callTool({ name: 'enkrypt_list_all_servers', arguments: {} });
    assert.deepEqual(Object.keys(servers.structuredContent.available_servers).sort(), ['conf', 'conf25', 'conf26', 'echo']);
    const disc = await client.callTool({ name: 'enkrypt_discover_all_tools', arguments: { server_name: 'conf26' } });
    assert.ok(disc.structuredContent.tools.some((t) => t.name === 'test_input_required_result_sampling'),
      'tools a 2026 server offers only to 2026 clients');
    const call = async (server, name, args) => (await client.callTool({ name: 'enkrypt_secure_call_tools', arguments: {
      server_name: server, tool_calls: [{ name, args }] } })).structuredContent;
    let r = await call('echo', 'echo', { message: 'meta modern' });
    assert.equal(r.results[0].result.content[0].text, 'meta modern', JSON.stringify(r));
    r = await call('conf26', 'test_simple_text', {});
    assert.equal(r.status, 'success', JSON.stringify(r));
    r = await call('conf25', 'test_sampling', { prompt: 'capital?' });
    assert.match(JSON.stringify(r), /LLM response: Oslo/);
    await client.close();
  });
  const client = new Client({ name: 'v2-meta-stdio', version: '1.0.0' }, { versionNegotiation: { mode: { pin: V } } });
  await client.connect(new StdioClientTransport({ command: SMG, args: ['serve', '--stdio', '--config', config({ mode: 'meta' })],
    stderr: 'pipe' }));
  const r = await client.callTool({ name: 'enkrypt_secure_call_tools', arguments: { server_name: 'echo',
    tool_calls: [{ name: 'echo', args: { message: 'meta stdio modern' } }] } });
  assert.match(JSON.stringify(r.structuredContent), /meta stdio modern/);
  await client.close();
});

// A server built on @modelcontextprotocol/server 2.x, on stdio and on Streamable HTTP,
// behind smg: the v2 client (2026-07-28) and the v1 client (2025-11-25) each list and call
// its tools, answer its elicitation and sampling (input_required passed through to the
// 2026 client; turned into real requests for the 2025 one), read its resource, get its prompt.
test('a server built on the v2 SDK as an upstream, on stdio and on HTTP, with v1 and v2 clients', async () => {
  const V2_SERVER = join(ROOT, 'tests/fixtures/servers/v2_server.mjs');
  const { spawn } = await import('node:child_process');
  const httpServer = spawn(process.execPath, [V2_SERVER, '--http'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((res, rej) => {
    httpServer.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) res(Number(m[1])); });
    httpServer.on('exit', () => rej(new Error('the v2 HTTP server exited')));
  });
  try {
    const cfg = writeConfig({ mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [
      { server_name: 'v2s', config: { command: process.execPath, args: [V2_SERVER] } },
      { server_name: 'v2h', config: { url: `http://127.0.0.1:${port}/mcp` } }] } },
    gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
    await withGateway(cfg, async (gw) => {
      const v2 = new Client({ name: 'v2-to-v2', version: '1.0.0' },
        { versionNegotiation: { mode: { pin: V } }, capabilities: { sampling: {}, elicitation: { form: {} } } });
      v2.setRequestHandler('sampling/createMessage', async () =>
        ({ role: 'assistant', content: { type: 'text', text: 'forty-two' }, model: 'm', stopReason: 'endTurn' }));
      v2.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { ok: true } }));
      await v2.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
      const { CreateMessageRequestSchema, ElicitRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
      const v1 = new V1Client({ name: 'v1-to-v2', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} } });
      v1.setRequestHandler(CreateMessageRequestSchema, async () =>
        ({ role: 'assistant', content: { type: 'text', text: 'seven' }, model: 'm', stopReason: 'endTurn' }));
      v1.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { ok: false } }));
      await v1.connect(new V1Transport(new URL(gw.url)));
      for (const s of ['v2s', 'v2h']) {
        for (const [client, llm, ok] of [[v2, 'forty-two', true], [v1, 'seven', false]]) {
          const { tools } = await client.listTools();
          assert.ok(tools.some((t) => t.name === `${s}__confirm`), `${s}: tools listed`);
          let r = await client.callTool({ name: `${s}__greet`, arguments: { name: 'Ada' } });
          assert.equal(r.content[0].text, 'hello, Ada');
          r = await client.callTool({ name: `${s}__confirm`, arguments: { action: 'deploy' } });
          assert.equal(r.content[0].text, `deploy: ok=${ok}`, `${s}: elicitation answered`);
          r = await client.callTool({ name: `${s}__ask_model`, arguments: { question: 'answer?' } });
          assert.equal(r.content[0].text, `the model says: ${llm}`, `${s}: sampling answered`);
          const p = await client.getPrompt({ name: `${s}__review`, arguments: { code: 'x = 1' } });
          assert.match(p.messages[0].content.text, /Please review: x = 1/);
        }
      }
      // serveStdio pins the connection to the era of its first message: the probe's.
      assert.match(gw.logs(), /upstream v2s ready \(v2-fixture 2\.4\.0, protocol 2026-07-28 only\)/);
      for (const client of [v2, v1]) {
        const read = await client.readResource({ uri: 'v2://notes/readme' });
        assert.equal(read.contents[0].text, 'notes from the v2 server');
      }
      await v1.close();
      await v2.close();
    });
  } finally {
    httpServer.kill();
  }
});

test('era "modern" speaks 2026-07-28 only to a dual-era server; 2025 clients are translated', async () => {
  const cfg = writeConfig({ mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [
    luaServer('confm', CONFORMANCE, { era: 'modern' })] } }, gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
  await withGateway(cfg, async (gw) => {
    const { CreateMessageRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
    const client = new V1Client({ name: 'v1-forced', version: '1.0.0' }, { capabilities: { sampling: {} } });
    client.setRequestHandler(CreateMessageRequestSchema, async () =>
      ({ role: 'assistant', content: { type: 'text', text: 'Rome' }, model: 'm', stopReason: 'endTurn' }));
    await client.connect(new V1Transport(new URL(gw.url)));
    const r = await client.callTool({ name: 'confm__test_sampling', arguments: { prompt: 'capital?' } });
    assert.match(r.content[0].text, /LLM response: Rome/);
    assert.match(gw.logs(), /upstream confm ready \(mcp-conformance-test-server 1\.0\.0, protocol 2026-07-28 only\)/);
    await client.close();
  });
});

// A stdio server that lists both eras in server/discover but then serves only the era of
// its connection's first message (refusing initialize): spoken to in 2026-07-28 only.
const PINNED = `
const V = '2026-07-28';
let buf = '';
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const msg = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    if (msg.id === undefined) continue;
    if (msg.method === 'server/discover') {
      send({ jsonrpc: '2.0', id: msg.id, result: { supportedVersions: [V, '2025-11-25'], capabilities: { tools: {} },
        _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'pinned', version: '1' } }, resultType: 'complete' } });
    } else if (msg.method === 'initialize') {
      send({ jsonrpc: '2.0', id: msg.id, error: { code: -32600, message: 'this connection speaks 2026-07-28' } });
    } else if (msg.method === 'tools/list') {
      send({ jsonrpc: '2.0', id: msg.id, result: { tools: [{ name: 'ping_me', inputSchema: { type: 'object' } }],
        resultType: 'complete' } });
    } else if (msg.method === 'tools/call') {
      const v = msg.params._meta && msg.params._meta['io.modelcontextprotocol/protocolVersion'];
      send({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'pong ' + v }], resultType: 'complete' } });
    } else {
      send({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } });
    }
  }
});`;

test('a server that refuses initialize after answering server/discover is spoken to in 2026-07-28', async () => {
  const cfg = writeConfig({ mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [
    { server_name: 'pinned', config: { command: process.execPath, args: ['-e', PINNED] } }] } },
  gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
  await withGateway(cfg, async (gw) => {
    const client = new V1Client({ name: 'v1-pinned', version: '1.0.0' });
    await client.connect(new V1Transport(new URL(gw.url)));
    const r = await client.callTool({ name: 'pinned__ping_me', arguments: {} });
    assert.equal(r.content[0].text, `pong ${V}`);
    assert.match(gw.logs(), /upstream pinned refused initialize after server\/discover \(this connection speaks 2026-07-28\)/);
    await client.close();
  });
});

// Closing a 2026 request's response stream (HTTP) or notifications/cancelled naming it
// (stdio) cancels that request, at the upstream too.
const cancelCfg = () => writeConfig({ mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [luaServer('faulty', FAULTY)] } },
  gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
const call26 = (id, name) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, _meta: META } });

test('2026 over HTTP: closing the response stream cancels the request upstream', async () => {
  await withGateway(cancelCfg(), async (gw) => {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = fetch(gw.url, { method: 'POST', signal: ac.signal, headers: { 'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream', ...H('tools/call', 'faulty__slow') },
    body: JSON.stringify(call26(1, 'faulty__slow')) }).then((r) => r.text());
    await sleep(300);
    ac.abort();
    await assert.rejects(p);
    let n;
    for (let i = 0; i < 20 && n !== '1'; i++) {
      await sleep(100);
      const r = await post(gw.url, call26(2, 'faulty__cancellations'), H('tools/call', 'faulty__cancellations'));
      n = r.json.result.content[0].text;
    }
    assert.equal(n, '1');
    assert.ok(Date.now() - t0 < 4000, 'the slow call did not run to its end');
  });
});

test('2026 over stdio: notifications/cancelled naming a request cancels it upstream', async () => {
  const proc = spawn(SMG, ['serve', '--stdio', '--config', cancelCfg()], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = [];
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
  });
  const send = (m) => proc.stdin.write(JSON.stringify(m) + '\n');
  const reply = async (id) => {
    for (let i = 0; i < 100; i++) {
      const m = lines.find((l) => l.id === id);
      if (m) return m;
      await sleep(50);
    }
    throw new Error(`no reply to ${id}`);
  };
  try {
    send(call26('a', 'faulty__cancellations'));
    assert.equal((await reply('a')).result.content[0].text, '0');
    send(call26('slow', 'faulty__slow'));
    await sleep(300);
    send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'slow', reason: 'gave up' } });
    await sleep(200);
    send(call26('b', 'faulty__cancellations'));
    assert.equal((await reply('b')).result.content[0].text, '1');
    assert.ok(!lines.some((l) => l.id === 'slow' && l.result), 'a cancelled request is not answered');
  } finally {
    proc.kill();
  }
});

// An identity's home (what owns its per_session upstreams for 2026 requests) counts as a
// session: past the per-peer limit, a 2026 request that would make one is refused.
test('a 2026 request that needs a new home past the session limits is refused', async () => {
  await withGateway(config({ limits: { max_sessions_per_peer: 1 } }), async (gw) => {
    const v1 = new V1Client({ name: 'v1', version: '1' });
    const t1 = new V1Transport(new URL(gw.url));
    await v1.connect(t1); // the peer's one session
    const call = (id) => post(gw.url, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'conf25__test_simple_text',
      arguments: {}, _meta: META } }, H('tools/call', 'conf25__test_simple_text'));
    let r = await call(1);
    assert.equal(r.json.error?.data?.limit, 'max_sessions_per_peer', r.text);
    // A shared server needs no home: served.
    r = await post(gw.url, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo__echo',
      arguments: { message: 'x' }, _meta: META } }, H('tools/call', 'echo__echo'));
    assert.match(r.json.result.content[0].text, /x/, r.text);
    await t1.terminateSession();
    await v1.close();
    // The session gone (DELETE), the home fits.
    for (let i = 0; i < 20; i++) {
      r = await call(3);
      if (r.json.result) break;
      await sleep(100);
    }
    assert.match(r.json.result.content[0].text, /simple text/i, r.text);
  });
});

// A 2026-only HTTP upstream: a call that times out or is cancelled closes its response
// stream (the 2026 cancellation; and the connection is freed), and a listen stream the
// server ends is opened again.
test('2026 HTTP upstream: timed-out and cancelled calls close their streams; a listen stream that ends is reopened', async () => {
  let listens = 0;
  const closed = [];
  const upstream = await inlineUpstream((msg, req, res, reply) => {
    const done = (result) => reply({ resultType: 'complete', ...result });
    if (msg.method === 'server/discover') {
      return done({ supportedVersions: [V], capabilities: { tools: { listChanged: true } },
        serverInfo: { name: 'h26', version: '1' }, ttlMs: 0, cacheScope: 'private' });
    }
    if (msg.method === 'tools/list') return done({ tools: [{ name: 'hang', inputSchema: { type: 'object' } }], ttlMs: 0, cacheScope: 'private' });
    if (msg.method === 'subscriptions/listen') {
      listens++;
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged',
        params: { _meta: { 'io.modelcontextprotocol/subscriptionId': msg.id } } })}\n\n`);
      return setTimeout(() => res.end(), 100); // the server ends it
    }
    if (msg.method === 'tools/call') {
      res.on('close', () => closed.push(msg.params.arguments.tag)); // never answered
      return;
    }
    res.writeHead(202).end();
  });
  const { url } = upstream;
  try {
    const cfg = writeConfig({ mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'h26', config: { url } }] } },
      common_mcp_gateway_config: { timeout_settings: { tool_execution_timeout: 1 } },
      gateway: { port: 0, mode: 'aggregate', mcp_config_id: 'c' } });
    await withGateway(cfg, async (gw) => {
      const call = (tag) => ({ jsonrpc: '2.0', id: tag, method: 'tools/call', params: { name: 'h26__hang',
        arguments: { tag }, _meta: META } });
      const r = await post(gw.url, call('timeout'), H('tools/call', 'h26__hang'));
      assert.equal(r.json.error.data.reason, 'timeout', r.text);
      const ac = new AbortController();
      const p = fetch(gw.url, { method: 'POST', signal: ac.signal, headers: { 'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream', ...H('tools/call', 'h26__hang') },
      body: JSON.stringify(call('cancel')) }).catch(() => {});
      await sleep(300);
      ac.abort();
      await p;
      for (let i = 0; i < 40 && closed.length < 2; i++) await sleep(50);
      assert.deepEqual(closed.sort(), ['cancel', 'timeout']);
      for (let i = 0; i < 60 && listens < 3; i++) await sleep(50);
      assert.ok(listens >= 3, `the listen stream was reopened (${listens})`);
      await sleep(1000);
      assert.ok(listens <= 6, `with a growing pause (${listens} in ~4 s)`);
    });
  } finally {
    upstream.close();
  }
});

// The Tasks extension through the aggregate: the upstream's extension capability is
// offered, its task handles reach the client under a gateway task id bound to the caller,
// and tasks/get|update|cancel reach the upstream that issued the task, with its own id.
test('Tasks extension: task ids routed to their upstream, bound to the identity that made them', async () => {
  const TASKS = 'io.modelcontextprotocol/tasks';
  const seen = [];
  let polls = 0;
  const upstream = await inlineUpstream((msg, req, res, reply) => {
    seen.push({ method: msg.method, name: req.headers['mcp-name'], params: msg.params });
    const task = (status, extra = {}) => ({ taskId: 'up-7', status, createdAt: '2026-12-03T00:00:00Z',
      lastUpdatedAt: '2026-12-03T00:00:01Z', ttlMs: 60000, ...extra });
    if (msg.method === 'server/discover') {
      return reply({ supportedVersions: [V], capabilities: { tools: {}, extensions: { [TASKS]: {} } },
        serverInfo: { name: 'tk', version: '1' }, resultType: 'complete', ttlMs: 0, cacheScope: 'private' });
    }
    if (msg.method === 'tools/list') {
      return reply({ tools: [{ name: 'report', inputSchema: { type: 'object' } }], resultType: 'complete', ttlMs: 0,
        cacheScope: 'private' });
    }
    if (msg.method === 'tools/call') return reply({ resultType: 'task', ...task('working') });
    if (msg.method === 'tasks/get') {
      polls++;
      return reply({ resultType: 'complete', ...(polls === 1 ? task('input_required', { inputRequests: {
        ok: { method: 'elicitation/create', params: { message: 'go?', requestedSchema: { type: 'object' } } } } })
        : task('completed', { result: { content: [{ type: 'text', text: 'the report' }] } })) });
    }
    if (msg.method === 'tasks/update' || msg.method === 'tasks/cancel') return reply({ resultType: 'complete' });
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } }));
  });
  const { url } = upstream;
  const KA = 'key-alpha-0123456789abcdef0123456789';
  const KB = 'key-beta-0123456789abcdef01234567890';
  try {
    const cfg = writeConfig({
      plugins: { auth: { provider: 'local_apikey', config: {} } },
      mcp_configs: { c: { mcp_config_name: 'c', mcp_config: [{ server_name: 'tk', config: { url } }, luaServer('echo', ECHO)] } },
      projects: { p: { project_name: 'P', mcp_config_id: 'c', users: ['ua', 'ub'] } },
      users: { ua: { email: 'a@example.com' }, ub: { email: 'b@example.com' } },
      apikeys: { [KA]: { project_id: 'p', user_id: 'ua' }, [KB]: { project_id: 'p', user_id: 'ub' } },
      gateway: { port: 0, mode: 'aggregate' },
    });
    await withGateway(cfg, async (gw) => {
      const meta = { ...META, 'io.modelcontextprotocol/clientCapabilities': { extensions: { [TASKS]: {} } } };
      const rq = (key, id, method, params, name) => post(gw.url, { jsonrpc: '2.0', id, method, params: { ...params, _meta: meta } },
        { ...H(method, name), 'X-API-Key': key });
      let r = await rq(KA, 1, 'server/discover', {});
      assert.deepEqual(r.json.result.capabilities.extensions, { [TASKS]: {} }, r.text);
      r = await rq(KA, 2, 'tools/call', { name: 'tk__report', arguments: {} }, 'tk__report');
      assert.equal(r.json.result.resultType, 'task', r.text);
      const tid = r.json.result.taskId;
      assert.match(tid, /^smgt1\./);
      assert.equal(r.json.result.status, 'working');
      // Polled: the upstream gets its own id (body and Mcp-Name); the answer names the gateway's.
      r = await rq(KA, 3, 'tasks/get', { taskId: tid }, tid);
      assert.equal(r.json.result.status, 'input_required', r.text);
      assert.equal(r.json.result.taskId, tid);
      const get = seen.find((x) => x.method === 'tasks/get');
      assert.equal(get.params.taskId, 'up-7');
      assert.equal(get.name, 'up-7');
      r = await rq(KA, 4, 'tasks/update', { taskId: tid, inputResponses: { ok: { action: 'accept', content: {} } } }, tid);
      assert.equal(r.json.result.resultType, 'complete', r.text);
      assert.deepEqual(seen.find((x) => x.method === 'tasks/update').params.inputResponses, { ok: { action: 'accept', content: {} } });
      r = await rq(KA, 5, 'tasks/get', { taskId: tid }, tid);
      assert.equal(r.json.result.result.content[0].text, 'the report', r.text);
      // Another identity, a tampered id, a made-up one: unknown task, the upstream never asked.
      const n = seen.length;
      for (const [key, id] of [[KB, tid], [KA, tid.replace(/.$/, (c) => (c === '0' ? '1' : '0'))], [KA, 'up-7']]) {
        r = await rq(key, 6, 'tasks/cancel', { taskId: id }, id);
        assert.equal(r.json.error.code, -32602, r.text);
        assert.match(r.json.error.message, /unknown task/);
      }
      assert.equal(seen.length, n);
      r = await rq(KA, 7, 'tasks/cancel', { taskId: tid }, tid);
      assert.equal(r.json.result.resultType, 'complete', r.text);
    });
  } finally {
    upstream.close();
  }
});
