// Sign-in over HTTP against the MCP worker in workerd (wrangler dev), in two stacks, one after
// the other.
//
// 1. With the stand-in IdP (local/idp, the real OpenID provider the local stack runs): everything
//    where no failure of the IdP is being forced — the baseline sign-in, the consent page, CSRF,
//    the pending request, the approved-clients cookie, state, escaping, a sign-in cancelled at
//    the IdP, JSON errors.
// 2. With a tiny hand-made OpenID provider defined below, only for what a real IdP never does
//    on demand: forged or broken ID tokens, outages and hangs, and hostile answers (an error
//    text carrying markup and bidirectional overrides, a userinfo describing another user).
//    It serves discovery, JWKS, an /authorize that bounces straight back, a /token that checks
//    client_secret_basic and PKCE, then answers with the ID token the current test asks for,
//    and /userinfo.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { startTestStack, STANDIN } from './support/stack.mjs';
import { CookieJar, exchangeCode, jarFetch, parseConsentForm, pkcePair, registerClient } from './support/flow.mjs';
import { cancelLoginAt, completeLoginAt } from './support/idp.mjs';

const STATE_TTL = 8; // LOGIN_STATE_TTL_SECS for this stack, so "expired" is testable.
const CLIENT_REDIRECT = 'http://127.0.0.1:33418/callback';

// ---- the hand-made OpenID provider (forced failures only) -----------------------------

function rsaKey(kid) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

