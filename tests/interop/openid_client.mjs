#!/usr/bin/env node
// Interoperability test: Charter's OAuth 2.0 token service and gateway driven by
// openid-client 6 (Node), a second client independent of the Python one (test_oauth.py).
//
// Every client runs with openid-client's stock behaviour: its own assertion lifetime
// (exp = iat + 60 s), its own algorithm names (RFC 9864 `Ed25519` for Ed25519 keys, `ES256`
// for P-256), its own DPoP proofs. The only settings are the ones an RFC 8414 server over
// plain HTTP on loopback needs: discovery with `algorithm: 'oauth2'` and
// `allowInsecureRequests`. The point: a stock client works on the first try.
//
// Checks: discovery; client_credentials with client_secret_basic; private_key_jwt with an
// Ed25519 and a P-256 key; DPoP-bound tokens (Ed25519 and ES256) used at the gateway in proxy
// mode (/{api}/{path}) against a local upstream; RFC 7009 revocation (client_secret_basic and
// private_key_jwt), seen by introspection and the gateway. Access tokens are verified against
// the JWKS with jose.
//
// The server must already run (tests/interop/run.sh starts it). Usage:
//   node openid_client.mjs --base http://127.0.0.1:PORT --gateway http://127.0.0.1:PORT \
//        --admin-token TOKEN
// Prints one line per check and closes with "openid-client: N passed, N failed"; exits 1 on
// any failure.

import { once } from 'node:events';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { webcrypto } from 'node:crypto';

import * as client from 'openid-client';
import * as jose from 'jose';

const { subtle } = webcrypto;
const HTTP_TIMEOUT_MS = 10_000;
const SUFFIX = Math.random().toString(36).slice(2, 8);
const API_NAME = `node-orders-${SUFFIX}`;
const AUDIENCE = `https://api.example.com/${API_NAME}`;
const SCOPES = 'orders:read orders:list';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    gateway: { type: 'string' },
    'admin-token': { type: 'string' },
  },
});
if (!args.base || !args.gateway || !args['admin-token']) {
  console.error('usage: openid_client.mjs --base URL --gateway URL --admin-token TOKEN');
  process.exit(2);
}
const BASE = args.base.replace(/\/$/, '');
const GATEWAY = args.gateway.replace(/\/$/, '');
const ADMIN = args['admin-token'];

// ------------------------------------------------------------------------------------
// tiny check runner
// ------------------------------------------------------------------------------------

let passed = 0;
const failed = [];

async function check(name, fn) {
  try {
    const detail = await fn();
    passed += 1;
    console.log(`ok   ${name}${detail ? ` (${detail})` : ''}`);
    return true;
  } catch (e) {
    failed.push(name);
    console.log(`FAIL ${name}: ${describe(e)}`);
    for (const line of String(e?.stack ?? '').split('\n').slice(1, 6)) {
      console.log(`     ${line.trim()}`);
    }
    return false;
  }
}

function describe(e) {
  const parts = [e?.name ?? 'Error', e?.message ?? String(e)];
  if (e?.code) parts.push(`code=${e.code}`);
  if (e?.error) parts.push(`error=${e.error}`);
  if (e?.error_description) parts.push(`error_description=${e.error_description}`);
  if (e?.status) parts.push(`status=${e.status}`);
  if (e?.cause?.error) parts.push(`cause.error=${e.cause.error}`);
  return parts.join(': ');
}

function expectEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const b = JSON.stringify(expected);
  if (a !== b) throw new Error(`${what}: expected ${b}, got ${a}`);
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

function decodePart(jwt, i) {
  return JSON.parse(Buffer.from(jwt.split('.')[i], 'base64url').toString('utf8'));
}

// ------------------------------------------------------------------------------------
// a local upstream that echoes what the gateway forwarded
// ------------------------------------------------------------------------------------

const upstreamSeen = [];
const upstream = http.createServer((req, res) => {
  upstreamSeen.push({ method: req.method, url: req.url, headers: req.headers });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ok: true, path: req.url }));
});
upstream.listen(0, '127.0.0.1');
await once(upstream, 'listening');
const UPSTREAM = `http://127.0.0.1:${upstream.address().port}/`;

// ------------------------------------------------------------------------------------
// seeding over the admin API (plain fetch; not part of what is being tested)
// ------------------------------------------------------------------------------------

