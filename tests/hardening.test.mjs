// Hardening of the MCP worker in workerd (wrangler dev), black-box:
//   - request bodies are capped while they are read: a chunked upload (no Content-Length) past
//     the 4 MiB cap is refused with 413 as soon as it passes the cap, without waiting for its end;
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startTestStack } from './support/stack.mjs';

const CAP = 4 * 1024 * 1024;

let stack;
before(async () => {
  stack = await startTestStack({ todoApi: false });
});
after(async () => {
  await stack?.stop();
});

// ---- request bodies -----------------------------------------------------------------------------

/**
 * POSTs a chunked body to `path`: `total` bytes in 64 KiB chunks, then, unless `end`, nothing more
 * (the upload stays open). Resolves with the response status and body once the worker answers.
 */
function chunkedPost(path, { total, end, contentType = 'application/x-www-form-urlencoded', body }) {
  const url = new URL(path, stack.mcpOrigin);
  return new Promise((resolve, reject) => {
    const req = request({ hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent: false, headers: { 'content-type': contentType } });
    assert.equal(req.getHeader('content-length'), undefined);
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => { resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }); req.destroy(); });
    });
    req.on('error', (e) => { if (!req.destroyed) reject(e); });
    if (body !== undefined) {
      req.end(body);
      return;
    }
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) { req.once('drain', pump); return; }
      }
      if (end) req.end();
    };
    pump();
  });
}

test('a chunked body is read as it comes: a small one is served', async () => {
  const body = JSON.stringify({ client_name: 'Chunked', redirect_uris: ['http://127.0.0.1:33418/callback'], token_endpoint_auth_method: 'none' });
  const r = await chunkedPost('/register', { body, contentType: 'application/json' });
  assert.equal(r.status, 201, r.text);
  assert.ok(JSON.parse(r.text).client_id);
});

// Last in the file: after an upload it was still forwarding is cut off, wrangler dev's local proxy
// (not the worker) answers later requests with 503 "Your worker restarted mid-request" or hangs.
test('a chunked body past the cap is refused with 413 without waiting for its end', async () => {
  const started = Date.now();
  // One chunk past the cap, and then the upload just stays open: only a read that stops at the
  // cap can answer.
  const r = await Promise.race([
    chunkedPost('/token', { total: CAP + 64 * 1024, end: false }),
    new Promise((_, j) => setTimeout(() => j(new Error('no answer while the upload was still open')), 60_000)),
  ]);
  assert.equal(r.status, 413, r.text.slice(0, 200));
  assert.equal(JSON.parse(r.text).error, 'invalid_request');
  assert.ok(Date.now() - started < 60_000);
});
