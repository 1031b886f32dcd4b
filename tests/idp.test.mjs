// The local PingOne stand-in (local/idp): discovery, sign-in, tokens, userinfo, refresh,
// key rotation and restarts, over plain HTTP as the MCP worker and the Todo API use it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { optionsFromEnv, startIdp } from '../local/idp/server.mjs';
import { pkcePair } from './support/flow.mjs';
import { basicAuth, completeLoginAt, decodeJwt, discover, loginAndGetTokens, signToken, tokenRequest } from './support/idp.mjs';

const API = 'http://127.0.0.1:8788';
const REDIRECT = 'http://127.0.0.1:40123/callback';
const CLIENT = { clientId: 'mcp-worker', clientSecret: 'test-secret' };

let idp;
let stateDir;

async function startTestIdp() {
  return startIdp({ port: 0, stateDir, clientSecret: CLIENT.clientSecret, extraRedirectUris: [REDIRECT], apiIdentifier: API });
}

const login = (over = {}) => loginAndGetTokens({ issuer: idp.issuer, ...CLIENT, redirectUri: REDIRECT, ...over });

async function jwksNow() {
  const res = await fetch(`${idp.issuer}/jwks`);
  assert.equal(res.status, 200);
  return res.json();
}

async function verifyAccessToken(token) {
  return jwtVerify(token, createLocalJWKSet(await jwksNow()), { issuer: idp.issuer, audience: API, typ: 'at+jwt' });
}

function authorizeUrl(params) {
  const pkce = pkcePair();
  return `${idp.issuer}/authorize?${new URLSearchParams({
    response_type: 'code', client_id: CLIENT.clientId, redirect_uri: REDIRECT, scope: 'openid profile',
    state: 's1', code_challenge: pkce.challenge, code_challenge_method: 'S256', ...params,
  })}`;
}

async function userinfo(token) {
  const res = await fetch(`${idp.issuer}/userinfo`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body: await res.json() };
}

before(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'idp-test-'));
  idp = await startTestIdp();
});

after(async () => {
  await idp?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('discovery', () => {
  test('lists PingOne-style endpoints under /as', async () => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+\/as$/);
    const d = await discover(idp.issuer);
    assert.equal(d.issuer, idp.issuer);
    assert.equal(d.authorization_endpoint, `${idp.issuer}/authorize`);
    assert.equal(d.token_endpoint, `${idp.issuer}/token`);
    assert.equal(d.userinfo_endpoint, `${idp.issuer}/userinfo`);
    assert.equal(d.jwks_uri, `${idp.issuer}/jwks`);
    assert.equal(d.revocation_endpoint, `${idp.issuer}/revoke`);
    assert.equal(d.introspection_endpoint, `${idp.issuer}/introspect`);
    assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(d.response_types_supported, ['code']);
    assert.ok(d.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
  });

  test('publishes only public RSA keys', async () => {
    const { keys } = await jwksNow();
    assert.equal(keys.length, 1);
    assert.equal(keys[0].kty, 'RSA');
    assert.equal(keys[0].alg, 'RS256');
    assert.equal(keys[0].d, undefined);
    assert.ok(keys[0].kid);
  });
});

describe('sign-in', () => {
  test('the login page is labelled as a development IdP', async () => {
    const first = await fetch(authorizeUrl(), { redirect: 'manual' });
    assert.equal(first.status, 303);
    const cookie = first.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const page = await fetch(new URL(first.headers.get('location'), idp.issuer), { headers: { cookie } });
    const html = await page.text();
    assert.equal(page.status, 200);
    assert.match(html, /Development identity provider — not PingOne/);
    assert.match(html, /name="password"/);
  });

  test('a wrong password fails with a message on the page', async () => {
    await assert.rejects(
      completeLoginAt(authorizeUrl(), { user: 'alice', password: 'wrong' }),
      /login failed: Invalid username or password/,
    );
    await assert.rejects(completeLoginAt(authorizeUrl(), { user: 'mallory', password: 'x' }), /login failed/);
  });

  test('PKCE is required', async () => {
    const url = new URL(authorizeUrl());
    url.searchParams.delete('code_challenge');
    url.searchParams.delete('code_challenge_method');
    const res = await fetch(url, { redirect: 'manual' });
    const back = new URL(res.headers.get('location'));
    assert.equal(back.origin + back.pathname, REDIRECT);
    assert.equal(back.searchParams.get('error'), 'invalid_request');
  });

  test('an unregistered redirect URI is refused without redirecting', async () => {
    const res = await fetch(authorizeUrl({ redirect_uri: 'http://127.0.0.1:1/evil' }), { redirect: 'manual' });
    assert.equal(res.status, 400);
  });

  test('cancel returns access_denied to the client', async () => {
    const first = await fetch(authorizeUrl(), { redirect: 'manual' });
    const cookie = first.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const interaction = new URL(first.headers.get('location'), idp.issuer);
    const abort = await fetch(`${interaction}/abort`, { method: 'POST', headers: { cookie }, redirect: 'manual' });
    assert.equal(abort.status, 303);
    const resumeCookie = abort.headers.getSetCookie().map((c) => c.split(';')[0]);
    const resume = await fetch(new URL(abort.headers.get('location'), idp.issuer), {
      headers: { cookie: [cookie, ...resumeCookie].join('; ') }, redirect: 'manual',
    });
    const back = new URL(resume.headers.get('location'));
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), 's1');
  });
});

