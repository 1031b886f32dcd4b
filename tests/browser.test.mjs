// The sign-in as a person does it, in headless Chromium, against the stand-in IdP:
// DCR of a public client with a loopback redirect → consent page → Approve → IdP login →
// back to the client's loopback callback with a code that the test exchanges at /token.
// Runs on http://127.0.0.1:<port>, so it also proves that browsers accept the worker's
// Secure __Host- cookies on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { closeWithin, launchChromium, startCallbackServer, within } from './support/browser.mjs';
import { startTestStack, ROOT } from './support/stack.mjs';
import { exchangeCode, pkcePair, registerClient } from './support/flow.mjs';

const OUT = join(ROOT, 'test-output');

let stack;
let browser;
let callback; // { url, next(): Promise<URL> }
let client;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  callback = await startCallbackServer();
  stack = await startTestStack({ todoApi: false });
  client = await registerClient(stack.mcpOrigin, {
    client_name: 'Browser test client', redirect_uris: [callback.url, callback.otherUrl],
  });
  browser = await launchChromium();
});

after(async () => {
  await closeWithin(browser);
  await stack?.stop();
  await callback?.close();
});

function authorizeUrl(pkce, state, { scope, redirectUri = callback.url } = {}) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: redirectUri, state,
    code_challenge: pkce.challenge, code_challenge_method: 'S256', resource: `${stack.mcpOrigin}/mcp`,
  });
  if (scope) q.set('scope', scope);
  return `${stack.mcpOrigin}/authorize?${q}`;
}

/**
 * Opens /authorize in `context` (for `scope` and `redirectUri` when given), approving consent if
 * it is shown (or cancelling) and signing in at the IdP if asked; resolves with what reached the
 * client's callback and the consent page's text (`consentText`, '' when none was shown).
 */
async function authorizeIn(context, { approve = true, screenshot, scope, redirectUri } = {}) {
  const pkce = pkcePair();
  const state = randomBytes(9).toString('base64url');
  const page = await context.newPage();
  const consentResponses = [];
  page.on('response', (r) => {
    if (r.url().startsWith(`${stack.mcpOrigin}/authorize`) && r.request().method() === 'GET') consentResponses.push(r.status());
  });
  const arrived = callback.next();
  await page.goto(authorizeUrl(pkce, state, { scope, redirectUri }));
  let consentShown = false;
  let consentText = '';
  const first = await Promise.race([
    arrived.then(() => 'callback'),
    page.waitForSelector('button[value="approve"], #username', { timeout: 30_000 }).then(() => 'page'),
  ]);
  if (first === 'page' && (await page.$('button[value="approve"]'))) {
    consentShown = true;
    consentText = await page.textContent('body');
    assert.match(consentText, /Browser test client/);
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    await page.click(approve ? 'button[value="approve"]' : 'button[value="cancel"]');
  }
  if (approve) {
    const next = await Promise.race([
      arrived.then(() => 'callback'),
      page.waitForSelector('#username', { timeout: 30_000 }).then(() => 'login'),
    ]);
    if (next === 'login') {
      assert.match(await page.textContent('body'), /not PingOne/i);
      await page.fill('#username', 'alice');
      await page.fill('#password', 'alice-password');
      await page.click('button[type="submit"]');
    }
  }
  const url = await within(page, arrived, 30_000, 'waiting for the redirect to the client');
  await closeWithin(page);
  return { url, pkce, state, consentShown, consentText, authorizeStatuses: consentResponses };
}

test('a person approves, signs in at the IdP, and the client gets a working code', async () => {
  const context = await browser.newContext();
  try {
    const shot = join(OUT, 'consent.png');
    const r = await authorizeIn(context, { screenshot: shot });
    assert.ok(r.consentShown, 'consent page shown to a new browser');
    assert.ok(existsSync(shot));
    assert.equal(r.url.searchParams.get('state'), r.state);
    assert.equal(r.url.searchParams.get('iss'), stack.mcpOrigin);
    const code = r.url.searchParams.get('code');
    assert.ok(code, `no code in ${r.url}`);
    const tokens = await exchangeCode({ mcpOrigin: stack.mcpOrigin, client, code, verifier: r.pkce.verifier, redirectUri: callback.url });
    assert.ok(tokens.access_token);
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');

    // The browser kept the Secure __Host- approval cookie on http://127.0.0.1.
    const cookies = await context.cookies(stack.mcpOrigin);
    const approved = cookies.find((c) => c.name === '__Host-APPROVED_CLIENTS');
    assert.ok(approved, `cookies: ${cookies.map((c) => c.name).join(', ')}`);
    assert.equal(approved.secure, true);
    assert.equal(approved.httpOnly, true);

    // Same browser, same client: no consent page, and the IdP session signs in silently.
    const again = await authorizeIn(context);
    assert.equal(again.consentShown, false);
    assert.deepEqual(again.authorizeStatuses, [302]);
    assert.ok(again.url.searchParams.get('code'));
  } finally {
    await closeWithin(context);
  }
});

