// Guardrails under attack: 8 callers make small guarded tools/call requests for SECONDS,
// first alone, then while one more tenant keeps sending 1 MB arguments built to be slow
// to scan (runs of blanks after injection keywords, dotted digit runs, a million tiny
// strings). Prints the callers' p50/p99 in both runs and the ratio: the scan slices and
// yields, so the others' latency should barely move.
//   node bench/adversarial.mjs SMG_BINARY [SECONDS]
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const MB = 1024 * 1024;

// The attacker runs in a process of its own: building and parsing megabytes of JSON in
// the measuring process would stall its own clock.
if (process.argv[2] === '--attacker') {
  const [, , , url, server, secs] = process.argv;
  const payloads = [
    { message: 'disregard' + ' '.repeat(MB) },
    { message: '1.'.repeat(MB / 2) },
    { message: 'ignore ' + ' \t'.repeat(MB / 2) + 'x' },
    { message: Array.from({ length: MB / 8 }, () => 'a') },
  ].map((args, i) => JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: `${server}__echo`, arguments: args } }));
  const r0 = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'attacker', version: '1' } } }) });
  await r0.text();
  const sid = r0.headers.get('mcp-session-id');
  let n = 0;
  const until = Date.now() + Number(secs) * 1000;
  while (Date.now() < until) {
    const r = await fetch(url, { method: 'POST', headers: { ...headers, 'Mcp-Session-Id': sid }, body: payloads[n % payloads.length] });
    await r.arrayBuffer();
    n++;
  }
  console.log(n);
  process.exit(0);
}

const [smg, secsArg] = process.argv.slice(2);
const secs = Number(secsArg || 5);
const guards = (process.env.ADV_GUARDS ?? 'pii,injection').split(',').filter(Boolean);
const policy = { enabled: guards.length > 0, policy_name: 'p', block: [], guardrails: guards, additional_config: {} };
const dir = mkdtempSync(join(tmpdir(), 'smg-adv-'));
const cfg = join(dir, 'config.json');
writeFileSync(cfg, JSON.stringify({
  common_mcp_gateway_config: { timeout_settings: { guardrail_timeout: 30 } },
  mcp_configs: { c: { mcp_config: ['echo', 'other'].map((name) => ({ server_name: name, enable_tool_guardrails: true,
    input_guardrails_policy: policy, output_guardrails_policy: policy,
    config: { command: smg, args: ['run', join(root, 'examples/servers/echo.lua')] } })) } },
  gateway: { port: 0, mode: 'aggregate', limits: { max_body_bytes: 8 * 1024 * 1024 } },
}));
const proc = spawn(smg, ['serve', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
proc.stderr.on('data', (d) => { if (process.env.ADV_DEBUG) process.stderr.write(d); });
const url = await new Promise((res) => {
  let log = '';
  proc.stderr.on('data', (d) => { log += d; const m = log.match(/serving MCP on (http:\/\/\S+)/); if (m) res(m[1]); });
});
async function session() {
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'adv', version: '1' } } }) });
  await r.text();
  return r.headers.get('mcp-session-id');
}
async function call(sid, args, id, server = 'echo') {
  const r = await fetch(url, { method: 'POST', headers: { ...headers, 'Mcp-Session-Id': sid },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: `${server}__echo`, arguments: args } }) });
  return r.text();
}
async function measure(attack, attackOn = 'echo') {
  const sids = await Promise.all(Array.from({ length: 8 }, session));
  const lat = [];
  let attacks = 0;
  const until = Date.now() + secs * 1000;
  const attacker = attack ? new Promise((res) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--attacker', url, attackOn, String(secs)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('exit', () => { attacks = Number(out.trim()) || 0; res(); });
  }) : Promise.resolve();
  await Promise.all(sids.map(async (sid, k) => {
    for (let i = 0; Date.now() < until; i++) {
      const t0 = performance.now();
      await call(sid, { message: `hello ${k} ${i}` }, i);
      lat.push(performance.now() - t0);
    }
  }));
  await attacker;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))];
  return { calls: lat.length, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1], attacks };
}
const base = await measure(false);
const hit = await measure(true, process.env.ADV_SERVER || 'echo');
proc.kill('SIGTERM');
const f = (r) => `${r.calls} calls, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(1)} ms`;
console.log(`guarded calls, 8 tenants alone:            ${f(base)}`);
console.log(`... while a 9th sends 1 MB crafted payloads: ${f(hit)} (${hit.attacks} payloads scanned)`);
console.log(`p99 under attack / alone: ${(hit.p99 / base.p99).toFixed(2)}x`);
