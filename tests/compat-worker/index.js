// A stand-in for the original TypeScript worker: the real OAuthProvider of
// @cloudflare/workers-oauth-provider, once per pinned version, on the same KV
// namespace as the MCP worker. Only the provider is real; the sign-in is
// programmatic (no consent page, no IdP): GET /authorize completes the
// authorization at once for `compat_user` with the props in `compat_props`
// (base64url JSON), which the test shapes like the original's.
//
// Routes: /<version>/<path>, version "0.1.0" or "1.2.3". The prefix is removed
// and the request is handed to that version's provider as if it had come to the
// MCP worker's origin (MCP_ORIGIN), as it would in a deployment that switches
// workers on the same hostname: token audiences and issuer then name the same
// server for both workers.
//   /<v>/register, /<v>/token (grants and RFC 7009 revocation), /<v>/authorize: the provider's
//   /<v>/mcp: its protected API route; answers { props, auth } of the bearer token
//   POST /<v>/unwrap (token=…): OAuthHelpers.unwrapToken, where the version has it
import { OAuthProvider as OAuthProvider01 } from 'wop-0.1';
import { OAuthProvider as OAuthProvider12 } from 'wop-1.2';

const SCOPES = ['todo_api:read', 'todo_api:write'];

function b64urlJson(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
}

const error = (status, message) => Response.json({ error: 'compat_worker', message }, { status });

function handlers(version) {
  const apiHandler = {
    async fetch(request, env, ctx) {
      return Response.json({ version, props: ctx.props ?? null, auth: ctx.auth ?? null });
    },
  };
  const defaultHandler = {
    async fetch(request, env) {
      const url = new URL(request.url);
      if (url.pathname === '/authorize' && request.method === 'GET') {
        try {
          const authRequest = await env.OAUTH_PROVIDER.parseAuthRequest(request);
          const userId = url.searchParams.get('compat_user');
          const props = b64urlJson(url.searchParams.get('compat_props') ?? '');
          const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
            request: authRequest,
            userId,
            metadata: { label: props.preferred_username ?? userId },
            scope: authRequest.scope,
            props,
          });
          return new Response(null, { status: 302, headers: { location: redirectTo } });
        } catch (e) {
          return error(400, `${e?.name}: ${e?.message}`);
        }
      }
      if (url.pathname === '/unwrap' && request.method === 'POST') {
        if (typeof env.OAUTH_PROVIDER.unwrapToken !== 'function') {
          return error(501, `OAuthHelpers.unwrapToken does not exist in ${version}`);
        }
        const token = (await request.formData()).get('token');
        return Response.json({ version, token: await env.OAUTH_PROVIDER.unwrapToken(token) });
      }
      return error(404, `no route ${request.method} ${url.pathname}`);
    },
  };
  return { apiHandler, defaultHandler };
}

const build = {
  // The original's configuration (tokenEndpoint serves revocation too).
  '0.1.0': () => new OAuthProvider01({
    apiRoute: '/mcp',
    ...handlers('0.1.0'),
    authorizeEndpoint: '/authorize',
    tokenEndpoint: '/token',
    clientRegistrationEndpoint: '/register',
    scopesSupported: SCOPES,
  }),
  // 1.x needs the canonical resource; the MCP worker's is <origin>/mcp.
  '1.2.3': (env) => new OAuthProvider12({
    apiRoute: '/mcp',
    ...handlers('1.2.3'),
    authorizeEndpoint: '/authorize',
    tokenEndpoint: '/token',
    clientRegistrationEndpoint: '/register',
    scopesSupported: SCOPES,
    resourceMetadata: { resource: `${env.MCP_ORIGIN}/mcp` },
  }),
};

const providers = new Map();

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    // Test-only: a grant's KV record and the key metadata KV lists for it (GET /kv-grant?key=grant:…).
    if (url.pathname === '/kv-grant') {
      const key = url.searchParams.get('key') ?? '';
      if (!key.startsWith('grant:')) return error(400, 'key must be a grant: key');
      const page = await env.OAUTH_KV.list({ prefix: key });
      const listed = page.keys.find((k) => k.name === key);
      const record = await env.OAUTH_KV.get(key, { type: 'json' });
      return Response.json({ listed: !!listed, metadata: listed?.metadata ?? null, record });
    }
    const [, version, ...rest] = url.pathname.split('/');
    if (!build[version]) return error(404, `unknown version ${version}; use ${Object.keys(build).join(' or ')}`);
    if (!env.MCP_ORIGIN) return error(500, 'MCP_ORIGIN is not set');
    if (!providers.has(version)) providers.set(version, build[version](env));
    const target = new URL(`/${rest.join('/')}${url.search}`, env.MCP_ORIGIN);
    // A copy of env per request: each provider caches its helpers as env.OAUTH_PROVIDER, and the
    // two versions must never see each other's.
    return providers.get(version).fetch(new Request(target, request), { ...env }, ctx);
  },
};
