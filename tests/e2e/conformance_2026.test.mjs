// The official conformance suite at its 2026-07-28 pin (@modelcontextprotocol/conformance
// 0.2.0-alpha.12, installed as `conformance-next`) against `smg serve` in passthrough in
// front of the Lua conformance fixture (examples/servers/conformance.lua, a dual-era
// server): the frozen requirement sets of both revisions.
//  - 2026-07-28 with the fixture detected as a 2026 server (era "auto"): all 37 required
//    scenarios, input_required and its requestState passed through unchanged;
//  - the same with the fixture behind a second smg over Streamable HTTP (2026 requests
//    carry their standard headers and no session upstream);
//  - 2025-11-25 with the fixture spoken to in 2025 (era "legacy"): 0 failures;
//  - 2026-07-28 with the fixture spoken to in 2025 (translation), on stdio and over HTTP:
//    every scenario but the input_required ones, whose answers name keys only the server
//    can choose (a gateway turning a 2025 server's elicitation into input_required cannot
//    produce "user_name");
//  - 2025-11-25 over a remote HTTP upstream, and with the fixture as a 2026-only server
//    (translation) on stdio and over HTTP: 0 failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, FIXTURES, startSmg } from './helpers.mjs';

const NODE22 = join(ROOT, 'tests/node_modules/.bin/node');
const CONFORMANCE = join(ROOT, 'tests/node_modules/conformance-next/dist/index.js');

// Required 2026-07-28 scenarios a 2025 upstream cannot serve (see above).
const EXPECTED_2026_TRANSLATED = [
  'input-required-result-basic-elicitation', 'input-required-result-basic-sampling',
  'input-required-result-basic-list-roots', 'input-required-result-request-state',
  'input-required-result-multiple-input-requests', 'input-required-result-multi-round',
  'input-required-result-non-tool-request', 'input-required-result-result-type',
  'input-required-result-tampered-state', 'input-required-result-capability-check',
];

function run(url, requirements) {
  return new Promise((resolve) => {
    const p = spawn(NODE22, [CONFORMANCE, 'server', '--url', url, '--requirements', requirements],
      { cwd: join(ROOT, 'tests') });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('exit', (code) => resolve({ code, out }));
  });
}

// The required scenarios' verdicts: name -> true (passed) / false.
function required(out) {
  const scored = out.split(/\nNot scored/)[0];
  const verdicts = {};
  for (const line of scored.split('\n')) {
    const m = line.match(/^([✓✗]) (\S+): \d+ passed, \d+ failed/);
    if (m) verdicts[m[2]] = m[1] === '✓';
  }
  return verdicts;
}

const UNSCORED = /^(tasks-|json-schema-2020-12|http-header-validation|http-custom-header-server-validation|server-session-lifecycle|server-sse-polling)/;

async function requiredFailing(config, requirements) {
  const gw = await startSmg(join(FIXTURES, config));
  try {
    const verdicts = required((await run(gw.url, requirements)).out);
    const names = Object.keys(verdicts).filter((n) => !UNSCORED.test(n));
    return { names, failing: names.filter((n) => !verdicts[n]).sort() };
  } finally {
    await gw.stop();
  }
}

test('conformance 2026-07-28, a 2026 upstream: all 37 required scenarios', { timeout: 600000 }, async () => {
  const { names, failing } = await requiredFailing('conformance-stdio-2026.json', '2026-07-28');
  assert.equal(names.length, 37, `37 required scenarios ran: ${names.join(', ')}`);
  assert.deepEqual(failing, []);
});

test('conformance 2026-07-28, a 2026 upstream over Streamable HTTP (smg in front of smg): all 37',
  { timeout: 600000 }, async () => {
    const back = await startSmg(join(FIXTURES, 'conformance-stdio-2026.json'));
    const front = await startSmg(join(FIXTURES, 'conformance-http.json'), { env: { SMG_UPSTREAM_URL: back.url } });
    try {
      const verdicts = required((await run(front.url, '2026-07-28')).out);
      const names = Object.keys(verdicts).filter((n) => !UNSCORED.test(n));
      assert.equal(names.length, 37);
      assert.deepEqual(names.filter((n) => !verdicts[n]), []);
      assert.match(front.logs(), /upstream conformance ready .*2026-07-28/);
    } finally {
      await front.stop();
      await back.stop();
    }
  });

test('conformance 2026-07-28, a 2025 upstream (translation): all but the input_required scenarios',
  { timeout: 600000 }, async () => {
    const { names, failing } = await requiredFailing('conformance-stdio.json', '2026-07-28');
    assert.equal(names.length, 37);
    assert.deepEqual(failing, [...EXPECTED_2026_TRANSLATED].sort());
  });

// smg with `config` (behind it, when `back` is given, a second smg with that config as its
// remote Streamable HTTP upstream); runs the requirement set; returns the output.
async function through(config, requirements, back) {
  const b = back ? await startSmg(join(FIXTURES, back)) : null;
  try {
    const gw = await startSmg(join(FIXTURES, config), b ? { env: { SMG_UPSTREAM_URL: b.url } } : {});
    try {
      return (await run(gw.url, requirements)).out;
    } finally {
      await gw.stop();
    }
  } finally {
    if (b) await b.stop();
  }
}

function noFailures(out, what) {
  const m = out.match(/Total: (\d+) passed, (\d+) failed/);
  assert.ok(m, out.slice(-3000));
  assert.equal(Number(m[2]), 0, `${what}:\n${out.split('=== SUMMARY ===')[1] ?? out.slice(-3000)}`);
}

test('conformance 2025-11-25 requirement set: 0 failures', { timeout: 600000 }, async () => {
  noFailures(await through('conformance-stdio.json', '2025-11-25'), '2025-11-25, stdio upstream');
});

test('conformance 2025-11-25 over a remote Streamable HTTP upstream: 0 failures', { timeout: 600000 }, async () => {
  noFailures(await through('conformance-http.json', '2025-11-25', 'conformance-stdio.json'), '2025-11-25, HTTP upstream');
});

// A 2025 client in front of a 2026-only upstream: input_required becomes real requests,
// logging/setLevel stays at the gateway (the level goes in each request's _meta), and
// resources/subscribe becomes the upstream listen stream's resourceSubscriptions.
test('conformance 2025-11-25, a 2026-only upstream (translation), on stdio and over HTTP: 0 failures',
  { timeout: 600000 }, async () => {
    noFailures(await through('conformance-stdio-modern.json', '2025-11-25'), '2025-11-25, 2026-only stdio upstream');
    noFailures(await through('conformance-http-modern.json', '2025-11-25', 'conformance-stdio-2026.json'),
      '2025-11-25, 2026-only HTTP upstream');
  });

test('conformance 2026-07-28, a 2025 upstream over HTTP (translation): all but the input_required scenarios',
  { timeout: 600000 }, async () => {
    const verdicts = required(await through('conformance-http-legacy.json', '2026-07-28', 'conformance-stdio.json'));
    const names = Object.keys(verdicts).filter((n) => !UNSCORED.test(n));
    assert.equal(names.length, 37);
    assert.deepEqual(names.filter((n) => !verdicts[n]).sort(), [...EXPECTED_2026_TRANSLATED].sort());
  });
