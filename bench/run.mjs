// Benchmark of the whole chain: MCP client → MCP worker → session Durable Object →
// Todo API → per-user Durable Object. Prints tables and writes bench-output/bench.json.
//
//   scripts/bench                       local stack (started and stopped here)
//   BENCH_BASELINE=<git rev> scripts/bench   the same, with that revision's build measured side
//                                       by side in the same run (scripts/bench builds it)
//   BENCH_BASE_URL=https://… BENCH_ACCESS_TOKEN=… [BENCH_REFRESH_TOKENS=a,b,…
//     BENCH_CLIENT_ID=…] scripts/bench  another deployment of the same endpoints (no CPU figures)
//   BENCH_RUNTIME=miniflare|both scripts/bench   the workers on workerd without `wrangler dev`:
//                                       both in one Miniflare instance (bench/miniflare.mjs), its
//                                       floor in another; `both` runs them next to wrangler dev's
//
// CPU per call is taken inside the `workerd` processes that run the workers' code (the ones
// `wrangler dev` starts with an inspector address): /proc/<pid>/stat ticks before and after each
// fixed-duration load, divided by the calls served (bench/cpu.mjs). Absolute milliseconds drift
// with the machine, so the figures are also given in floors: the CPU per request of a trivial
// JavaScript worker (bench/floor) under the same workerd, measured the same way in the same run.
// CPU of `wrangler dev`'s own processes (Node, proxy workerd) is reported as dev tooling.
// Under Miniflare both workers share one workerd, so their CPU is one figure (mcp+todo-api), and
// its floor is measured in a workerd of its own the same way.
//
// Knobs: BENCH_SECONDS (per measurement, default 10), BENCH_LEVELS (default 1,8,32),
// BENCH_REPEAT (rounds of the main measurements, default 2), BENCH_ONLY (comma-separated:
// tools, modern, ping, refresh, metadata, scaling, creates, cold, bundles, gateway; default all;
// `modern`: tools/call and server/discover in the stateless 2026-07-28 era, beside `tools`/`ping`;
// profile, only when named: each worker's CPU with the chain cut short at each stage),
// BENCH_SCALING (todo counts, default 10,100,500), BENCH_BASELINE_DIR (a tree with built
// workers; what BENCH_BASELINE makes), BENCH_WITHOUT_BINDING=1 (also this build calling the
// Todo API at API_URL rather than through its service binding), BENCH_FLOOR_EACH=1 (a floor
// before each main measurement, its rows counted in that floor rather than the run's median),
// BENCH_RUNTIME (wrangler, miniflare or both; default wrangler), BENCH_ORIGINAL (the path of a
// checkout of the original TypeScript worker's folder, pingidentity/cloudflare-mcp's
// remote-mcp-pingone: built and started here under `wrangler dev` against the stand-in IdP over
// HTTPS, bench/original.mjs, and measured in the same run as column "original (this run)":
// the session-era `tools`, `ping`, `metadata` rows and, of `refresh`, the "still fresh" row, its
// equal work; its figures measured elsewhere are then not printed). `refresh` is four rows (see
// REFRESH_STACKS): the stack's default settings, PingOne refreshed on every grant, PingOne never
// called, and that without the GrantRefresh object; each prints the IdP token-endpoint calls its
// grants made. A fifth row is the KV work of a refresh alone, done by the floor worker (REFRESH_KV).
//
// Locally it then starts the stack in gateway mode (proxy to local/downstream-mcp.mjs, which
// here does not check tokens, so both paths do the same work downstream) and measures the same
// tools/call through the gateway and straight to the downstream server, in the same run
// (BENCH_ONLY=gateway measures only that).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { ROOT, startStack, freePort } from '../local/stack.mjs';
import { CookieJar, authorize, exchangeCode, registerClient } from '../tests/support/flow.mjs';
import { signToken } from '../tests/support/idp.mjs';
import { snapshot, spent } from './cpu.mjs';
import { SHARED, startMiniflareStack } from './miniflare.mjs';
import { profileWhile } from './v8profile.mjs';
import { reexecWithCa, startOriginalStack } from './original.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const LEVELS = (process.env.BENCH_LEVELS ?? '1,8,32').split(',').map(Number);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 2);
const SCALING = (process.env.BENCH_SCALING ?? '10,100,500').split(',').map(Number);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const want = (what) => !ONLY || ONLY.has(what);
const FLOOR_EACH = process.env.BENCH_FLOOR_EACH === '1';
const BASELINE_DIR = process.env.BENCH_BASELINE_DIR ? resolve(process.env.BENCH_BASELINE_DIR) : null;
const PROTOCOL = '2025-06-18';
const MODERN = '2026-07-28';
const RUNTIME = process.env.BENCH_RUNTIME ?? 'wrangler';
const ORIGINAL_DIR = process.env.BENCH_ORIGINAL ? resolve(process.env.BENCH_ORIGINAL) : null;
const ORIGINAL_LABEL = 'original (this run)';
if (!['wrangler', 'miniflare', 'both'].includes(RUNTIME)) throw new Error(`BENCH_RUNTIME must be wrangler, miniflare or both, not ${RUNTIME}`);
/** How each runtime is named in rows and tables. */
const RUNTIMES = { wrangler: 'wrangler dev', miniflare: 'miniflare (no dev proxy)' };

// The refresh_token grant, four ways. PingOne is refreshed too only when the PingOne token's
// remaining life is shorter than a new MCP access token's (src/login/upstream.rs exchange()).
// With the stack's settings both live 1 h, so right after a PingOne refresh its token is "fresh
// enough" again until the clock's next second: about one grant a second calls the IdP (the
// existing row, its key kept). Stacks of their own make each path pure: MCP access tokens of
// 2 h (longer than the stand-in's 1 h PingOne tokens: every grant refreshes PingOne), and of
// 10 min (its token stays fresh for 50 min after sign-in: no grant calls PingOne, the work the
// original did on a refresh), the latter also without the GrantRefresh object.
const REFRESH_DEFAULT = 'refresh_token grant';
const REFRESH_UPSTREAM = 'refresh_token grant (PingOne refreshed too)';
const REFRESH_FRESH = 'refresh_token grant (PingOne token still fresh)';
const REFRESH_UNSERIALIZED = 'refresh_token grant (still fresh, no GrantRefresh object)';
const REFRESH_KV = 'its KV work alone: 2 reads, 2 writes (JS floor worker)';
// `unserialized`: the "still fresh" stack without the GRANT_REFRESH binding, so each refresh is
// answered in the Worker itself (src/entry/refresh.rs), unserialized: what the object costs.
const REFRESH_STACKS = {
  upstream: { vars: { OAUTH_ACCESS_TOKEN_TTL: '7200' } },
  fresh: { vars: { OAUTH_ACCESS_TOKEN_TTL: '600' } },
  unserialized: { vars: { OAUTH_ACCESS_TOKEN_TTL: '600' }, withoutRefreshObject: true },
};