async function admin(method, path, token, body, expect = [200, 201]) {
  const r = await fetch(BASE + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await r.text();
  if (!expect.includes(r.status)) throw new Error(`${method} ${path} -> ${r.status} ${text.slice(0, 400)}`);
  return text ? JSON.parse(text) : null;
}

async function principal(name, roles) {
  const v = await admin('POST', '/v1/principals', ADMIN, { name: `${name}-${SUFFIX}`, roles }, [201]);
  return { id: v.id, token: v.token };
}

async function seedWorld() {
  const owner = await principal('node-orders-team', ['api_owner']);
  const steward = await principal('node-partner-office', ['steward']);
  const approver = await principal('node-approver', ['approver']);
  const gateway = await principal('node-gateway', ['gateway']);
  const api = await admin('POST', '/v1/apis', owner.token, {
    name: API_NAME,
    audience: AUDIENCE,
    upstream: UPSTREAM,
    owner: owner.id,
    operations: [
      { scope: 'orders:read', method: 'GET', path: '/orders/{id}', data_class: 'confidential', region: 'eu' },
      { scope: 'orders:list', method: 'GET', path: '/orders', data_class: 'internal', region: 'eu' },
    ],
  }, [201]);
  const partner = await admin('POST', '/v1/partners', steward.token, {
    name: `Acme Node ${SUFFIX}`, kind: 'direct', regions: ['eu'], owners: [approver.id],
  }, [201]);
  const expires = new Date(Date.now() + 30 * 86_400_000);
  expires.setMilliseconds(0);
  const grant = await admin('POST', '/v1/grants', steward.token, {
    partner: partner.id,
    api: api.id,
    use_case: 'Delivery status sync (openid-client interop)',
    scopes: SCOPES.split(' '),
    data_class_ceiling: 'confidential',
    regions: ['eu'],
    expires_at: expires.toISOString().replace('.000Z', 'Z'),
  }, [201]);
  const approved = await admin('POST', `/v1/grants/${grant.id}/approvals`, approver.token, {
    decision: 'approve', justification: 'interop test', ticket: 'CHG-INTEROP-NODE',
  });
  expectEqual(approved.status, 'active', 'grant status after approval');
  const credential = (body) => admin('POST', `/v1/grants/${grant.id}/credentials`, steward.token, body, [201]);
  return { steward, gateway, api: api.id, partner: partner.id, grant: grant.id, credential };
}

// ------------------------------------------------------------------------------------
// the checks
// ------------------------------------------------------------------------------------

let world;
let serverMetadata;
let jwks;
const issued = []; // { label, clientId, tokens }

/** A Configuration for one client, from the metadata discovered once. */
function configFor(clientId, clientAuth) {
  const config = new client.Configuration(serverMetadata, clientId, undefined, clientAuth);
  client.allowInsecureRequests(config);
  return config;
}

/** Records the client assertion header openid-client sends (to report its alg). */
function capturingFetch(sink) {
  return (url, options) => {
    const body = options?.body;
    if (body instanceof URLSearchParams && body.has('client_assertion')) {
      sink.assertionHeader = decodePart(body.get('client_assertion'), 0);
      sink.assertionClaims = decodePart(body.get('client_assertion'), 1);
    }
    const dpop = new Headers(options?.headers).get('dpop');
    if (dpop) sink.dpopHeader = decodePart(dpop, 0);
    return fetch(url, options);
  };
}

async function verifyAccessToken(tokens, clientId, label) {
  const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, {
    issuer: serverMetadata.issuer,
    audience: AUDIENCE,
    typ: 'at+jwt',
    algorithms: ['EdDSA'],
    requiredClaims: ['exp', 'iat', 'nbf', 'jti', 'sub', 'client_id', 'scope'],
  });
  expectEqual(protectedHeader.alg, 'EdDSA', `[${label}] Charter signs its tokens as EdDSA`);
  expectEqual(payload.client_id, clientId, `[${label}] client_id`);
  expectEqual(payload.grant, world.grant, `[${label}] grant`);
  return payload;
}

