// The official TypeScript SDK client against smg in aggregate and meta modes, over
// Streamable HTTP and over stdio (`smg serve --stdio`, as Claude Desktop runs it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ECHO, FAULTY, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, stdioClient, textOf,
} from './helpers.mjs';

const servers = [luaServer('echo', ECHO), luaServer('faulty', FAULTY, { deny_tools: ['crash', 'hang'] })];

test('aggregate over HTTP: namespaced tools, calls, prompts, resources, progress', async () => {
  await withGateway(writeConfig(gatewayConfig(servers, { mode: 'aggregate' })), async (gw) => {
    const client = await httpClient(gw.url);
    assert.equal(client.getServerVersion().name, 'smg');
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    assert.ok(names.includes('echo__echo') && names.includes('echo__add') && names.includes('faulty__garbage'), names.join());
    assert.ok(!names.includes('faulty__crash') && !names.includes('faulty__hang'), 'deny list applied');
    const r = await client.callTool({ name: 'echo__echo', arguments: { message: 'héllo / wörld' } });
    assert.equal(textOf(r), 'héllo / wörld');
    const sum = await client.callTool({ name: 'echo__add', arguments: { a: 2, b: 40 } });
    assert.deepEqual(sum.structuredContent, { sum: 42 });
    await assert.rejects(client.callTool({ name: 'faulty__crash', arguments: {} }), /not allowed/);
    await assert.rejects(client.callTool({ name: 'nope__echo', arguments: {} }), /unknown tool/);
    const progress = [];
    const slow = await client.callTool({ name: 'echo__sleep', arguments: { seconds: 0.1 } }, undefined,
      { onprogress: (p) => progress.push(p) });
    assert.equal(textOf(slow), 'slept 0.1s');
    assert.equal(progress.length, 2);
    assert.equal(progress[1].progress, 0.1);
    const { prompts } = await client.listPrompts();
    assert.ok(prompts.some((p) => p.name === 'echo__greet'));
    const pr = await client.getPrompt({ name: 'echo__greet', arguments: { name: 'Ada' } });
    assert.equal(pr.messages[0].content.text, 'Say hello to Ada');
    const { resources } = await client.listResources();
    assert.ok(resources.some((x) => x.uri === 'echo://readme'));
    const rd = await client.readResource({ uri: 'echo://readme' });
    assert.equal(rd.contents[0].text, 'smg echo server');
    // Many concurrent calls on one shared upstream, each answered with its own result.
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      client.callTool({ name: 'echo__echo', arguments: { message: `m${i}` } })));
    many.forEach((res, i) => assert.equal(textOf(res), `m${i}`));
    await client.close();
  });
});