/**
 * The original TypeScript worker's figures from issue 11: measured elsewhere (same kind of
 * machine, same method, its own floor), not in this run. CPU per call in floors.
 */
export const ORIGINAL = {
  note: 'original TypeScript worker, measured elsewhere (issue 11), not in this run',
  floor_ms: '0.45–0.60',
  floors: {
    'tools/call get_my_todo_list@8': '18.0–18.3',
    'ping@8': '8.2–8.6',
    // The original never refreshed PingOne on a refresh_token grant: equal work is the "still
    // fresh" row.
    [`${REFRESH_FRESH}@1`]: '14.4',
    'GET /.well-known/oauth-authorization-server@8': '1.5',
  },
  mcp_bundle_gzip_kib: 705,
};

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function summarize(name, concurrency, latencies, errors, elapsedMs) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    name, concurrency, requests: latencies.length, errors,
    rps: Math.round((latencies.length / (elapsedMs / 1000)) * 10) / 10,
    p50_ms: Math.round(percentile(sorted, 50) * 10) / 10,
    p95_ms: Math.round(percentile(sorted, 95) * 10) / 10,
    p99_ms: Math.round(percentile(sorted, 99) * 10) / 10,
  };
}

/**
 * CPU per call (ms) from the milliseconds `ms` each process group spent serving `calls`: the
 * workers named in `parts` (their code's workerd), their dev tooling, and other processes (the IdP).
 */
function perCall(ms, calls, clientMs, parts) {
  const sum = (list) => list.reduce((n, [, v]) => n + v, 0);
  const entries = Object.entries(ms).map(([k, v]) => [...k.split(':'), v]);
  const workers = Object.fromEntries(parts.map((p) => [p, round((entries.find(([n, kind]) => n === p && kind === 'worker')?.[2] ?? 0) / calls)]));
  const tooling = entries.filter(([n, kind]) => parts.includes(n) && kind === 'tooling').map(([n, , v]) => [n, v]);
  const others = Object.fromEntries(entries.filter(([n]) => ![...parts, 'mcp', 'todo-api', 'floor', SHARED].includes(n)).map(([n, , v]) => [n, round(v / calls)]));
  return {
    workers_ms: round(Object.values(workers).reduce((a, b) => a + b, 0)), workers,
    dev_tooling_ms: round(sum(tooling) / calls), others, client_ms: round(clientMs / calls),
  };
}

/**
 * Runs `concurrency` loops of `op` for SECONDS after a short warm-up; with `stack`, also the CPU
 * its processes spent in that window, per call.
 */
async function load(name, concurrency, makeLoop, stack = null, parts = ['mcp', 'todo-api']) {
  const loops = await Promise.all(Array.from({ length: concurrency }, (_, i) => makeLoop(i)));
  const warmEnd = performance.now() + 1000;
  await Promise.all(loops.map(async (op) => { while (performance.now() < warmEnd) await op().catch(() => {}); }));
  const latencies = [];
  let errors = 0;
  let firstError = null;
  const before = stack && snapshot(stack.children);
  const client0 = process.cpuUsage();
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(loops.map(async (op) => {
    while (performance.now() < end) {
      const t = performance.now();
      try { await op(); latencies.push(performance.now() - t); } catch (e) { errors += 1; firstError ??= e; }
    }
  }));
  const elapsed = performance.now() - start;
  const client = process.cpuUsage(client0);
  const row = summarize(name, concurrency, latencies, errors, elapsed);
  if (stack && latencies.length) row.cpu = perCall(spent(before, snapshot(stack.children)), latencies.length, (client.user + client.system) / 1000, parts);
  if (firstError) row.first_error = String(firstError.message ?? firstError).slice(0, 300);
  return row;
}

