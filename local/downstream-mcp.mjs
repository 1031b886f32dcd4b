// A real MCP server built with the official TypeScript SDK (McpServer over Streamable HTTP and
// the legacy HTTP+SSE transport), standing for "the team's own MCP server" behind the worker in
// proxy mode (DOWNSTREAM_MCP_URL). Its tools (local/downstream-tools.mjs: whoami, echo, countdown,
// notify_later) echo the identity each request arrived with, so the local stack and the tests
// can see what the gateway forwards.
//
//   node local/downstream-mcp.mjs
//     DOWNSTREAM_HOST / DOWNSTREAM_PORT   where to listen (127.0.0.1:9100)
//     DOWNSTREAM_ISSUER                   verify bearer tokens of this issuer; requests without a
//                                         valid one get 401 + WWW-Authenticate, as from any
//                                         OAuth resource server
//     DOWNSTREAM_AUDIENCE                 the audience tokens must carry
//     DOWNSTREAM_TEST_HOOKS=1             test-only endpoints: GET /__requests (headers of
//                                         recent requests, tokens shown as fingerprints, and how
//                                         each ended: `ended` = "finished" when the whole answer
//                                         was sent, "aborted" when the connection closed first) and
//                                         POST /__fault {"mode": "none"|"hang"|"garbage"|"reset"|
//                                         "unauthorized"} to misbehave on /mcp, /sse, /messages
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { fingerprint, newServer as serverWith, tokenChecker } from './downstream-tools.mjs';

const HOST = process.env.DOWNSTREAM_HOST ?? '127.0.0.1';
const PORT = Number(process.env.DOWNSTREAM_PORT ?? 9100);
const ISSUER = process.env.DOWNSTREAM_ISSUER || undefined;
const AUDIENCE = process.env.DOWNSTREAM_AUDIENCE || undefined;
const TEST_HOOKS = process.env.DOWNSTREAM_TEST_HOOKS === '1';
const ORIGIN = `http://${HOST}:${PORT}`;

const bearerOf = tokenChecker({ issuer: ISSUER, audience: AUDIENCE });
const newServer = (transportName) => serverWith(transportName, bearerOf);

const streamable = new Map(); // Mcp-Session-Id → transport
const legacy = new Map(); // sessionId → SSEServerTransport
const recent = [];
let fault = 'none';

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function authorized(req, res) {
  if (!ISSUER) return true;
  const bearer = await bearerOf(req.headers);
  if (bearer.verified) return true;
  const challenge = `Bearer error="invalid_token", error_description="${bearer.present ? 'token refused' : 'token required'}", resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource"`;
  json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': challenge });
  return false;
}

async function handle(req, res) {
  const url = new URL(req.url, ORIGIN);
  if (TEST_HOOKS && url.pathname === '/__requests') return json(res, 200, recent);
  if (TEST_HOOKS && url.pathname === '/__fault' && req.method === 'POST') {
    fault = JSON.parse(await readBody(req)).mode ?? 'none';
    return json(res, 200, { fault });
  }
  if (url.pathname === '/health') return json(res, 200, { status: 'ok' });

  const entry = {
    method: req.method, path: url.pathname, at: Date.now(), ended: null,
    headers: Object.fromEntries(await Promise.all(Object.entries(req.headers).map(async ([k, v]) => [k, k === 'authorization' ? `${String(v).split(' ')[0]} ${await fingerprint(String(v).split(' ')[1] ?? '')}` : v]))),
  };
  recent.push(entry);
  if (recent.length > 1000) recent.shift();
  // How the exchange ended: the whole answer sent, or the connection closed under it (the
  // gateway's client went away and the gateway cancelled this request).
  res.on('close', () => {
    entry.ended = res.writableFinished ? 'finished' : 'aborted';
    entry.endedAt = Date.now();
  });

  if (fault === 'hang') return; // never answers
  if (fault === 'reset') return req.socket.destroy();
  if (fault === 'garbage') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end('<html><body>Welcome to nginx!</body></html>');
  }
  if (fault === 'unauthorized') {
    const challenge = `Bearer error="invalid_token", error_description="the downstream refused the token", resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource"`;
    return json(res, 401, { error: 'invalid_token', error_description: 'the downstream refused the token' }, { 'www-authenticate': challenge });
  }
  if (!(await authorized(req, res))) return;

  if (url.pathname === '/mcp') {
    const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || 'null') : undefined;
    const sid = req.headers['mcp-session-id'];
    let transport = sid ? streamable.get(sid) : undefined;
    if (sid && !transport) return json(res, 404, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
    if (!transport) {
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => streamable.set(id, transport),
      });
      transport.onclose = () => transport.sessionId && streamable.delete(transport.sessionId);
      await newServer('streamable-http').connect(transport);
    }
    return transport.handleRequest(req, res, body);
  }
  if (url.pathname === '/sse' && req.method === 'GET') {
    const transport = new SSEServerTransport('/messages', res);
    legacy.set(transport.sessionId, transport);
    res.on('close', () => legacy.delete(transport.sessionId));
    return newServer('sse').connect(transport);
  }
  if (url.pathname === '/messages' && req.method === 'POST') {
    const transport = legacy.get(url.searchParams.get('sessionId'));
    if (!transport) return json(res, 404, { error: 'unknown session' });
    return transport.handlePostMessage(req, res, JSON.parse(await readBody(req)));
  }
  json(res, 404, { error: 'not_found' });
}

const http = createServer((req, res) => {
  handle(req, res).catch((e) => {
    console.error('downstream:', e);
    if (!res.headersSent) json(res, 500, { error: 'server_error' });
  });
});
http.listen(PORT, HOST, () => {
  console.log(`Downstream MCP server (TypeScript SDK) on ${ORIGIN}/mcp and ${ORIGIN}/sse` +
    (ISSUER ? `, verifying tokens of ${ISSUER}` : ''));
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
