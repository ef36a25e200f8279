// The jwt auth provider, end to end, with tokens signed here by node's crypto (standing in
// for an authorization server): RS256 from a JWKS file, ES256 from a JWKS URL, and every
// refusal (expired, wrong audience or issuer, tampered, alg none, unknown key, missing
// scope) answered 401 with an RFC 6750 / RFC 9728 challenge; the metadata document served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, createPrivateKey } from 'node:crypto';
import { createServer } from 'node:http';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECHO, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf, post, INIT } from './helpers.mjs';

const b64url = (b) => Buffer.from(b).toString('base64url');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = (pair, kid, alg) => ({ ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' });

function token(claims, { alg = 'RS256', kid = 'rsa1', key = rsa.privateKey, header = {} } = {}) {
  const h = b64url(JSON.stringify({ alg, typ: 'JWT', kid, ...header }));
  const p = b64url(JSON.stringify(claims));
  if (alg === 'none') return `${h}.${p}.`;
  const sig = sign(alg.startsWith('RS') ? 'sha256' : 'sha256', Buffer.from(`${h}.${p}`),
    alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${h}.${p}.${b64url(sig)}`;
}

const now = () => Math.floor(Date.now() / 1000);
const ISS = 'https://auth.example.test';
const AUD = 'http://127.0.0.1/mcp';
const good = (extra = {}) => ({ iss: ISS, aud: AUD, sub: 'user-42', exp: now() + 300, scope: 'mcp:tools other', ...extra });

function config(auth) {
  const cfg = gatewayConfig([luaServer('s', ECHO)], { mode: 'aggregate' });
  cfg.plugins = { auth: { provider: 'jwt', config: auth } };
  return writeConfig(cfg);
}

test('jwt: RS256 tokens from a JWKS file, every refusal with its challenge, RFC 9728 metadata', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smg-jwks-'));
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [jwk(rsa, 'rsa1', 'RS256'), jwk(ec, 'ec1', 'ES256')] }));
  const cfg = config({ issuer: ISS, audience: AUD, jwks_file: jwks, required_scopes: ['mcp:tools'],
    scopes_supported: ['mcp:tools'], resource: 'https://gw.example.test/mcp' });
  await withGateway(cfg, async (gw) => {
    const c = await httpClient(gw.url, { headers: { Authorization: `Bearer ${token(good())}` } });
    assert.equal(textOf(await c.callTool({ name: 's__echo', arguments: { message: 'hi' } })), 'hi');
    await c.close();
    const es = await httpClient(gw.url, { headers: { Authorization: `Bearer ${token(good(), { alg: 'ES256', kid: 'ec1', key: ec.privateKey })}` } });
    assert.equal(textOf(await es.callTool({ name: 's__echo', arguments: { message: 'ec' } })), 'ec');
    await es.close();

    const refused = async (tok, why, status = 401) => {
      const r = await post(gw.url, INIT, tok === null ? {} : { Authorization: `Bearer ${tok}` });
      assert.equal(r.status, status, why);
      const ch = r.headers.get('www-authenticate');
      assert.match(ch, /^Bearer realm="smg", resource_metadata="https:\/\/gw\.example\.test\/\.well-known\/oauth-protected-resource\/mcp"/);
      if (why) assert.match(ch, new RegExp(`error_description="${why}"`));
      return ch;
    };
    const missing = await refused(null, null);
    assert.doesNotMatch(missing, /error=/, 'no error code when no token was sent (RFC 6750 3.1)');
    assert.match(await refused(token(good({ exp: now() - 3600 })), 'token expired'), /error="invalid_token"/);
    await refused(token(good({ aud: 'http://elsewhere/mcp' })), 'wrong audience');
    await refused(token(good({ iss: 'https://evil.example' })), 'wrong issuer');
    await refused(token(good({ nbf: now() + 3600 })), 'token not yet valid');
    const t = token(good()).split('.');
    await refused([t[0], b64url(JSON.stringify(good({ sub: 'admin' }))), t[2]].join('.'), 'bad signature or unknown key');
    await refused(token(good(), { alg: 'none' }), 'algorithm not accepted');
    await refused(token(good(), { key: other.privateKey }), 'bad signature or unknown key');
    await refused(token(good(), { kid: 'nope' }), 'bad signature or unknown key');
    assert.match(await refused(token(good({ scope: 'other' })), 'insufficient scope', 403), /error="insufficient_scope", .*scope="mcp:tools"/);
    await refused('not.a.jwt', 'malformed token');

    const md = await fetch(`${gw.origin}/.well-known/oauth-protected-resource/mcp`);
    assert.equal(md.status, 200);
    assert.deepEqual(await md.json(), { resource: 'https://gw.example.test/mcp', authorization_servers: [ISS],
      bearer_methods_supported: ['header'], resource_name: 'smg MCP gateway', scopes_supported: ['mcp:tools'] });
    assert.ok(!gw.logs().includes(t[2]), 'tokens never reach the log');
  });
});

test('jwt: keys from a JWKS URL, refetched for a new key id', async () => {
  let keys = [jwk(ec, 'ec1', 'ES256')];
  let fetches = 0;
  const server = createServer((req, res) => {
    fetches++;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ keys }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/jwks`;
  try {
    await withGateway(config({ audience: [AUD, 'other'], jwks_url: url, min_refresh: 0 }), async (gw) => {
      const es = token(good(), { alg: 'ES256', kid: 'ec1', key: ec.privateKey });
      let r = await post(gw.url, INIT, { Authorization: `Bearer ${es}` });
      assert.equal(r.status, 200);
      assert.equal(fetches, 1);
      // A rotated-in key is picked up on first sight of its kid.
      keys = [...keys, jwk(rsa, 'rsa2', 'RS256')];
      r = await post(gw.url, INIT, { Authorization: `Bearer ${token(good(), { kid: 'rsa2' })}` });
      assert.equal(r.status, 200);
      assert.equal(fetches, 2);
      const md = await (await fetch(`${gw.origin}/.well-known/oauth-protected-resource`)).json();
      assert.match(md.resource, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    });
  } finally {
    server.close();
  }
});