async function rpc(mcpUrl, token, sessionId, body) {
  const headers = {
    authorization: `Bearer ${token}`, 'content-type': 'application/json',
    accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL,
  };
  if (sessionId) headers['mcp-session-id'] = sessionId;
  const res = await fetch(mcpUrl, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${res.status} ${text.slice(0, 200)}`);
  const json = text.startsWith('{') ? JSON.parse(text) : JSON.parse(text.split('\n').find((l) => l.startsWith('data:')).slice(5));
  return { res, json };
}

async function openSession(mcpUrl, token) {
  const { res } = await rpc(mcpUrl, token, null, {
    jsonrpc: '2.0', id: 0, method: 'initialize',
    params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
  });
  const sid = res.headers.get('mcp-session-id');
  await fetch(mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': PROTOCOL },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  }).then((r) => r.arrayBuffer());
  return sid;
}

function dirSizes(dir) {
  let raw = 0; const chunks = [];
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.map') || f === 'README.md') continue;
    const p = join(dir, f);
    if (statSync(p).isFile()) { const b = readFileSync(p); raw += b.length; chunks.push(b); }
  }
  // Cloudflare's limit is on the gzip of the upload; compress each module, as it does.
  const gzip = chunks.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0);
  return { raw_bytes: raw, gzip_bytes: gzip, raw_kib: +(raw / 1024).toFixed(1), gzip_kib: +(gzip / 1024).toFixed(1) };
}

function bundleSizes(configs = { mcp: 'wrangler.toml', todoApi: 'todo-api/wrangler.toml' }, label = 'this') {
  const out = {};
  for (const [name, config] of [['mcp-worker', configs.mcp], ['todo-api', configs.todoApi]]) {
    const dir = join(ROOT, 'bench-output', `dist-${label}-${name}`);
    rmSync(dir, { recursive: true, force: true });
    execFileSync(join(ROOT, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '--outdir', dir, '--config', config],
      { cwd: ROOT, stdio: 'ignore', env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
    out[name] = dirSizes(dir);
  }
  return out;
}

/**
 * Wrangler configs that run a copy of the workers built in `dir` (this checkout, or one of another
 * revision): its wrangler.toml files with `main` pointing at the copy and no build step, so
 * nothing rebuilt or reloaded while the benchmark runs (others editing the sources, a build of
 * this checkout) changes what is measured.
 */
function frozenConfigs(dir, label, { services = true } = {}) {
  const outDir = join(ROOT, 'bench-output', `workers-${label}`);
  rmSync(outDir, { recursive: true, force: true });
  const gen = (workerDir, name) => {
    cpSync(join(workerDir, 'build'), join(outDir, name, 'build'), { recursive: true });
    let text = readFileSync(join(workerDir, 'wrangler.toml'), 'utf8');
    text = text.replace(/^main = .*$/m, `main = ${JSON.stringify(join(outDir, name, 'build', 'worker', 'shim.mjs'))}`);
    text = text.replace(/^\[build\]\n(?:(?!\[).*\n)*/m, '');
    if (!services) text = text.replace(/^\[\[services\]\]\n(?:(?!\[).*\n)*/gm, '');
    const out = join(outDir, name, 'wrangler.toml');
    writeFileSync(out, text);
    return out;
  };
  return { mcp: gen(dir, 'mcp'), todoApi: gen(join(dir, 'todo-api'), 'todo-api') };
}

/** A load's loop factory (see `load`): GETs of `url` with `headers`, each to answer `ok`. */
function getLoop(url, headers = {}, ok = 200) {
  return async () => async () => {
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    if (res.status !== ok) throw new Error(`${res.status}`);
  };
}

/**
 * A copy of the MCP worker's frozen config `config` without the GRANT_REFRESH object binding;
 * null for a build that has none (a baseline from before the object).
 */
function withoutGrantRefresh(config) {
  const text = readFileSync(config, 'utf8');
  const out = text.replace(/^\[\[durable_objects\.bindings\]\]\nname = "GRANT_REFRESH"\n(?:(?!\[).*\n)*/m, '');
  if (out === text) return null;
  const path = config.replace(/\.toml$/, '.unserialized.toml');
  writeFileSync(path, out);
  return path;
}

/**
 * Registers a client at `target` (a variant or one of its refresh stacks) and signs `user` in.
 * The original is asked for no `resource`: it refuses a token for `<origin>/mcp` at /mcp.
 */
async function signIn(target, user = 'alice') {
  const mcpOrigin = target.origin;
  const client = await registerClient(mcpOrigin);
  const auth = await authorize({ mcpOrigin, client, jar: new CookieJar(), user, ...(target.original ? { resource: null } : {}) });
  const tokens = await exchangeCode({ mcpOrigin, client, code: auth.code, verifier: auth.pkce.verifier });
  return { client, ...tokens };
}

const callTool = (v, sid, name, args = {}, id = 1) =>
  rpc(v.mcpUrl, v.token, sid, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const todoCount = (r) => r.json.result.structuredContent?.todos?.length ?? NaN;

/** A load of `tools/call get_my_todo_list` by `token`'s user; `expect` checks the list's size. */
function listLoop(v, token, expect) {
  return async () => {
    const sid = await openSession(v.mcpUrl, token);
    let id = 1;
    return async () => {
      const { json } = await rpc(v.mcpUrl, token, sid, { jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'get_my_todo_list', arguments: {} } });
      if (!json.result || json.result.isError) throw new Error(JSON.stringify(json).slice(0, 200));
      if (expect !== undefined && json.result.structuredContent.todos.length !== expect) throw new Error('wrong list size');
    };
  };
}

/** One MCP 2026-07-28 request: stateless, its version in `_meta` and the mirrored headers. */
async function modernRpc(mcpUrl, token, id, method, params = {}) {
  const headers = {
    authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream',
    'mcp-protocol-version': MODERN, 'mcp-method': method,
  };
  if (params.name) headers['mcp-name'] = params.name;
  const _meta = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
  const res = await fetch(mcpUrl, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta } }) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

/** The modern era's `tools/call get_my_todo_list`: no session, the tool runs in the Worker. */
function modernListLoop(v) {
  return async () => {
    let id = 1;
    return async () => {
      const json = await modernRpc(v.mcpUrl, v.token, id++, 'tools/call', { name: 'get_my_todo_list', arguments: {} });
      if (!json.result || json.result.isError) throw new Error(JSON.stringify(json).slice(0, 200));
    };
  };
}

/** The modern era's cheapest request (it has no ping): `server/discover`, bearer check included. */
function discoverLoop(v) {
  return async () => {
    let id = 1;
    return async () => {
      const json = await modernRpc(v.mcpUrl, v.token, id++, 'server/discover');
      if (!json.result?.supportedVersions) throw new Error(JSON.stringify(json).slice(0, 200));
    };
  };
}

/** A load of `ping` (bearer validation, the session object, no Todo API). */
function pingLoop(v) {
  return async () => {
    const sid = await openSession(v.mcpUrl, v.token);
    let id = 1;
    return async () => {
      const { json } = await rpc(v.mcpUrl, v.token, sid, { jsonrpc: '2.0', id: id++, method: 'ping' });
      if (!json.result) throw new Error('no result');
    };
  };
}

/** Adds todos for `token`'s user until the list has `n` (8 sessions at a time). */
async function fillTo(v, token, n) {
  const sids = await Promise.all(Array.from({ length: 8 }, () => openSession(v.mcpUrl, token)));
  const list = () => rpc(v.mcpUrl, token, sids[0], { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_my_todo_list', arguments: {} } });
  let have = todoCount(await list());
  while (have < n) {
    const batch = Math.min(8, n - have);
    await Promise.all(sids.slice(0, batch).map((sid, i) => rpc(v.mcpUrl, token, sid, {
      jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'create_new_todo', arguments: { text: `scaling todo ${have + i}` } },
    })));
    have = todoCount(await list());
  }
  if (have !== n) throw new Error(`${v.label}: wanted ${n} todos, have ${have}`);
}

/**
 * A load of refresh_token grants on `t`'s one grant (t.chain); its refresh token rotates with every
 * grant, so one call at a time. Counts the grants and keeps the last expires_in (bench output).
 */
function refreshLoop(t) {
  return async () => async () => {
    const res = await fetch(`${t.origin}/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: t.chain.refreshToken, client_id: t.chain.client.client_id }),
    });
    const body = await res.json();
    if (res.status !== 200) throw new Error(JSON.stringify(body));
    t.chain.refreshToken = body.refresh_token;
    t.chain.grants = (t.chain.grants ?? 0) + 1;
    t.chain.expiresIn = body.expires_in;
  };
}

