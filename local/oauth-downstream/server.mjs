// A third-party MCP service with its OAuth, for the local stack: an authorization server of its
// own (not PingOne's; built with the TypeScript MCP SDK 1.x server-side auth, `mcpAuthRouter` +
// an `OAuthServerProvider`, as many vendors' MCP servers are) and MCP servers on several paths
// of the same origin that accept only its tokens, each for its own resource. See README.md.
//
//   node local/oauth-downstream/server.mjs
//     DS_HOST / DS_PORT   where to listen (127.0.0.1:9300); the origin is http://DS_HOST:DS_PORT
//     DS_ACCESS_TTL       access token lifetime, seconds (3600)
//     DS_REFRESH_TTL      refresh token lifetime, seconds (0 = none)
//     DS_STATE_DIR        keep clients, tokens and notes in DS_STATE_DIR/state.json (in memory otherwise)
//     DS_CIMD=1           also accept URL client ids (Client ID Metadata Documents, http(s), loopback allowed)
//     DS_USERS            JSON {"name":"password"} (default dana/dana-password, erin/erin-password)
import express from 'express';
import { mcpAuthRouter, createOAuthMetadata } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { DownstreamStore } from './store.mjs';
import { consentPage, messagePage } from './pages.mjs';
import { mcpHandler, notesServer, publicServer, v1Server } from './tools.mjs';

const HOST = process.env.DS_HOST || '127.0.0.1';
const PORT = Number(process.env.DS_PORT || 9300);
const ACCESS_TTL = Number(process.env.DS_ACCESS_TTL || 3600);
const REFRESH_TTL = Number(process.env.DS_REFRESH_TTL || 0);
const CIMD = process.env.DS_CIMD === '1' || process.env.DS_CIMD === 'true';
const USERS = process.env.DS_USERS ? JSON.parse(process.env.DS_USERS) : { dana: 'dana-password', erin: 'erin-password' };
if (!Number.isInteger(PORT) || PORT <= 0 || PORT > 65535) throw new Error('DS_PORT must be a port number');
if (!(ACCESS_TTL > 0)) throw new Error('DS_ACCESS_TTL must be a positive number of seconds');
if (!(REFRESH_TTL >= 0)) throw new Error('DS_REFRESH_TTL must be 0 or a positive number of seconds');

const ORIGIN = `http://${HOST.includes(':') ? `[${HOST}]` : HOST}:${PORT}`;
// The protected resources: path → what is served there. `/public/mcp` needs no token.
const PROTECTED = [
  { path: '/mcp', name: 'Downstream Notes', make: (store) => notesServer(store) },
  { path: '/v1/mcp', name: 'Downstream v1', make: () => v1Server() },
];
const log = (msg) => console.log(`[oauth-downstream] ${new Date().toISOString()} ${msg}`);

const store = new DownstreamStore({
  origin: ORIGIN, users: USERS, resources: PROTECTED.map((r) => `${ORIGIN}${r.path}`),
  accessTtl: ACCESS_TTL, refreshTtl: REFRESH_TTL, stateDir: process.env.DS_STATE_DIR || undefined, cimd: CIMD, log,
});

const frameGuard = (res) => res.set({ 'X-Frame-Options': 'DENY', 'Content-Security-Policy': "frame-ancestors 'none'", 'Cache-Control': 'no-store' });

/** `authorize` of the provider: validates the resource, then shows the sign-in + consent page. */
async function authorize(client, params, res) {
  const { id, resource } = store.beginConsent(client, params); // throws invalid_target → redirected
  frameGuard(res);
  res.status(200).type('html').send(consentPage({
    requestId: id, client, resource, scopes: params.scopes, redirectUri: params.redirectUri, users: Object.keys(USERS), passwordHint: !process.env.DS_USERS,
  }));
}

function redirectBack(res, redirectUri, params) {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  url.searchParams.set('iss', ORIGIN); // RFC 9207
  res.redirect(302, url.href);
}

