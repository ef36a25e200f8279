// smg as an MCP client under the official conformance suite's client mode, at its
// 2026-07-28 pin (0.2.0-alpha.12, `conformance-next`): every client scenario the frozen
// requirement sets of 2026-07-28 and 2025-11-25 list, each run on its own through
// scripts/conformance-client.sh (smg with the scenario server as its only upstream, the
// actions driven through smg's downstream side), plus the client credentials extension
// scenarios (not scored by the suite, but smg's machine-to-machine case). Every check of
// every scenario must pass: the auth ones cover PRM and authorization server discovery,
// scopes and step-up, token endpoint authentication, registration, resource indicators,
// RFC 9207 iss and issuer checks. Scenarios run one at a time: in parallel on a small
// machine they hit the suite's 30 s client timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers.mjs';

const NODE22 = join(ROOT, 'tests/node_modules/.bin/node');
const CONFORMANCE = join(ROOT, 'tests/node_modules/conformance-next/dist/index.js');
const SCRIPT = join(ROOT, 'scripts/conformance-client.sh');

// The `client:` list of a requirements file.
function clientScenarios(revision) {
  const text = readFileSync(join(ROOT, `tests/node_modules/conformance-next/requirements/${revision}.yaml`), 'utf8');
  const block = text.split(/^client:\s*$/m)[1].split(/^\S/m)[0];
  return [...block.matchAll(/^ {2}- (\S+)\s*$/gm)].map((m) => m[1]);
}

// Every checks.json under dir (recursively).
function checkFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...checkFiles(p));
    else if (name === 'checks.json') out.push(p);
  }
  return out;
}

function runScenario(scenario, version) {
  const out = mkdtempSync(join(tmpdir(), 'smg-conformance-client-out-'));
  const args = [CONFORMANCE, 'client', '--command', SCRIPT, '--scenario', scenario, '-o', out];
  if (version) args.push('--spec-version', version);
  return new Promise((resolve) => {
    const p = spawn(NODE22, args, { cwd: join(ROOT, 'tests') });
    let log = '';
    p.stdout.on('data', (d) => { log += d; });
    p.stderr.on('data', (d) => { log += d; });
    p.on('exit', (code) => {
      const files = checkFiles(out);
      const checks = files.flatMap((f) => JSON.parse(readFileSync(f, 'utf8')));
      const failed = checks.filter((c) => c.status === 'FAILURE').map((c) => `${c.id}: ${c.errorMessage || c.description}`);
      resolve({ code, checks: checks.length, failed, log });
    });
  });
}

async function runAll(list, version) {
  const bad = {};
  for (const scenario of list) {
    const r = await runScenario(scenario, version);
    if (r.failed.length > 0 || r.checks === 0) {
      bad[scenario] = r.checks === 0 ? [`no checks ran:\n${r.log.slice(-2000)}`] : r.failed;
    }
  }
  return bad;
}

test('client mode, 2026-07-28: every required scenario passes through smg', { timeout: 600000 }, async () => {
  const list = clientScenarios('2026-07-28');
  assert.ok(list.length >= 30, `the requirement set lists the client scenarios (${list.length})`);
  assert.deepEqual(await runAll(list, '2026-07-28'), {});
});

test('client mode, 2025-11-25: every required scenario passes through smg', { timeout: 600000 }, async () => {
  const list = clientScenarios('2025-11-25');
  assert.ok(list.length >= 15);
  assert.deepEqual(await runAll(list, '2025-11-25'), {});
});

test('client mode: the OAuth client credentials extension (secret and private_key_jwt)', { timeout: 120000 }, async () => {
  assert.deepEqual(await runAll(['auth/client-credentials-basic', 'auth/client-credentials-jwt'], null), {});
});

// 2025-03-26 servers publish no Protected Resource Metadata: their origin's authorization
// server metadata, or the default endpoints (/authorize, /token, /register).
test('client mode: the 2025-03-26 authorization discovery (origin metadata, default endpoints)', { timeout: 120000 },
  async () => {
    assert.deepEqual(await runAll(['auth/2025-03-26-oauth-metadata-backcompat',
      'auth/2025-03-26-oauth-endpoint-fallback'], null), {});
  });

// Listed for both revisions but added after their requirement sets froze: a tool's JSON
// Schema 2020-12 keywords ($schema, $defs, $anchor, additionalProperties, allOf/anyOf,
// if/then/else) reach the client as the server wrote them.
test('client mode: JSON Schema 2020-12 keywords survive the gateway', { timeout: 120000 }, async () => {
  assert.deepEqual(await runAll(['json-schema-2020-12-preservation'], '2026-07-28'), {});
  assert.deepEqual(await runAll(['json-schema-2020-12-preservation'], '2025-11-25'), {});
});