test('a browser without the cookies sees the consent page again', async () => {
  const context = await browser.newContext();
  try {
    const r = await authorizeIn(context);
    assert.ok(r.consentShown);
    assert.ok(r.url.searchParams.get('code'));
  } finally {
    await closeWithin(context);
  }
});

test('Cancel returns access_denied with state and iss', async () => {
  const context = await browser.newContext();
  try {
    const r = await authorizeIn(context, { approve: false });
    assert.ok(r.consentShown);
    assert.equal(r.url.searchParams.get('error'), 'access_denied');
    assert.equal(r.url.searchParams.get('state'), r.state);
    assert.equal(r.url.searchParams.get('iss'), stack.mcpOrigin);
    assert.equal(r.url.searchParams.get('code'), null);
  } finally {
    await closeWithin(context);
  }
});

test('a bad request is shown in the browser, never redirected; the person may take the error back', async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const q = new URLSearchParams({
      response_type: 'token', client_id: client.client_id, redirect_uri: callback.url, state: 'bad-state',
      code_challenge: pkcePair().challenge, code_challenge_method: 'S256',
    });
    const response = await page.goto(`${stack.mcpOrigin}/authorize?${q}`);
    assert.equal(response.status(), 400);
    assert.ok(page.url().startsWith(`${stack.mcpOrigin}/authorize?`), `the browser stayed: ${page.url()}`);
    const text = await page.textContent('body');
    assert.match(text, /Browser test client sent a request this server cannot accept/);
    assert.match(text, /unsupported_response_type/);
    const arrived = callback.next();
    await page.click('a.button');
    const url = await within(page, arrived, 30_000, 'waiting for the person to return to the client');
    assert.equal(url.searchParams.get('error'), 'unsupported_response_type');
    assert.equal(url.searchParams.get('state'), 'bad-state');
    assert.equal(url.searchParams.get('iss'), stack.mcpOrigin);
    assert.equal(url.searchParams.get('code'), null);
    await closeWithin(page);
  } finally {
    await closeWithin(context);
  }
});

test('an approval covers only its redirect URI and its scopes (or fewer)', async () => {
  const context = await browser.newContext();
  const READ = 'todo_api:read';
  const WRITE_LINE = /Create, change and delete your todos/;
  try {
    const read = await authorizeIn(context, { scope: READ, screenshot: join(OUT, 'consent-read-only.png') });
    assert.ok(read.consentShown);
    assert.match(read.consentText, /Read access to your todo list/);
    assert.doesNotMatch(read.consentText, WRITE_LINE, 'the page lists only what is being granted');
    assert.ok(read.url.searchParams.get('code'));

    const same = await authorizeIn(context, { scope: READ });
    assert.equal(same.consentShown, false, 'the same request is silent');
    assert.deepEqual(same.authorizeStatuses, [302]);
    assert.ok(same.url.searchParams.get('code'));

    const elsewhere = await authorizeIn(context, { scope: READ, redirectUri: callback.otherUrl });
    assert.ok(elsewhere.consentShown, 'another redirect URI asks again');
    assert.equal(elsewhere.url.pathname, '/other-callback');
    assert.ok(elsewhere.url.searchParams.get('code'));

    const wider = await authorizeIn(context, { scope: `${READ} todo_api:write`, screenshot: join(OUT, 'consent-read-write.png') });
    assert.ok(wider.consentShown, 'more scopes than approved ask again');
    assert.match(wider.consentText, WRITE_LINE);
    assert.ok(wider.url.searchParams.get('code'));

    // Approving read+write covers read alone, and no scope (= all of them) is read+write.
    for (const scope of [READ, `todo_api:write ${READ}`, undefined]) {
      const r = await authorizeIn(context, { scope });
      assert.equal(r.consentShown, false, `scope ${scope}`);
      assert.ok(r.url.searchParams.get('code'));
    }
  } finally {
    await closeWithin(context);
  }
});
