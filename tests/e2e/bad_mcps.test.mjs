// The seed's sixteen attack servers (examples/bad_mcps/) behind one gateway with the
// embedded default's guardrail policy (pii + injection + tool_scan on input, blocking
// injection, poisoning and rug pulls; pii + injection on output, blocking injection).
// Each row is what a client sees of one tool; docs/security.md has the same table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf } from './helpers.mjs';

const INPUT = { enabled: true, policy_name: 'default', additional_config: {}, guardrails: ['pii', 'injection', 'tool_scan'],
  block: ['injection_attack', 'tool_poisoning', 'tool_changed'] };
const OUTPUT = { enabled: true, policy_name: 'default', additional_config: {}, guardrails: ['pii', 'injection'],
  block: ['injection_attack'] };

// server, tool, arguments, expected: 'hidden' (not listed), 'blocked-in' / 'blocked-out'
// (an isError result naming the guardrail and direction), 'redacted' (placeholders where
// the secrets were), 'passed' (what the seed's classifiers catch and local rules do not, or
// a description with no attack in it: see the notes in docs/security.md).
const ROWS = [
  ['echo', 'echo', { message: 'hi' }, 'passed'],
  ['echo_oauth', 'echo', { message: 'hi' }, 'passed'],
  ['bad', 'optimize_cpu_usage', {}, 'passed'],
  ['prompt_injection', 'get_weather', {}, 'hidden'],
  ['prompt_injection', 'summarize_text', {}, 'blocked-out'],
  ['prompt_injection', 'translate', {}, 'blocked-out'],
  ['tool_poisoning', 'add_numbers', {}, 'hidden'],
  ['tool_poisoning', 'format_text', {}, 'hidden'],
  ['tool_poisoning', 'get_status', {}, 'hidden'],
  ['schema_poisoning', 'get_system_status', {}, 'blocked-out'],
  ['schema_poisoning', 'get_news', {}, 'blocked-out'],
  ['schema_poisoning', 'get_calendar', {}, 'blocked-out'],
  ['bad_output', 'get_time', {}, 'blocked-out'],
  ['bad_output', 'calculate', {}, 'blocked-out'],
  ['bad_output', 'shorten_url', {}, 'redacted'],
  ['command_injection', 'ping_host', {}, 'blocked-out'],
  ['command_injection', 'search_files', {}, 'blocked-out'],
  ['command_injection', 'convert_image', {}, 'blocked-out'],
  ['rce', 'evaluate', {}, 'blocked-out'],
  ['rce', 'load_model', {}, 'blocked-out'],
  ['rce', 'render', {}, 'blocked-out'],
  ['rce', 'load_config', {}, 'blocked-out'],
  ['path_traversal', 'read_file', { path: '../../etc/passwd' }, 'blocked-in'],
  ['path_traversal', 'extract_archive', { path: 'a.zip' }, 'blocked-out'],
  ['credential_theft', 'get_environment', {}, 'redacted'],
  ['credential_theft', 'backup_config', {}, 'redacted'],
  ['session_management', 'call_api', { url: 'https://api.example.com', token: 't' }, 'passed'],
  ['ssrf', 'fetch_url', { url: 'http://metadata.google.internal/computeMetadata/v1/' }, 'blocked-in'],
  ['ssrf', 'validate_webhook', { url: 'http://localhost:8080/admin' }, 'blocked-in'],
  ['resource_exhaustion', 'generate_thumbnail', {}, 'passed'],
  ['unauthenticated_access', 'execute_command', {}, 'passed'],
  ['mpma', 'best_search', {}, 'hidden'],
  ['mpma', 'urgent_helper', {}, 'hidden'],
  // Beyond the seed's servers: attacks that do something.
  ['rug_pull', 'get_weather', { city: 'Paris' }, 'passed'], // then it changes: see below
  ['shadowing', 'add', {}, 'hidden'],
  ['shadowing', 'word_count', {}, 'passed'],
  ['output_flood', 'big_result', { mb: 50 }, 'passed'],
  ['output_flood', 'endless_line', {}, 'error: longer than limits.max_message_bytes'],
  ['storm', 'notification_storm', {}, 'passed'],
  ['storm', 'request_storm', {}, 'passed'],
  ['crash', 'process_data', {}, 'error: upstream crash is unavailable'],
  ['invalid_utf8', 'read_text', {}, 'error: not valid JSON-RPC'],
  ['invalid_utf8', 'read_escaped', {}, 'error: no low surrogate'],
  ['template_bomb', 'ping', {}, 'passed'],
];

test('every attack server under the default policy: what the client sees', async () => {
  const names = [...new Set(ROWS.map((r) => r[0]))];
  const servers = names.map((n) => luaServer(n, join(ROOT, 'examples/bad_mcps', `${n}.lua`),
    { enable_tool_guardrails: true, input_guardrails_policy: INPUT, output_guardrails_policy: OUTPUT }));
  await withGateway(writeConfig(gatewayConfig(servers, { mode: 'aggregate' })), async (gw) => {
    const c = await httpClient(gw.url);
    const listed = new Set((await c.listTools()).tools.map((t) => t.name));
    const seen = [];
    for (const [server, tool, args, want] of ROWS) {
      const name = `${server}__${tool}`;
      let got;
      if (!listed.has(name)) {
        got = 'hidden';
      } else {
        const t0 = Date.now();
        const r = await c.callTool({ name, arguments: args }, undefined, { timeout: 30000 }).then((x) => x, (e) => ({ err: e }));
        const text = r.err ? r.err.message : textOf(r);
        if (r.err) got = `error: ${text}`;
        else if (r.isError) got = /\(input,/.test(text) ? 'blocked-in' : /\(output,/.test(text) ? 'blocked-out' : `error: ${text}`;
        else if (/<(SECRET|EMAIL|IP_ADDRESS|PHONE)_\d+>/.test(text)) got = 'redacted';
        else got = 'passed';
        if (got === 'redacted') assert.doesNotMatch(text, /AKIA[0-9A-Z]{16}|sk_live_|ghp_[0-9a-z]{20}/i, 'no secret left');
        // An error row names what the message must say, and it must come at once.
        if (want.startsWith('error: ') && got.startsWith('error: ') && got.includes(want.slice(7))) got = want;
        assert.ok(Date.now() - t0 < 15000, `${name} took ${Date.now() - t0} ms`);
      }
      seen.push(`${name}: ${got}`);
      assert.equal(got, want, `${name}: expected ${want}, got ${got}`);
    }
    // The rug pull happened: the changed tool is hidden and refused.
    const after = new Set((await c.listTools()).tools.map((t) => t.name));
    assert.ok(!after.has('rug_pull__get_weather'), 'the rug-pulled tool is hidden');
    const pulled = await c.callTool({ name: 'rug_pull__get_weather', arguments: { city: 'x' } });
    assert.match(textOf(pulled), /Blocked by guardrail tool_scan \(input.*tool_changed/);
    // The template bomb: reading a crafted URI answers at once (no backtracking).
    const t0 = Date.now();
    await c.readResource({ uri: `evil://${'a'.repeat(47)}` }).then(() => null, (e) => e);
    assert.ok(Date.now() - t0 < 1000, `the crafted read took ${Date.now() - t0} ms`);
    // A hidden tool cannot be called either.
    const r = await c.callTool({ name: 'tool_poisoning__add_numbers', arguments: {} }).then((x) => x, (e) => ({ err: e }));
    assert.ok(r.err || r.isError, 'calling a hidden tool fails');
    await c.close();
  });
});
