// The downstream authorization server's state and its `OAuthServerProvider` (the TypeScript MCP
// SDK 1.x server-side interface that `mcpAuthRouter` drives): clients (dynamic registration and,
// with CIMD on, client ID metadata documents), pending consents, authorization codes, opaque
// access and refresh tokens (kept by their SHA-256, never in clear), notes, and the counters the
// test hooks report. With a state directory the durable part (clients, tokens, notes) is saved
// to `state.json` after every change; otherwise it lives in memory.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  InvalidClientError, InvalidClientMetadataError, InvalidGrantError, InvalidRequestError, InvalidTargetError, InvalidTokenError,
} from '@modelcontextprotocol/sdk/server/auth/errors.js';

const CODE_TTL_MS = 60_000;
const CONSENT_TTL_MS = 10 * 60_000;
const CIMD_CACHE_MS = 5 * 60_000;
const CIMD_MAX_BYTES = 64 * 1024;

const sha = (value) => createHash('sha256').update(String(value)).digest('hex');
const newToken = (prefix) => `${prefix}_${randomBytes(32).toString('base64url')}`;
const bump = (counts, key) => { counts[key] = (counts[key] ?? 0) + 1; };

/** `value` as a resource identifier: origin + path, no query, fragment or trailing slash. */
export function canonicalResource(value) {
  const url = new URL(String(value));
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export class DownstreamStore {
  /**
   * users: { name: password }; resources: canonical resource URLs tokens may be issued for
   * (the first is the default of a request naming none); accessTtl / refreshTtl in seconds
   * (refreshTtl 0 = refresh tokens do not expire); cimd: accept client ID metadata documents.
   */
  constructor({ origin, users, resources, accessTtl, refreshTtl = 0, stateDir, cimd = false, log = console.log }) {
    Object.assign(this, { origin, users, resources, accessTtl, refreshTtl, cimd, log });
    this.file = stateDir ? join(stateDir, 'state.json') : undefined;
    this.clients = new Map(); // client_id → registration
    this.access = new Map(); // sha(token) → { clientId, user, scopes, resource, expiresAt, family }
    this.refresh = new Map(); // sha(token) → { …, used }
    this.notes = new Map(); // user → [{ text, at }]
    this.codes = new Map(); // code → { clientId, user, scopes, resource, challenge, redirectUri, expiresAt }
    this.usedCodes = new Map(); // code → family, until the code would have expired
    this.consents = new Map(); // request id → { client, params, expiresAt }
    this.cimdCache = new Map(); // url → { client, until }
    this.revocationEndsGrant = true; // revoking a refresh token ends its whole grant (family)
    this.counts = { token_requests: {}, refreshes: {}, refresh_failures: {}, refresh_reuse: {}, authorizations: {}, denials: {} };
    if (this.file && existsSync(this.file)) this.#load();
  }

  #load() {
    const saved = JSON.parse(readFileSync(this.file, 'utf8'));
    for (const [k, v] of saved.clients ?? []) this.clients.set(k, v);
    for (const [k, v] of saved.access ?? []) this.access.set(k, v);
    for (const [k, v] of saved.refresh ?? []) this.refresh.set(k, v);
    for (const [k, v] of saved.notes ?? []) this.notes.set(k, v);
  }

  save() {
    if (!this.file) return;
    mkdirSync(join(this.file, '..'), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({
      clients: [...this.clients], access: [...this.access], refresh: [...this.refresh], notes: [...this.notes],
    }), { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  #sweep() {
    const now = Date.now();
    for (const [k, v] of this.codes) if (v.expiresAt < now) this.codes.delete(k);
    for (const [k, v] of this.usedCodes) if (v.until < now) this.usedCodes.delete(k);
    for (const [k, v] of this.consents) if (v.expiresAt < now) this.consents.delete(k);
    let changed = false;
    // Expired access tokens are kept a minute, so a late call is told "expired", not "unknown".
    for (const [k, v] of this.access) if (v.expiresAt + 60_000 < now) { this.access.delete(k); changed = true; }
    for (const [k, v] of this.refresh) if (v.expiresAt && v.expiresAt < now) { this.refresh.delete(k); changed = true; }
    if (changed) this.save();
  }

  // ---- clients ---------------------------------------------------------------------------

  /** The `OAuthRegisteredClientsStore` of the SDK. */
  get clientsStore() {
    return {
      getClient: (id) => this.getClient(id),
      registerClient: (info) => {
        // RFC 7591's default method is client_secret_basic; say which one the client got.
        if (!info.token_endpoint_auth_method) info.token_endpoint_auth_method = 'client_secret_basic';
        if (!['none', 'client_secret_basic', 'client_secret_post'].includes(info.token_endpoint_auth_method)) {
          throw new InvalidClientMetadataError(`token_endpoint_auth_method ${info.token_endpoint_auth_method} is not supported (none, client_secret_basic, client_secret_post)`);
        }
        const client = { ...info, registered_by: 'dcr' };
        this.clients.set(client.client_id, client);
        this.save();
        this.log(`register client ${client.client_id} (${JSON.stringify(client.client_name ?? '')}) redirect_uris=${client.redirect_uris.join(' ')}`);
        return info;
      },
    };
  }

  async getClient(id) {
    if (this.clients.has(id)) return this.clients.get(id);
    if (!this.cimd || !/^https?:\/\//i.test(id)) return undefined;
    const cached = this.cimdCache.get(id);
    if (cached && cached.until > Date.now()) return cached.client;
    const client = await this.#fetchClientDocument(id);
    this.cimdCache.set(id, { client, until: Date.now() + CIMD_CACHE_MS });
    return client;
  }

  /** A client ID metadata document (draft-ietf-oauth-client-id-metadata-document), checked. */
  async #fetchClientDocument(id) {
    const fail = (why) => { throw new InvalidClientError(`client metadata document ${id}: ${why}`); };
    let url;
    try { url = new URL(id); } catch { fail('not a URL'); }
    if (url.pathname === '/' || url.hash || url.username || url.password) fail('must be an http(s) URL with a path, no fragment or credentials');
    let text;
    try {
      const res = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(5000) });
      if (!res.ok) fail(`fetch answered ${res.status}`);
      text = await res.text();
    } catch (err) {
      if (err instanceof InvalidClientError) throw err;
      fail(`fetch failed (${err.name})`);
    }
    if (text.length > CIMD_MAX_BYTES) fail('larger than 64 KiB');
    let doc;
    try { doc = JSON.parse(text); } catch { fail('not JSON'); }
    if (!doc || typeof doc !== 'object') fail('not a JSON object');
    if (doc.client_id !== id) fail('its client_id is not its own URL');
    if (!Array.isArray(doc.redirect_uris) || !doc.redirect_uris.length || !doc.redirect_uris.every((u) => typeof u === 'string' && URL.canParse(u))) {
      fail('redirect_uris must be a non-empty array of URLs');
    }
    if (doc.client_secret !== undefined) fail('a document must not carry a client_secret');
    if ((doc.token_endpoint_auth_method ?? 'none') !== 'none') fail(`token_endpoint_auth_method ${doc.token_endpoint_auth_method} is not supported (only none)`);
    this.log(`client metadata document ${id} accepted`);
    return { ...doc, token_endpoint_auth_method: 'none', registered_by: 'cimd' };
  }

  listClients() {
    const cimd = [...this.cimdCache.values()].map((c) => c.client).filter(Boolean);
    return [...this.clients.values(), ...cimd].map((c) => ({
      client_id: c.client_id, client_name: c.client_name, redirect_uris: c.redirect_uris,
      token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_post',
      client_id_issued_at: c.client_id_issued_at, registered_by: c.registered_by,
    }));
  }

  deleteClient(id) {
    const had = this.clients.delete(id) || this.cimdCache.delete(id);
    for (const map of [this.access, this.refresh]) for (const [k, v] of map) if (v.clientId === id) map.delete(k);
    this.save();
    return had;
  }

  // ---- authorization ---------------------------------------------------------------------

  /** The resource an authorization request is for, or `invalid_target`. */
  resourceFor(requested) {
    if (!requested) return this.resources[0];
    const resource = canonicalResource(requested);
    if (!this.resources.includes(resource)) throw new InvalidTargetError(`unknown resource ${resource}`);
    return resource;
  }

  beginConsent(client, params) {
    this.#sweep();
    const id = randomBytes(24).toString('base64url');
    const resource = this.resourceFor(params.resource);
    this.consents.set(id, { clientId: client.client_id, params: { ...params, resource }, expiresAt: Date.now() + CONSENT_TTL_MS });
    return { id, resource };
  }

  consent(id) {
    const c = this.consents.get(id);
    return c && c.expiresAt > Date.now() ? c : undefined;
  }

  /** Ends a pending consent: approved for `user` (returns the code) or denied (no user). */
  finishConsent(id, user) {
    const c = this.consent(id);
    if (!c) return undefined;
    this.consents.delete(id);
    if (!user) {
      bump(this.counts.denials, c.clientId);
      return { ...c };
    }
    const code = randomBytes(32).toString('base64url');
    this.codes.set(code, {
      clientId: c.clientId, user, scopes: c.params.scopes ?? [], resource: c.params.resource,
      challenge: c.params.codeChallenge, redirectUri: c.params.redirectUri, expiresAt: Date.now() + CODE_TTL_MS,
    });
    bump(this.counts.authorizations, user);
    this.log(`authorize: ${user} approved client ${c.clientId} for ${c.params.resource}`);
    return { ...c, code };
  }

  checkUser(name, password) {
    return Object.hasOwn(this.users, name) && this.users[name] === password ? name : undefined;
  }

  // ---- tokens ----------------------------------------------------------------------------

  #issue({ clientId, user, scopes, resource, family }) {
    const accessToken = newToken('dsat');
    const refreshToken = newToken('dsrt');
    const now = Date.now();
    this.access.set(sha(accessToken), { clientId, user, scopes, resource, family, expiresAt: now + this.accessTtl * 1000 });
    this.refresh.set(sha(refreshToken), {
      clientId, user, scopes, resource, family, used: false, expiresAt: this.refreshTtl ? now + this.refreshTtl * 1000 : null,
    });
    this.save();
    return {
      access_token: accessToken, token_type: 'Bearer', expires_in: this.accessTtl, refresh_token: refreshToken,
      ...(scopes.length ? { scope: scopes.join(' ') } : {}),
    };
  }

  /** Ends every token of a grant (family); returns how many. */
  revokeFamily(family) {
    let n = 0;
    for (const map of [this.access, this.refresh]) for (const [k, v] of map) if (v.family === family) { map.delete(k); n++; }
    this.save();
    return n;
  }

  revokeUser(user, { accessOnly = false } = {}) {
    let n = 0;
    for (const map of accessOnly ? [this.access] : [this.access, this.refresh]) for (const [k, v] of map) if (v.user === user) { map.delete(k); n++; }
    this.save();
    this.log(`admin: revoked ${n} token(s) of ${user}`);
    return n;
  }

  countTokenRequest(grantType) { bump(this.counts.token_requests, grantType || '(none)'); }

  /** The `OAuthServerProvider` of the SDK; `authorize` is given by the server (it renders). */
  provider(authorize) {
    return {
      clientsStore: this.clientsStore,
      authorize,
      challengeForAuthorizationCode: async (client, code) => {
        const rec = this.codes.get(code);
        if (!rec || rec.clientId !== client.client_id || rec.expiresAt < Date.now()) {
          this.#codeReused(code);
          throw new InvalidGrantError('invalid, expired or used authorization code');
        }
        return rec.challenge;
      },
      exchangeAuthorizationCode: async (client, code, _verifier, redirectUri, resource) => {
        const rec = this.codes.get(code);
        if (!rec || rec.clientId !== client.client_id || rec.expiresAt < Date.now()) throw new InvalidGrantError('invalid, expired or used authorization code');
        this.codes.delete(code);
        if (redirectUri !== undefined && redirectUri !== rec.redirectUri) throw new InvalidGrantError('redirect_uri does not match the authorization request');
        if (resource && canonicalResource(resource) !== rec.resource) throw new InvalidTargetError('resource does not match the authorization request');
        const family = randomUUID();
        this.usedCodes.set(code, { family, until: rec.expiresAt });
        this.log(`token: authorization_code → ${rec.user}, client ${client.client_id}, ${rec.resource}`);
        return this.#issue({ clientId: client.client_id, user: rec.user, scopes: rec.scopes, resource: rec.resource, family });
      },
      exchangeRefreshToken: async (client, refreshToken, scopes, resource) => {
        this.#sweep();
        const key = sha(refreshToken);
        const rec = this.refresh.get(key);
        if (!rec || rec.clientId !== client.client_id) throw new InvalidGrantError('invalid or revoked refresh token');
        if (rec.used) {
          // Rotation with reuse detection (OAuth 2.1 §4.3.1, and PingOne's behaviour): a used
          // refresh token presented again ends the whole grant.
          bump(this.counts.refresh_reuse, rec.user);
          bump(this.counts.refresh_failures, rec.user);
          const n = this.revokeFamily(rec.family);
          this.log(`token: refresh_token REUSED by client ${client.client_id} (user ${rec.user}); grant ended, ${n} token(s) revoked`);
          throw new InvalidGrantError('refresh token already used; the grant is revoked');
        }
        if (rec.expiresAt && rec.expiresAt < Date.now()) throw new InvalidGrantError('refresh token expired');
        if (resource && canonicalResource(resource) !== rec.resource) throw new InvalidTargetError('resource does not match the grant');
        const narrowed = scopes?.length ? scopes : rec.scopes;
        if (!narrowed.every((s) => rec.scopes.includes(s))) throw new InvalidRequestError('scope wider than the grant');
        rec.used = true;
        bump(this.counts.refreshes, rec.user);
        this.log(`token: refresh_token → ${rec.user}, client ${client.client_id}, ${rec.resource}`);
        return this.#issue({ clientId: client.client_id, user: rec.user, scopes: narrowed, resource: rec.resource, family: rec.family });
      },
      verifyAccessToken: async (token) => {
        const rec = this.access.get(sha(token));
        if (!rec) throw new InvalidTokenError('unknown or revoked access token');
        return {
          token, clientId: rec.clientId, scopes: rec.scopes, expiresAt: rec.expiresAt / 1000,
          resource: new URL(rec.resource), extra: { user: rec.user },
        };
      },
      revokeToken: async (client, { token }) => {
        const key = sha(token);
        const rec = this.access.get(key) ?? this.refresh.get(key);
        // RFC 7009: an unknown token, or one of another client, is answered 200 all the same.
        if (!rec || rec.clientId !== client.client_id) return;
        if (this.refresh.has(key) && this.revocationEndsGrant) {
          this.revokeFamily(rec.family); // revoking the refresh token ends the grant
        } else if (this.refresh.has(key)) {
          this.refresh.delete(key); // /admin/revocation?grant=0: that token alone
          this.save();
        } else {
          this.access.delete(key);
          this.save();
        }
        this.log(`revoke: a token of ${rec.user}, client ${client.client_id}`);
      },
    };
  }

  #codeReused(code) {
    const used = this.usedCodes.get(code);
    if (!used) return;
    // A code presented twice: the tokens issued for it are revoked (RFC 6749 §4.1.2).
    this.usedCodes.delete(code);
    const n = this.revokeFamily(used.family);
    this.log(`token: authorization code reused; ${n} token(s) of its grant revoked`);
  }

  // ---- notes -----------------------------------------------------------------------------

  addNote(user, text) {
    const list = this.notes.get(user) ?? [];
    list.push({ text, at: new Date().toISOString() });
    this.notes.set(user, list);
    this.save();
    return list.length;
  }

  listNotes(user) { return this.notes.get(user) ?? []; }
}
