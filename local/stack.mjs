// The local stack: the stand-in IdP (or real PingOne, from .dev.vars), the Todo API
// and the MCP worker, each under `wrangler dev` (workerd) with local KV/DO state.
//
//   node local/stack.mjs          start, print the MCP URL, stop on Ctrl-C
//   node local/stack.mjs gateway  the MCP worker as identity gateway in front of a real
//                                 downstream MCP server (local/downstream-mcp.mjs), no Todo API
//   node local/stack.mjs gateway-modern  the same in front of an MCP 2026-07-28 server
//                                 (local/downstream-mcp-modern.mjs, TypeScript SDK v2)
//   node local/stack.mjs gateway-binding  the same with the downstream as a Worker
//                                 (tests/downstream-worker/) behind the DOWNSTREAM_MCP service binding
//   node local/stack.mjs gateway-vault  the gateway plus the downstream OAuth stand-in and
//                                 DOWNSTREAMS: /mcp/notes, /mcp/v1, /mcp/public, /mcp/whoami
//   node local/stack.mjs stop     stop a stack started from another terminal
//   … --oauth-downstream          also start the downstream OAuth MCP stand-in
//                                 (local/oauth-downstream/, its own users dana / erin) on :9300
//
// Tests import `startStack` with free ports and a throw-away state directory.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, fstatSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');

/** Settings of the stand-in IdP that the MCP worker uses when .dev.vars names no PingOne. */
export const STANDIN = {
  clientId: 'mcp-worker',
  clientSecret: 'dev-secret-change-me',
  // Development-only key; production gets its own with `wrangler secret put`.
  cookieKey: 'local-development-cookie-encryption-key-not-secret',
};

/** Parses a dotenv file (KEY=value, # comments, optional quotes). */
export function parseDotenv(text) {
  const out = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 1) continue;
    let value = line.slice(eq + 1).trim();
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    out[line.slice(0, eq).trim()] = value;
  }
  return out;
}