describe('tokens', () => {
  let tokens;
  before(async () => {
    tokens = await login({ resource: API });
  });

  test('the access token is an RS256 JWT for the Todo API', async () => {
    const { payload, protectedHeader } = await verifyAccessToken(tokens.access_token);
    const { keys } = await jwksNow();
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(protectedHeader.kid, keys[0].kid);
    assert.equal(payload.iss, idp.issuer);
    assert.equal(payload.aud, API);
    assert.equal(payload.client_id, CLIENT.clientId);
    assert.deepEqual(payload.scope.split(' ').sort(), ['todo_api:read', 'todo_api:write']);
    assert.equal(payload.exp - payload.iat, 3600);
    assert.ok(payload.jti);
    assert.ok(payload.sub);
    assert.equal(tokens.token_type, 'Bearer');
    assert.equal(tokens.expires_in, 3600);
  });

  test('the ID token carries the nonce and the profile', async () => {
    const { payload } = await jwtVerify(tokens.id_token, createLocalJWKSet(await jwksNow()), {
      issuer: idp.issuer, audience: CLIENT.clientId,
    });
    assert.equal(payload.nonce, tokens.nonce);
    assert.equal(payload.preferred_username, 'alice');
    assert.equal(payload.name, 'Alice Example');
    assert.equal(payload.sub, decodeJwt(tokens.access_token).payload.sub);
  });

  test('without a resource parameter the token is still for the Todo API', async () => {
    const t = await login({ user: 'bob' });
    const { payload } = await verifyAccessToken(t.access_token);
    assert.equal(payload.aud, API);
    assert.ok(payload.scope.includes('todo_api:read'));
    assert.ok(t.refresh_token);
  });

  test('an unknown resource is refused', async () => {
    await assert.rejects(login({ resource: 'https://elsewhere.example/' }), /invalid_target/);
  });

  test('a wrong client secret is refused at the token endpoint', async () => {
    const { status, body } = await tokenRequest(idp.issuer, { ...CLIENT, clientSecret: 'nope' }, {
      grant_type: 'refresh_token', refresh_token: tokens.refresh_token,
    });
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_client');
  });

  test('the refresh grant issues a new access token for the same user and API', async () => {
    assert.ok(tokens.refresh_token, 'a refresh token is issued');
    const { status, body } = await tokenRequest(idp.issuer, CLIENT, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    assert.equal(status, 200, JSON.stringify(body));
    const { payload } = await verifyAccessToken(body.access_token);
    assert.equal(payload.sub, decodeJwt(tokens.access_token).payload.sub);
    assert.notEqual(payload.jti, decodeJwt(tokens.access_token).payload.jti);
  });

  test('refreshing without the client secret is refused', async () => {
    const res = await fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: CLIENT.clientId }),
    });
    assert.equal(res.status, 401);
  });
});