function jwt(header, claims, privateKey) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64(header)}.${b64(claims)}`;
  if (header.alg === 'none') return `${input}.`;
  if (header.alg === 'HS256') return `${input}.${createHmac('sha256', 'k').update(input).digest('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

async function startFakeIdp() {
  // Its address is known once it listens (port 0: the system picks a free one).
  let issuer;
  const key = rsaKey('fake-1');
  const stranger = rsaKey('stranger');
  const codes = new Map();
  const fake = {
    issuer: null,
    // Set by each test: how the next ID token / userinfo / endpoint misbehaves.
    mode: 'good',
    requests: [],
    server: null,
  };
  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const readBody = (req) => new Promise((r) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => r(b)); });

  fake.server = createServer(async (req, res) => {
    const url = new URL(req.url, issuer);
    fake.requests.push(`${req.method} ${url.pathname}`);
    const mode = fake.mode;
    switch (url.pathname) {
      case '/as/.well-known/openid-configuration':
        return json(res, 200, {
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          userinfo_endpoint: `${issuer}/userinfo`,
          jwks_uri: `${issuer}/jwks`,
          id_token_signing_alg_values_supported: ['RS256'],
          code_challenge_methods_supported: ['S256'],
        });
      case '/as/jwks':
        if (mode === 'jwks-down') return req.socket.destroy();
        return json(res, 200, { keys: [key.jwk] });
      case '/as/authorize': {
        const q = url.searchParams;
        const back = new URL(q.get('redirect_uri'));
        if (mode === 'deny') {
          back.searchParams.set('error', 'access_denied');
          back.searchParams.set('error_description', '<script>alert("idp")</script> The user said \u202Eon\u202C');
        } else {
          const code = randomBytes(16).toString('base64url');
          codes.set(code, { nonce: q.get('nonce'), challenge: q.get('code_challenge'), redirectUri: q.get('redirect_uri'), resource: q.get('resource'), scope: q.get('scope') });
          back.searchParams.set('code', code);
        }
        back.searchParams.set('state', q.get('state'));
        res.writeHead(302, { location: back.toString() });
        return res.end();
      }
      case '/as/token': {
        if (mode === 'token-down') return req.socket.destroy();
        if (mode === 'token-hangs') return; // never answers: the worker's timeout must fire
        const form = new URLSearchParams(await readBody(req));
        const expectedAuth = `Basic ${Buffer.from(`${STANDIN.clientId}:${STANDIN.clientSecret}`).toString('base64')}`;
        if (req.headers.authorization !== expectedAuth) return json(res, 401, { error: 'invalid_client' });
        const grant = codes.get(form.get('code'));
        codes.delete(form.get('code'));
        if (!grant) return json(res, 400, { error: 'invalid_grant' });
        const challenge = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
        if (challenge !== grant.challenge || form.get('redirect_uri') !== grant.redirectUri) {
          return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE or redirect_uri mismatch' });
        }
        const now = Math.floor(Date.now() / 1000);
        const claims = {
          iss: issuer, aud: STANDIN.clientId, sub: 'user-alice', nonce: grant.nonce, iat: now, exp: now + 600,
          preferred_username: 'alice', name: 'Alice Example',
        };
        let header = { alg: 'RS256', kid: key.kid, typ: 'JWT' };
        let signer = key.privateKey;
        switch (mode) {
          case 'bad-signature': signer = stranger.privateKey; break;
          case 'unknown-kid': case 'jwks-down': header = { ...header, kid: 'rotated-away' }; signer = stranger.privateKey; break;
          case 'wrong-nonce': claims.nonce = 'not-the-nonce'; break;
          case 'wrong-aud': claims.aud = 'some-other-client'; break;
          case 'wrong-iss': claims.iss = 'https://evil.example.com/as'; break;
          case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
          case 'alg-none': header = { alg: 'none', typ: 'JWT' }; break;
          case 'alg-hs256': header = { alg: 'HS256', typ: 'JWT' }; break;
          default: break;
        }
        return json(res, 200, {
          access_token: `fake-access-${randomBytes(8).toString('hex')}`, token_type: 'Bearer', expires_in: 3600,
          scope: grant.scope, id_token: jwt(header, claims, signer),
        });
      }
      case '/as/userinfo':
        return json(res, 200, {
          sub: mode === 'sub-mismatch' ? 'user-mallory' : 'user-alice', preferred_username: 'alice', email: 'alice@example.com',
        });
      default:
        return json(res, 404, { error: 'not_found' });
    }
  });
  await new Promise((r) => fake.server.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${fake.server.address().port}/as`;
  fake.issuer = issuer;
  return fake;
}

// ---- the stack under test and helpers --------------------------------------------------

// The stack of the section running now: its MCP origin, its IdP's issuer, a registered client.
let stack;
let issuer;
let client;
// The hand-made IdP, while section 2 runs.
let fake;

async function startWith({ idp }) {
  const vars = { LOGIN_STATE_TTL_SECS: String(STATE_TTL) };
  if (idp === 'fake') {
    fake = await startFakeIdp();
    stack = await startTestStack({ idp: false, todoApi: false, mcpVars: { ...vars, PINGONE_ISSUER: fake.issuer } });
    issuer = fake.issuer;
  } else {
    stack = await startTestStack({ todoApi: false, mcpVars: vars });
    issuer = stack.issuer;
  }
  client = await registerClient(stack.mcpOrigin, { client_name: 'Login test client', redirect_uris: [CLIENT_REDIRECT] });
}

async function stop() {
  await stack?.stop();
  stack = undefined;
  if (fake) {
    fake.server.closeAllConnections?.();
    await new Promise((r) => fake.server.close(r));
    fake = undefined;
  }
}

function authorizeUrl({ c = client, state = 'client-state', pkce = pkcePair() } = {}) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: c.client_id, redirect_uri: c.redirect_uris[0],
    code_challenge: pkce.challenge, code_challenge_method: 'S256', state,
    resource: `${stack.mcpOrigin}/mcp`,
  });
  return `${stack.mcpOrigin}/authorize?${q}`;
}

/** GET /authorize expecting the consent page; returns { res, html, form }. */
async function consent(jar, opts) {
  const res = await jarFetch(jar, authorizeUrl(opts));
  const html = await res.text();
  assert.equal(res.status, 200, html.slice(0, 400));
  return { res, html, form: parseConsentForm(html) };
}

async function submit(jar, fields, action = 'approve') {
  const body = new URLSearchParams({ ...fields, action });
  return jarFetch(jar, `${stack.mcpOrigin}/authorize`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
  });
}

/** Consent → Approve; the redirect to the IdP's /authorize. */
async function approveToIdp(jar, opts) {
  const { form } = await consent(jar, opts);
  const res = await submit(jar, form.fields);
  assert.equal(res.status, 302, await res.text());
  const atIdp = res.headers.get('location');
  assert.ok(atIdp.startsWith(`${issuer}/authorize?`), atIdp);
  return atIdp;
}

/** Consent → Approve → sign-in at the stand-in IdP as alice; the /callback URL it sends the browser to. */
async function toCallback(jar, opts) {
  const back = await completeLoginAt(await approveToIdp(jar, opts));
  assert.ok(back.startsWith(`${stack.mcpOrigin}/callback?`), back);
  return back;
}

/** A sign-in through the hand-made IdP answering in `mode` from its /authorize on. */
async function signInWith(mode) {
  fake.mode = 'good';
  const jar = new CookieJar();
  const atIdp = await approveToIdp(jar);
  fake.mode = mode;
  const idp = await fetch(atIdp, { redirect: 'manual' });
  const cb = await jarFetch(jar, idp.headers.get('location'));
  fake.mode = 'good';
  return { res: cb, body: await cb.text(), jar };
}

function assertPage(res, body, status, pattern) {
  assert.equal(res.status, status, body.slice(0, 500));
  assert.match(res.headers.get('content-type'), /text\/html/);
  assert.match(body, pattern);
  assert.doesNotMatch(body, /panicked|RuntimeError|at .*\.rs:\d+/);
  assert.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
}

// ==== 1. With the stand-in IdP ===========================================================

describe('with the stand-in IdP', () => {
  before(() => startWith({ idp: 'stand-in' }));
  after(stop);

  // ---- the good path, as a baseline -------------------------------------------------

  test('a complete sign-in at the IdP returns a code to the client, and the code gets tokens', async () => {
    const jar = new CookieJar();
    const pkce = pkcePair();
    const cb = await toCallback(jar, { pkce });
    const res = await jarFetch(jar, cb);
    assert.equal(res.status, 302, await res.text());
    const back = new URL(res.headers.get('location'));
    assert.equal(`${back.origin}${back.pathname}`, CLIENT_REDIRECT);
    assert.ok(back.searchParams.get('code'));
    assert.equal(back.searchParams.get('state'), 'client-state');
    assert.equal(back.searchParams.get('iss'), stack.mcpOrigin);
    assert.equal(jar.get('__Host-CONSENTED_STATE'), undefined, 'state cookie cleared');
    assert.ok(jar.get('__Host-APPROVED_CLIENTS'));
    const tokens = await exchangeCode({
      mcpOrigin: stack.mcpOrigin, client, code: back.searchParams.get('code'), verifier: pkce.verifier,
    });
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.ok(tokens.access_token && tokens.refresh_token);
  });

  test('the consent page is locked down and sets Secure __Host- cookies', async () => {
    const jar = new CookieJar();
    const { res, form } = await consent(jar);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /style-src 'nonce-[A-Za-z0-9_-]+'/);
    assert.match(csp, new RegExp(`form-action 'self' ${new URL(issuer).origin} http://127.0.0.1:33418;`));
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    const csrf = res.headers.getSetCookie().find((c) => c.startsWith('__Host-CSRF_TOKEN='));
    assert.match(csrf, /; Secure/);
    assert.match(csrf, /; Path=\//);
    assert.match(csrf, /; HttpOnly/);
    assert.doesNotMatch(csrf, /Domain/i);
    assert.ok(form.fields.csrf_token && form.fields.pending);
  });

  // ---- CSRF and the pending request -------------------------------------------------

  test('CSRF: a missing token is refused', async () => {
    const jar = new CookieJar();
    const { form } = await consent(jar);
    const { csrf_token: _, ...withoutToken } = form.fields;
    const res = await submit(jar, withoutToken);
    assertPage(res, await res.text(), 403, /could not be verified/);

    const noCookie = jar.clone();
    noCookie.delete('__Host-CSRF_TOKEN');
    const res2 = await submit(noCookie, form.fields);
    assertPage(res2, await res2.text(), 403, /could not be verified/);
  });

  test('CSRF: a mismatched token is refused', async () => {
    const jar = new CookieJar();
    const { form } = await consent(jar);
    const res = await submit(jar, { ...form.fields, csrf_token: 'forged-token-value' });
    assertPage(res, await res.text(), 403, /could not be verified/);
    // The same forged value in cookie and form does not fit this pending request either.
    jar.set('__Host-CSRF_TOKEN', 'forged-token-value');
    const res2 = await submit(jar, { ...form.fields, csrf_token: 'forged-token-value' });
    assertPage(res2, await res2.text(), 403, /could not be verified/);
  });

  test('CSRF: a replayed form is refused and the token cookie is cleared after use', async () => {
    const jar = new CookieJar();
    const { form } = await consent(jar);
    const saved = jar.clone();
    const first = await submit(jar, form.fields);
    assert.equal(first.status, 302);
    assert.match(first.headers.getSetCookie().join('\n'), /__Host-CSRF_TOKEN=; Max-Age=0/);
    const replay = await submit(saved, form.fields);
    assertPage(replay, await replay.text(), 400, /no longer valid/);
  });

  test('a tampered pending request id is refused', async () => {
    const jar = new CookieJar();
    const { form } = await consent(jar);
    const tampered = `${form.fields.pending.slice(0, -2)}xx`;
    const res = await submit(jar.clone(), { ...form.fields, pending: tampered });
    assertPage(res, await res.text(), 400, /no longer valid/);
    // There is nothing else in the form to tamper with: the request itself stays server-side.
    assert.deepEqual(Object.keys(form.fields).sort(), ['csrf_token', 'pending']);
  });

  // ---- the approved-clients cookie --------------------------------------------------

  test('a tampered, foreign-key or old-format approved-clients cookie brings the consent page back', async () => {
    const jar = new CookieJar();
    const res = await jarFetch(jar, await toCallback(jar));
    assert.equal(res.status, 302);
    const genuine = jar.get('__Host-APPROVED_CLIENTS');
    assert.ok(genuine);

    // Genuine cookie: no consent.
    const skip = await jarFetch(jar.clone(), authorizeUrl());
    assert.equal(skip.status, 302);
    assert.ok(skip.headers.get('location').startsWith(`${issuer}/authorize?`));

    const [payload, sig] = genuine.split('.');
    const otherPayload = Buffer.from(JSON.stringify({ c: [client.client_id, 'x'], exp: 9999999999 })).toString('base64url');
    const foreignSig = createHmac('sha256', 'some-other-key-some-other-key-1234').update(payload).digest('base64url');
    // The format from before approvals were bound to redirect URI and scopes (a list of client
    // ids), correctly signed: counts as no approval, and is no error.
    const oldPayload = Buffer.from(JSON.stringify({ c: [client.client_id], exp: 9999999999 })).toString('base64url');
    const oldSig = createHmac('sha256', stack.mcpVars.COOKIE_ENCRYPTION_KEY).update(oldPayload).digest('base64url');
    for (const bad of [`${otherPayload}.${sig}`, `${payload}.${foreignSig}`, `${payload}.`, 'garbage', `${oldPayload}.${oldSig}`]) {
      const j = new CookieJar();
      j.set('__Host-APPROVED_CLIENTS', bad);
      const r = await jarFetch(j, authorizeUrl());
      assert.equal(r.status, 200, `cookie ${bad} skipped consent`);
      await r.arrayBuffer();
    }
  });

  // ---- state --------------------------------------------------------------------------

  test('state: missing or unknown state is refused', async () => {
    const jar = new CookieJar();
    const res = await jarFetch(jar, `${stack.mcpOrigin}/callback?code=abc`);
    assertPage(res, await res.text(), 400, /has no state/);
    const j = new CookieJar();
    j.set('__Host-CONSENTED_STATE', createHash('sha256').update('never-issued').digest('hex'));
    const res2 = await jarFetch(j, `${stack.mcpOrigin}/callback?code=abc&state=never-issued`);
    assertPage(res2, await res2.text(), 400, /unknown or was already completed/);
  });

  test("state: another browser's cookie is refused", async () => {
    const victim = new CookieJar();
    const cb = await toCallback(victim);
    const attacker = new CookieJar();
    await toCallback(attacker); // a state cookie of its own
    const res = await jarFetch(attacker, cb);
    assertPage(res, await res.text(), 400, /another browser/);
    const none = await jarFetch(new CookieJar(), cb);
    assertPage(none, await none.text(), 400, /another browser/);
    // The victim's sign-in is unaffected.
    const ok = await jarFetch(victim, cb);
    assert.equal(ok.status, 302, await ok.text());
  });

  test('state: a replayed callback is refused', async () => {
    const jar = new CookieJar();
    const cb = await toCallback(jar);
    const saved = jar.clone();
    assert.equal((await jarFetch(jar, cb)).status, 302);
    const res = await jarFetch(saved, cb);
    assertPage(res, await res.text(), 400, /unknown or was already completed/);
  });

  test('state: an expired sign-in is refused', async () => {
    const jar = new CookieJar();
    const cb = await toCallback(jar);
    await new Promise((r) => setTimeout(r, (STATE_TTL + 1) * 1000));
    const res = await jarFetch(jar, cb);
    assertPage(res, await res.text(), 400, /expired/);
  });

  // ---- the IdP's refusal, escaping, machine clients -----------------------------------

  test('a sign-in cancelled at the IdP is shown to the person and offered back to the client', async () => {
    const jar = new CookieJar();
    const cb = await cancelLoginAt(await approveToIdp(jar));
    assert.ok(cb.startsWith(`${stack.mcpOrigin}/callback?`), cb);
    const res = await jarFetch(jar, cb);
    const body = await res.text();
    assertPage(res, body, 403, /Sign-in was not completed/);
    assert.match(body, /access_denied/);
    assert.match(body, /The user cancelled the sign-in\./);
    const href = body.match(/href="([^"]+)"/)[1].replace(/&amp;/g, '&');
    const back = new URL(href);
    assert.equal(`${back.origin}${back.pathname}`, CLIENT_REDIRECT);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), 'client-state');
    assert.equal(back.searchParams.get('iss'), stack.mcpOrigin);
    assert.equal(back.searchParams.get('code'), null);
    assert.equal(jar.get('__Host-CONSENTED_STATE'), undefined, 'state cookie cleared');
  });

  test('machine clients get OAuth JSON errors', async () => {
    const res = await fetch(`${stack.mcpOrigin}/callback?code=abc`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error, 'invalid_request');
    assert.match(body.error_description, /no state/);
  });

  test('a client name carrying <script> is rendered harmless', async () => {
    const evil = await registerClient(stack.mcpOrigin, {
      client_name: '<script>alert("pwned")</script><img src=x onerror=alert(1)>',
      redirect_uris: [CLIENT_REDIRECT],
    });
    const { html } = await consent(new CookieJar(), { c: evil });
    assert.doesNotMatch(html, /<script>alert/);
    assert.doesNotMatch(html, /<img/);
    assert.match(html, /&lt;script&gt;alert\(&quot;pwned&quot;\)&lt;\/script&gt;/);
  });

  test('client metadata with bidirectional or invisible formatting characters is refused at registration', async () => {
    const hidden = ['\u202E', '\u202D', '\u200E', '\u200F', '\u2066', '\u2067', '\u2068', '\u2069', '\u061C', '\u200B', '\uFEFF'];
    for (const c of hidden) {
      for (const [field, value] of [
        ['client_name', `Login test client${c}exe.txt`],
        ['client_uri', `https://client.example/${c}`],
        ['contacts', [`ops${c}@client.example`]],
        ['redirect_uris', [`${CLIENT_REDIRECT}${c}`]],
      ]) {
        const res = await fetch(`${stack.mcpOrigin}/register`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_name: 'x', redirect_uris: [CLIENT_REDIRECT], token_endpoint_auth_method: 'none', [field]: value }),
        });
        const body = await res.json();
        const name = `U+${c.codePointAt(0).toString(16).toUpperCase()} in ${field}`;
        assert.equal(res.status, 400, name);
        assert.equal(body.error, field === 'redirect_uris' ? 'invalid_redirect_uri' : 'invalid_client_metadata', name);
        assert.match(body.error_description, /formatting/, name);
      }
    }
    // Right-to-left scripts themselves are names like any other, shown as registered.
    const rtl = await registerClient(stack.mcpOrigin, { client_name: 'לקוח בדיקה حاسبة', redirect_uris: [CLIENT_REDIRECT] });
    const { html } = await consent(new CookieJar(), { c: rtl });
    assert.match(html, /<strong>לקוח בדיקה حاسبة<\/strong> wants to connect/);
  });
});

