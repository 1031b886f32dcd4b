// Test-only: the downstream test MCP server (local/downstream-tools.mjs, the TypeScript SDK's
// McpServer) as a Worker, on the SDK's web-standard Streamable HTTP transport. The MCP worker in
// gateway mode reaches it through its DOWNSTREAM_MCP service binding (wrangler dev's registry
// resolves it between the two local sessions), started by local/stack.mjs with
// `downstream: { worker: true }`. Never deployed.
//
//   …/mcp        Streamable HTTP (any path ending in /mcp, as the gateway's URL names it); requests without a token of DOWNSTREAM_ISSUER for
//                DOWNSTREAM_AUDIENCE get 401 (when DOWNSTREAM_ISSUER is set)
//   /__requests  what arrived (method, path, URL, header names, token fingerprint) and how each
//                answer ended: `ended` = "finished" when its body was read to the end, "aborted"
//                when the caller cancelled the request (request.signal, enable_request_signal)
//                or its reader cancelled the body
//
// One workerd isolate serves every request under `wrangler dev`, so sessions live in a Map.
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { fingerprint, newServer, tokenChecker } from '../../local/downstream-tools.mjs';

const sessions = new Map(); // Mcp-Session-Id → transport
const recent = [];
let bearerOf;

const json = (status, body, headers = {}) => Response.json(body, { status, headers });

/** `res` with its body watched, so `entry` says how the answer ended. */
function watched(res, entry) {
  if (!res.body) {
    entry.ended = 'finished';
    return res;
  }
  const reader = res.body.getReader();
  const body = new ReadableStream({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) {
        entry.ended = 'finished';
        entry.endedAt = Date.now();
        controller.close();
      } else {
        controller.enqueue(value);
      }
    },
    cancel(reason) {
      entry.ended = 'aborted';
      entry.endedAt = Date.now();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

async function handle(request, env) {
  bearerOf ??= tokenChecker({ issuer: env.DOWNSTREAM_ISSUER || undefined, audience: env.DOWNSTREAM_AUDIENCE || undefined });
  const url = new URL(request.url);
  if (url.pathname === '/__requests') return json(200, recent);
  if (url.pathname === '/health') return json(200, { status: 'ok' });
  const headers = Object.fromEntries(request.headers.entries());
  const auth = headers.authorization;
  const entry = {
    method: request.method, path: url.pathname, url: url.href, at: Date.now(), ended: null,
    headerNames: Object.keys(headers).sort(),
    token: auth ? await fingerprint(auth.replace(/^Bearer /i, '')) : null,
  };
  recent.push(entry);
  if (recent.length > 1000) recent.shift();
  // A caller cancelling a request it reached through a service binding shows here (and not as
  // a cancel of the response body).
  request.signal?.addEventListener('abort', () => {
    if (entry.ended) return;
    entry.ended = 'aborted';
    entry.endedAt = Date.now();
  });
  if (!url.pathname.endsWith('/mcp')) return watched(json(404, { error: 'not_found' }), entry);

  if (env.DOWNSTREAM_ISSUER) {
    const bearer = await bearerOf(headers);
    if (!bearer.verified) {
      const challenge = `Bearer error="invalid_token", error_description="${bearer.present ? 'token refused' : 'token required'}", resource_metadata="${url.origin}/.well-known/oauth-protected-resource"`;
      return watched(json(401, { error: 'invalid_token' }, { 'www-authenticate': challenge }), entry);
    }
  }
  const sid = request.headers.get('mcp-session-id');
  let transport = sid ? sessions.get(sid) : undefined;
  if (sid && !transport) {
    return watched(json(404, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }), entry);
  }
  if (!transport) {
    transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id) => sessions.set(id, transport),
    });
    transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
    await newServer('streamable-http (worker)', bearerOf).connect(transport);
  }
  return watched(await transport.handleRequest(request), entry);
}

export default {
  async fetch(request, env) {
    try {
      return await handle(request, env);
    } catch (e) {
      console.error('downstream worker:', e);
      return json(500, { error: 'server_error' });
    }
  },
};