/** Calls the stand-in IdP has logged so far (local/idp/server.mjs writes one line per request). */
function idpCalls(stack) {
  let text = '';
  try { text = readFileSync(join(stack.logsDir, 'idp.log'), 'utf8'); } catch {}
  const count = (re) => (text.match(re) ?? []).length;
  // The issuer's path may be PingOne's /<envId>/as (the original's HTTPS stand-in).
  return { token: count(/ POST \S*\/as\/token \d/g), userinfo: count(/ GET \S*\/as\/userinfo \d/g) };
}

/**
 * Runs `run` (a load of refresh grants on `t`) and adds which path the grants took: the calls to
 * the IdP's token endpoint per grant (1 when PingOne was refreshed too, 0 when it was still fresh)
 * and the expires_in of the last new MCP access token.
 */
async function withIdpCount(t, run) {
  const before = idpCalls(t.stack);
  const grants0 = t.chain.grants ?? 0;
  const row = await run();
  const after = idpCalls(t.stack);
  const grants = (t.chain.grants ?? 0) - grants0;
  row.pingone = {
    grants, token_calls: after.token - before.token, userinfo_calls: after.userinfo - before.userinfo,
    token_calls_per_grant: grants ? round((after.token - before.token) / grants, 3) : null,
    last_expires_in: t.chain.expiresIn ?? null,
  };
  return row;
}

/**
 * The main measurements: [what, name, concurrency, loop factory of a variant, and which of its
 * refresh stacks (v.aux) it runs on, if not the variant's own].
 */
function measurements() {
  const list = [];
  if (want('tools')) {
    for (const c of LEVELS) list.push(['tools', 'tools/call get_my_todo_list', c, (v) => listLoop(v, v.token, v.original ? undefined : 0)]);
  }
  if (want('modern')) {
    for (const c of LEVELS) list.push(['modern', 'tools/call get_my_todo_list (2026-07-28)', c, modernListLoop]);
    list.push(['modern', 'server/discover (2026-07-28)', 8, discoverLoop]);
  }
  if (want('ping')) {
    list.push(['ping', 'ping', 8, pingLoop]);
  }
  if (want('refresh')) {
    // The last three on the variant's refresh stacks (v.aux, REFRESH_STACKS).
    list.push(['refresh', REFRESH_DEFAULT, 1, (v) => refreshLoop(v)]);
    list.push(['refresh', REFRESH_UPSTREAM, 1, (v) => refreshLoop(v.aux.upstream), 'upstream']);
    list.push(['refresh', REFRESH_FRESH, 1, (v) => refreshLoop(v.aux.fresh), 'fresh']);
    list.push(['refresh', REFRESH_UNSERIALIZED, 1, (v) => refreshLoop(v.aux.unserialized), 'unserialized']);
  }
  if (want('metadata')) {
    list.push(['metadata', 'GET /.well-known/oauth-authorization-server', 8, (v) => getLoop(`${v.origin}/.well-known/oauth-authorization-server`)]);
  }
  return list;
}

/**
 * Where the CPU of a call goes: the same chain cut short at each stage, on each worker alone.
 * The Todo API is called directly with a PingOne-style JWT signed by the stand-in IdP's key.
 */