// ==== 2. With the hand-made IdP: forced failures only ====================================

describe('with a hand-made IdP forcing failures', () => {
  before(() => startWith({ idp: 'fake' }));
  after(stop);

  // Hostile answer: a real IdP's error text carries no markup or bidirectional overrides.
  test('a hostile IdP error text is shown harmless and offered back to the client', async () => {
    const { res, body } = await signInWith('deny');
    assertPage(res, body, 403, /Sign-in was not completed/);
    assert.match(body, /access_denied/);
    assert.match(body, /&lt;script&gt;alert\(&quot;idp&quot;\)&lt;\/script&gt;/);
    assert.doesNotMatch(body, /<script>/);
    // The bidirectional override in PingOne's text is shown as a replacement character, not obeyed.
    assert.match(body, /The user said \uFFFDon\uFFFD/);
    assert.doesNotMatch(body, /[\u202E\u202C]/);
    const href = body.match(/href="([^"]+)"/)[1].replace(/&amp;/g, '&');
    const back = new URL(href);
    assert.equal(`${back.origin}${back.pathname}`, CLIENT_REDIRECT);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), 'client-state');
    assert.equal(back.searchParams.get('iss'), stack.mcpOrigin);
  });

  // Forged tokens: a real IdP signs every ID token correctly for the request it answers.
  const badTokens = [
    ['bad-signature', /signature is invalid/],
    ['wrong-nonce', /nonce does not match/],
    ['wrong-aud', /meant for another client/],
    ['wrong-iss', /issued by another issuer/],
    ['expired', /has expired/],
    ['alg-none', /disallowed algorithm \(none\)/],
    ['alg-hs256', /disallowed algorithm \(HS256\)/],
    ['unknown-kid', /key the provider does not publish/],
  ];
  for (const [mode, message] of badTokens) {
    test(`an ID token with ${mode} is refused`, async () => {
      const { res, body, jar } = await signInWith(mode);
      assertPage(res, body, 502, message);
      assert.equal(jar.get('__Host-CONSENTED_STATE'), undefined);
      assert.doesNotMatch(body, /fake-access-/, 'no token in the page');
    });
  }

  // Hostile answer: a real IdP's userinfo describes the user its token was issued for.
  test('a userinfo sub that differs from the ID token is refused', async () => {
    const { res, body } = await signInWith('sub-mismatch');
    assertPage(res, body, 502, /different user/);
  });

  // Outages: the hand-made IdP drops the connection on demand.
  test('an unreachable token endpoint or JWKS is a clear 502', async () => {
    const down = await signInWith('token-down');
    assertPage(down.res, down.body, 502, /PingOne could not be reached/);
    assert.match(down.body, /token endpoint/);
    // The key set is cached; a token signed with an unknown kid forces a refetch, which fails.
    const jwks = await signInWith('jwks-down');
    assertPage(jwks.res, jwks.body, 502, /PingOne could not be reached/);
    assert.match(jwks.body, /JSON Web Key Set/);
  });

  // Outage: a token endpoint that accepts the connection and never answers.
  test('a token endpoint that never answers times out with a 502', async () => {
    const started = Date.now();
    const { res, body } = await signInWith('token-hangs');
    assertPage(res, body, 502, /no answer within 10 s/);
    assert.ok(Date.now() - started < 20_000);
  });
});
