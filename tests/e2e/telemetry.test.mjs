// Telemetry, end to end: /metrics passes promtool and counts what happened; the stdout
// provider writes one JSON line per request with the seed's context fields; the otlp
// provider ships spans that continue the client's W3C trace through an HTTP upstream (a
// second smg) to a collector, and a dead or hanging collector slows no call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync, statSync, readFileSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECHO, gatewayConfig, luaServer, writeConfig, withGateway, startSmg, httpClient, textOf, sleep, post, rawSession } from './helpers.mjs';

const policy = (keywords) => ({ enabled: true, policy_name: 'p', block: [], additional_config: { keywords } });

test('/metrics is valid Prometheus text and counts requests, blocks and cache use', async () => {
  const cfg = gatewayConfig([luaServer('s', ECHO, { enable_tool_guardrails: true,
    input_guardrails_policy: policy(['forbidden']) })], { mode: 'aggregate' });
  cfg.plugins = { guardrails: { provider: 'keyword' } };
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    await c.listTools();
    await c.listTools();
    await c.callTool({ name: 's__echo', arguments: { message: 'hi' } });
    await c.callTool({ name: 's__echo', arguments: { message: 'forbidden' } });
    const res = await fetch(gw.origin + '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0.0.4/);
    const body = await res.text();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
    assert.match(body, /^smg_requests_total\{method="tools\/call",status="ok"\} 1$/m);
    assert.match(body, /^smg_requests_total\{method="tools\/call",status="blocked"\} 1$/m);
    assert.match(body, /^smg_guardrail_blocks_total\{guardrail="keyword",direction="input"\} 1$/m);
    assert.match(body, /^smg_cache_hits_total\{kind="tools\/list"\} [1-9]/m);
    assert.match(body, /^smg_request_duration_seconds_bucket\{method="tools\/call",le="\+Inf"\} 2$/m);
    assert.match(body, /^smg_sessions 1$/m);
    await c.close();
  });
});

test('stdout telemetry to a file: created 0600; a symlink in its place is refused, its target untouched', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smg-audit-'));
  const cfg = (path) => {
    const c = gatewayConfig([luaServer('s', ECHO)], { mode: 'aggregate' });
    c.plugins = { telemetry: { provider: 'stdout', config: { flush_interval: 0, path } } };
    return writeConfig(c);
  };
  await withGateway(cfg(join(dir, 'audit.log')), async (gw) => {
    const c = await httpClient(gw.url);
    await c.callTool({ name: 's__echo', arguments: { message: 'hi' } });
    await c.close();
    for (let i = 0; i < 50 && !existsSync(join(dir, 'audit.log')); i++) await sleep(20);
    assert.equal(statSync(join(dir, 'audit.log')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(dir, 'audit.log'), 'utf8'), /"method":"tools\/call"/);
  });
  writeFileSync(join(dir, 'secret'), 'untouched');
  symlinkSync(join(dir, 'secret'), join(dir, 'link.log'));
  await withGateway(cfg(join(dir, 'link.log')), async (gw) => {
    const c = await httpClient(gw.url);
    await c.callTool({ name: 's__echo', arguments: { message: 'hi' } });
    await c.close();
    for (let i = 0; i < 50 && !/symbolic link/.test(gw.logs()); i++) await sleep(20);
    assert.match(gw.logs(), /link\.log: is a symbolic link \(refused\)/);
  });
  assert.equal(readFileSync(join(dir, 'secret'), 'utf8'), 'untouched');
});

test('stdout telemetry writes a JSON line per request with context, secrets masked', async () => {
  const cfg = gatewayConfig([luaServer('s', ECHO)], { mode: 'aggregate' });
  cfg.plugins = { telemetry: { provider: 'stdout', config: { flush_interval: 0 } } };
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    await c.callTool({ name: 's__echo', arguments: { message: 'hi' } });
    let ev;
    for (let i = 0; i < 50 && !ev; i++) {
      ev = gw.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.method === 'tools/call');
      if (!ev) await sleep(20);
    }
    assert.ok(ev, 'a tools/call event');
    assert.equal(ev.event, 'request');
    assert.equal(ev.status, 'ok');
    assert.equal(ev.server_name, 's');
    assert.equal(ev.tool_name, 'echo');
    assert.equal(ev.mcp_config_id, 'test');
    assert.match(ev.trace_id, /^[0-9a-f]{32}$/);
    assert.ok(ev.duration_ms >= 0);
    assert.ok(!('arguments' in ev), 'arguments are not logged');
    await c.close();
  });
});

