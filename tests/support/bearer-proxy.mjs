// A loopback reverse proxy that adds `Authorization: Bearer <token>` to every
// request, so tools without an auth option (the MCP conformance runner) can
// drive the OAuth-protected MCP worker. Streams bodies both ways (SSE), keeps
// the Host header of the target.
import { createServer, request } from 'node:http';

/** Starts the proxy on 127.0.0.1:`port` (0 = any); returns { url, port, close() }. */
export async function startBearerProxy({ target, token, port = 0 }) {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const headers = { ...req.headers, host: upstream.host, authorization: `Bearer ${token}` };
    const out = request(
      { hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (up) => {
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
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}
