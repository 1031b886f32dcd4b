// A real MCP 2026-07-28 server built with the official TypeScript SDK v2
// (@modelcontextprotocol/server, createMcpHandler: stateless, no sessions), standing for a
// modern "team's own MCP server" behind the worker in proxy mode. The twin of
// local/downstream-mcp.mjs (SDK 1.x, the session era): the same settings and test hooks, and
// tools that report what each request arrived with.
//
//   node local/downstream-mcp-modern.mjs
//     DOWNSTREAM_HOST / DOWNSTREAM_PORT   where to listen (127.0.0.1:9100)
//     DOWNSTREAM_ISSUER / DOWNSTREAM_AUDIENCE  verify bearer tokens (see downstream-mcp.mjs)
//     DOWNSTREAM_LEGACY                   'reject' (default: modern only, session-era requests
//                                         get UnsupportedProtocolVersion) or 'stateless' (also
//                                         serves them, statelessly)
//     DOWNSTREAM_TEST_HOOKS=1             GET /__requests: headers of recent requests (tokens as
//                                         fingerprints) and their JSON-RPC method
//
// Tools: whoami (the bearer token's claims, the X-User-* headers, the MCP request headers
// (MCP-Protocol-Version, Mcp-Method, Mcp-Name, Mcp-Param-*) and the names of every header),
// echo {text, region?} (region is mirrored into Mcp-Param-Region by conforming clients).
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { createMcpHandler, fromJsonSchema, McpServer } from '@modelcontextprotocol/server';
import { fingerprint, tokenChecker } from './downstream-tools.mjs';

const HOST = process.env.DOWNSTREAM_HOST ?? '127.0.0.1';
const PORT = Number(process.env.DOWNSTREAM_PORT ?? 9100);
const ISSUER = process.env.DOWNSTREAM_ISSUER || undefined;
const AUDIENCE = process.env.DOWNSTREAM_AUDIENCE || undefined;
const LEGACY = process.env.DOWNSTREAM_LEGACY === 'stateless' ? 'stateless' : 'reject';
const TEST_HOOKS = process.env.DOWNSTREAM_TEST_HOOKS === '1';
const ORIGIN = `http://${HOST}:${PORT}`;

const bearerOf = tokenChecker({ issuer: ISSUER, audience: AUDIENCE });
const recent = [];

const pick = (headers, test) => Object.fromEntries([...headers].filter(([k]) => test(k)));

function newServer({ era }) {
  const server = new McpServer({ name: 'downstream-test-mcp-modern', version: '2.0.0' });
  server.registerTool('whoami', { description: 'The identity and MCP headers this request arrived with' }, async (ctx) => {
    const headers = ctx.http?.req?.headers ?? new Headers();
    const lower = Object.fromEntries([...headers]);
    const report = {
      era,
      url: ctx.http?.req?.url ?? null,
      bearer: await bearerOf(lower),
      identityHeaders: pick(headers, (k) => k.startsWith('x-user-')),
      mcpHeaders: pick(headers, (k) => k.startsWith('mcp-')),
      headerNames: Object.keys(lower).sort(),
    };
    return { content: [{ type: 'text', text: JSON.stringify(report) }] };
  });
  server.registerTool('echo', {
    description: 'Echoes text (and the region, mirrored into the Mcp-Param-Region header)',
    inputSchema: fromJsonSchema({
      type: 'object',
      properties: { text: { type: 'string' }, region: { type: 'string', 'x-mcp-header': 'Region' } },
      required: ['text'],
    }),
  }, async ({ text, region }, ctx) => ({
    content: [{ type: 'text', text: JSON.stringify({ text, region: region ?? null, regionHeader: ctx.http?.req?.headers.get('mcp-param-region') ?? null }) }],
  }));
  return server;
}

const handler = createMcpHandler(newServer, { legacy: LEGACY, responseMode: 'json' });

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function handle(req, res) {
  const url = new URL(req.url, ORIGIN);
  if (TEST_HOOKS && url.pathname === '/__requests') return json(res, 200, recent);
  if (url.pathname === '/health') return json(res, 200, { status: 'ok' });
  const body = req.method === 'POST' ? await readBody(req) : undefined;
  let method = null;
  try { method = body ? JSON.parse(body.toString('utf8')).method ?? null : null; } catch {}
  recent.push({
    method: req.method, path: url.pathname, at: Date.now(), rpcMethod: method,
    headers: Object.fromEntries(await Promise.all(Object.entries(req.headers).map(async ([k, v]) => [k, k === 'authorization' ? `${String(v).split(' ')[0]} ${await fingerprint(String(v).split(' ')[1] ?? '')}` : v]))),
  });
  if (recent.length > 1000) recent.shift();

  if (ISSUER) {
    const bearer = await bearerOf(req.headers);
    if (!bearer.verified) {
      const challenge = `Bearer error="invalid_token", resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource"`;
      return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': challenge });
    }
  }
  if (url.pathname !== '/mcp') return json(res, 404, { error: 'not_found' });
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  const request = new Request(url, { method: req.method, headers, body: body?.length ? body : undefined });
  const response = await handler.fetch(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (!response.body) return res.end();
  Readable.fromWeb(response.body).pipe(res);
}

const http = createServer((req, res) => {
  handle(req, res).catch((e) => {
    console.error('downstream:', e);
    if (!res.headersSent) json(res, 500, { error: 'server_error' });
  });
});
http.listen(PORT, HOST, () => {
  console.log(`Downstream MCP server (TypeScript SDK v2, MCP 2026-07-28, legacy: ${LEGACY}) on ${ORIGIN}/mcp` +
    (ISSUER ? `, verifying tokens of ${ISSUER}` : ''));
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
