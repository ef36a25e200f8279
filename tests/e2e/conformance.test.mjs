// The official MCP conformance suite (@modelcontextprotocol/conformance 0.1.16, all active
// server scenarios) against `smg serve` in passthrough mode: once fronting the Lua
// conformance fixture as a stdio upstream, once fronting it through a remote Streamable
// HTTP upstream (a second smg), so every feature crosses both upstream transports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, FIXTURES, startSmg } from './helpers.mjs';

const NODE22 = join(ROOT, 'tests/node_modules/.bin/node');
// Both pinned versions install a `conformance` bin; name each package's entry point.
const CONFORMANCE = join(ROOT, 'tests/node_modules/@modelcontextprotocol/conformance/dist/index.js');

function runSuite(url, suite = 'active') {
  return new Promise((resolve) => {
    const p = spawn(NODE22, [CONFORMANCE, 'server', '--url', url, '--suite', suite], { cwd: join(ROOT, 'tests') });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('exit', (code) => resolve({ code, out }));
  });
}

function summary(out) {
  const m = out.match(/Total: (\d+) passed, (\d+) failed/);
  assert.ok(m, `no summary in conformance output:\n${out.slice(-3000)}`);
  const failed = out.split('\n').filter((l) => l.startsWith('✗'));
  const scenarios = out.split('\n').filter((l) => /^[✓✗] /.test(l)).length;
  return { passed: Number(m[1]), failed: Number(m[2]), failedLines: failed, scenarios };
}

test('conformance: passthrough in front of a stdio upstream', { timeout: 300000 }, async () => {
  const gw = await startSmg(join(FIXTURES, 'conformance-stdio.json'));
  try {
    const { code, out } = await runSuite(gw.url);
    const s = summary(out);
    assert.equal(s.scenarios, 30, 'all 30 active scenarios ran');
    assert.deepEqual(s.failedLines, [], `failed scenarios:\n${out.slice(-4000)}`);
    assert.equal(s.failed, 0);
    assert.ok(s.passed >= 39, `passed ${s.passed}`);
    assert.equal(code, 0);
    const pending = summary((await runSuite(gw.url, 'pending')).out);
    assert.equal(pending.failed, 0, 'pending scenarios (json-schema-2020-12, sse-polling)');
  } finally {
    await gw.stop();
  }
});

test('conformance: passthrough in front of a remote Streamable HTTP upstream', { timeout: 300000 }, async () => {
  const back = await startSmg(join(FIXTURES, 'conformance-stdio.json'));
  const front = await startSmg(join(FIXTURES, 'conformance-http.json'), { env: { SMG_UPSTREAM_URL: back.url } });
  try {
    const { code, out } = await runSuite(front.url);
    const s = summary(out);
    assert.equal(s.scenarios, 30);
    assert.deepEqual(s.failedLines, [], `failed scenarios:\n${out.slice(-4000)}`);
    assert.equal(s.failed, 0);
    assert.ok(s.passed >= 39, `passed ${s.passed}`);
    assert.equal(code, 0);
  } finally {
    await front.stop();
    await back.stop();
  }
});
