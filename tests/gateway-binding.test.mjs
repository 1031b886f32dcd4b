// The identity gateway in front of a downstream MCP server that is a Worker on the same account,
// reached through the DOWNSTREAM_MCP service binding (no public round trip): the TypeScript SDK's
// McpServer on its web-standard Streamable HTTP transport (tests/downstream-worker/) under its
// own `wrangler dev`, which the stack's dev registry binds the MCP worker to. DOWNSTREAM_MCP_URL
// is set too, to a loopback port where nothing listens: the binding wins, and the URL only names
// the path and host the forwarded requests carry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startTestStack, freePort } from './support/stack.mjs';
import { TestOAuthProvider, connectClient } from './support/sdk-oauth.mjs';
import { eventually, revokeRefreshToken } from './support/flow.mjs';

const GRANT_CHECK_SECS = 1;
let stack;
let unusedUrl;

before(async () => {
  // Nothing ever listens here: a request that went out to this URL would fail.
  unusedUrl = `http://127.0.0.1:${await freePort()}/tenant-a/mcp`;
  stack = await startTestStack({
    todoApi: false,
    downstream: { worker: true, url: unusedUrl },
    mcpVars: { SSE_GRANT_CHECK_SECS: String(GRANT_CHECK_SECS) },
  });
});

after(async () => {
  await stack?.stop();
});

/** What the downstream Worker saw, oldest first. */
async function downstreamRequests() {
  return (await fetch(`${stack.downstreamUrl}/__requests`)).json();
}

test('the SDK client reaches a downstream Worker through the service binding, with the user\'s identity', async () => {
  const provider = new TestOAuthProvider({ user: 'alice' });
  const { client, transport, signedIn } = await connectClient('http', stack.mcpUrl, provider);
  try {
    assert.equal(signedIn, true);
    assert.equal(client.getServerVersion().name, 'downstream-test-mcp');
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['countdown', 'echo', 'notify_later', 'whoami']);
    const echoed = await client.callTool({ name: 'echo', arguments: { text: 'over the binding' } });
    assert.equal(echoed.content[0].text, 'over the binding');

    const report = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
    assert.equal(report.transport, 'streamable-http (worker)', 'the Worker answered');
    // DOWNSTREAM_MCP_URL names the request; nothing listens there, so it came through the binding.
    assert.equal(report.url, unusedUrl);
    assert.equal(report.bearer.verified, true, `the downstream verified the PingOne token: ${JSON.stringify(report.bearer)}`);
    assert.equal(report.bearer.claims.aud, stack.downstreamUrl, 'the token is for the downstream');
    assert.equal(report.identityHeaders['x-user-sub'], report.bearer.claims.sub);
    assert.equal(report.identityHeaders['x-user-username'], 'alice');
    assert.equal(report.identityHeaders['x-user-email'], 'alice@example.com');
    for (const gone of ['cookie', 'x-forwarded-for', 'origin']) {
      assert.ok(!report.headerNames.includes(gone), `${gone} reached the downstream`);
    }
    assert.match(transport.sessionId, /^g1\./, 'the client holds a sealed session id');
    assert.ok(!transport.sessionId.includes(report.sessionId));

    // SSE answers stream through the binding as they are sent.
    const arrived = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => arrived.push({ at: Date.now(), step: n.params.data.step }));
    const intervalMs = 400;
    await client.callTool({ name: 'countdown', arguments: { steps: 3, intervalMs } });
    const answeredAt = Date.now();
    assert.deepEqual(arrived.map((a) => a.step), [3, 2, 1]);
    assert.ok(answeredAt - arrived[0].at >= 2.5 * intervalMs, `first notification ${answeredAt - arrived[0].at} ms before the result`);
  } finally {
    await client.close();
  }
});

test('the standalone GET /mcp stream over the binding ends once its grant is revoked, cancelling the downstream request', async () => {
  const provider = new TestOAuthProvider({ user: 'bob' });
  const before = (await downstreamRequests()).length;
  const { client } = await connectClient('http', stack.mcpUrl, provider);
  try {
    const open = await eventually(async () => (await downstreamRequests()).slice(before)
      .find((r) => r.method === 'GET' && r.path.endsWith('/mcp') && r.ended === null), 'the client\'s GET /mcp stream to be open downstream');
    assert.equal(open.url, unusedUrl);
    assert.equal(await revokeRefreshToken(stack.mcpOrigin, provider.clientInformation().client_id, provider.tokens().refresh_token), 200);
    const revokedAt = Date.now();
    const bound = GRANT_CHECK_SECS * 1000 + 2500;
    const ended = await eventually(async () => {
      const r = (await downstreamRequests()).slice(before).find((x) => x.at === open.at && x.method === 'GET');
      return r?.ended ? r : undefined;
    }, 'the downstream GET stream to end', bound);
    assert.equal(ended.ended, 'aborted', 'cancelled by the gateway, not finished by the downstream');
    assert.ok(ended.endedAt - revokedAt < bound, `ended ${ended.endedAt - revokedAt} ms after the revocation`);
  } finally {
    await client.close().catch(() => {});
  }
});