function profileMeasurements(v) {
  const mcpPost = (token, body, ok) => async () => {
    const sid = token === v.token ? await openSession(v.mcpUrl, token) : null;
    return async () => {
      const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL };
      if (token) headers.authorization = `Bearer ${token}`;
      if (sid) headers['mcp-session-id'] = sid;
      const res = await fetch(v.mcpUrl, { method: 'POST', headers, body: JSON.stringify(body) });
      await res.arrayBuffer();
      if (res.status !== ok) throw new Error(`${res.status}`);
    };
  };
  const now = Math.floor(Date.now() / 1000);
  const jwt = signToken({
    iss: v.stack.issuer, aud: v.stack.todoApiVars.API_AUDIENCE, sub: 'bench-profile-user', client_id: 'mcp-worker',
    scope: 'openid todo_api:read todo_api:write', iat: now, exp: now + 3600,
  }, { stateDir: join(v.stack.stateDir, 'idp') });
  const badSignature = `${jwt.slice(0, -8)}${jwt.slice(-8) === 'AAAAAAAA' ? 'BBBBBBBB' : 'AAAAAAAA'}`;
  // Same shape as a real token, unknown secret: refused after the KV read.
  const unknown = `${v.token.slice(0, -4)}${v.token.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
  const api = `${v.stack.todoApiUrl}/api/todos`;
  const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
  return [
    ['mcp', 'profile mcp: GET /health', getLoop(`${v.origin}/health`)],
    ['mcp', 'profile mcp: POST /mcp without token (401)', mcpPost(null, ping, 401)],
    ['mcp', 'profile mcp: POST /mcp unknown token (401 after KV read)', mcpPost(unknown, ping, 401)],
    ['mcp', 'profile mcp: ping (bearer + DO hop)', mcpPost(v.token, ping, 200)],
    ['mcp', 'profile mcp: tools/list (bearer + DO hop)', mcpPost(v.token, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, 200)],
    ['todo-api', 'profile todo-api: GET /health', getLoop(`${v.stack.todoApiUrl}/health`)],
    ['todo-api', 'profile todo-api: GET /api/todos without token (401)', getLoop(api, {}, 401)],
    ['todo-api', 'profile todo-api: GET /api/todos bad signature (401 after RSA)', getLoop(api, { authorization: `Bearer ${badSignature}` }, 401)],
    ['todo-api', 'profile todo-api: GET /api/todos valid JWT (empty list)', getLoop(api, { authorization: `Bearer ${jwt}` })],
  ];
}

/**
 * Starts a stack running the workers of `configs` under `runtime` ('wrangler': each under
 * `wrangler dev`; 'miniflare': both in one Miniflare instance); `floor` adds the floor worker.
 * `mcpVars` override the MCP worker's settings; `todoApi: false` leaves the Todo API out
 * (wrangler dev only: under Miniflare it is one process either way).
 */
async function startVariant(label, configs, { runtime = 'wrangler', floor = false, mcpVars, todoApi = true } = {}) {
  const ports = { idp: await freePort(), todoApi: await freePort(), mcp: await freePort(), todoApiInspector: await freePort(), mcpInspector: await freePort() };
  const stateDir = join(ROOT, 'bench-output', `state-${label.replace(/\W+/g, '-')}`);
  rmSync(stateDir, { recursive: true, force: true });
  const t0 = performance.now();
  const floorWorker = { name: 'floor', config: join(ROOT, 'bench', 'floor', 'wrangler.toml') };
  const stack = runtime === 'miniflare'
    ? await startMiniflareStack({ configs, ports, stateDir, mcpVars, floor: floor ? { config: floorWorker.config, port: await freePort() } : null })
    : await startStack({
      ports, stateDir, dotenv: null, build: false, mcpVars, todoApi,
      configs: todoApi ? configs : { mcp: configs.mcp }, extraWorkers: floor ? [floorWorker] : [],
    });
  return { label, runtime, stack, configs, origin: stack.mcpOrigin, mcpUrl: stack.mcpUrl, start_s: +((performance.now() - t0) / 1000).toFixed(1) };
}

/** The worker CPU keys of a variant's rows (bench/cpu.mjs): one shared workerd under Miniflare. */
const partsOf = (v, parts = ['mcp', 'todo-api']) => (v.runtime === 'miniflare' ? [SHARED] : parts);
/** What identifies a variant's rows. */
const tag = (v) => ({ variant: v.label, runtime: RUNTIMES[v.runtime] });

function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: round(mid, 2), min: round(s[0], 2), max: round(s[s.length - 1], 2), n: s.length };
}

/** Adds floors to every row and groups rows by measurement and variant. */
function summarizeRun(results) {
  // Each runtime's rows in its own floor (the floor worker under that runtime).
  const byRuntime = {};
  for (const f of results.floors) (byRuntime[f.runtime] ??= []).push(f.cpu.workers_ms);
  results.floor_ms_by_runtime = Object.fromEntries(Object.entries(byRuntime).map(([rt, ms]) => [rt, stats(ms)]));
  results.floor_ms = results.floor_ms_by_runtime[results.floors[0].runtime];
  const groups = {};
  for (const r of results.rows) {
    if (!r.cpu || !r.variant) continue;
    const unit = r.floor_ms ?? results.floor_ms_by_runtime[r.runtime]?.median ?? results.floor_ms.median;
    r.cpu.floors = round(r.cpu.workers_ms / unit, 2);
    r.cpu.worker_floors = Object.fromEntries(Object.entries(r.cpu.workers).map(([k, v]) => [k, round(v / unit, 2)]));
    const key = `${r.name}@${r.concurrency}`;
    ((groups[key] ??= {})[r.variant] ??= []).push(r);
  }
  results.summary = Object.entries(groups).map(([key, byVariant]) => ({
    key,
    original_floors: ORIGINAL_DIR ? null : ORIGINAL.floors[key] ?? null,
    variants: Object.fromEntries(Object.entries(byVariant).map(([variant, rows]) => [variant, {
      runtime: rows[0].runtime,
      floors: stats(rows.map((r) => r.cpu.floors)),
      ms: stats(rows.map((r) => r.cpu.workers_ms)),
      per_worker_ms: Object.fromEntries(Object.keys(rows[0].cpu.workers).map((w) => [w, stats(rows.map((r) => r.cpu.workers[w]))])),
      dev_tooling_ms: stats(rows.map((r) => r.cpu.dev_tooling_ms)),
      rps: stats(rows.map((r) => r.rps)),
      p50_ms: stats(rows.map((r) => r.p50_ms)),
      p99_ms: stats(rows.map((r) => r.p99_ms)),
      ...(rows[0].pingone ? { pingone_token_calls_per_grant: rows.map((r) => r.pingone.token_calls_per_grant) } : {}),
    }])),
  }));
}

/** tools/call echo through the identity gateway and straight to the downstream, same run. */
async function gatewayRows() {
  const ports = { idp: await freePort(), todoApi: await freePort(), mcp: await freePort(), todoApiInspector: await freePort(), mcpInspector: await freePort(), downstream: await freePort() };
  const stateDir = join(ROOT, 'bench-output', 'state-gateway');
  rmSync(stateDir, { recursive: true, force: true });
  const stack = await startStack({ ports, stateDir, dotenv: null, build: false, todoApi: false, downstream: { verifyTokens: false } });
  const rows = [];
  try {
    const client = await registerClient(stack.mcpOrigin);
    const auth = await authorize({ mcpOrigin: stack.mcpOrigin, client, jar: new CookieJar() });
    const token = (await exchangeCode({ mcpOrigin: stack.mcpOrigin, client, code: auth.code, verifier: auth.pkce.verifier })).access_token;
    const paths = [['gateway', stack.mcpUrl, token], ['direct to downstream', `${stack.downstreamUrl}/mcp`, 'unchecked']];
    // ping: what the gateway adds (bearer validation, one HTTP hop) to the cheapest call.
    for (const [label, url, bearer] of paths) {
      rows.push(await load(`${label}: ping`, 1, async () => {
        const sid = await openSession(url, bearer);
        let id = 1;
        return async () => {
          const { json } = await rpc(url, bearer, sid, { jsonrpc: '2.0', id: id++, method: 'ping' });
          if (!json.result) throw new Error('no result');
        };
      }));
    }
    for (const c of LEVELS.filter((l) => l <= 8)) {
      for (const [label, url, bearer] of paths) {
        rows.push(await load(`${label}: tools/call echo`, c, async () => {
          const sid = await openSession(url, bearer);
          let id = 1;
          return async () => {
            const { json } = await rpc(url, bearer, sid, { jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'echo', arguments: { text: 'bench' } } });
            if (json.result?.content?.[0]?.text !== 'bench') throw new Error(JSON.stringify(json).slice(0, 200));
          };
        }));
      }
    }
  } finally {
    await stack.stop();
  }
  return rows;
}

/**
 * The original TypeScript worker at BENCH_ORIGINAL as a variant (its rows in the wrangler dev
 * floor). Its refresh grants never call PingOne: it is its own "still fresh" refresh stack.
 */
async function startOriginalVariant() {
  const t0 = performance.now();
  const stack = await startOriginalStack(ORIGINAL_DIR, join(ROOT, 'bench-output', 'state-original'));
  const v = {
    label: ORIGINAL_LABEL, runtime: 'wrangler', original: true, stack, configs: stack.configs,
    origin: stack.mcpOrigin, mcpUrl: stack.mcpUrl, start_s: +((performance.now() - t0) / 1000).toFixed(1),
  };
  v.aux = { fresh: v };
  return v;
}

/**
 * The measurements the original takes part in: the session era's (it has no 2026-07-28 era) and,
 * of the refresh rows, the one of equal work (it never refreshed PingOne on a refresh grant).
 */
const originalMeasures = (what, on) => ['tools', 'ping', 'metadata'].includes(what) || (what === 'refresh' && on === 'fresh');

async function main() {
  // The original's stand-in IdP speaks HTTPS with a certificate made for this run, which Node
  // trusts only through NODE_EXTRA_CA_CERTS at start: run again with it set.
  if (ORIGINAL_DIR) {
    const status = reexecWithCa();
    if (status !== null) process.exit(status);
  }
  mkdirSync(join(ROOT, 'bench-output'), { recursive: true });
  const results = {
    date: new Date().toISOString(), seconds_per_run: SECONDS, repeat: REPEAT,
    original: ORIGINAL_DIR ? { note: `measured in this run as "${ORIGINAL_LABEL}"`, dir: ORIGINAL_DIR } : ORIGINAL,
    method: 'CPU: utime+stime ticks (10 ms) of the workerd that runs each worker, per call; floors: per call of bench/floor in the same run',
    floors: [], rows: [],
  };
  if (process.env.BENCH_BASE_URL) return remote(results);
  if (ONLY?.size === 1 && ONLY.has('gateway')) {
    results.rows.push(...await gatewayRows());
    return report(results);
  }

  const variants = [];
  const runtimes = RUNTIME === 'both' ? ['wrangler', 'miniflare'] : [RUNTIME];
  if (ORIGINAL_DIR && !runtimes.includes('wrangler')) throw new Error('BENCH_ORIGINAL runs the original under wrangler dev: use BENCH_RUNTIME=wrangler or both');
  results.runtimes = runtimes.map((rt) => RUNTIMES[rt]);
  try {
    // One frozen copy per build, shared by both runtimes.
    const thisDir = process.env.BENCH_THIS_DIR ? resolve(process.env.BENCH_THIS_DIR) : ROOT;
    const thisConfigs = frozenConfigs(thisDir, 'this');
    const apiUrlConfigs = process.env.BENCH_WITHOUT_BINDING && frozenConfigs(thisDir, 'api-url', { services: false });
    const baselineConfigs = BASELINE_DIR && frozenConfigs(BASELINE_DIR, 'baseline');
    if (BASELINE_DIR) results.baseline = { dir: BASELINE_DIR, revision: readFileSync(join(BASELINE_DIR, '.revision'), 'utf8').trim() };
    for (const runtime of runtimes) {
      const suffix = runtime === 'wrangler' ? '' : ` (${runtime})`;
      const add = async (label, configs, opts = {}) => {
        const v = await startVariant(label + suffix, configs, { runtime, ...opts });
        variants.push(v);
        // Stacks of its own for the pure refresh paths (REFRESH_STACKS).
        v.aux = {};
        if (want('refresh') && !opts.noAux) {
          for (const [path, { vars: mcpVars, withoutRefreshObject }] of Object.entries(REFRESH_STACKS)) {
            const mcp = withoutRefreshObject ? withoutGrantRefresh(configs.mcp) : configs.mcp;
            if (!mcp) continue;
            const cfg = { ...configs, mcp };
            v.aux[path] = await startVariant(`${label}${suffix} refresh-${path}`, cfg, { runtime, mcpVars, todoApi: false });
          }
        }
      };
      await add('this build', thisConfigs, { floor: true });
      // The same build with the MCP worker calling the Todo API at API_URL instead of through
      // its service binding (refresh grants do not call it: no second refresh stack).
      if (apiUrlConfigs) await add('API_URL', apiUrlConfigs, { noAux: true });
      if (baselineConfigs) await add('baseline', baselineConfigs);
    }
    // The original TypeScript worker, under wrangler dev (bench/original.mjs).
    if (ORIGINAL_DIR) variants.push(await startOriginalVariant());
    // Each runtime's floor, measured in the workerd of the floor worker of its 'this build' stack.
    const measureFloor = async (runtime) => {
      const floorStack = variants.find((v) => v.runtime === runtime).stack;
      const row = await load('floor: trivial JS worker', 8, getLoop(floorStack.workerUrls.floor), floorStack, ['floor']);
      row.runtime = RUNTIMES[runtime];
      results.floors.push(row);
      return row;
    };
    const measureFloors = async () => {
      const out = {};
      for (const rt of runtimes) out[rt] = (await measureFloor(rt)).cpu.workers_ms;
      return out;
    };
    const refreshChain = async (t) => {
      const s = await signIn(t, 'alice');
      return { client: s.client, refreshToken: s.refresh_token };
    };

    for (const v of variants) {
      v.token = (await signIn(v, 'alice')).access_token;
      v.chain = await refreshChain(v);
      v.bobToken = (await signIn(v, 'bob')).access_token;
    }

    const list = measurements();
    for (let r = 0; r < REPEAT; r++) {
      await measureFloors();
      // Side by side: each measurement on every variant in turn, the order alternating by round.
      const order = r % 2 ? [...variants].reverse() : variants;
      for (const [what, name, c, loop, on] of list) {
        // With BENCH_FLOOR_EACH=1, a floor right before each measurement, which its rows are
        // counted in: the machine's load drifts within a round.
        const floor = FLOOR_EACH ? await measureFloors() : {};
        for (const v of order) {
          const t = on ? v.aux[on] : v;
          if (!t || (v.original && !originalMeasures(what, on))) continue;
          // A new grant each round (a "still fresh" PingOne token stays so for 50 min only).
          if (on) t.chain = await refreshChain(t);
          const run = () => load(name, c, loop(v), t.stack, partsOf(v));
          const row = what === 'refresh' ? await withIdpCount(t, run) : await run();
          results.rows.push({ ...tag(v), round: r, floor_ms: floor[v.runtime], ...row });
        }
      }
      // The KV operations of a refresh alone, by the floor worker (bench/floor /kv): how much of
      // a refresh row is local KV, which runs in the measured workerd and not in production's CPU.
      if (want('refresh')) {
        const floor = FLOOR_EACH ? await measureFloors() : {};
        for (const runtime of runtimes) {
          const v = variants.find((x) => x.runtime === runtime);
          const row = await load(REFRESH_KV, 1, getLoop(`${v.stack.workerUrls.floor}/kv`), v.stack, ['floor']);
          results.rows.push({ ...tag(v), round: r, floor_ms: floor[runtime], ...row });
        }
      }
    }
    if (ONLY?.has('profile')) {
      const ours = variants.filter((v) => !v.original);
      const stages = new Map(ours.map((v) => [v, profileMeasurements(v)]));
      for (let r = 0; r < REPEAT; r++) {
        for (let i = 0; i < stages.get(ours[0]).length; i++) {
          for (const v of (r + i) % 2 ? [...ours].reverse() : ours) {
            const [part, name, loop] = stages.get(v)[i];
            results.rows.push({ ...tag(v), round: r, profile: true, ...await load(name, 8, loop, v.stack, partsOf(v, [part])) });
          }
        }
      }
    }
    // V8 profiles through wrangler dev's per-worker inspector ports only.
    const profiled = variants.find((x) => x.runtime === 'wrangler');
    if (ONLY?.has('v8profile') && profiled) {
      results.v8profiles = {};
      const v = profiled;
      const stages = profileMeasurements(v);
      const pick = (prefix) => stages.find(([, name]) => name.startsWith(prefix));
      const refresh = measurements().find(([key]) => key === 'refresh');
      for (const [port, name, loop, part, conc = 8] of [
        [v.stack.ports.mcpInspector, 'ping', pingLoop(v), 'mcp'],
        [v.stack.ports.mcpInspector, 'tools/call get_my_todo_list', listLoop(v, v.token, 0), 'mcp'],
        [v.stack.ports.todoApiInspector, 'todo-api GET /api/todos', pick('profile todo-api: GET /api/todos valid')[2], 'todo-api'],
        // The refresh token rotates with every call: one at a time.
        ...(refresh ? [[v.stack.ports.mcpInspector, 'refresh_token grant', refresh[3](v), 'mcp', 1]] : []),
      ]) {
        results.v8profiles[name] = await profileWhile(port, async () => {
          const row = await load(`v8 profile: ${name}`, conc, loop, v.stack, [part]);
          results.rows.push({ ...tag(v), ...row });
          return row.requests;
        });
      }
    }
    // The original's answers carry no structuredContent to count todos in: ours only.
    const ours = variants.filter((v) => !v.original);
    if (want('scaling')) {
      for (const n of SCALING) {
        for (const v of ours) await fillTo(v, v.bobToken, n);
        for (let r = 0; r < REPEAT; r++) {
          const order = r % 2 ? [...ours].reverse() : ours;
          for (const v of order) {
            results.rows.push({ ...tag(v), round: r, todos: n, ...await load(`get_my_todo_list, ${n} todos`, 8, listLoop(v, v.bobToken, n), v.stack, partsOf(v)) });
          }
        }
      }
    }
    await measureFloors();

    // 32 todos created at once by one user: how many survive?
    if (want('creates')) {
      results.concurrent_creates = {};
      for (const v of ours) {
        const sids = await Promise.all(Array.from({ length: 32 }, () => openSession(v.mcpUrl, v.token)));
        const n0 = todoCount(await callTool(v, sids[0], 'get_my_todo_list'));
        await Promise.all(sids.map((sid, i) => callTool(v, sid, 'create_new_todo', { text: `bench todo ${i}` }, 2)));
        const kept = todoCount(await callTool(v, sids[0], 'get_my_todo_list', {}, 3)) - n0;
        results.concurrent_creates[v.label] = { attempted: 32, kept, lost: 32 - kept };
      }
    }
    if (want('bundles')) {
      results.bundles = {};
      // Per build: a Miniflare variant runs the same frozen build as its wrangler dev one.
      const seen = new Set();
      for (const v of variants.filter((x) => !seen.has(x.configs.mcp) && seen.add(x.configs.mcp))) {
        results.bundles[v.label] = bundleSizes(v.configs, v.label.replace(/\W+/g, '-'));
      }
    }
    // Cold start: restart this build's wrangler dev stack and time its first answers.
    if (want('cold') && profiled) {
      const v = profiled;
      await v.stack.stop();
      const t0 = performance.now();
      v.stack = await startStack({ ports: v.stack.ports, stateDir: v.stack.stateDir, dotenv: null, build: false, configs: v.configs });
      const ready = performance.now() - t0;
      const t1 = performance.now();
      await rpc(v.mcpUrl, v.token, null, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
      results.cold_start = { stack_ready_s: +(ready / 1000).toFixed(1), first_initialize_ms: Math.round(performance.now() - t1) };
    }
  } finally {
    await Promise.all(variants.flatMap((v) => [v.stack, ...Object.values(v.aux ?? {}).map((a) => a.stack)].map((st) => st.stop())));
  }
  if (results.floors.length) summarizeRun(results);
  if (want('gateway')) results.rows.push(...await gatewayRows());
  report(results);
}

/** Another deployment: latency and throughput only (its CPU is not visible from here). */
async function remote(results) {
  const v = { label: 'remote', origin: process.env.BENCH_BASE_URL.replace(/\/$/, ''), token: process.env.BENCH_ACCESS_TOKEN };
  v.mcpUrl = `${v.origin}/mcp`;
  const tokens = process.env.BENCH_REFRESH_TOKENS?.split(',');
  if (tokens && process.env.BENCH_CLIENT_ID) v.chain = { client: { client_id: process.env.BENCH_CLIENT_ID }, refreshToken: tokens[0] };
  for (const [what, name, c, loop, on] of measurements()) {
    // Which PingOne path a remote refresh takes is not visible from here: one plain row.
    if (what === 'refresh' && (!v.chain || on)) continue;
    results.rows.push({ variant: v.label, ...await load(name, c, loop(v)) });
  }
  report(results);
}

function report(results) {
  const pad = (s, n) => String(s).padEnd(n);
  const range = (s) => (s.min === s.max ? `${s.median}` : `${s.median} (${s.min}–${s.max})`);
  if (results.summary) {
    const variants = [...new Set(results.rows.filter((r) => r.cpu && r.variant).map((r) => r.variant))];
    console.log('\nCPU per call inside the workers (workerd), in floors: the CPU per request of a trivial JS worker under the same runtime, this run.');
    for (const [rt, f] of Object.entries(results.floor_ms_by_runtime)) {
      console.log(`  floor, ${pad(rt, 26)}${f.median} ms per request (${f.n} measurements, ${f.min}–${f.max} ms)`);
    }
    for (const v of variants) {
      const rt = results.summary.map((s) => s.variants[v]?.runtime).find(Boolean);
      console.log(`  column ${pad(`"${v}"`, 26)}${rt}${rt === RUNTIMES.miniflare ? ': both workers in one workerd, counted together' : ''}`);
    }
    console.log('Median of the rounds, (min–max) when they differ.');
    const fixed = !ORIGINAL_DIR; // the original's figures measured elsewhere, as a column
    console.log(`${pad('measurement', 56)}${fixed ? pad('original (TS)*', 16) : ''}${variants.map((v) => pad(v, 26)).join('')}ms per call (${variants.join(' | ')}); per worker, ms`);
    for (const s of results.summary) {
      const cells = variants.map((v) => pad(s.variants[v] ? range(s.variants[v].floors) : '', 26)).join('');
      const ms = variants.map((v) => s.variants[v]?.ms.median ?? '-').join(' | ');
      const split = variants.map((v) => Object.entries(s.variants[v]?.per_worker_ms ?? {}).map(([w, st]) => `${w} ${st.median}`).join(', ')).filter(Boolean).join(' | ');
      console.log(`${pad(s.key.replace('@', ', conc '), 56)}${fixed ? pad(s.original_floors ?? '', 16) : ''}${cells}${ms}; ${split}`);
    }
    if (!fixed) console.log(`"${ORIGINAL_LABEL}": the original TypeScript worker at ${ORIGINAL_DIR}, under wrangler dev, in the wrangler dev floor. It never refreshes PingOne on a refresh_token grant: its refresh row is the "still fresh" one, the equal work.`);
    else console.log(`* ${ORIGINAL.note}; its floor there was ${ORIGINAL.floor_ms} ms. The original never refreshed PingOne on a refresh_token grant: its 14.4 is set against the "still fresh" row, the equal work ("${REFRESH_DEFAULT}" alone is this stack's default settings, where about one grant a second refreshes PingOne).`);
    for (const s of results.summary) {
      for (const [v, sv] of Object.entries(s.variants)) {
        if (sv.pingone_token_calls_per_grant) console.log(`  ${s.key.split('@')[0]}, ${v}: IdP token-endpoint calls per grant, by round: ${sv.pingone_token_calls_per_grant.join(', ')}`);
      }
    }
  }
  console.log(`\n${pad('variant', 26)}${pad('runtime', 26)}${pad('measurement', 56)}${pad('conc', 6)}${pad('req/s', 9)}${pad('p50 ms', 9)}${pad('p95 ms', 9)}${pad('p99 ms', 9)}${pad('n', 7)}${pad('err', 5)}${pad('cpu ms', 8)}${pad('floors', 8)}${pad('tooling', 9)}workers ms`);
  for (const r of [...results.floors, ...results.rows]) {
    const cpu = r.cpu ? [pad(r.cpu.workers_ms, 8), pad(r.cpu.floors ?? '', 8), pad(r.cpu.dev_tooling_ms, 9), Object.entries(r.cpu.workers).map(([w, ms]) => `${w} ${ms}`).join(', ')].join('') : '';
    console.log(`${pad(r.variant ?? '', 26)}${pad(r.runtime ?? '', 26)}${pad(r.name, 56)}${pad(r.concurrency, 6)}${pad(r.rps, 9)}${pad(r.p50_ms, 9)}${pad(r.p95_ms, 9)}${pad(r.p99_ms, 9)}${pad(r.requests, 7)}${pad(r.errors, 5)}${cpu}`);
    if (r.first_error) console.log(`    first error: ${r.first_error}`);
    const p = r.pingone;
    if (p) console.log(`    IdP (PingOne stand-in): ${p.token_calls} token-endpoint and ${p.userinfo_calls} userinfo calls for ${p.grants} grants (warm-up included): ${p.token_calls_per_grant} per grant; last expires_in ${p.last_expires_in} s`);
  }
  for (const [v, c] of Object.entries(results.concurrent_creates ?? {})) console.log(`${v}: 32 concurrent create_new_todo: kept ${c.kept}, lost ${c.lost}`);
  if (results.cold_start) console.log(`cold start: stack ready in ${results.cold_start.stack_ready_s} s, first initialize ${results.cold_start.first_initialize_ms} ms`);
  for (const [v, bundles] of Object.entries(results.bundles ?? {})) {
    for (const [name, s] of Object.entries(bundles)) console.log(`${pad(v, 26)}bundle ${pad(name, 12)} raw ${s.raw_kib} KiB, gzip ${s.gzip_kib} KiB`);
  }
  for (const [name, p] of Object.entries(results.v8profiles ?? {})) {
    console.log(`\nV8 profile, ${name}: ${p.busy_ms_per_call} ms busy per call; ${Object.entries(p.kinds_ms_per_call).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    for (const t of p.top.slice(0, 25)) console.log(`  ${pad(t.ms_per_call, 8)}${pad((t.share * 100).toFixed(1) + '%', 8)}${t.name.slice(0, 110)}`);
  }
  if (!ORIGINAL_DIR) console.log(`original (TS, measured elsewhere): MCP worker bundle gzip ${ORIGINAL.mcp_bundle_gzip_kib} KiB`);
  writeFileSync(join(ROOT, 'bench-output', 'bench.json'), JSON.stringify(results, null, 2));
  console.log('\nwritten: bench-output/bench.json');
}

main().catch((err) => { console.error(err); process.exit(1); });
