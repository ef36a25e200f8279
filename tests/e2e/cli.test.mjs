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
