// Shared helpers for the end-to-end specs: start the real smg binary on a free port with
// a fixture config, talk to it with the official MCP TypeScript SDK or raw HTTP, and stop
// it with a deadline (a slow shutdown is a leak and fails the test).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SMG = process.env.SMG_BIN || join(ROOT, 'build/smg');
export const FIXTURES = join(ROOT, 'tests/fixtures');

if (!existsSync(SMG)) throw new Error(`smg binary not found at ${SMG}; build first or set SMG_BIN`);

const tmp = mkdtempSync(join(tmpdir(), 'smg-e2e-'));
let seq = 0;

export function writeConfig(obj) {
  const p = join(tmp, `config-${process.pid}-${++seq}.json`);
  writeFileSync(p, JSON.stringify(obj, null, 2));
  return p;
}

// A config with the given servers (array of seed-style server entries) and gateway keys.
export function gatewayConfig(servers, gateway = {}, common = {}) {
  return {
    common_mcp_gateway_config: common,
    mcp_configs: { test: { mcp_config_name: 'test', mcp_config: servers } },
    gateway: { port: 0, mcp_config_id: 'test', ...gateway },
  };
}

export function luaServer(name, file, extra = {}) {
  return { server_name: name, description: `${name} fixture`, config: { command: SMG, args: ['run', file] }, ...extra };
}

export const ECHO = join(ROOT, 'examples/servers/echo.lua');
export const FAULTY = join(FIXTURES, 'servers/faulty.lua');

// Starts `smg serve` and resolves once it prints its endpoint.
export function startSmg(configPath, { args = [], env = {} } = {}) {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(SMG, ['serve', '--config', configPath, ...args], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    const timer = setTimeout(() => reject(new Error(`smg did not start:\n${logs}`)), 10000);
    proc.stderr.on('data', (d) => {
      logs += d;
      const m = logs.match(/serving MCP on (http:\/\/[^ ]+) /);
      if (m && !proc.url) {
        clearTimeout(timer);
        proc.url = m[1];
        resolvePromise({
          proc, url: m[1], origin: new URL(m[1]).origin, logs: () => logs, stdout: () => out,
          stop: (signal = 'SIGTERM', deadlineMs = 10000) => stopProc(proc, signal, deadlineMs, () => logs),
        });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (!proc.url) reject(new Error(`smg exited with ${code} before serving:\n${logs}`));
    });
  });
}

export function stopProc(proc, signal, deadlineMs, logs) {
  return new Promise((resolvePromise, reject) => {
    if (proc.exitCode !== null) return resolvePromise(proc.exitCode);
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`smg did not exit within ${deadlineMs} ms of ${signal}:\n${logs ? logs() : ''}`));
    }, deadlineMs);
    proc.once('exit', (code, sig) => {
      clearTimeout(t);
      resolvePromise(code ?? sig);
    });
    proc.kill(signal);
  });
}

export async function httpClient(url, { capabilities = {}, name = 'e2e-client', headers } = {}) {
  const client = new Client({ name, version: '1.0.0' }, { capabilities });
  const transport = new StreamableHTTPClientTransport(new URL(url), headers ? { requestInit: { headers } } : undefined);
  await client.connect(transport);
  return client;
}

export async function stdioClient(configPath, { capabilities = {}, env = {} } = {}) {
  const client = new Client({ name: 'e2e-stdio', version: '1.0.0' }, { capabilities });
  const transport = new StdioClientTransport({
    command: SMG, args: ['serve', '--stdio', '--config', configPath],
    env: { ...process.env, ...env }, stderr: 'pipe',
  });
  await client.connect(transport);
  return { client, transport };
}

export const MCP_HEADERS = {
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
};

// Raw JSON-RPC over HTTP: returns { status, headers, text, json }.
export async function post(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST', headers: { ...MCP_HEADERS, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

export const INIT = {
  jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

// Initializes a raw session and returns its id.
export async function rawSession(url, version = '2025-11-25') {
  const r = await post(url, { ...INIT, params: { ...INIT.params, protocolVersion: version } });
  if (r.status !== 200) throw new Error(`initialize failed: ${r.status} ${r.text}`);
  const sid = r.headers.get('mcp-session-id');
  await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'Mcp-Session-Id': sid });
  return sid;
}

export function textOf(result) {
  return (result.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('');
}

export function pidAlive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs fn(gw) against a fresh gateway; on failure the gateway's log is attached to the
// error, and the gateway is always stopped within its deadline.
export async function withGateway(configPath, fn, opts = {}) {
  const gw = await startSmg(configPath, opts);
  let failure;
  try {
    return await fn(gw);
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    const code = await gw.stop();
    // A gateway that crashed (or a sanitizer abort) fails the test even if the calls did.
    const bad = code !== 0 ? new Error(`smg exited with ${code}`) : null;
    const err = failure || bad;
    if (err) err.message += `\n--- smg log ---\n${gw.logs().slice(-8000)}`;
    if (bad && !failure) throw bad;
  }
}
