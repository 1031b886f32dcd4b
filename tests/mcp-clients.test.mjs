// Independent MCP clients against the MCP worker in workerd, with tokens from the real flow:
//   - the rmcp crate's client (tests/rmcp-client, a native Rust binary built by scripts/test with
//     `cargo build -p rmcp-client`), in the session era and in 2026-07-28 (MCP_ERA=modern);
//   - MCP Inspector in CLI mode (`--header "Authorization: Bearer …"`);
//   - mcp-remote (what Claude Desktop's config runs), driven headlessly (support/mcp-remote.mjs),
//     by default (legacy) and with `--protocol auto` (lands in 2026-07-28), the latter behind a
//     recording loopback proxy that shows what it sent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTestStack, freePort, ROOT } from './support/stack.mjs';
import { CookieJar, getMcpToken } from './support/flow.mjs';
import { followAuthorization } from './support/sdk-oauth.mjs';
import { signInThroughBrowser, startMcpRemote } from './support/mcp-remote.mjs';
import { startBearerProxy } from './support/bearer-proxy.mjs';

const TOOL_NAMES = ['who_am_I', 'get_my_todo_list', 'create_new_todo', 'toggle_todo_status', 'deleteTodo'];
const INSPECTOR_DIR = join(ROOT, 'node_modules', '@modelcontextprotocol', 'inspector-cli', 'build');

let stack;
let token; // alice's MCP access token from the real flow
let recorderPort; // the recording proxy's, a redirect target of the worker's IdP client
const scratch = mkdtempSync(join(tmpdir(), 'mcp-clients-'));

before(async () => {
  // Behind the recording proxy (which keeps the client's Host) the worker's origin is the
  // proxy's, so its /callback there must be a redirect URI the stand-in IdP knows.
  const mcp = await freePort();
  recorderPort = await freePort();
  stack = await startTestStack({
    ports: { mcp },
    idpEnv: {
      MCP_REDIRECT_URIS: [mcp, recorderPort].flatMap((p) => [`http://127.0.0.1:${p}/callback`, `http://localhost:${p}/callback`]).join(' '),
    },
  });
  token = (await getMcpToken(stack, { user: 'alice' })).access_token;
});

