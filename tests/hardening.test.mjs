// Hardening of the MCP worker in workerd (wrangler dev), black-box:
//   - request bodies are capped while they are read: a chunked upload (no Content-Length) past
//     the 4 MiB cap is refused with 413 as soon as it passes the cap, without waiting for its end;
//   - a legacy SSE stream ends when the grant it was opened with is gone: found by the session's
//     alarm (SSE_GRANT_CHECK_SECS, shortened here); a re-authorization of the same client (a
//     step-up) keeps it, the new grant taking it over;
//   - a sign-in that a foreign page starts in the user's browser (consent skipped for an approved
//     client) ends no grant: older grants end only when the new code is exchanged.
// (Expiry of a session, 30 days, is covered by the native tests of mcp::stream_watch.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startTestStack } from './support/stack.mjs';
import { CookieJar, authorize, exchangeCode, getMcpToken, refresh } from './support/flow.mjs';

const CHECK_SECS = 20;
const CAP = 4 * 1024 * 1024;

let stack;
before(async () => {
  stack = await startTestStack({ todoApi: false, mcpVars: { SSE_GRANT_CHECK_SECS: String(CHECK_SECS) } });
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

// ---- legacy SSE streams -----------------------------------------------------------------------

/** Opens GET /sse with `token`; returns { endpoint, next(ms) → next event or 'closed' | 'timeout', close() }. */
async function openSse(token) {
  const ac = new AbortController();
  const res = await fetch(stack.sseUrl, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` }, signal: ac.signal });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let closed = false;
  const next = async (ms) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const frames = buffer.split('\n\n');
      while (frames.length > 1) {
        const frame = frames.shift();
        buffer = frames.join('\n\n');
        if (frame.startsWith(':')) continue; // keep-alive comment
        const event = /^event: (.*)$/m.exec(frame)?.[1] ?? 'message';
        const data = frame.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        return { event, data };
      }
      if (closed) return 'closed';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      const read = await Promise.race([reader.read(), new Promise((r) => setTimeout(() => r('timeout'), left))]);
      if (read === 'timeout') return 'timeout';
      if (read.done) closed = true;
      else buffer += decoder.decode(read.value, { stream: true });
    }
  };
  const first = await next(10_000);
  assert.equal(first.event, 'endpoint');
  return { endpoint: new URL(first.data, stack.mcpOrigin).toString(), next, close: () => ac.abort() };
}

function postMessage(endpoint, token, message) {
  return fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(message),
  });
}

const initialize = {
  jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'hardening-test', version: '1' } },
};

/** Opens a stream and shows it works: initialize is answered on it. */
async function liveStream(token) {
  const sse = await openSse(token);
  const res = await postMessage(sse.endpoint, token, initialize);
  assert.equal(res.status, 202, await res.text());
  const answer = await sse.next(10_000);
  assert.equal(answer.event, 'message');
  assert.equal(JSON.parse(answer.data).id, 1);
  return sse;
}

test('an SSE stream ends once its grant is revoked (found by the session alarm)', async () => {
  const { access_token: token, refresh_token: refresh, client } = await getMcpToken(stack, { user: 'bob' });
  const sse = await liveStream(token);
  try {
    const revoked = await fetch(`${stack.mcpOrigin}/revoke`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: refresh, token_type_hint: 'refresh_token', client_id: client.client_id }),
    });
    assert.equal(revoked.status, 200);
    const started = Date.now();
    // Keep-alives would come every 20 s forever; the stream must end within one check interval.
    const end = await sse.next((CHECK_SECS + 15) * 1000);
    assert.equal(end, 'closed', `stream still open ${Date.now() - started} ms after the revocation`);
  } finally {
    sse.close();
  }
});

test('a re-authorization of the client keeps its SSE stream: the new grant takes it over', async () => {
  const jar = new CookieJar();
  const first = await getMcpToken(stack, { user: 'alice', jar });
  const sse = await liveStream(first.access_token);
  try {
    // The same client signs in again (a step-up does): the new grant replaces the one the stream
    // was opened with once its code is exchanged.
    const again = await authorize({ mcpOrigin: stack.mcpOrigin, client: first.client, jar, user: 'alice' });
    assert.ok(again.code, again.redirect);
    const second = await exchangeCode({ mcpOrigin: stack.mcpOrigin, client: first.client, code: again.code, verifier: again.pkce.verifier });
    const ping = await postMessage(sse.endpoint, second.access_token, { jsonrpc: '2.0', id: 2, method: 'ping' });
    assert.equal(ping.status, 202, await ping.text());
    const answer = await sse.next(10_000);
    assert.equal(answer.event, 'message');
    assert.equal(JSON.parse(answer.data).id, 2, 'answered on the same stream');
    // The old grant's token is refused now; the stream lives on under the new grant.
    const old = await postMessage(sse.endpoint, first.access_token, { jsonrpc: '2.0', id: 3, method: 'ping' });
    assert.equal(old.status, 401);
    await old.arrayBuffer();
  } finally {
    sse.close();
  }
});

test('a sign-in another page starts in the user\'s browser does not end the grant the client is using', async () => {
  const jar = new CookieJar();
  const live = await getMcpToken(stack, { user: 'alice', jar });
  // A foreign page sends alice's browser through /authorize with the same public client and
  // redirect URI: consent is skipped (approved before), the IdP signs her in, and the code goes
  // to the client's redirect URI with a state the client never issued, so it is never exchanged.
  for (let i = 0; i < 2; i++) {
    const forged = await authorize({ mcpOrigin: stack.mcpOrigin, client: live.client, jar, user: 'alice' });
    assert.equal(forged.consentShown, false);
    assert.ok(forged.code, forged.redirect);
  }
  const res = await fetch(`${stack.mcpOrigin}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${live.access_token}` },
    body: JSON.stringify({ ...initialize, params: { ...initialize.params, protocolVersion: '2025-06-18' } }),
  });
  assert.equal(res.status, 200, await res.text());
  const refreshed = await refresh({ mcpOrigin: stack.mcpOrigin, client: live.client, refreshToken: live.refresh_token });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  // The client's own new sign-in, exchanged, still replaces the older grant.
  const own = await authorize({ mcpOrigin: stack.mcpOrigin, client: live.client, jar, user: 'alice' });
  await exchangeCode({ mcpOrigin: stack.mcpOrigin, client: live.client, code: own.code, verifier: own.pkce.verifier });
  const replaced = await refresh({ mcpOrigin: stack.mcpOrigin, client: live.client, refreshToken: refreshed.body.refresh_token });
  assert.equal(replaced.status, 400);
  assert.equal(replaced.body.error, 'invalid_grant');
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
