// The local stand-in for PingOne: a real OpenID provider (oidc-provider) shaped like a PingOne
// environment, with an HTML sign-in for a few test users. Development only.
//
//   node local/idp/server.mjs        (settings from env, see `optionsFromEnv`)
//
// Tests import `startIdp(opts)`.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emaClientsFromEnv } from './id-jag.mjs';
import { loadOrCreateJwks, publicJwks, rotateJwks } from './keys.mjs';
import { errorPage, loginPage } from './pages.mjs';
import { createProvider } from './provider.mjs';
import { Store } from './store.mjs';
import { handleUserinfo } from './userinfo.mjs';
import { DEFAULT_GROUPS_CLAIM, normaliseUsers, usersFromEnv } from './users.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ISSUER_PATH = '/as';
const MAX_FORM_BYTES = 16 * 1024;

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 9000,
  mcpPort: 8787,
  clientId: 'mcp-worker',
  clientSecret: 'dev-secret-change-me',
  apiIdentifier: 'http://127.0.0.1:8788',
  accessTokenTtl: 3600,
  refreshTokenTtl: 30 * 24 * 3600,
  clockTolerance: 5,
  groupsClaim: DEFAULT_GROUPS_CLAIM,
  stateDir: join(ROOT, '.state', 'idp'),
};