after(async () => {
  await stack?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** Runs a command to completion: { code, stdout, stderr }. */
function run(cmd, args, { env = {}, cwd = ROOT, timeoutMs = 300_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

// ---- rmcp ------------------------------------------------------------------------------------

// Built by scripts/test (`cargo build -p rmcp-client`) before the node tests.
const RMCP_CLIENT = join(process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target'), 'debug', 'rmcp-client');

function rmcpClient(env) {
  assert.ok(existsSync(RMCP_CLIENT), `${RMCP_CLIENT} is missing: cargo build -p rmcp-client (scripts/test does)`);
  return run(RMCP_CLIENT, [], { env, timeoutMs: 60_000 });
}

test('the rmcp client: initialize, tools/list, every tool and the error cases', async () => {
  const ok = await rmcpClient({ MCP_URL: stack.mcpUrl, MCP_TOKEN: token });
  assert.equal(ok.code, 0, `rmcp-client failed: ${ok.stderr}`);
  const summary = JSON.parse(ok.stdout.trim().split('\n').pop());
  assert.equal(summary.ok, true);
  assert.deepEqual(summary.tools, TOOL_NAMES);
  assert.equal(summary.server.name, 'pingone-mcp-worker');
  assert.ok(['2025-11-25', '2025-06-18', '2025-03-26'].includes(summary.protocolVersion), summary.protocolVersion);

  // The same client without a valid token is turned away before the session starts.
  const denied = await rmcpClient({ MCP_URL: stack.mcpUrl, MCP_TOKEN: 'not-a-token' });
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /rmcp-client: initialize/);
});

test('the rmcp client in 2026-07-28 (server/discover, no initialize): tools/list, every tool, the error cases', async () => {
  const recorder = await startBearerProxy({ target: stack.mcpOrigin, token });
  try {
    const ok = await rmcpClient({ MCP_URL: `${recorder.url}/mcp`, MCP_TOKEN: token, MCP_ERA: 'modern' });
    assert.equal(ok.code, 0, `rmcp-client failed: ${ok.stderr}`);
    const summary = JSON.parse(ok.stdout.trim().split('\n').pop());
    assert.equal(summary.ok, true);
    assert.deepEqual(summary.tools, TOOL_NAMES);
    assert.equal(summary.server.name, 'pingone-mcp-worker');
    assert.equal(summary.protocolVersion, '2026-07-28');
    assertModernWire(recorder.requests, { calls: 8 });
  } finally {
    await recorder.close();
  }
});

/**
 * What a client of the 2026-07-28 era sent, as a recording proxy saw it: server/discover and
 * `calls` tools/call, every POST with Mcp-Method and MCP-Protocol-Version 2026-07-28 (a
 * session-era initialize has neither), and no Mcp-Session-Id ever handed out.
 */
function assertModernWire(requests, { calls }) {
  const posts = requests.filter((r) => r.method === 'POST' && r.path.startsWith('/mcp'));
  const shown = JSON.stringify(posts);
  assert.ok(posts.some((r) => r.mcpMethod === 'server/discover' && r.status === 200), shown);
  assert.ok(posts.filter((r) => r.mcpMethod === 'tools/call').length >= calls, shown);
  for (const r of posts) {
    assert.equal(r.protocolVersion, '2026-07-28', shown);
    assert.ok(r.mcpMethod, shown);
  }
  assert.deepEqual(requests.filter((r) => r.responseSessionId || r.sessionId), [], 'no session');
}

// ---- MCP Inspector CLI -----------------------------------------------------------------------

/**
 * `mcp-inspector-cli --cli <url> …`. Run from its build directory: 1.0.3 looks for its
 * package.json relative to the working directory and fails from anywhere else.
 */
async function inspector(url, transport, args, bearer = token) {
  const headers = bearer ? ['--header', `Authorization: Bearer ${bearer}`] : [];
  return run(process.execPath, [join(INSPECTOR_DIR, 'cli.js'), '--cli', url, '--transport', transport, ...headers, ...args], {
    cwd: INSPECTOR_DIR, timeoutMs: 60_000,
  });
}

function inspectorJson(r) {
  assert.equal(r.code, 0, `inspector failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('MCP Inspector CLI over Streamable HTTP lists and calls the tools with the bearer token', async () => {
  const listed = inspectorJson(await inspector(stack.mcpUrl, 'http', ['--method', 'tools/list']));
  assert.deepEqual(listed.tools.map((t) => t.name), TOOL_NAMES);

  const who = inspectorJson(await inspector(stack.mcpUrl, 'http', ['--method', 'tools/call', '--tool-name', 'who_am_I']));
  assert.notEqual(who.isError, true);
  assert.equal(JSON.parse(who.content[0].text).user.preferred_username, 'alice');

  const label = `from inspector ${randomBytes(4).toString('hex')}`;
  const created = inspectorJson(await inspector(stack.mcpUrl, 'http', [
    '--method', 'tools/call', '--tool-name', 'create_new_todo', '--tool-arg', `text=${label}`,
  ]));
  const todo = created.structuredContent.todos.find((t) => t.text === label);
  assert.ok(todo, JSON.stringify(created));
  // The CLI parses values as JSON, so an ID made of digits is quoted to stay a string.
  const toggled = inspectorJson(await inspector(stack.mcpUrl, 'http', [
    '--method', 'tools/call', '--tool-name', 'toggle_todo_status',
    '--tool-arg', `todoId=${JSON.stringify(todo.id)}`, 'completed=true',
  ]));
  assert.equal(toggled.structuredContent.todos.find((t) => t.id === todo.id).completed, true);
  const deleted = inspectorJson(await inspector(stack.mcpUrl, 'http', [
    '--method', 'tools/call', '--tool-name', 'deleteTodo', '--tool-arg', `todoId=${JSON.stringify(todo.id)}`,
  ]));
  assert.equal(deleted.structuredContent.todos.some((t) => t.id === todo.id), false);
});

test('MCP Inspector CLI over legacy SSE, and without a token it is refused', async () => {
  const listed = inspectorJson(await inspector(stack.sseUrl, 'sse', ['--method', 'tools/list']));
  assert.deepEqual(listed.tools.map((t) => t.name), TOOL_NAMES);
  const todos = inspectorJson(await inspector(stack.sseUrl, 'sse', ['--method', 'tools/call', '--tool-name', 'get_my_todo_list']));
  assert.ok(Array.isArray(todos.structuredContent.todos));

  const anonymous = await inspector(stack.mcpUrl, 'http', ['--method', 'tools/list'], null);
  assert.notEqual(anonymous.code, 0);
  assert.match(anonymous.stderr, /Missing bearer token|401|Unauthorized/i);
});

// ---- mcp-remote ------------------------------------------------------------------------------

/** initialize → initialized → tools/list → who_am_I through a connected mcp-remote. */
async function useTools(remote) {
  await remote.waitFor(() => /Proxy established|Local STDIO server running/.test(remote.stderr), 'the proxy');
  const init = await remote.request('initialize', {
    protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'claude-desktop-stand-in', version: '1.0.0' },
  });
  assert.equal(init.error, undefined, JSON.stringify(init.error));
  assert.equal(init.result.serverInfo.name, 'pingone-mcp-worker');
  assert.ok(init.result.capabilities.tools);
  remote.notify('notifications/initialized');
  const listed = await remote.request('tools/list');
  assert.deepEqual(listed.result.tools.map((t) => t.name), TOOL_NAMES);
  const who = await remote.request('tools/call', { name: 'who_am_I', arguments: {} });
  assert.notEqual(who.result.isError, true, JSON.stringify(who.result));
  return JSON.parse(who.result.content[0].text);
}

test('mcp-remote signs in through the browser it opens, then proxies stdio to Streamable HTTP; a restart is silent', async () => {
  const configDir = join(scratch, 'mcp-remote-http');
  const first = await startMcpRemote(stack.mcpUrl, configDir);
  try {
    await first.waitFor(() => first.browserUrls().length > 0, 'the browser to be opened');
    assert.match(first.stderr, /Please authorize this client by visiting/);
    const [url] = first.browserUrls();
    const authorize = new URL(url);
    assert.equal(authorize.origin + authorize.pathname, `${stack.mcpOrigin}/authorize`);
    assert.equal(authorize.searchParams.get('resource'), stack.mcpUrl);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    const redirectUri = authorize.searchParams.get('redirect_uri');
    assert.equal(redirectUri, `http://127.0.0.1:${first.port}/oauth/callback`);

    const trip = await followAuthorization(url, { jar: new CookieJar(), user: 'alice', redirectUri });
    assert.equal(trip.consentShown, true);
    assert.equal(trip.idpLogin, true);
    // The "browser" lands on mcp-remote's own callback server.
    const landing = await fetch(trip.redirect);
    assert.equal(landing.status, 200);
    await landing.arrayBuffer();

    const who = await useTools(first);
    assert.equal(who.user.preferred_username, 'alice');
    const label = `via mcp-remote ${randomBytes(4).toString('hex')}`;
    const created = await first.request('tools/call', { name: 'create_new_todo', arguments: { text: label } });
    assert.ok(created.result.structuredContent.todos.some((t) => t.text === label));
  } finally {
    await first.close();
  }

  // Claude Desktop restarted: the tokens mcp-remote stored are used, no browser opens.
  const second = await startMcpRemote(stack.mcpUrl, configDir);
  try {
    const who = await useTools(second);
    assert.equal(who.user.preferred_username, 'alice');
    assert.equal(second.browserUrls().length, 1, 'no second browser window');
    assert.doesNotMatch(second.stderr, /Please authorize/);
    const listed = await second.request('tools/call', { name: 'get_my_todo_list', arguments: {} });
    assert.ok(listed.result.structuredContent.todos.some((t) => t.text.startsWith('via mcp-remote')));
  } finally {
    await second.close();
  }
});

test('mcp-remote given the /sse URL falls back from Streamable HTTP (405) to legacy SSE, signs in and proxies', async () => {
  const configDir = join(scratch, 'mcp-remote-sse');
  // The default strategy (http-first), as a Claude Desktop config with an /sse URL runs it.
  const remote = await startMcpRemote(stack.sseUrl, configDir);
  try {
    await remote.waitFor(() => remote.browserUrls().length > 0, 'the browser to be opened');
    const [url] = remote.browserUrls();
    const redirectUri = new URL(url).searchParams.get('redirect_uri');
    const trip = await followAuthorization(url, { jar: new CookieJar(), user: 'bob', redirectUri });
    assert.equal(trip.consentShown, true);
    const landing = await fetch(trip.redirect);
    assert.equal(landing.status, 200);
    await landing.arrayBuffer();
    const who = await useTools(remote);
    assert.equal(who.user.preferred_username, 'bob');
    assert.match(remote.stderr, /status 405/);
    assert.match(remote.stderr, /Connected to remote server using SSEClientTransport/);
    const todos = await remote.request('tools/call', { name: 'get_my_todo_list', arguments: {} });
    assert.equal(todos.result.structuredContent.todos.some((t) => t.text.startsWith('via mcp-remote')), false,
      'bob does not see alice\'s todos');
  } finally {
    await remote.close();
  }
});

test('mcp-remote --protocol auto signs in through the browser, then speaks 2026-07-28 (no session) for its stdio client', async () => {
  // Host kept: the worker is the authorization server and MCP server at the recorder's origin.
  const recorder = await startBearerProxy({ target: stack.mcpOrigin, token: null, port: recorderPort });
  const configDir = join(scratch, 'mcp-remote-auto');
  const remote = await startMcpRemote(`${recorder.url}/mcp`, configDir, ['--protocol', 'auto']);
  try {
    const { trip } = await signInThroughBrowser(remote, 'alice');
    assert.equal(trip.consentShown, true);
    // The stdio side is the session era as ever (mcp-remote answers its initialize itself).
    const who = await useTools(remote);
    assert.equal(who.user.preferred_username, 'alice');
    const label = `via mcp-remote auto ${randomBytes(4).toString('hex')}`;
    const created = await remote.request('tools/call', { name: 'create_new_todo', arguments: { text: label } });
    assert.ok(created.result.structuredContent.todos.some((t) => t.text === label), JSON.stringify(created));

    // Before sign-in the probe was refused (401), after it the probe found the modern era.
    const probes = recorder.requests.filter((r) => r.mcpMethod === 'server/discover');
    assert.equal(probes[0]?.status, 401, `the first server/discover probe: ${JSON.stringify(recorder.requests)}`);
    assertModernWire(recorder.requests, { calls: 2 });
  } finally {
    await remote.close();
    await recorder.close();
  }
});