const provider = store.provider(authorize);
const app = express();
app.disable('x-powered-by');
app.set('trust proxy', false);

const metadata = {
  ...createOAuthMetadata({ provider, issuerUrl: new URL(ORIGIN) }),
  issuer: ORIGIN,
  token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
  revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
  authorization_response_iss_parameter_supported: true,
  ...(CIMD ? { client_id_metadata_document_supported: true } : {}),
};
app.get('/.well-known/oauth-authorization-server', (_req, res) => res.set('Access-Control-Allow-Origin', '*').json(metadata));
for (const r of PROTECTED) {
  app.get(`/.well-known/oauth-protected-resource${r.path}`, (_req, res) => res.set('Access-Control-Allow-Origin', '*').json({
    resource: `${ORIGIN}${r.path}`, authorization_servers: [ORIGIN], bearer_methods_supported: ['header'], resource_name: r.name,
  }));
}
app.get('/health', (_req, res) => res.json({ status: 'ok' }));

// Counts token requests by grant type (before the SDK's handler, which parses the same body).
// With /admin/slow, a refresh is done at once and its answer sent that much later.
let refreshDelayMs = 0;
app.post('/token', express.urlencoded({ extended: false }), (req, res, next) => {
  store.countTokenRequest(req.body?.grant_type);
  if (req.body?.grant_type === 'refresh_token' && refreshDelayMs > 0) {
    const [end, delay] = [res.end.bind(res), refreshDelayMs];
    res.end = (...args) => { setTimeout(() => end(...args), delay); return res; };
  }
  next();
});
// client_secret_basic (RFC 6749 §2.3.1): the SDK's handlers read the client's credentials from
// the body only, so the Basic header is moved there; credentials in both places are refused.
app.post(['/token', '/revoke'], express.urlencoded({ extended: false }), (req, res, next) => {
  const header = req.headers.authorization;
  if (!header || !/^basic /i.test(header)) return next();
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0 || req.body?.client_secret !== undefined) {
    res.status(400).json({ error: 'invalid_request', error_description: colon < 0 ? 'malformed Basic credentials' : 'client credentials in more than one place' });
    return;
  }
  let id, secret;
  try {
    id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
  } catch {
    res.status(400).json({ error: 'invalid_request', error_description: 'malformed Basic credentials' });
    return;
  }
  if (req.body?.client_id !== undefined && req.body.client_id !== id) {
    res.status(400).json({ error: 'invalid_request', error_description: 'client_id differs from the Basic credentials' });
    return;
  }
  req.body = { ...req.body, client_id: id, client_secret: secret };
  next();
});

const noLimit = { rateLimit: false };
app.use(mcpAuthRouter({
  provider, issuerUrl: new URL(ORIGIN), resourceServerUrl: new URL(`${ORIGIN}/mcp`), resourceName: 'Downstream Notes',
  authorizationOptions: noLimit, tokenOptions: noLimit, revocationOptions: noLimit,
  clientRegistrationOptions: { ...noLimit, clientSecretExpirySeconds: 0 },
}));

app.post('/consent', express.urlencoded({ extended: false }), (req, res) => {
  frameGuard(res);
  const { request_id: id, action, username = '', password = '' } = req.body ?? {};
  const pending = typeof id === 'string' ? store.consent(id) : undefined;
  if (!pending) {
    res.status(400).type('html').send(messagePage('Sign-in expired', 'This sign-in request is unknown, used or expired. Start again from your application.'));
    return;
  }
  const { params } = pending;
  if (action === 'deny') {
    store.finishConsent(id, undefined);
    log(`authorize: denied for client ${pending.clientId}`);
    redirectBack(res, params.redirectUri, { error: 'access_denied', error_description: 'The user denied the request', state: params.state });
    return;
  }
  if (action !== 'approve') {
    res.status(400).type('html').send(messagePage('Bad request', 'Choose Approve or Deny.'));
    return;
  }
  const user = store.checkUser(String(username), String(password));
  if (!user) {
    log(`authorize: wrong user name or password (${JSON.stringify(String(username).slice(0, 40))})`);
    store.getClient(pending.clientId).then((client) => {
      res.status(200).type('html').send(consentPage({
        requestId: id, client, resource: params.resource, scopes: params.scopes, redirectUri: params.redirectUri,
        users: Object.keys(USERS), passwordHint: !process.env.DS_USERS, error: 'Wrong user name or password.', username: String(username),
      }));
    }, () => res.status(400).type('html').send(messagePage('Client unavailable', 'The client is no longer known.')));
    return;
  }
  const done = store.finishConsent(id, user);
  redirectBack(res, params.redirectUri, { code: done.code, state: params.state });
});

