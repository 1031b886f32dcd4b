// A loopback reverse proxy that adds `Authorization: Bearer <token>` to every
// request, so tools without an auth option (the MCP conformance runner) can
// drive the OAuth-protected MCP worker. Streams bodies both ways (SSE), keeps
// the Host header of the target.
//
// With `token: null` it adds nothing and keeps the client's Host: then it is
// only a recorder in front of the worker (whose origin becomes the proxy's),
// sign-in included.
//
// Every request is recorded in `requests` (for black-box assertions on what a
// client sent): { method, path, mcpMethod, protocolVersion, sessionId, status,
// responseSessionId } — the MCP headers as sent, the status and Mcp-Session-Id
// as answered.
import { createServer, request } from 'node:http';

/** Starts the proxy on 127.0.0.1:`port` (0 = any); returns { url, port, requests, close() }. */
export async function startBearerProxy({ target, token, port = 0 }) {
  const upstream = new URL(target);
  const requests = [];
  const server = createServer((req, res) => {
    const headers = token == null
      ? { ...req.headers }
      : { ...req.headers, host: upstream.host, authorization: `Bearer ${token}` };
    const record = {
      method: req.method,
      path: req.url,
      mcpMethod: req.headers['mcp-method'],
      protocolVersion: req.headers['mcp-protocol-version'],
      sessionId: req.headers['mcp-session-id'],
    };
    requests.push(record);
    const out = request(
      { hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (up) => {
        record.status = up.statusCode;
        record.responseSessionId = up.headers['mcp-session-id'];
        res.writeHead(up.statusCode, up.headers);
        res.flushHeaders();
        up.pipe(res);
      },
    );
    out.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy error: ${e.message}`);
    });
    req.pipe(out);
    res.on('close', () => out.destroy());
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const actual = server.address().port;
  return {
    port: actual,
    url: `http://127.0.0.1:${actual}`,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}