// A value with double quotes (JSON, e.g. OAUTH_EMA_JWKS) goes in single quotes, which dotenv
// takes literally; in double quotes its escaped quotes would arrive with their backslashes.
function toDotenv(vars) {
  const quoted = (v) => (v.includes('"') && !/['\n]/.test(v) ? `'${v}'` : JSON.stringify(v));
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${quoted(String(v))}`)
    .join('\n') + '\n';
}

/**
 * `wrangler dev` of `config` on 127.0.0.1:`port` with `vars` as its env file, its state under
 * `stateDir/persistAs` and its log in `logsDir`; added to `stack.children`, resolved once ready.
 */
export async function startWranglerDev(stack, { name, config, port, inspector, vars, stateDir, logsDir, persistAs = name, label = name }) {
  const envFile = join(stateDir, `${name}.env`);
  writeFileSync(envFile, toDotenv(vars), { mode: 0o600 });
  const child = startProcess(name, WRANGLER, [
    'dev', '--config', config, '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(inspector), '--persist-to', join(stateDir, persistAs),
    '--env-file', envFile, '--show-interactive-dev-session=false', '--log-level', 'info',
  ], {
    logFile: join(logsDir, `${name}.log`),
    // This stack's own dev registry: service bindings resolve to its workers, never to a
    // worker of the same name in another stack on the machine.
    env: { WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', WRANGLER_REGISTRY_PATH: join(stateDir, 'registry') },
  });
  stack.children.push(child);
  await waitForHttp(`http://127.0.0.1:${port}/`, { child, name: label, logLine: new RegExp(`Ready on http://127\\.0\\.0\\.1:${port}(?=\\s)`) });
}

/** Ports `freePort` has handed out in this process. */
const handedOut = new Set();

/**
 * A TCP port on 127.0.0.1 that was free a moment ago and that no earlier call in this process
 * returned, so the ports of one stack (and of stacks started side by side) never collide. Another
 * process can still take it before it is bound; `startTestStack` then starts again on new ports.
 */
export async function freePort() {
  for (;;) {
    const port = await new Promise((res, rej) => {
      const srv = createServer();
      srv.unref();
      srv.on('error', rej);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address();
        srv.close(() => res(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** What `child` (from startProcess) has written to its log since it was started. */
function logSinceStart(child) {
  try { return readFileSync(child.logFile).subarray(child.logStart).toString(); } catch { return ''; }
}

// What a child's log says when one of its ports was taken. wrangler names the HTTP port; a taken
// inspector port makes workerd exit with only "The Workers runtime failed to start".
const PORT_TAKEN = /EADDRINUSE|address already in use|The Workers runtime failed to start/i;

/**
 * Resolves once `url` answers HTTP at all (any status), or rejects after `timeoutMs`. With
 * `child` and `logLine`, also only once the child's log matches `logLine` (it says it listens):
 * whatever else holds the port answers HTTP too. A child that exits rejects at once, with the
 * end of its log in the message, and `code: 'EADDRINUSE'` when the log says a port was taken.
 */
export async function waitForHttp(url, { timeoutMs = 120_000, child, name = url, logLine } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) {
      const log = child.logFile ? logSinceStart(child) : '';
      const tail = log.trim().split('\n').slice(-8).join('\n');
      const err = new Error(`${name} exited with code ${child.exitCode} before it was ready${tail ? `; its log ends:\n${tail}` : ''}`);
      if (PORT_TAKEN.test(log)) err.code = 'EADDRINUSE';
      throw err;
    }
    try {
      if (child && logLine && !logLine.test(logSinceStart(child))) throw new Error('not listening yet');
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${name} did not answer at ${url} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export function startProcess(name, cmd, args, { env, logFile, cwd = ROOT }) {
  const fd = openSync(logFile, 'a');
  const logStart = fstatSync(fd).size;
  // Own process group, so stopping kills wrangler *and* its workerd child.
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  child.stackName = name;
  child.logFile = logFile;
  child.logStart = logStart;
  return child;
}

export async function stopProcess(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try { process.kill(-child.pid, 'SIGTERM'); } catch { return; }
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, graceMs);
  await exited;
  clearTimeout(timer);
  // workerd may outlive wrangler briefly; make sure the whole group is gone.
  try { process.kill(-child.pid, 'SIGKILL'); } catch {}
}

function runBuild(logFile) {
  return new Promise((res, rej) => {
    const fd = openSync(logFile, 'a');
    const child = spawn(join(ROOT, 'scripts', 'build'), ['all'], { cwd: ROOT, stdio: ['ignore', fd, fd] });
    child.on('exit', (code) => (code === 0 ? res() : rej(new Error(`build failed (exit ${code}); see ${logFile}`))));
  });
}

/**
 * A copy of the wrangler config at `path` (worker `name`), written to `dir`, for `wrangler dev` to run the worker
 * already built: `main` made absolute and no build step (so no rebuild and reload when sources
 * change under a running stack); with `services: false`, also without its service bindings;
 * `addServices` ({ binding: service }) adds service bindings.
 */
function prebuiltConfig(name, path, dir, { services = true, addServices = {} } = {}) {
  let text = readFileSync(path, 'utf8');
  text = text.replace(/^main = "(.*)"$/m, (_, main) => `main = ${JSON.stringify(resolve(dirname(path), main))}`);
  text = text.replace(/^\[build\]\n(?:(?!\[).*\n)*/m, '');
  if (!services) text = text.replace(/^\[\[services\]\]\n(?:(?!\[).*\n)*/gm, '');
  for (const [binding, service] of Object.entries(addServices)) {
    text += `\n[[services]]\nbinding = ${JSON.stringify(binding)}\nservice = ${JSON.stringify(service)}\n`;
  }
  mkdirSync(dir, { recursive: true });
  const added = Object.keys(addServices).map((b) => `${b}.`).join('');
  const out = join(dir, `${name}.${services ? '' : 'no-service-bindings.'}${added}wrangler.toml`);
  writeFileSync(out, text);
  return out;
}

/** The downstream test MCP server as a Worker (tests/downstream-worker/), and its name. */
const DOWNSTREAM_WORKER = { config: join(ROOT, 'tests', 'downstream-worker', 'wrangler.toml'), service: 'downstream-mcp-worker' };

/**
 * Starts the stack. Options (all optional):
 *   ports: { idp, todoApi, mcp, todoApiInspector, mcpInspector }
 *   stateDir: where KV/DO state, IdP keys and generated env files live
 *   logsDir: one log file per process
 *   idp/todoApi/mcp: false to leave a piece out
 *   mcpVars / todoApiVars: extra or overriding settings (e.g. API_URL of a fake)
 *   build: false to skip `scripts/build all` (tests build once up front)
 *   dotenv: path of the .dev.vars to honour (default <root>/.dev.vars; null for none)
 *   extraWorkers: more `wrangler dev` workers, started after the others, each
 *     { name, config, port?, inspectorPort?, vars?, persistWith? }; ports default to free ones,
 *     `vars` may be a function of the stack (e.g. its mcpOrigin); `persistWith: 'mcp'` gives it
 *     the MCP worker's --persist-to directory, so both share its local KV (same namespace id).
 *     Each one's URL is in `stack.workerUrls[name]`.
 *   configs: { mcp, todoApi } wrangler configs to run instead of the repository's (the benchmark
 *     runs a baseline build next to this one)
 *   downstream: true or { testHooks, verifyTokens } to start the downstream MCP server (local/downstream-mcp.mjs,
 *     on ports.downstream) and run the MCP worker as its identity gateway: DOWNSTREAM_MCP_URL and
 *     DOWNSTREAM_SSE_URL name it, and PingOne tokens are for it (API_IDENTIFIER = its origin, which
 *     it verifies as the audience). `testHooks` enables its /__requests and /__fault endpoints;
 *     `verifyTokens: false` makes it accept requests without checking their token (the benchmark
 *     compares calls through the gateway with calls straight to it).
 *     { modern: true } starts local/downstream-mcp-modern.mjs instead (the TypeScript SDK v2,
 *     MCP 2026-07-28 only, stateless, no /sse; `modern: 'dual'` also serves session-era requests).
 *     { worker: true, url } runs it as a Worker instead (tests/downstream-worker/, Streamable HTTP
 *     only, /__requests always on) under `wrangler dev` on ports.downstream, and the MCP worker
 *     reaches it through its DOWNSTREAM_MCP service binding; `url` (optional) becomes
 *     DOWNSTREAM_MCP_URL, the URL its forwarded requests carry.
 *   oauthDownstream: true or { env } to start local/oauth-downstream/server.mjs (on
 *     ports.oauthDownstream): a third-party MCP service with its own authorization server (users
 *     dana / erin) and MCP servers at /mcp, /v1/mcp and /public/mcp that accept only its tokens.
 *     `env` adds or overrides its settings (DS_ACCESS_TTL, DS_CIMD, DS_REFRESH_TTL, DS_USERS);
 *     its state is kept in <stateDir>/oauth-downstream, its log is oauth-downstream.log. Its
 *     origin is `stack.oauthDownstreamUrl`; `stack.oauthDownstream` has { origin, mcpUrl,
 *     v1McpUrl, publicMcpUrl, adminUrl }. It starts before the workers. The MCP worker's
 *     settings are not changed by this option.
 */
export async function startStack(opts = {}) {
  const ports = {
    idp: 9000, todoApi: 8788, mcp: 8787, todoApiInspector: 9230, mcpInspector: 9229, downstream: 9100,
    downstreamInspector: 9231, oauthDownstream: 9300, ...opts.ports,
  };
  const stateDir = resolve(opts.stateDir ?? join(ROOT, '.state', 'dev'));
  const logsDir = resolve(opts.logsDir ?? join(stateDir, 'logs'));
  mkdirSync(logsDir, { recursive: true });
  const want = { idp: opts.idp !== false, todoApi: opts.todoApi !== false, mcp: opts.mcp !== false };

  const dotenvPath = opts.dotenv === undefined ? join(ROOT, '.dev.vars') : opts.dotenv;
  const userVars = dotenvPath && existsSync(dotenvPath) ? parseDotenv(readFileSync(dotenvPath, 'utf8')) : {};
  const usePingOne = Boolean(userVars.PINGONE_ISSUER) && !/^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(userVars.PINGONE_ISSUER);

  const mcpOrigin = `http://127.0.0.1:${ports.mcp}`;
  const todoApiOrigin = `http://127.0.0.1:${ports.todoApi}`;
  const issuer = usePingOne ? userVars.PINGONE_ISSUER : `http://127.0.0.1:${ports.idp}/as`;
  const downstreamOrigin = `http://127.0.0.1:${ports.downstream}`;
  const oauthDownstreamOrigin = `http://127.0.0.1:${ports.oauthDownstream}`;
  const apiIdentifier = userVars.API_IDENTIFIER ?? (opts.downstream ? downstreamOrigin : todoApiOrigin);

  const mcpVars = {
    PINGONE_ISSUER: issuer,
    MCP_SERVER_CLIENT_ID: STANDIN.clientId,
    MCP_SERVER_CLIENT_SECRET: STANDIN.clientSecret,
    API_IDENTIFIER: apiIdentifier,
    API_URL: todoApiOrigin,
    COOKIE_ENCRYPTION_KEY: STANDIN.cookieKey,
    ...userVars,
    ...(usePingOne ? {} : { PINGONE_ISSUER: issuer }),
    ...(opts.downstream && !opts.downstream.worker ? { DOWNSTREAM_MCP_URL: `${downstreamOrigin}/mcp` } : {}),
    ...(opts.downstream && !opts.downstream.worker && !opts.downstream.modern ? { DOWNSTREAM_SSE_URL: `${downstreamOrigin}/sse` } : {}),
    ...(opts.downstream?.worker && opts.downstream.url ? { DOWNSTREAM_MCP_URL: opts.downstream.url } : {}),
    ...opts.mcpVars,
  };
  if (!usePingOne) mcpVars.API_URL = opts.mcpVars?.API_URL ?? todoApiOrigin;
  const todoApiVars = { API_ISSUER: issuer, API_AUDIENCE: apiIdentifier, ...opts.todoApiVars };

  const stack = {
    issuer, usePingOne, ports, stateDir, logsDir,
    idpUrl: `http://127.0.0.1:${ports.idp}`,
    todoApiUrl: todoApiOrigin,
    mcpOrigin,
    mcpUrl: `${mcpOrigin}/mcp`,
    sseUrl: `${mcpOrigin}/sse`,
    downstreamUrl: opts.downstream ? downstreamOrigin : undefined,
    oauthDownstreamUrl: opts.oauthDownstream ? oauthDownstreamOrigin : undefined,
    oauthDownstream: opts.oauthDownstream ? {
      origin: oauthDownstreamOrigin,
      mcpUrl: `${oauthDownstreamOrigin}/mcp`,
      v1McpUrl: `${oauthDownstreamOrigin}/v1/mcp`,
      publicMcpUrl: `${oauthDownstreamOrigin}/public/mcp`,
      adminUrl: `${oauthDownstreamOrigin}/admin`,
    } : undefined,
    mcpVars, todoApiVars,
    children: [],
    workerUrls: {},
    async stop() {
      await Promise.all(this.children.map((c) => stopProcess(c)));
      this.children = [];
    },
  };

  try {
    if (opts.build !== false && (want.todoApi || want.mcp)) await runBuild(join(logsDir, 'build.log'));

    if (want.idp && !usePingOne) {
      const child = startProcess('idp', process.execPath, [join(ROOT, 'local', 'idp', 'server.mjs')], {
        logFile: join(logsDir, 'idp.log'),
        env: {
          IDP_HOST: '127.0.0.1',
          IDP_PORT: String(ports.idp),
          IDP_STATE_DIR: join(stateDir, 'idp'),
          MCP_CLIENT_ID: mcpVars.MCP_SERVER_CLIENT_ID,
          MCP_CLIENT_SECRET: mcpVars.MCP_SERVER_CLIENT_SECRET,
          MCP_REDIRECT_URIS: `${mcpOrigin}/callback http://localhost:${ports.mcp}/callback`,
          API_IDENTIFIER: apiIdentifier,
          ...opts.idpEnv,
        },
      });
      stack.children.push(child);
      await waitForHttp(`${issuer}/.well-known/openid-configuration`, {
        child, name: 'stand-in IdP', logLine: /^Development identity provider/m, // printed once it listens
      });
    }

    if (opts.downstream && !opts.downstream.worker) {
      const script = opts.downstream.modern ? 'downstream-mcp-modern.mjs' : 'downstream-mcp.mjs';
      const child = startProcess('downstream', process.execPath, [join(ROOT, 'local', script)], {
        logFile: join(logsDir, 'downstream.log'),
        env: {
          DOWNSTREAM_HOST: '127.0.0.1',
          DOWNSTREAM_PORT: String(ports.downstream),
          DOWNSTREAM_ISSUER: opts.downstream.verifyTokens === false ? '' : issuer,
          DOWNSTREAM_AUDIENCE: apiIdentifier,
          DOWNSTREAM_TEST_HOOKS: opts.downstream.testHooks ? '1' : '',
          DOWNSTREAM_LEGACY: opts.downstream.modern === 'dual' ? 'stateless' : 'reject',
        },
      });
      stack.children.push(child);
      await waitForHttp(`${downstreamOrigin}/health`, { child, name: 'downstream MCP server', logLine: /^Downstream MCP server/m });
    }

    if (opts.oauthDownstream) {
      const child = startProcess('oauth-downstream', process.execPath, [join(ROOT, 'local', 'oauth-downstream', 'server.mjs')], {
        logFile: join(logsDir, 'oauth-downstream.log'),
        env: {
          DS_HOST: '127.0.0.1',
          DS_PORT: String(ports.oauthDownstream),
          DS_STATE_DIR: join(stateDir, 'oauth-downstream'),
          ...(typeof opts.oauthDownstream === 'object' ? opts.oauthDownstream.env : {}),
        },
      });
      stack.children.push(child);
      await waitForHttp(`${oauthDownstreamOrigin}/health`, { child, name: 'downstream OAuth MCP server', logLine: /^Downstream OAuth MCP server/m });
    }

    const wrangler = (name, config, port, inspector, vars, persistAs = name) =>
      startWranglerDev(stack, { name, config, port, inspector, vars, stateDir, logsDir, persistAs });
    // With `build: false` the workers are run as built (no rebuild when sources change). The
    // MCP worker reaches this stack's Todo API through its TODO_API service binding; when its
    // calls go elsewhere (a fake, a recorder in front of the real one, no local Todo API), it
    // runs without the binding, so they go to API_URL.
    const prebuilt = opts.build === false;
    const viaBinding = want.todoApi && mcpVars.API_URL === todoApiOrigin;
    const downstreamWorker = Boolean(opts.downstream?.worker);
    if (downstreamWorker) {
      await wrangler('downstream', DOWNSTREAM_WORKER.config, ports.downstream, ports.downstreamInspector, {
        DOWNSTREAM_ISSUER: issuer, DOWNSTREAM_AUDIENCE: apiIdentifier,
      });
    }
    const addServices = downstreamWorker ? { DOWNSTREAM_MCP: DOWNSTREAM_WORKER.service } : {};
    const todoApiConfig = opts.configs?.todoApi ??
      (prebuilt ? prebuiltConfig('todo-api', join(ROOT, 'todo-api', 'wrangler.toml'), stateDir) : join(ROOT, 'todo-api', 'wrangler.toml'));
    const mcpConfig = opts.configs?.mcp ??
      (prebuilt || !viaBinding || downstreamWorker
        ? prebuiltConfig('mcp', join(ROOT, 'wrangler.toml'), stateDir, { services: viaBinding, addServices })
        : join(ROOT, 'wrangler.toml'));
    await Promise.all([
      want.todoApi && wrangler('todo-api', todoApiConfig, ports.todoApi, ports.todoApiInspector, todoApiVars),
      want.mcp && wrangler('mcp', mcpConfig, ports.mcp, ports.mcpInspector, mcpVars),
    ]);
    for (const w of opts.extraWorkers ?? []) {
      const port = w.port ?? await freePort();
      const vars = typeof w.vars === 'function' ? w.vars(stack) : (w.vars ?? {});
      stack.workerUrls[w.name] = `http://127.0.0.1:${port}`;
      await wrangler(w.name, w.config, port, w.inspectorPort ?? await freePort(), vars, w.persistWith ?? w.name);
    }
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}

/**
 * Starts a stack on free ports with a fresh state directory, for tests. When another process
 * took one of the ports before the stack bound it, starts again on new ones (ports given in
 * `opts.ports` are kept).
 */
export async function startTestStack(opts = {}) {
  for (let attempt = 1; ; attempt++) {
    const ports = {
      idp: await freePort(), todoApi: await freePort(), mcp: await freePort(),
      todoApiInspector: await freePort(), mcpInspector: await freePort(), downstream: await freePort(),
      downstreamInspector: await freePort(), oauthDownstream: await freePort(), ...opts.ports,
    };
    const stateDir = opts.stateDir ?? join(ROOT, 'test-output', 'state', `${Date.now()}-${ports.mcp}`);
    try {
      return await startStack({ dotenv: null, build: !process.env.STACK_PREBUILT, ...opts, ports, stateDir });
    } catch (err) {
      if (err.code !== 'EADDRINUSE' || attempt >= 3) throw err;
    }
  }
}

// ---- CLI -------------------------------------------------------------------

const PID_FILE = join(ROOT, '.state', 'dev', 'stack.pid');

async function main(args) {
  const oauthDownstream = args.includes('--oauth-downstream');
  const argv = args.filter((a) => a !== '--oauth-downstream');
  if (argv[0] === 'stop') {
    if (!existsSync(PID_FILE)) { console.log('No local stack is running.'); return; }
    const pid = Number(readFileSync(PID_FILE, 'utf8'));
    try { process.kill(pid, 'SIGTERM'); console.log(`Stopping the local stack (pid ${pid}).`); }
    catch { console.log('The local stack was not running.'); rmSync(PID_FILE, { force: true }); }
    return;
  }
  if (argv[0] === 'reset') {
    rmSync(join(ROOT, '.state', 'dev'), { recursive: true, force: true });
    console.log('Local state removed.');
    return;
  }
  mkdirSync(dirname(PID_FILE), { recursive: true });
  writeFileSync(PID_FILE, String(process.pid));
  console.log('Building the workers and starting the local stack…');
  let stack;
  const shutdown = async () => {
    console.log('\nStopping…');
    if (stack) await stack.stop();
    rmSync(PID_FILE, { force: true });
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  const gateway = ['gateway', 'gateway-binding', 'gateway-modern', 'gateway-vault'].includes(argv[0]);
  const vault = argv[0] === 'gateway-vault';
  const downstream = { 'gateway-binding': { worker: true }, 'gateway-modern': { modern: true } }[argv[0]] ?? true;
  // gateway-vault: the downstream OAuth stand-in and DOWNSTREAMS naming its servers (and the
  // PingOne-trusting test server) at /mcp/<name>; /mcp stays the single gateway.
  const vaultVars = (dsOrigin, downstreamOrigin) => ({
    DOWNSTREAMS: JSON.stringify([
      { name: 'notes', url: `${dsOrigin}/mcp`, auth: 'oauth' },
      { name: 'v1', url: `${dsOrigin}/v1/mcp`, auth: 'oauth' },
      { name: 'public', url: `${dsOrigin}/public/mcp`, auth: 'oauth' },
      { name: 'whoami', url: `${downstreamOrigin}/mcp`, auth: 'pingone' },
    ]),
  });
  try {
    stack = await startStack({
      ...(gateway ? { downstream, todoApi: false } : {}),
      ...(oauthDownstream || vault ? { oauthDownstream: true } : {}),
      ...(vault ? { mcpVars: vaultVars('http://127.0.0.1:9300', 'http://127.0.0.1:9100') } : {}),
    });
  } catch (err) {
    console.error(`The local stack did not start: ${err.message}`);
    rmSync(PID_FILE, { force: true });
    process.exit(1);
  }
  const line = '─'.repeat(64);
  console.log(`${line}
  MCP server URL (paste into MCP Inspector):  ${stack.mcpUrl}
  Legacy SSE URL:                             ${stack.sseUrl}
  Identity provider:  ${stack.usePingOne ? `PingOne (${stack.issuer})` : `local stand-in at ${stack.issuer} (users alice / alice-password, bob / bob-password)`}
  ${!gateway ? `Todo API:           ${stack.todoApiUrl}` : downstream.worker
    ? `Gateway for:        the downstream MCP Worker (${stack.downstreamUrl}/mcp), through the DOWNSTREAM_MCP service binding`
    : downstream.modern ? `Gateway for:        the downstream MCP 2026-07-28 server at ${stack.downstreamUrl}/mcp`
    : `Gateway for:        the downstream MCP server at ${stack.downstreamUrl}/mcp (and /sse)`}
${vault ? `  Named downstreams:  ${['notes', 'v1', 'public', 'whoami'].map((n) => `${stack.mcpOrigin}/mcp/${n}`).join('\n                      ')}
` : ''}${stack.oauthDownstream ? `  OAuth downstream:   ${stack.oauthDownstream.mcpUrl}, ${stack.oauthDownstream.v1McpUrl}, ${stack.oauthDownstream.publicMcpUrl} (own sign-in: dana / dana-password, erin / erin-password)
` : ''}  Logs:               ${stack.logsDir}
  Stop with Ctrl-C, or \`node local/stack.mjs stop\` from another terminal.
${line}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2));
}