test('meta over HTTP: the seven gateway tools with the configured prefix', async () => {
  await withGateway(writeConfig(gatewayConfig(servers, { mode: 'meta', tool_prefix: 'enkrypt_' })), async (gw) => {
    const client = await httpClient(gw.url);
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), [
      'enkrypt_clear_cache', 'enkrypt_discover_all_tools', 'enkrypt_get_cache_status', 'enkrypt_get_server_info',
      'enkrypt_get_timeout_metrics', 'enkrypt_list_all_servers', 'enkrypt_secure_call_tools']);
    const list = await client.callTool({ name: 'enkrypt_list_all_servers', arguments: {} });
    assert.deepEqual(Object.keys(list.structuredContent.available_servers).sort(), ['echo', 'faulty']);
    const disc = await client.callTool({ name: 'enkrypt_discover_all_tools', arguments: { server_name: 'echo' } });
    assert.ok(disc.structuredContent.tools.some((t) => t.name === 'echo'));
    const call = await client.callTool({ name: 'enkrypt_secure_call_tools', arguments: {
      server_name: 'echo', tool_calls: [{ name: 'echo', args: { message: 'one' } }, { name: 'add', args: { a: 1, b: 2 } }] } });
    assert.equal(call.structuredContent.status, 'success');
    assert.equal(textOf(call.structuredContent.results[0].result), 'one');
    assert.equal(textOf(call.structuredContent.results[1].result), '3');
    const blocked = await client.callTool({ name: 'enkrypt_secure_call_tools', arguments: {
      server_name: 'faulty', tool_calls: [{ name: 'crash', args: {} }] } });
    assert.equal(blocked.isError, true);
    assert.equal(blocked.structuredContent.results[0].status, 'blocked');
    // The seed's shapes: global totals, and per server of the caller's tenant.
    const cache = (await client.callTool({ name: 'enkrypt_get_cache_status', arguments: {} })).structuredContent;
    assert.ok(cache.cache_status.global.total_tool_caches >= 1, JSON.stringify(cache));
    assert.equal(cache.cache_status.global.cache_type, 'local');
    assert.equal(cache.cache_status.global.tool_cache_expiration_hours, 4);
    const echo = cache.cache_status.gateway_specific.tools.servers.echo;
    assert.equal(echo.exists, true, JSON.stringify(cache));
    assert.ok(echo.tool_count >= 1);
    assert.match(echo.expires_at, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    assert.ok(echo.expires_in_hours > 3.9 && echo.expires_in_hours <= 4);
    const cleared = await client.callTool({ name: 'enkrypt_clear_cache', arguments: { cache_type: 'all' } });
    assert.ok(cleared.structuredContent.cleared >= 1);
    assert.equal(cleared.structuredContent.status, 'success');
    const after = (await client.callTool({ name: 'enkrypt_get_cache_status', arguments: {} })).structuredContent;
    assert.equal(after.cache_status.gateway_specific.tools.servers.echo.needs_discovery, true);
    const cfgType = await client.callTool({ name: 'enkrypt_clear_cache', arguments: { cache_type: 'gateway_config' } });
    assert.equal(cfgType.structuredContent.status, 'info');
    assert.notEqual(cfgType.isError, true);
    const tm = await client.callTool({ name: 'enkrypt_get_timeout_metrics', arguments: {} });
    assert.ok(tm.structuredContent.timeout_metrics.tool_execution.operations >= 2);
    // The seed's shape: per category (all seven), active operations, the configured budgets.
    assert.deepEqual(Object.keys(tm.structuredContent.timeout_config).sort(), ['auth_timeout', 'cache_timeout',
      'connectivity_timeout', 'default_timeout', 'discovery_timeout', 'guardrail_timeout', 'tool_execution_timeout']);
    assert.equal(typeof tm.structuredContent.active_operations, 'number');
    assert.equal(Object.keys(tm.structuredContent.timeout_metrics).length, 7);
    assert.equal(tm.structuredContent.escalation_policies.fail_threshold, 1.2);
    const info = await client.callTool({ name: 'enkrypt_get_server_info', arguments: { server_name: 'echo' } });
    assert.equal(info.structuredContent.server_info.transport, 'stdio');
    await client.close();
  });
});

test('aggregate and meta over stdio (smg serve --stdio)', async () => {
  for (const mode of ['aggregate', 'meta']) {
    const cfg = writeConfig(gatewayConfig(servers, { mode }));
    const { client } = await stdioClient(cfg);
    const { tools } = await client.listTools();
    if (mode === 'aggregate') {
      assert.ok(tools.some((t) => t.name === 'echo__echo'));
      const r = await client.callTool({ name: 'echo__echo', arguments: { message: 'over stdio' } });
      assert.equal(textOf(r), 'over stdio');
    } else {
      assert.ok(tools.some((t) => t.name === 'enkrypt_secure_call_tools'));
      const r = await client.callTool({ name: 'enkrypt_secure_call_tools', arguments: {
        server_name: 'echo', tool_calls: [{ name: 'echo', args: { message: 'meta stdio' } }] } });
      assert.equal(textOf(r.structuredContent.results[0].result), 'meta stdio');
    }
    await client.close();
  }
});

test('stdio upstreams are spawned once and shared by every session', async () => {
  await withGateway(writeConfig(gatewayConfig(servers, { mode: 'aggregate' })), async (gw) => {
    const pids = new Set();
    for (let i = 0; i < 5; i++) {
      const c = await httpClient(gw.url);
      pids.add(textOf(await c.callTool({ name: 'faulty__pid', arguments: {} })));
      await c.close();
    }
    assert.equal(pids.size, 1, `one upstream process, saw ${[...pids]}`);
  });
});