/** Cookie signing keys: given, or a random one kept in the state dir so sessions survive restarts. */
function cookieKeysFor(stateDir, given) {
  if (given?.length) return given;
  const file = join(stateDir, 'cookie-keys.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const keys = [randomBytes(32).toString('base64url')];
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

/** A request body as text, at most MAX_FORM_BYTES. */
function readBody(req) {
  return new Promise((res, rej) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_FORM_BYTES) {
        rej(new Error('form too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => res(Buffer.concat(chunks).toString('utf8')));
    req.on('error', rej);
  });
}

async function readForm(req) {
  return new URLSearchParams(await readBody(req));
}

// No CSP form-action: browsers apply it to the redirects after the form post, and the last
// of those goes to the client's redirect_uri on another origin.
function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(html);
}

/**
 * Starts the IdP. Options (all optional, defaults in DEFAULTS):
 *   host, port (0 = any free port), issuer (default `http://{host}:{port}/as`),
 *   clientId, clientSecret, mcpPort, redirectUris (replace the defaults for mcpPort),
 *   extraRedirectUris (added to them), apiIdentifier, accessTokenTtl, refreshTokenTtl (s),
 *   stateDir (keys, cookie keys, sessions), users (see users.mjs), cookieKeys (string[]),
 *   clockTolerance (s), proxy (trust X-Forwarded-* of a TLS-terminating proxy),
 *   log (function receiving one line per request; default none),
 *   adminApi (serve POST /admin/users/{name}/revoke-tokens, PUT /admin/users/{name}/groups and
 *     POST /admin/fault; tests only),
 *   groupsClaim (claim carrying the users' groups in ID tokens and userinfo; default `groups`),
 *   tls ({ key, cert } PEM: serve HTTPS itself, issuer `https://{host}:{port}/as`; for clients that
 *     refuse an http issuer, such as the original TypeScript worker's oauth4webapi),
 *   emaClients (enterprise clients that sign users in and exchange their ID tokens for ID-JAGs;
 *     see id-jag.mjs).
 * Returns { issuer, url, port, stateDir, clientId, redirectUris, apiIdentifier, usernames, groupsClaim,
 *   close(), rotateKey() -> new kid, jwks() -> public JWKS }.
 */
export async function startIdp(opts = {}) {
  const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) };
  const stateDir = resolve(o.stateDir);
  const users = normaliseUsers(o.users);
  const redirectUris = [...new Set([
    ...(o.redirectUris ?? [`http://127.0.0.1:${o.mcpPort}/callback`, `http://localhost:${o.mcpPort}/callback`]),
    ...(o.extraRedirectUris ?? []),
  ])];
  const log = typeof o.log === 'function' ? o.log : () => {};
  const store = new Store(join(stateDir, 'sessions.json'));
  let jwks = loadOrCreateJwks(stateDir);
  const cookieKeys = cookieKeysFor(stateDir, o.cookieKeys);

  // Listen first so port 0 resolves to the real port before the issuer is fixed.
  let handler = null;
  const listener = (req, res) => {
    if (handler) handler(req, res);
    else { res.writeHead(503); res.end(); }
  };
  const server = o.tls ? createHttpsServer({ key: o.tls.key, cert: o.tls.cert }, listener) : createServer(listener);
  await new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(o.port, o.host, () => { server.off('error', rej); res(); });
  });
  const { port } = server.address();
  const url = `${o.tls ? 'https' : 'http'}://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  const issuer = o.issuer ?? `${url}${ISSUER_PATH}`;
  const issuerPath = new URL(issuer).pathname.replace(/\/$/, '');

  const settings = {
    issuer, issuerPath, users, store, cookieKeys,
    apiIdentifier: o.apiIdentifier,
    accessTokenTtl: o.accessTokenTtl,
    refreshTokenTtl: o.refreshTokenTtl,
    clockTolerance: o.clockTolerance,
    groupsClaim: o.groupsClaim,
    client: { clientId: o.clientId, clientSecret: o.clientSecret, redirectUris },
    emaClients: o.emaClients ?? [],
  };
  const build = () => {
    const p = createProvider({ ...settings, jwks });
    // Behind a TLS-terminating proxy, trust its X-Forwarded-* headers.
    p.proxy = Boolean(o.proxy);
    p.on('server_error', (_ctx, err) => log(`server error: ${err?.message ?? err}`));
    return p;
  };
  let provider;
  let providerCallback;
  try {
    provider = build();
    providerCallback = provider.callback();
  } catch (err) {
    server.close();
    throw err;
  }

  const interaction = createInteractionHandler({ getProvider: () => provider, users, base: `${issuerPath}/interaction` });
  const userinfoCtx = {
    issuer, publicJwks: () => publicJwks(jwks), users, clockTolerance: o.clockTolerance, groupsClaim: o.groupsClaim,
  };

  let tokenFault = 'off'; // see POST /admin/fault
  handler = (req, res) => {
    const started = Date.now();
    const path = (req.url ?? '/').split('?')[0];
    // Paths only: query strings carry codes and state.
    res.on('finish', () => log(`${req.method} ${path} ${res.statusCode} ${Date.now() - started}ms`));
    route(req, res, path).catch((err) => {
      log(`error on ${req.method} ${path}: ${err?.message ?? err}`);
      if (!res.headersSent) sendHtml(res, 500, errorPage('Server error', 'The identity provider failed to handle this request.'));
      else res.end();
    });
  };

  async function route(req, res, path) {
    if (path === '/' || path === '') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`Development identity provider (not PingOne).\nIssuer: ${issuer}\nDiscovery: ${issuer}/.well-known/openid-configuration\n`);
      return;
    }
    if (path === `${issuerPath}/userinfo`) return handleUserinfo(req, res, userinfoCtx);
    // Development-only admin call (opt-in with IDP_ADMIN_API=1, for tests): ends every refresh token of a user, as
    // disabling the user or revoking their sessions in PingOne's console does.
    const revoke = o.adminApi && req.method === 'POST' && path.match(/^\/admin\/users\/([^/]+)\/revoke-tokens$/);
    if (revoke) {
      const user = users.byUsername.get(decodeURIComponent(revoke[1]));
      let revoked = 0;
      for (const [key, entry] of store.entries) {
        if (user && key.startsWith('RefreshToken:') && entry.value?.accountId === user.sub) {
          store.delete(key);
          revoked += 1;
        }
      }
      res.writeHead(user ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ revoked }));
      return;
    }
    // Development-only admin call (same opt-in): replaces a user's groups, as changing their membership in
    // PingOne does; tokens issued from now on (and userinfo) carry the new groups.
    const regroup = o.adminApi && req.method === 'PUT' && path.match(/^\/admin\/users\/([^/]+)\/groups$/);
    if (regroup) {
      const user = users.byUsername.get(decodeURIComponent(regroup[1]));
      let groups;
      try {
        groups = JSON.parse(await readBody(req));
      } catch { /* answered below */ }
      const ok = user && Array.isArray(groups) && groups.every((g) => typeof g === 'string' && g);
      if (ok) user.groups = groups;
      res.writeHead(!user ? 404 : ok ? 200 : 400, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { groups } : { error: user ? 'invalid_request' : 'not_found' }));
      return;
    }
    // Development-only admin call (same opt-in): makes the token endpoint fail, as PingOne failing does:
    // {"mode": "token-500"} answers 500, "token-hang" never answers, "token-drop" drops the connection
    // unanswered, "off" ends the fault.
    if (o.adminApi && req.method === 'POST' && path === '/admin/fault') {
      let mode;
      try { mode = JSON.parse(await readBody(req)).mode; } catch { /* answered below */ }
      const ok = ['off', 'token-500', 'token-hang', 'token-drop'].includes(mode);
      if (ok) tokenFault = mode;
      res.writeHead(ok ? 200 : 400, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { mode } : { error: 'invalid_request' }));
      return;
    }
    if (tokenFault !== 'off' && req.method === 'POST' && path === `${issuerPath}/token`) {
      log(`fault ${tokenFault} on ${req.method} ${path}`);
      if (tokenFault === 'token-500') {
        res.writeHead(500, { 'content-type': 'text/html' });
        res.end('<h1>Internal Server Error</h1>');
      } else if (tokenFault === 'token-drop') {
        req.socket.destroy();
      } // token-hang: no answer; the connection stays open until the client gives up or the server closes
      return;
    }
    if (path.startsWith(`${issuerPath}/interaction/`)) return interaction(req, res, path.slice(issuerPath.length + '/interaction/'.length));
    if (path === issuerPath || path.startsWith(`${issuerPath}/`)) {
      // Mounted the way oidc-provider documents for connect-style apps: strip the prefix
      // from req.url and keep the full path in req.originalUrl so URLs it builds keep `/as`.
      req.originalUrl = req.url;
      req.url = req.url.slice(issuerPath.length) || '/';
      return providerCallback(req, res);
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'not_found' }));
  }

  return {
    issuer,
    url,
    port,
    stateDir,
    clientId: o.clientId,
    redirectUris,
    apiIdentifier: o.apiIdentifier,
    usernames: users.usernames,
    groupsClaim: o.groupsClaim,
    jwks: () => publicJwks(jwks),
    /** Puts a new signing key first; tokens signed by the previous keys stay verifiable. */
    rotateKey() {
      jwks = rotateJwks(stateDir);
      provider = build();
      providerCallback = provider.callback();
      return jwks.keys[0].kid;
    },
    async close() {
      const closed = new Promise((res) => server.close(() => res()));
      server.closeAllConnections();
      await closed;
      store.flush();
      // Let clients in this process see their kept-alive sockets close before anything
      // reuses the port (undici would otherwise send on a dead socket: "other side closed").
      await new Promise((res) => setTimeout(res, 10));
    },
  };
}

/**
 * The sign-in pages of oidc-provider interactions under `{base}/{uid}`: GET shows the login
 * form (or auto-approves consent: PingOne asks no consent for its own application), POST
 * `{uid}/login` checks the credentials, POST `{uid}/abort` cancels with access_denied.
 */
function createInteractionHandler({ getProvider, users, base }) {
  return async (req, res, rest) => {
    const [uid, action = '', ...extra] = rest.split('/');
    const provider = getProvider();
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      return sendHtml(res, 400, errorPage('Sign-in expired', 'This sign-in session was not found or has expired.'));
    }
    if (extra.length || details.uid !== uid) {
      return sendHtml(res, 400, errorPage('Sign-in expired', 'This sign-in page does not belong to the current sign-in.'));
    }
    const { prompt, params } = details;
    const page = (status, error, username) => sendHtml(res, status, loginPage({
      uid, clientId: params.client_id, scope: params.scope ?? '', error, username, usernames: users.usernames, actionBase: base,
    }));

    if (action === '' && req.method === 'GET') {
      if (prompt.name === 'login') return page(200);
      if (prompt.name === 'consent') return approveConsent(provider, req, res, details);
      return provider.interactionFinished(req, res, {
        error: 'interaction_required', error_description: `unsupported prompt ${prompt.name}`,
      }, { mergeWithLastSubmission: false });
    }
    if (action === 'login' && req.method === 'POST') {
      if (prompt.name !== 'login') return sendHtml(res, 400, errorPage('Sign-in error', 'No sign-in is pending here.'));
      const form = await readForm(req);
      const user = users.authenticate(form.get('username'), form.get('password'));
      if (!user) return page(200, 'Invalid username or password.', form.get('username') ?? '');
      return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    }
    if (action === 'abort' && req.method === 'POST') {
      return provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'The user cancelled the sign-in.',
      }, { mergeWithLastSubmission: false });
    }
    res.writeHead(405, { allow: action === '' ? 'GET' : 'POST' });
    res.end();
  };
}

/** Grants exactly what the request is missing and resumes the authorization. */
async function approveConsent(provider, req, res, details) {
  const { prompt: { details: missing }, params, session: { accountId } } = details;
  const existing = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  const grant = existing ?? new provider.Grant({ accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  const consent = existing ? {} : { grantId };
  return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

// ---- CLI -------------------------------------------------------------------

/** startIdp options from the environment (the variables local/stack.mjs sets). */
export function optionsFromEnv(env = process.env) {
  const list = (v) => (v ? v.split(/[\s,]+/).filter(Boolean) : undefined);
  const num = (v) => (v === undefined || v === '' ? undefined : Number(v));
  return {
    host: env.IDP_HOST || undefined,
    port: num(env.IDP_PORT),
    issuer: env.IDP_ISSUER || undefined,
    stateDir: env.IDP_STATE_DIR || undefined,
    clientId: env.MCP_CLIENT_ID || undefined,
    clientSecret: env.MCP_CLIENT_SECRET || undefined,
    mcpPort: num(env.MCP_PORT),
    redirectUris: list(env.MCP_REDIRECT_URIS),
    apiIdentifier: env.API_IDENTIFIER || undefined,
    accessTokenTtl: num(env.IDP_ACCESS_TOKEN_TTL),
    users: usersFromEnv(env.IDP_USERS),
    cookieKeys: list(env.IDP_COOKIE_KEYS),
    adminApi: env.IDP_ADMIN_API === '1',
    groupsClaim: env.IDP_GROUPS_CLAIM?.trim() || undefined,
    emaClients: emaClientsFromEnv(env.IDP_EMA_CLIENTS),
    tls: env.IDP_TLS_KEY && env.IDP_TLS_CERT
      ? { key: readFileSync(env.IDP_TLS_KEY), cert: readFileSync(env.IDP_TLS_CERT) } : undefined,
  };
}

async function main() {
  const stamp = () => new Date().toISOString();
  let idp;
  try {
    idp = await startIdp({ ...optionsFromEnv(), log: (line) => console.log(`${stamp()} ${line}`) });
  } catch (err) {
    console.error(`The development identity provider did not start: ${err.message}`);
    process.exit(1);
  }
  const { keys } = idp.jwks();
  console.log([
    'Development identity provider — NOT PingOne, for local use only',
    `  issuer:         ${idp.issuer}`,
    `  discovery:      ${idp.issuer}/.well-known/openid-configuration`,
    `  client:         ${idp.clientId} (client_secret_basic, PKCE S256)`,
    `  redirect URIs:  ${idp.redirectUris.join(' ')}`,
    `  API audience:   ${idp.apiIdentifier}`,
    `  test users:     ${idp.usernames.join(', ')} (groups in the "${idp.groupsClaim}" claim)`,
    `  signing key:    ${keys[0].kid} (state in ${idp.stateDir})`,
  ].join('\n'));
  const stop = async () => { await idp.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main();
}
