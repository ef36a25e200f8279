// The official MCP Inspector CLI (v2, on Node 22) as a client of smg: over Streamable
// HTTP with an API key header, and spawning `smg serve --stdio` itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, SMG, ECHO, gatewayConfig, luaServer, writeConfig, withGateway } from './helpers.mjs';

const NODE22 = join(ROOT, 'tests/node_modules/.bin/node');

function inspector(args, env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(NODE22, [join(ROOT, 'tests/node_modules/.bin/mcp-inspector'), '--cli', ...args],
      { cwd: join(ROOT, 'tests'), env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`inspector timed out:\n${err}`)); }, 30000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`inspector exited ${code}:\n${out}\n${err}`));
      try { resolve(JSON.parse(out)); } catch { reject(new Error(`inspector printed no JSON:\n${out}\n${err}`)); }
    });
  });
}

function config() {
  const cfg = gatewayConfig([luaServer('echo', ECHO)], { mode: 'aggregate' });
  cfg.projects = { p: { project_name: 'P', mcp_config_id: 'test' } };
  cfg.apikeys = { 'inspector-key-0123456789': { project_id: 'p' } };
  cfg.plugins = { auth: { provider: 'local_apikey' } };
  return writeConfig(cfg);
}

test('the Inspector CLI lists and calls tools over HTTP with an API key', async () => {
  await withGateway(config(), async (gw) => {
    const key = ['--header', 'X-API-Key: inspector-key-0123456789'];
    const tools = await inspector([gw.url, ...key, '--method', 'tools/list']);
    assert.deepEqual(tools.tools.map((t) => t.name).sort(), ['echo__add', 'echo__echo', 'echo__sleep']);
    const r = await inspector([gw.url, ...key, '--method', 'tools/call', '--tool-name', 'echo__echo', '--tool-arg', 'message=inspected']);
    assert.equal(r.content[0].text, 'inspected');
    await assert.rejects(inspector([gw.url, '--method', 'tools/list']), /auth_required/, 'no key: the Inspector is told to authenticate');
  });
});

test('the Inspector CLI runs smg serve --stdio itself', async () => {
  const r = await inspector(['-e', `SMG_CONFIG=${config()}`, '-e', 'SMG_API_KEY=inspector-key-0123456789', SMG, 'serve', '--stdio',
    '--method', 'tools/call', '--tool-name', 'echo__add', '--tool-arg', 'a=2', 'b=3']);
  assert.deepEqual(r.structuredContent, { sum: 5 });
});
