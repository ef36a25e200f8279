// The smg command line: `config validate` checks the config and the plugins it names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { SMG, ECHO, gatewayConfig, luaServer, writeConfig } from './helpers.mjs';

const smg = (...args) => spawnSync(SMG, args, { encoding: 'utf8' });

test('config validate names bad keys and plugins that do not load', () => {
  const good = gatewayConfig([luaServer('s', ECHO)]);
  good.plugins = { guardrails: { provider: 'pii' } };
  let r = smg('config', 'validate', writeConfig(good));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /: ok$/m);

  const badKey = gatewayConfig([luaServer('s', ECHO)], { port: 'eighty' });
  r = smg('config', 'validate', writeConfig(badKey));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /gateway\.port: expected integer/);

  const badPlugin = gatewayConfig([luaServer('s', ECHO, { enable_tool_guardrails: true,
    input_guardrails_policy: { enabled: true, guardrails: ['no_such_guardrail'] } })]);
  badPlugin.plugins = { guardrails: { provider: 'pii', config: { action: 'explode' } } };
  r = smg('config', 'validate', writeConfig(badPlugin));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /plugins\.guardrails\.config\.action: must be one of redact, block, got explode/);
  assert.match(r.stderr, /no guardrail plugin "no_such_guardrail"/);
});

test('a seed config loads whole: its telemetry provider, a disabled Docker sandbox, denied_tools; a misspelt key fails', async () => {
  const { withGateway, httpClient } = await import('./helpers.mjs');
  const seed = gatewayConfig([luaServer('echo', ECHO, {
    sandbox: { enabled: false, image: 'python:3.11-slim', memory_limit: '512m', network: 'none' },
    denied_tools: ['add'],
    tool_guardrails_policy: { enabled: false, policy_name: 'Allow only safe tools', block: ['injection_attack'] },
    enable_server_info_validation: false,
  })], { mode: 'aggregate' });
  seed.plugins = { telemetry: { provider: 'opentelemetry', config: { url: 'http://localhost:4317', insecure: true } } };
  seed.admin_apikey = 'x'.repeat(64);
  const path = writeConfig(seed);
  const r = smg('config', 'validate', path);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /unknown key/, 'every key of the seed config is understood');
  await withGateway(path, async (gw) => {
    const c = await httpClient(gw.url);
    const names = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo__echo'));
    assert.ok(!names.includes('echo__add'), 'denied_tools: not listed');
    await assert.rejects(c.callTool({ name: 'echo__add', arguments: { a: 1, b: 2 } }), /not allowed|Unknown tool|unknown tool/);
    await c.close();
    assert.match(gw.logs(), /opentelemetry provider .* runs as otlp over HTTP on port 4318/);
  });
  const typo = gatewayConfig([luaServer('echo', ECHO, { deny_tool: ['add'] })]);
  const t = smg('config', 'validate', writeConfig(typo));
  assert.equal(t.status, 1);
  assert.match(t.stderr, /deny_tool: unknown key \(did you mean deny_tools\?\)/);
});

test('config validate reports schema, references and plugins in one run, with 0-based indexes', () => {
  const bad = gatewayConfig([luaServer('a', ECHO), luaServer('b', ECHO, { config: { command: 7 } })], { port: 'eighty' });
  bad.projects = { p: { project_name: 'p', mcp_config_id: 'missing' } };
  bad.plugins = { guardrails: { provider: 'no_such_guardrail' } };
  const r = smg('config', 'validate', writeConfig(bad));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /gateway\.port: expected integer/);
  assert.match(r.stderr, /mcp_configs\.test\.mcp_config\[1\]\.config\.command: expected string/);
  assert.match(r.stderr, /projects\.p\.mcp_config_id: no mcp_config "missing"/);
  assert.match(r.stderr, /plugin: .*no guardrail plugin "no_such_guardrail"/);
});