// The MCP servers.
for (const r of PROTECTED) {
  const bearer = requireBearerAuth({
    verifier: provider,
    resourceMetadataUrl: `${ORIGIN}/.well-known/oauth-protected-resource${r.path}`,
    expectedResource: `${ORIGIN}${r.path}`,
  });
  app.all(r.path, bearer, mcpHandler(() => r.make(store)));
}
app.all('/public/mcp', mcpHandler(() => publicServer()));

// Test hooks, loopback callers only.
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;
app.use('/admin', (req, res, next) => {
  if (!LOOPBACK.test(req.socket.remoteAddress ?? '')) {
    res.status(403).json({ error: 'access_denied', error_description: 'test hooks answer loopback callers only' });
    return;
  }
  next();
});
app.get('/admin/log', (_req, res) => res.json(store.counts));
app.delete('/admin/log', (_req, res) => {
  for (const k of Object.keys(store.counts)) store.counts[k] = {};
  res.json(store.counts);
});
app.post('/admin/revoke', (req, res) => {
  const user = req.query.user;
  if (typeof user !== 'string' || !user) {
    res.status(400).json({ error: 'invalid_request', error_description: 'user= is required' });
    return;
  }
  // only=access: the access tokens alone, as a server does that keeps them in memory and restarts.
  res.json({ user, revoked: store.revokeUser(user, { accessOnly: req.query.only === 'access' }) });
});
app.post('/admin/slow', (req, res) => {
  refreshDelayMs = Math.max(0, Math.min(Number(req.query.ms) || 0, 30_000));
  res.json({ refresh_delay_ms: refreshDelayMs });
});
app.post('/admin/revocation', (req, res) => {
  store.revocationEndsGrant = req.query.grant !== '0';
  res.json({ revocation_ends_grant: store.revocationEndsGrant });
});
app.get('/admin/clients', (_req, res) => res.json(store.listClients()));
app.delete('/admin/clients/:id', (req, res) => {
  res.status(store.deleteClient(req.params.id) ? 200 : 404).json({ client_id: req.params.id });
});

app.use((_req, res) => res.status(404).json({ error: 'not_found' }));
// Malformed bodies and anything unexpected: OAuth-style JSON, never a stack trace.
app.use((err, _req, res, _next) => {
  if (res.headersSent) return;
  if (err?.type === 'entity.parse.failed' || err?.status === 400) {
    res.status(400).json({ error: 'invalid_request', error_description: 'malformed request body' });
    return;
  }
  if (err?.type === 'entity.too.large') {
    res.status(413).json({ error: 'invalid_request', error_description: 'request body too large' });
    return;
  }
  log(`error: ${err?.message ?? err}`);
  res.status(500).json({ error: 'server_error' });
});

const server = app.listen(PORT, HOST, () => {
  console.log(`Downstream OAuth MCP server on ${ORIGIN}: authorization server ${ORIGIN}/.well-known/oauth-authorization-server, ` +
    `MCP ${ORIGIN}/mcp, ${ORIGIN}/v1/mcp, ${ORIGIN}/public/mcp (no auth); access tokens ${ACCESS_TTL} s; ` +
    `users ${Object.keys(USERS).join(', ')}${CIMD ? '; client ID metadata documents accepted' : ''}`);
});
server.on('error', (err) => { console.error(`oauth-downstream: ${err.message}`); process.exit(1); });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
