// The official TypeScript SDK client with its built-in OAuth support, signing in the way a
// desktop MCP client does: on the server's 401 the SDK discovers the protected resource and
// authorization server metadata, registers dynamically and calls `redirectToAuthorization`.
// Here "the browser" is plain HTTP: the consent page is approved (or skipped when the cookie
// says so), the stand-in IdP's login form is filled, and the code is taken from the final
// redirect to the client's loopback redirect URI. Then `transport.finishAuth(code)` and a
// reconnect, as the SDK's own examples do.
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { CookieJar, jarFetch, parseConsentForm } from './flow.mjs';
import { completeLoginAt } from './idp.mjs';

/**
 * An in-memory `OAuthClientProvider`. Everything the SDK hands it is stored unchanged (the SDK
 * stamps client information and tokens with the issuer and ignores unstamped ones later).
 *
 *   user / password: who signs in at the IdP
 *   jar: the "browser's" cookies for the MCP worker (share one to model the same browser)
 *   clientInformation: a registration to reuse (the same MCP client connecting again)
 *
 * Records what happened: `authorizations` (one entry per browser trip: { url, consentShown,
 * authorizeStatus, redirect }), `registrations`, `tokenRequests` (grant types posted to /token,
 * seen through `fetch`, which the transports use for every auth request).
 */
export class TestOAuthProvider {
  constructor({
    user = 'alice', password = `${user}-password`, jar = new CookieJar(), clientInformation,
    redirectUrl = 'http://127.0.0.1:33419/callback', clientName = 'SDK e2e test client',
  } = {}) {
    this.user = user;
    this.password = password;
    this.jar = jar;
    this._redirectUrl = redirectUrl;
    this.clientName = clientName;
    this._clientInformation = clientInformation;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._state = undefined;
    this.pendingCode = undefined;
    this.authorizations = [];
    this.registrations = 0;
    this.tokenRequests = [];
    this.invalidated = [];
    // For the transports' `fetch` option: records the grant type of every /token request.
    this.fetch = async (url, init) => {
      if (new URL(url).pathname === '/token' && init?.body) {
        this.tokenRequests.push(new URLSearchParams(String(init.body)).get('grant_type'));
      }
      return fetch(url, init);
    };
  }

  get redirectUrl() { return this._redirectUrl; }

  get clientMetadata() {
    return {
      client_name: this.clientName,
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this._state = randomBytes(12).toString('base64url');
    return this._state;
  }

  clientInformation() { return this._clientInformation; }
  saveClientInformation(info) {
    this.registrations += 1;
    this._clientInformation = info;
  }

  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; }

  saveCodeVerifier(v) { this._codeVerifier = v; }
  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no code verifier saved');
    return this._codeVerifier;
  }

  invalidateCredentials(scope) {
    this.invalidated.push(scope);
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
  }

  /** The "browser": follows the authorization URL over HTTP and keeps the code for finishAuth. */
  async redirectToAuthorization(authorizationUrl) {
    const trip = await followAuthorization(authorizationUrl, {
      jar: this.jar, user: this.user, password: this.password, redirectUri: this._redirectUrl,
    });
    this.authorizations.push(trip);
    const back = new URL(trip.redirect);
    if (back.searchParams.get('state') !== this._state) throw new Error(`state mismatch in ${trip.redirect}`);
    const code = back.searchParams.get('code');
    if (!code) throw new Error(`authorization failed: ${trip.redirect}`);
    this.pendingCode = code;
  }

  takeCode() {
    const code = this.pendingCode;
    this.pendingCode = undefined;
    if (!code) throw new Error('the SDK never sent the user to authorize');
    return code;
  }
}

/**
 * Follows an authorization URL of the MCP worker the way a browser would: the consent page
 * (Approve) when shown, the IdP's login, the worker's /callback, until the redirect to
 * `redirectUri`. Returns { url, consentShown, authorizeStatus, idpLogin, redirect }.
 */
export async function followAuthorization(url, { jar, user = 'alice', password = `${user}-password`, redirectUri }) {
  const start = new URL(url);
  const origin = start.origin;
  let res = await jarFetch(jar, start.toString());
  const authorizeStatus = res.status;
  let consentShown = false;
  if (res.status === 200) {
    consentShown = true;
    const form = parseConsentForm(await res.text());
    if (!form) throw new Error('the consent page has no form');
    const approve = form.buttons.find((b) => b.name && /approve|allow/i.test(b.value ?? ''));
    if (!approve) throw new Error(`no Approve button: ${JSON.stringify(form.buttons)}`);
    const body = new URLSearchParams(form.fields);
    body.set(approve.name, approve.value ?? '');
    res = await jarFetch(jar, new URL(form.action || '/authorize', start).toString(), {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
    });
  }
  if (res.status < 300 || res.status >= 400) {
    throw new Error(`/authorize answered ${res.status}: ${(await res.text()).slice(0, 400)}`);
  }
  await res.arrayBuffer();
  let location = new URL(res.headers.get('location'), start).toString();
  let idpLogin = false;
  if (!location.startsWith(redirectUri) && !location.startsWith(origin)) {
    // At the IdP: sign in, back to the worker's /callback, which redirects to the client.
    idpLogin = true;
    location = await completeLoginAt(location, { user, password });
    res = await jarFetch(jar, location);
    if (res.status < 300 || res.status >= 400) {
      throw new Error(`/callback answered ${res.status}: ${(await res.text()).slice(0, 400)}`);
    }
    await res.arrayBuffer();
    location = new URL(res.headers.get('location'), location).toString();
  }
  if (!location.startsWith(redirectUri)) throw new Error(`sign-in ended at ${location}, not at ${redirectUri}`);
  return { url: start.toString(), consentShown, authorizeStatus, idpLogin, redirect: location };
}

/** A transport of `kind` ('http' | 'sse') for `url`, signing in through `provider`. */
export function makeTransport(kind, url, provider) {
  const opts = { authProvider: provider, fetch: provider.fetch };
  return kind === 'sse' ? new SSEClientTransport(new URL(url), opts) : new StreamableHTTPClientTransport(new URL(url), opts);
}

/**
 * Connects an SDK `Client` over `kind` to `url`. When the server answers 401 the SDK runs
 * discovery, registration and authorization through `provider`; then, as in the SDK's
 * examples, `finishAuth(code)` on that transport and a fresh connection. Returns
 * { client, transport, signedIn } (signedIn: a browser trip was needed).
 */
export async function connectClient(kind, url, provider, { name = 'mcp-e2e-test' } = {}) {
  const newClient = () => new Client({ name, version: '1.0.0' });
  let transport = makeTransport(kind, url, provider);
  let client = newClient();
  try {
    await client.connect(transport);
    return { client, transport, signedIn: false };
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    await client.close().catch(() => {});
  }
  await transport.finishAuth(provider.takeCode());
  transport = makeTransport(kind, url, provider);
  client = newClient();
  await client.connect(transport);
  return { client, transport, signedIn: true };
}