// A collector: records OTLP/HTTP JSON posts; `mode` 'ok' | 'hang'.
function collector(mode = 'ok') {
  const got = { traces: [], metrics: [], held: [] };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (mode === 'hang') { got.held.push(res); return; }
      (req.url === '/v1/traces' ? got.traces : got.metrics).push(JSON.parse(body));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    got.url = `http://127.0.0.1:${server.address().port}`;
    got.close = () => { for (const r of got.held) r.destroy(); server.closeAllConnections(); server.close(); };
    got.spans = () => got.traces.flatMap((d) => d.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
    resolve(got);
  }));
}

const otlp = (url, extra = {}) => ({ provider: 'otlp', config: { endpoint: url, interval: 0.05, metrics_interval: 0.2, ...extra } });

test('otlp spans continue the client trace through an HTTP upstream', async () => {
  const col = await collector();
  const backCfg = gatewayConfig([luaServer('echo', ECHO)], { mode: 'passthrough', passthrough_server: 'echo' });
  backCfg.plugins = { telemetry: otlp(col.url, { service_name: 'back' }) };
  const back = await startSmg(writeConfig(backCfg));
  try {
    const frontCfg = gatewayConfig([{ server_name: 'remote', config: { url: back.url } }], { mode: 'aggregate' });
    frontCfg.plugins = { telemetry: otlp(col.url, { service_name: 'front' }) };
    await withGateway(writeConfig(frontCfg), async (gw) => {
      const sid = await rawSession(gw.url);
      const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
      const r = await post(gw.url, { jsonrpc: '2.0', id: 7, method: 'tools/call',
        params: { name: 'remote__echo', arguments: { message: 'traced' } } },
      { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-11-25', traceparent: `00-${trace}-00f067aa0ba902b7-01` });
      assert.equal(textOf(r.json.result), 'traced');
      let front; let inner;
      for (let i = 0; i < 100 && !(front && inner); i++) {
        const spans = col.spans().filter((s) => s.traceId === trace);
        front = spans.find((s) => s.name === 'tools/call remote/echo');
        inner = spans.find((s) => s.name === 'tools/call echo/echo');
        if (!(front && inner)) await sleep(30);
      }
      assert.ok(front, 'the front gateway exported its span');
      assert.equal(front.parentSpanId, '00f067aa0ba902b7', 'continues the client span');
      assert.equal(front.kind, 2);
      assert.ok(inner, 'the upstream gateway got the trace context');
      assert.equal(inner.parentSpanId, front.spanId, 'the upstream span is a child of ours');
      const attrs = Object.fromEntries(front.attributes.map((a) => [a.key, Object.values(a.value)[0]]));
      assert.equal(attrs['smg.server_name'], 'remote');
      // Metrics go out too.
      for (let i = 0; i < 50 && col.metrics.length === 0; i++) await sleep(30);
      const names = col.metrics[0].resourceMetrics[0].scopeMetrics[0].metrics.map((m) => m.name);
      assert.ok(names.includes('smg_requests_total'));
    });
  } finally {
    await back.stop();
    col.close();
  }
});

test('a hanging or dead collector slows no call', async () => {
  const col = await collector('hang');
  const cfg = gatewayConfig([luaServer('s', ECHO)], { mode: 'aggregate' });
  cfg.plugins = { telemetry: { providers: [
    { name: 'otlp', config: { endpoint: col.url, interval: 0.02, batch_size: 5, max_queue: 20, timeout: 30 } },
  ] } };
  try {
    await withGateway(writeConfig(cfg), async (gw) => {
      const c = await httpClient(gw.url);
      for (let i = 0; i < 100; i++) {
        assert.equal(textOf(await c.callTool({ name: 's__echo', arguments: { message: `m${i}` } })), `m${i}`);
      }
      assert.ok(col.held.length >= 1, 'the collector is holding an export');
      const body = await (await fetch(gw.origin + '/metrics')).text();
      assert.match(body, /^smg_otlp_dropped_spans_total [1-9]/m, 'the bounded queue dropped spans');
      await c.close();
    });
  } finally {
    col.close();
  }
  // Nobody listening at all.
  cfg.plugins.telemetry.providers[0].config = { endpoint: 'http://127.0.0.1:9', interval: 0.02, timeout: 1 };
  await withGateway(writeConfig(cfg), async (gw) => {
    const c = await httpClient(gw.url);
    for (let i = 0; i < 20; i++) await c.callTool({ name: 's__echo', arguments: { message: 'x' } });
    for (let i = 0; i < 50 && !/otlp: traces export failed/.test(gw.logs()); i++) await sleep(20);
    assert.match(gw.logs(), /otlp: traces export failed/);
    await c.close();
  });
});