async function introspect(token) {
  const r = await fetch(serverMetadata.introspection_endpoint, {
    method: 'POST',
    headers: { authorization: `Bearer ${world.gateway.token}` },
    body: new URLSearchParams({ token }),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  expectEqual(r.status, 200, 'introspection status');
  return r.json();
}

async function discovery() {
  const config = await client.discovery(new URL(BASE), 'discovery-only', undefined, undefined, {
    algorithm: 'oauth2',
    execute: [client.allowInsecureRequests],
  });
  serverMetadata = config.serverMetadata();
  expectEqual(serverMetadata.issuer, BASE, 'issuer');
  jwks = jose.createRemoteJWKSet(new URL(serverMetadata.jwks_uri));
  return `token endpoint ${serverMetadata.token_endpoint}`;
}

async function advertisedAlgorithms() {
  const algs = ['EdDSA', 'Ed25519', 'ES256'];
  expectEqual(serverMetadata.token_endpoint_auth_signing_alg_values_supported, algs,
    'token_endpoint_auth_signing_alg_values_supported');
  expectEqual(serverMetadata.dpop_signing_alg_values_supported, algs, 'dpop_signing_alg_values_supported');
  expectEqual(serverMetadata.revocation_endpoint_auth_signing_alg_values_supported, algs,
    'revocation_endpoint_auth_signing_alg_values_supported');
}

async function secretBasic() {
  const c = await world.credential({ kind: 'client_secret' });
  const config = configFor(c.client_id, client.ClientSecretBasic(c.client_secret));
  const tokens = await client.clientCredentialsGrant(config);
  expectEqual(tokens.token_type, 'bearer', 'token_type');
  expectEqual(tokens.scope, SCOPES, 'scope');
  await verifyAccessToken(tokens, c.client_id, 'client_secret_basic');
  issued.push({ label: 'client_secret_basic', clientId: c.client_id, config, tokens });
  // Narrowing with scope and naming the API with resource (RFC 8707).
  const narrow = await client.clientCredentialsGrant(config, { scope: 'orders:read', resource: AUDIENCE });
  expectEqual(narrow.scope, 'orders:read', 'narrowed scope');
  issued.push({ label: 'client_secret_basic narrowed', clientId: c.client_id, config, tokens: narrow });
}

async function generateClientKey(kind) {
  const params = kind === 'Ed25519' ? { name: 'Ed25519' } : { name: 'ECDSA', namedCurve: 'P-256' };
  const pair = await subtle.generateKey(params, true, ['sign', 'verify']);
  const { kty, crv, x, y } = await subtle.exportKey('jwk', pair.publicKey);
  return { pair, publicJwk: y ? { kty, crv, x, y } : { kty, crv, x } };
}

async function privateKeyJwt(kind, expectedAlg) {
  const { pair, publicJwk } = await generateClientKey(kind);
  const c = await world.credential({ kind: 'private_key_jwt', public_jwk: publicJwk });
  const seen = {};
  const config = configFor(c.client_id, client.PrivateKeyJwt(pair.privateKey));
  config[client.customFetch] = capturingFetch(seen);
  const tokens = await client.clientCredentialsGrant(config);
  expectEqual(tokens.token_type, 'bearer', 'token_type');
  expectEqual(seen.assertionHeader?.alg, expectedAlg, 'assertion alg openid-client chose');
  await verifyAccessToken(tokens, c.client_id, `private_key_jwt ${kind}`);
  // A second request signs a fresh assertion (new jti): no replay refusal.
  const again = await client.clientCredentialsGrant(config, { scope: 'orders:list' });
  expectEqual(again.scope, 'orders:list', 'second token scope');
  const entry = { label: `private_key_jwt ${kind}`, clientId: c.client_id, config, tokens, pair, seen };
  issued.push(entry);
  const lifetime = seen.assertionClaims.exp - seen.assertionClaims.iat;
  return `assertion alg ${seen.assertionHeader.alg}, exp - iat = ${lifetime} s`;
}

async function dpopAtTheGateway(kind, dpopAlg) {
  const base = issued.find((e) => e.label === `private_key_jwt ${kind}`);
  assert(base, `needs the private_key_jwt ${kind} client`);
  const keyPair = await client.randomDPoPKeyPair(dpopAlg);
  const dpop = client.getDPoPHandle(base.config, keyPair);
  const tokens = await client.clientCredentialsGrant(base.config, undefined, { DPoP: dpop });
  expectEqual(tokens.token_type, 'dpop', 'token_type');
  expectEqual(base.seen.dpopHeader?.alg, dpopAlg, 'DPoP proof alg openid-client chose');
  const claims = await verifyAccessToken(tokens, base.clientId, `DPoP ${dpopAlg}`);
  expectEqual(claims.cnf?.jkt, await dpop.calculateThumbprint(), 'cnf.jkt is the DPoP key thumbprint');

  const url = new URL(`${GATEWAY}/${API_NAME}/orders/42`);
  const before = upstreamSeen.length;
  const response = await client.fetchProtectedResource(base.config, tokens.access_token, url, 'GET',
    undefined, undefined, { DPoP: dpop });
  expectEqual(response.status, 200, `gateway status (${response.headers.get('x-charter-reason')})`);
  expectEqual(await response.json(), { ok: true, path: '/orders/42' }, 'upstream reply');
  expectEqual(upstreamSeen.length, before + 1, 'upstream calls');
  const forwarded = upstreamSeen.at(-1).headers;
  expectEqual(forwarded['x-charter-partner'], world.partner, 'X-Charter-Partner');
  expectEqual(forwarded['x-charter-grant'], world.grant, 'X-Charter-Grant');
  assert(!('authorization' in forwarded) && !('dpop' in forwarded), 'the partner credentials stay at the gateway');
  // A second call signs a fresh proof (new jti); list operation.
  const list = await client.fetchProtectedResource(base.config, tokens.access_token,
    new URL(`${GATEWAY}/${API_NAME}/orders`), 'GET', undefined, undefined, { DPoP: dpop });
  expectEqual(list.status, 200, 'second gateway call');
  // The bound token without its proof (as a plain bearer token) is refused.
  const bare = await fetch(url, {
    headers: { authorization: `Bearer ${tokens.access_token}` },
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  // dpop_invalid is a policy reason: 403 (DESIGN.md, access events).
  expectEqual([bare.status, bare.headers.get('x-charter-reason')], [403, 'dpop_invalid'],
    'a DPoP-bound token without a proof');
  expectEqual(upstreamSeen.length, before + 2, 'upstream not reached by the refused call');
  base.dpop = { tokens, dpop };
  return `proof alg ${base.seen.dpopHeader.alg}, assertion alg ${base.seen.assertionHeader.alg}`;
}

async function revoke(label) {
  const entry = issued.find((e) => e.label === label);
  assert(entry, `needs the ${label} client`);
  const token = entry.tokens.access_token;
  expectEqual((await introspect(token)).active, true, 'active before revocation');
  await client.tokenRevocation(entry.config, token, { token_type_hint: 'access_token' });
  expectEqual(await introspect(token), { active: false }, 'introspection after revocation');
  // RFC 7009 §2.2: revoking again, or an unknown token, is fine.
  await client.tokenRevocation(entry.config, token);
  await client.tokenRevocation(entry.config, 'not-a-token');
  // Revocation is per token: the client's other token stays active.
  const other = issued.find((e) => e.clientId === entry.clientId && e.tokens !== entry.tokens);
  if (other) expectEqual((await introspect(other.tokens.access_token)).active, true, 'the other token');
  // The gateway refuses the revoked token.
  const r = await fetch(`${GATEWAY}/${API_NAME}/orders`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  expectEqual([r.status, r.headers.get('x-charter-reason')], [401, 'token_revoked'], 'gateway after revocation');
}

async function revokeDpopBound() {
  const entry = issued.find((e) => e.label === 'private_key_jwt Ed25519');
  assert(entry?.dpop, 'needs the Ed25519 DPoP token');
  const { tokens, dpop } = entry.dpop;
  await client.tokenRevocation(entry.config, tokens.access_token);
  expectEqual(await introspect(tokens.access_token), { active: false }, 'introspection after revocation');
  // openid-client turns a 401 with a WWW-Authenticate challenge into an error.
  let refused;
  try {
    const r = await client.fetchProtectedResource(entry.config, tokens.access_token,
      new URL(`${GATEWAY}/${API_NAME}/orders`), 'GET', undefined, undefined, { DPoP: dpop });
    refused = r;
  } catch (e) {
    assert(e instanceof client.WWWAuthenticateChallengeError, `unexpected error ${describe(e)}`);
    expectEqual(e.cause?.[0]?.parameters?.error, 'invalid_token', 'challenge error');
    refused = e.response;
  }
  expectEqual([refused.status, refused.headers.get('x-charter-reason')], [401, 'token_revoked'],
    'gateway after revocation');
}

async function main() {
  const start = performance.now();
  if (!(await check('openid-client discovery (RFC 8414)', discovery))) return;
  await check('metadata advertises EdDSA, Ed25519 (RFC 9864) and ES256', advertisedAlgorithms);
  try {
    world = await seedWorld();
    await check('seed an API with a local upstream, a partner and a grant', () => undefined);
  } catch (e) {
    await check('seed an API with a local upstream, a partner and a grant', () => { throw e; });
    return;
  }
  const basic = await check('openid-client client_credentials, client_secret_basic', secretBasic);
  const ed = await check('openid-client private_key_jwt, Ed25519 key (stock alg and lifetime)',
    () => privateKeyJwt('Ed25519', 'Ed25519'));
  const ec = await check('openid-client private_key_jwt, P-256 key (stock alg and lifetime)',
    () => privateKeyJwt('P-256', 'ES256'));
  if (ed) {
    await check('openid-client DPoP Ed25519: bound token used at the gateway (proxy mode)',
      () => dpopAtTheGateway('Ed25519', 'Ed25519'));
  }
  if (ec) {
    await check('openid-client DPoP ES256: bound token used at the gateway (proxy mode)',
      () => dpopAtTheGateway('P-256', 'ES256'));
  }
  if (basic) await check('openid-client revocation (RFC 7009), client_secret_basic', () => revoke('client_secret_basic'));
  if (ec) await check('openid-client revocation (RFC 7009), private_key_jwt P-256', () => revoke('private_key_jwt P-256'));
  if (ed) await check('openid-client revocation of a DPoP-bound token, private_key_jwt Ed25519', revokeDpopBound);
  console.log(`openid-client interop: ${((performance.now() - start) / 1000).toFixed(1)} s`);
}

try {
  await main();
} finally {
  upstream.close();
}
if (failed.length) console.log(`failed checks:\n  ${failed.join('\n  ')}`);
console.log(`openid-client: ${passed} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
