// The soak driver (scripts/soak.sh runs it against an ASan build): mixed traffic and
// faults for a set time against one running gateway, then a report. Traffic: SDK clients
// calling tools with progress, listing, reading resources, sampling through a per-session
// upstream; sessions left behind without DELETE; clients dropping mid-SSE. Faults: the
// shared upstream SIGKILLed, slowloris bursts, 5 MB replies over the size limit, stdout
// floods, list_changed floods, config reloads (SIGHUP). Every call must end (result or
// clear error) before its timeout; the gateway must stay up and its memory flat.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { httpClient, rawSession, textOf, sleep } from '../e2e/helpers.mjs';

const [url, pidArg, minutesArg] = process.argv.slice(2);
const smgPid = Number(pidArg);
const until = Date.now() + Number(minutesArg || 10) * 60000;
const port = Number(new URL(url).port);
const stats = { ok: 0, failed: 0, errors: {}, hung: 0, latencies: [], rss: [], faults: {} };
const rssKb = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const fault = (k) => { stats.faults[k] = (stats.faults[k] || 0) + 1; };

async function timed(p, budgetMs) {
  const t0 = Date.now();
  let timer;
  const hang = new Promise((resolve) => { timer = setTimeout(() => resolve('hung'), budgetMs); });
  try {
    const r = await Promise.race([p.then(() => 'ok', (e) => e), hang]);
    if (r === 'ok') { stats.ok++; stats.latencies.push(Date.now() - t0); return; }
    if (r === 'hung') { stats.hung++; return; }
    stats.failed++;
    const k = String(r.message || r).replace(/[0-9a-f]{8,}|\d+/g, 'N').slice(0, 80);
    stats.errors[k] = (stats.errors[k] || 0) + 1;
  } finally { clearTimeout(timer); }
}

async function caller(i) {
  let c = await httpClient(url, { capabilities: { sampling: {} } });
  c.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: 'assistant', model: 'm', content: { type: 'text', text: 'ok' } }));
  for (let n = 0; Date.now() < until; n++) {
    const pick = n % 7;
    if (pick === 0) await timed(c.callTool({ name: 'echo__echo', arguments: { message: `m${i}-${n}` } }), 15000);
    else if (pick === 1) await timed(c.callTool({ name: 'faulty__echo', arguments: { message: 'f' } }, undefined, { timeout: 15000 }), 20000);
    else if (pick === 2) await timed(c.callTool({ name: 'echo__sleep', arguments: { seconds: 0.05 } }, undefined, { onprogress: () => {} }), 15000);
    else if (pick === 3) await timed(c.listTools(), 15000);
    else if (pick === 4) await timed(c.readResource({ uri: 'echo://readme' }), 15000);
    else if (pick === 5) await timed(c.callTool({ name: 'conf__test_sampling', arguments: { prompt: 'hi' } }, undefined, { timeout: 15000 }), 20000);
    else if (n % 50 === 6) { // a new session; the old one ended with DELETE, or every
      // fifth time left behind as the SDK's close() does (it expires)
      if (n % 250 !== 6) await c.transport.terminateSession().catch(() => {});
      await c.close().catch(() => {});
      c = await httpClient(url, { capabilities: { sampling: {} } });
      c.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: 'assistant', model: 'm', content: { type: 'text', text: 'ok' } }));
    }
  }
}

async function faults() {
  let k = 0;
  const fc = await httpClient(url);
  while (Date.now() < until) {
    await sleep(2000);
    const which = k++ % 6;
    try {
      if (which === 0) {
        const pid = Number(textOf(await fc.callTool({ name: 'faulty__pid', arguments: {} })));
        process.kill(pid, 'SIGKILL'); fault('upstream SIGKILL');
      } else if (which === 1) {
        const socks = Array.from({ length: 200 }, () => { const s = net.connect(port, '127.0.0.1'); s.on('error', () => {}); s.write('POST /mcp HTTP/1.1\r\n'); return s; });
        setTimeout(() => socks.forEach((s) => s.destroy()), 3000); fault('200 slowloris');
      } else if (which === 2) {
        await fc.callTool({ name: 'faulty__huge_reply', arguments: { mb: 5 } }, undefined, { timeout: 15000 }).catch(() => {}); fault('5 MB line over the limit');
      } else if (which === 3) {
        await fc.callTool({ name: 'faulty__stdout_flood', arguments: { lines: 20000 } }, undefined, { timeout: 15000 }).catch(() => {});
        await fc.callTool({ name: 'faulty__list_changed_flood', arguments: { count: 2000 } }, undefined, { timeout: 15000 }).catch(() => {});
        fault('stdout + list_changed flood');
      } else if (which === 4) {
        process.kill(smgPid, 'SIGHUP'); fault('reload (SIGHUP)');
      } else {
        const sid = await rawSession(url);
        const ac = new AbortController();
        const res = await fetch(url, { method: 'POST', signal: ac.signal, headers: { 'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sid },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo__sleep', arguments: { seconds: 0.2 }, _meta: { progressToken: 'p' } } }) });
        await res.body.getReader().read().catch(() => null);
        ac.abort(); fault('client dropped mid-SSE');
      }
    } catch { /* a fault that failed to land is not a finding */ }
  }
}

const sampler = setInterval(() => stats.rss.push(rssKb(smgPid)), 10000);
stats.rss.push(rssKb(smgPid));
await Promise.all([...Array.from({ length: 6 }, (_, i) => caller(i)), faults()]);
clearInterval(sampler);
stats.rss.push(rssKb(smgPid));
const l = stats.latencies.sort((a, b) => a - b);
const q = (p) => l[Math.min(l.length - 1, Math.floor(l.length * p))];
const report = { calls_ok: stats.ok, calls_failed: stats.failed, calls_hung: stats.hung, errors: stats.errors,
  latency_ms: { p50: q(0.5), p99: q(0.99), max: l[l.length - 1] }, faults: stats.faults,
  rss_kb: { first: stats.rss[0], last: stats.rss[stats.rss.length - 1], max: Math.max(...stats.rss),
    second_half_growth: stats.rss[stats.rss.length - 1] - stats.rss[Math.floor(stats.rss.length / 2)] } };
console.log(JSON.stringify(report, null, 2));
process.exit(stats.hung === 0 ? 0 : 1);