describe('revocation and introspection', () => {
  async function post(path, params) {
    const res = await fetch(`${idp.issuer}/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(CLIENT.clientId, CLIENT.clientSecret) },
      body: new URLSearchParams(params),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  test('a revoked refresh token is inactive and can no longer be used', async () => {
    const t = await login();
    const active = await post('introspect', { token: t.refresh_token });
    assert.equal(active.status, 200);
    assert.equal(active.body.active, true);
    assert.equal(active.body.client_id, CLIENT.clientId);

    assert.equal((await post('revoke', { token: t.refresh_token, token_type_hint: 'refresh_token' })).status, 200);
    assert.equal((await post('introspect', { token: t.refresh_token })).body.active, false);
    const { status, body } = await tokenRequest(idp.issuer, CLIENT, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
    assert.equal(status, 400);
    assert.equal(body.error, 'invalid_grant');
  });
});

describe('userinfo', () => {
  let tokens;
  let sub;
  before(async () => {
    tokens = await login();
    sub = decodeJwt(tokens.access_token).payload.sub;
  });

  test('accepts the API access token like PingOne does', async () => {
    const r = await userinfo(tokens.access_token);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      sub, preferred_username: 'alice', name: 'Alice Example', email: 'alice@example.com', email_verified: true,
      groups: ['todo-users'],
    });
  });

  test('rejects a missing token with a bare Bearer challenge', async () => {
    const r = await userinfo(null);
    assert.equal(r.status, 401);
    assert.match(r.challenge, /^Bearer/);
    assert.doesNotMatch(r.challenge, /error=/);
  });

  const forged = {
    'a foreign key': () => signToken(claims(), { key: 'foreign' }),
    'alg none': () => signToken(claims(), { key: 'idp', alg: 'none', stateDir }),
    'HS256 keyed with the public key': () => signToken(claims(), { key: 'idp', alg: 'HS256', stateDir }),
    'an expired token': () => signToken(claims({ exp: now() - 120, iat: now() - 3720 }), { key: 'idp', stateDir }),
    'another issuer': () => signToken(claims({ iss: 'http://127.0.0.1:1/as' }), { key: 'idp', stateDir }),
    'an ID token': () => tokens.id_token,
    'a tampered token': () => {
      const [h, , s] = tokens.access_token.split('.');
      const p = Buffer.from(JSON.stringify({ ...decodeJwt(tokens.access_token).payload, sub: 'someone-else' })).toString('base64url');
      return `${h}.${p}.${s}`;
    },
  };
  const now = () => Math.floor(Date.now() / 1000);
  function claims(over = {}) {
    return { iss: idp.issuer, sub, aud: API, client_id: CLIENT.clientId, scope: 'todo_api:read', iat: now(), exp: now() + 600, jti: 'x', ...over };
  }

  test('accepts a token forged with the IdP key when every claim is right (the forging works)', async () => {
    const r = await userinfo(signToken(claims(), { key: 'idp', stateDir }));
    assert.equal(r.status, 200);
  });

  for (const [name, make] of Object.entries(forged)) {
    test(`rejects ${name}`, async () => {
      const r = await userinfo(make());
      assert.equal(r.status, 401);
      assert.match(r.challenge, /^Bearer .*error="invalid_token"/);
      assert.equal(r.body.error, 'invalid_token');
    });
  }
});

describe('key rotation and restarts', () => {
  test('rotation signs new tokens with a new key and keeps old tokens verifiable', async () => {
    const before = await login();
    const oldKid = decodeJwt(before.access_token).header.kid;
    const newKid = idp.rotateKey();
    assert.notEqual(newKid, oldKid);

    const { keys } = await jwksNow();
    assert.deepEqual(keys.map((k) => k.kid), [newKid, oldKid]);
    await verifyAccessToken(before.access_token);
    assert.equal((await userinfo(before.access_token)).status, 200);

    const afterRotation = await login();
    assert.equal(decodeJwt(afterRotation.access_token).header.kid, newKid);
    assert.equal(decodeJwt(afterRotation.id_token).header.kid, newKid);
    await verifyAccessToken(afterRotation.access_token);

    // A refresh token issued before the rotation still works, and gets a token from the new key.
    const { status, body } = await tokenRequest(idp.issuer, CLIENT, { grant_type: 'refresh_token', refresh_token: before.refresh_token });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(decodeJwt(body.access_token).header.kid, newKid);
  });

  test('a restart keeps the keys and the refresh tokens', async () => {
    const t = await login();
    const kid = decodeJwt(t.access_token).header.kid;
    const port = idp.port;
    await idp.close();
    idp = await startIdp({ port, stateDir, clientSecret: CLIENT.clientSecret, extraRedirectUris: [REDIRECT], apiIdentifier: API });
    assert.equal((await jwksNow()).keys[0].kid, kid);
    await verifyAccessToken(t.access_token);
    const { status, body } = await tokenRequest(idp.issuer, CLIENT, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
    assert.equal(status, 200, JSON.stringify(body));
  });
});

describe('groups', () => {
  const idTokenOf = async (t, of = idp) => (await jwtVerify(t.id_token, createLocalJWKSet(of.jwks()), {
    issuer: of.issuer, audience: CLIENT.clientId,
  })).payload;

  test('users in groups carry a groups claim in the ID token and userinfo; users in none carry none', async () => {
    const bob = await login({ user: 'bob', scope: 'openid' });
    assert.deepEqual((await idTokenOf(bob)).groups, ['todo-users', 'admins']);
    assert.deepEqual((await userinfo(bob.access_token)).body.groups, ['todo-users', 'admins']);
    const mallory = await login({ user: 'mallory', scope: 'openid profile' });
    const claims = await idTokenOf(mallory);
    assert.equal(claims.preferred_username, 'mallory');
    assert.equal('groups' in claims, false);
    assert.equal('groups' in (await userinfo(mallory.access_token)).body, false);
  });

  test('the claim name and the groups come from options and the environment', async () => {
    const opts = optionsFromEnv({
      IDP_GROUPS_CLAIM: ' memberOfGroupNames ',
      IDP_USERS: JSON.stringify([{ username: 'dave', password: 'pw', groups: ['Todo Users'] }]),
    });
    assert.equal(opts.groupsClaim, 'memberOfGroupNames');
    assert.equal(optionsFromEnv({}).groupsClaim, undefined);
    const dir = mkdtempSync(join(tmpdir(), 'idp-test-'));
    const other = await startIdp({ ...opts, port: 0, stateDir: dir, clientSecret: CLIENT.clientSecret, extraRedirectUris: [REDIRECT] });
    try {
      assert.equal(other.groupsClaim, 'memberOfGroupNames');
      const t = await loginAndGetTokens({ issuer: other.issuer, ...CLIENT, redirectUri: REDIRECT, user: 'dave', password: 'pw' });
      const claims = await idTokenOf(t, other);
      assert.deepEqual(claims.memberOfGroupNames, ['Todo Users']);
      assert.equal('groups' in claims, false);
      const res = await fetch(`${other.issuer}/userinfo`, { headers: { authorization: `Bearer ${t.access_token}` } });
      assert.deepEqual((await res.json()).memberOfGroupNames, ['Todo Users']);
    } finally {
      await other.close();
      rmSync(dir, { recursive: true, force: true });
    }
    await assert.rejects(startIdp({ port: 0, stateDir: dir, users: [{ username: 'x', password: 'y', groups: 'admins' }] }),
      /must be an array of group names/);
  });
});

describe('configuration', () => {
  test('users, secret, TTL and redirect URIs come from options', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'idp-test-'));
    const other = await startIdp({
      port: 0, stateDir: dir, clientId: 'other', clientSecret: 's3cret', accessTokenTtl: 120,
      users: { carol: { password: 'pw', name: 'Carol' } }, redirectUris: ['http://localhost:5555/cb'],
    });
    try {
      const t = await loginAndGetTokens({
        issuer: other.issuer, clientId: 'other', clientSecret: 's3cret', redirectUri: 'http://localhost:5555/cb',
        user: 'carol', password: 'pw',
      });
      const { payload } = decodeJwt(t.access_token);
      assert.equal(payload.exp - payload.iat, 120);
      assert.equal(payload.aud, 'http://127.0.0.1:8788');
      assert.equal(decodeJwt(t.id_token).payload.name, 'Carol');
      await assert.rejects(completeLoginAt(authorizeUrl().replace(idp.issuer, other.issuer), { user: 'alice' }), /IdP answered 400/);
    } finally {
      await other.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('basicAuth form-encodes the client credentials', () => {
  assert.equal(basicAuth('a b', 'c:d'), `Basic ${Buffer.from('a+b:c%3Ad').toString('base64')}`);
});
