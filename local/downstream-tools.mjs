// The downstream test MCP server's tools and token check, shared by its two hosts:
// local/downstream-mcp.mjs (Node, Streamable HTTP + legacy SSE, reached at DOWNSTREAM_MCP_URL) and
// tests/downstream-worker/ (a Worker in workerd, reached through the DOWNSTREAM_MCP service
// binding). Runs on Node and in workerd alike (fetch, Web Crypto, jose).
//
//   whoami     the bearer token's claims (verified against the IdP's JWKS when an issuer is
//              configured: signature, issuer, audience, expiry), the X-User-* headers, the names
//              of every header the request carried and the URL it was sent to
//   echo       {text} → text
//   countdown  {steps, intervalMs} → one log notification per step, spaced out in time, then
//              the result (SSE streaming end to end)
//   notify_later {delayMs, text} → answers at once; delayMs later the server sends a log
//              notification tied to no request, which Streamable HTTP delivers only on the
//              client's standalone GET stream (server-initiated messages)
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createRemoteJWKSet, jwtVerify, decodeJwt } from 'jose';
import { z } from 'zod';

/** `sha256:<16 hex>` of `s`: tokens are reported by fingerprint, never in full. */
export async function fingerprint(s) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `sha256:${hex.slice(0, 16)}`;
}

/**
 * Checks bearer tokens of `issuer` (keys from its discovery document) for `audience`; with no
 * issuer, tokens are decoded but not verified.
 */
export function tokenChecker({ issuer, audience }) {
  let jwks;
  async function keys() {
    if (!jwks) {
      const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) })).json();
      jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
    }
    return jwks;
  }
  /** What the Authorization header (of lower-cased `headers`) says. */
  return async function bearerOf(headers) {
    const auth = headers.authorization;
    if (!auth) return { present: false };
    const token = /^Bearer (.+)$/i.exec(auth)?.[1];
    if (!token) return { present: true, scheme: auth.split(' ')[0], verified: false, error: 'not a bearer token' };
    const base = { present: true, scheme: 'Bearer', fingerprint: await fingerprint(token) };
    if (!issuer) {
      try { return { ...base, verified: false, claims: decodeJwt(token) }; } catch { return { ...base, verified: false, error: 'not a JWT' }; }
    }
    try {
      const { payload } = await jwtVerify(token, await keys(), { issuer, audience });
      return { ...base, verified: true, claims: payload };
    } catch (e) {
      return { ...base, verified: false, error: e.code ?? e.message };
    }
  };
}

function identityHeaders(headers) {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => k.startsWith('x-user-')));
}

/** A fresh McpServer with the test tools; `transportName` is reported by whoami. */
export function newServer(transportName, bearerOf, options = {}) {
  const server = new McpServer({ name: 'downstream-test-mcp', version: '1.0.0' }, { capabilities: { logging: {} }, ...options });
  server.registerTool('whoami', { description: 'The identity this request arrived with' }, async (extra) => {
    const headers = extra.requestInfo?.headers ?? {};
    const report = {
      transport: transportName,
      sessionId: extra.sessionId ?? null,
      url: extra.requestInfo?.url?.href ?? null,
      bearer: await bearerOf(headers),
      identityHeaders: identityHeaders(headers),
      headerNames: Object.keys(headers).sort(),
    };
    return { content: [{ type: 'text', text: JSON.stringify(report) }] };
  });
  server.registerTool('echo', { description: 'Echoes text', inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  server.registerTool(
    'countdown',
    { description: 'Logs one message per step, then answers', inputSchema: { steps: z.number().int().min(1).max(50), intervalMs: z.number().int().min(0).max(5000) } },
    async ({ steps, intervalMs }, extra) => {
      const sentAt = [];
      for (let i = steps; i >= 1; i--) {
        await new Promise((r) => setTimeout(r, intervalMs));
        sentAt.push(Date.now());
        await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: { step: i, at: Date.now() } } });
      }
      await new Promise((r) => setTimeout(r, intervalMs));
      return { content: [{ type: 'text', text: JSON.stringify({ done: true, sentAt, answeredAt: Date.now() }) }] };
    },
  );
  server.registerTool(
    'notify_later',
    { description: 'Answers now; sends a server-initiated log notification later', inputSchema: { delayMs: z.number().int().min(0).max(10000), text: z.string() } },
    async ({ delayMs, text }) => {
      setTimeout(() => {
        // No related request: Streamable HTTP sends it on the standalone GET stream (or drops
        // it when none is open); legacy SSE on its one stream.
        server.server.sendLoggingMessage({ level: 'info', data: { text, at: Date.now() } }).catch(() => {});
      }, delayMs);
      return { content: [{ type: 'text', text: JSON.stringify({ scheduled: true }) }] };
    },
  );
  return server;
}
