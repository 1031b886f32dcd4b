// Benchmark of the whole chain: MCP client → MCP worker → session Durable Object →
// Todo API → per-user Durable Object. Prints tables and writes bench-output/bench.json.
//
//   scripts/bench                       local stack (started and stopped here)
//   BENCH_BASELINE=<git rev> scripts/bench   the same, with that revision's build measured side
//                                       by side in the same run (scripts/bench builds it)
//   BENCH_BASE_URL=https://… BENCH_ACCESS_TOKEN=… [BENCH_REFRESH_TOKENS=a,b,…
//     BENCH_CLIENT_ID=…] scripts/bench  another deployment of the same endpoints (no CPU figures)
//
// CPU per call is taken inside the `workerd` processes that run the workers' code (the ones
// `wrangler dev` starts with an inspector address): /proc/<pid>/stat ticks before and after each
// fixed-duration load, divided by the calls served (bench/cpu.mjs). Absolute milliseconds drift
// with the machine, so the figures are also given in floors: the CPU per request of a trivial
// JavaScript worker (bench/floor) under the same workerd, measured the same way in the same run.
// CPU of `wrangler dev`'s own processes (Node, proxy workerd) is reported as dev tooling.
//
// Knobs: BENCH_SECONDS (per measurement, default 10), BENCH_LEVELS (default 1,8,32),
// BENCH_REPEAT (rounds of the main measurements, default 2), BENCH_ONLY (comma-separated:
// tools, ping, refresh, metadata, scaling, creates, cold, bundles, gateway; default all;
// profile, only when named: each worker's CPU with the chain cut short at each stage),
// BENCH_SCALING (todo counts, default 10,100,500), BENCH_BASELINE_DIR (a tree with built
// workers; what BENCH_BASELINE makes), BENCH_WITHOUT_BINDING=1 (also this build calling the
// Todo API at API_URL rather than through its service binding), BENCH_FLOOR_EACH=1 (a floor
// before each main measurement, its rows counted in that floor rather than the run's median).
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
import { profileWhile } from './v8profile.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const LEVELS = (process.env.BENCH_LEVELS ?? '1,8,32').split(',').map(Number);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 2);
const SCALING = (process.env.BENCH_SCALING ?? '10,100,500').split(',').map(Number);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const want = (what) => !ONLY || ONLY.has(what);
const FLOOR_EACH = process.env.BENCH_FLOOR_EACH === '1';
const BASELINE_DIR = process.env.BENCH_BASELINE_DIR ? resolve(process.env.BENCH_BASELINE_DIR) : null;
const PROTOCOL = '2025-06-18';

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
    'refresh_token grant@1': '14.4',
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
  const others = Object.fromEntries(entries.filter(([n]) => !['mcp', 'todo-api', 'floor'].includes(n)).map(([n, , v]) => [n, round(v / calls)]));
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

async function signIn(mcpOrigin, user = 'alice') {
  const client = await registerClient(mcpOrigin);
  const auth = await authorize({ mcpOrigin, client, jar: new CookieJar(), user });
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

/** The main measurements: [what, name, concurrency, loop factory of a variant]. */
function measurements() {
  const list = [];
  if (want('tools')) {
    for (const c of LEVELS) list.push(['tools', 'tools/call get_my_todo_list', c, (v) => listLoop(v, v.token, 0)]);
  }
  if (want('ping')) {
    list.push(['ping', 'ping', 8, pingLoop]);
  }
  if (want('refresh')) {
    // One grant; its refresh token rotates with every grant, so one call at a time.
    list.push(['refresh', 'refresh_token grant', 1, (v) => async () => async () => {
      const res = await fetch(`${v.origin}/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: v.chain.refreshToken, client_id: v.chain.client.client_id }),
      });
      const body = await res.json();
      if (res.status !== 200) throw new Error(JSON.stringify(body));
      v.chain.refreshToken = body.refresh_token;
    }]);
  }
  if (want('metadata')) {
    list.push(['metadata', 'GET /.well-known/oauth-authorization-server', 8, (v) => async () => async () => {
      const res = await fetch(`${v.origin}/.well-known/oauth-authorization-server`);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${res.status}`);
    }]);
  }
  return list;
}

/**
 * Where the CPU of a call goes: the same chain cut short at each stage, on each worker alone.
 * The Todo API is called directly with a PingOne-style JWT signed by the stand-in IdP's key.
 */
function profileMeasurements(v) {
  const get = (url, headers = {}, ok = 200) => async () => async () => {
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    if (res.status !== ok) throw new Error(`${res.status}`);
  };
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
    ['mcp', 'profile mcp: GET /health', get(`${v.origin}/health`)],
    ['mcp', 'profile mcp: POST /mcp without token (401)', mcpPost(null, ping, 401)],
    ['mcp', 'profile mcp: POST /mcp unknown token (401 after KV read)', mcpPost(unknown, ping, 401)],
    ['mcp', 'profile mcp: ping (bearer + DO hop)', mcpPost(v.token, ping, 200)],
    ['mcp', 'profile mcp: tools/list (bearer + DO hop)', mcpPost(v.token, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, 200)],
    ['todo-api', 'profile todo-api: GET /health', get(`${v.stack.todoApiUrl}/health`)],
    ['todo-api', 'profile todo-api: GET /api/todos without token (401)', get(api, {}, 401)],
    ['todo-api', 'profile todo-api: GET /api/todos bad signature (401 after RSA)', get(api, { authorization: `Bearer ${badSignature}` }, 401)],
    ['todo-api', 'profile todo-api: GET /api/todos valid JWT (empty list)', get(api, { authorization: `Bearer ${jwt}` })],
  ];
}

async function startVariant(label, configs, extraWorkers) {
  const ports = { idp: await freePort(), todoApi: await freePort(), mcp: await freePort(), todoApiInspector: await freePort(), mcpInspector: await freePort() };
  const stateDir = join(ROOT, 'bench-output', `state-${label.replace(/\W+/g, '-')}`);
  rmSync(stateDir, { recursive: true, force: true });
  const t0 = performance.now();
  const stack = await startStack({ ports, stateDir, dotenv: null, build: false, configs, extraWorkers });
  return { label, stack, configs, origin: stack.mcpOrigin, mcpUrl: stack.mcpUrl, start_s: +((performance.now() - t0) / 1000).toFixed(1) };
}

function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: round(mid, 2), min: round(s[0], 2), max: round(s[s.length - 1], 2), n: s.length };
}

/** Adds floors to every row and groups rows by measurement and variant. */
function summarizeRun(results) {
  const floor = stats(results.floors.map((f) => f.cpu.workers_ms));
  results.floor_ms = floor;
  const groups = {};
  for (const r of results.rows) {
    if (!r.cpu || !r.variant) continue;
    const unit = r.floor_ms ?? floor.median;
    r.cpu.floors = round(r.cpu.workers_ms / unit, 2);
    r.cpu.worker_floors = Object.fromEntries(Object.entries(r.cpu.workers).map(([k, v]) => [k, round(v / unit, 2)]));
    const key = `${r.name}@${r.concurrency}`;
    ((groups[key] ??= {})[r.variant] ??= []).push(r);
  }
  results.summary = Object.entries(groups).map(([key, byVariant]) => ({
    key,
    original_floors: ORIGINAL.floors[key] ?? null,
    variants: Object.fromEntries(Object.entries(byVariant).map(([variant, rows]) => [variant, {
      floors: stats(rows.map((r) => r.cpu.floors)),
      ms: stats(rows.map((r) => r.cpu.workers_ms)),
      per_worker_ms: Object.fromEntries(Object.keys(rows[0].cpu.workers).map((w) => [w, stats(rows.map((r) => r.cpu.workers[w]))])),
      dev_tooling_ms: stats(rows.map((r) => r.cpu.dev_tooling_ms)),
      rps: stats(rows.map((r) => r.rps)),
      p50_ms: stats(rows.map((r) => r.p50_ms)),
      p99_ms: stats(rows.map((r) => r.p99_ms)),
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

async function main() {
  mkdirSync(join(ROOT, 'bench-output'), { recursive: true });
  const results = {
    date: new Date().toISOString(), seconds_per_run: SECONDS, repeat: REPEAT, original: ORIGINAL,
    method: 'CPU: utime+stime ticks (10 ms) of the workerd that runs each worker, per call; floors: per call of bench/floor in the same run',
    floors: [], rows: [],
  };
  if (process.env.BENCH_BASE_URL) return remote(results);
  if (ONLY?.size === 1 && ONLY.has('gateway')) {
    results.rows.push(...await gatewayRows());
    return report(results);
  }

  const variants = [];
  const floorWorker = { name: 'floor', config: join(ROOT, 'bench', 'floor', 'wrangler.toml') };
  try {
    variants.push(await startVariant('this build', frozenConfigs(process.env.BENCH_THIS_DIR ? resolve(process.env.BENCH_THIS_DIR) : ROOT, 'this'), [floorWorker]));
    if (process.env.BENCH_WITHOUT_BINDING) {
      // The same build with the MCP worker calling the Todo API at API_URL instead of through
      // its service binding.
      variants.push(await startVariant('API_URL', frozenConfigs(process.env.BENCH_THIS_DIR ? resolve(process.env.BENCH_THIS_DIR) : ROOT, 'api-url', { services: false })));
    }
    if (BASELINE_DIR) {
      variants.push(await startVariant('baseline', frozenConfigs(BASELINE_DIR, 'baseline')));
      results.baseline = { dir: BASELINE_DIR, revision: readFileSync(join(BASELINE_DIR, '.revision'), 'utf8').trim() };
    }
    const floorStack = variants[0].stack;
    const floorUrl = floorStack.workerUrls.floor;
    const measureFloor = async () => {
      const row = await load('floor: trivial JS worker', 8, () => async () => {
        const res = await fetch(floorUrl);
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`${res.status}`);
      }, floorStack, ['floor']);
      results.floors.push(row);
      return row;
    };

    for (const v of variants) {
      const alice = await signIn(v.origin, 'alice');
      v.token = alice.access_token;
      const fresh = await signIn(v.origin, 'alice');
      v.chain = { client: fresh.client, refreshToken: fresh.refresh_token };
      v.bobToken = (await signIn(v.origin, 'bob')).access_token;
    }

    const list = measurements();
    for (let r = 0; r < REPEAT; r++) {
      await measureFloor();
      // Side by side: each measurement on every variant in turn, the order alternating by round.
      const order = r % 2 ? [...variants].reverse() : variants;
      for (const [, name, c, loop] of list) {
        // With BENCH_FLOOR_EACH=1, a floor right before each measurement, which its rows are
        // counted in: the machine's load drifts within a round.
        const floor = FLOOR_EACH ? (await measureFloor()).cpu.workers_ms : undefined;
        for (const v of order) results.rows.push({ variant: v.label, round: r, floor_ms: floor, ...await load(name, c, loop(v), v.stack) });
      }
    }
    if (ONLY?.has('profile')) {
      const stages = new Map(variants.map((v) => [v, profileMeasurements(v)]));
      for (let r = 0; r < REPEAT; r++) {
        for (let i = 0; i < stages.get(variants[0]).length; i++) {
          for (const v of (r + i) % 2 ? [...variants].reverse() : variants) {
            const [part, name, loop] = stages.get(v)[i];
            results.rows.push({ variant: v.label, round: r, profile: true, ...await load(name, 8, loop, v.stack, [part]) });
          }
        }
      }
    }
    if (ONLY?.has('v8profile')) {
      results.v8profiles = {};
      const v = variants[0];
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
          results.rows.push({ variant: v.label, ...row });
          return row.requests;
        });
      }
    }
    if (want('scaling')) {
      for (const n of SCALING) {
        for (const v of variants) await fillTo(v, v.bobToken, n);
        for (let r = 0; r < REPEAT; r++) {
          const order = r % 2 ? [...variants].reverse() : variants;
          for (const v of order) {
            results.rows.push({ variant: v.label, round: r, todos: n, ...await load(`get_my_todo_list, ${n} todos`, 8, listLoop(v, v.bobToken, n), v.stack) });
          }
        }
      }
    }
    await measureFloor();

    // 32 todos created at once by one user: how many survive?
    if (want('creates')) {
      results.concurrent_creates = {};
      for (const v of variants) {
        const sids = await Promise.all(Array.from({ length: 32 }, () => openSession(v.mcpUrl, v.token)));
        const n0 = todoCount(await callTool(v, sids[0], 'get_my_todo_list'));
        await Promise.all(sids.map((sid, i) => callTool(v, sid, 'create_new_todo', { text: `bench todo ${i}` }, 2)));
        const kept = todoCount(await callTool(v, sids[0], 'get_my_todo_list', {}, 3)) - n0;
        results.concurrent_creates[v.label] = { attempted: 32, kept, lost: 32 - kept };
      }
    }
    if (want('bundles')) {
      results.bundles = {};
      for (const v of variants) results.bundles[v.label] = bundleSizes(v.configs, v.label.replace(/\W+/g, '-'));
    }
    // Cold start: restart this build's stack and time its first answers.
    if (want('cold')) {
      const v = variants[0];
      await v.stack.stop();
      const t0 = performance.now();
      v.stack = await startStack({ ports: v.stack.ports, stateDir: v.stack.stateDir, dotenv: null, build: false, configs: v.configs });
      const ready = performance.now() - t0;
      const t1 = performance.now();
      await rpc(v.mcpUrl, v.token, null, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
      results.cold_start = { stack_ready_s: +(ready / 1000).toFixed(1), first_initialize_ms: Math.round(performance.now() - t1) };
    }
  } finally {
    await Promise.all(variants.map((v) => v.stack.stop()));
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
  for (const [what, name, c, loop] of measurements()) {
    if (what === 'refresh' && !v.chain) continue;
    results.rows.push({ variant: v.label, ...await load(name, c, loop(v)) });
  }
  report(results);
}

function report(results) {
  const pad = (s, n) => String(s).padEnd(n);
  const range = (s) => (s.min === s.max ? `${s.median}` : `${s.median} (${s.min}–${s.max})`);
  if (results.summary) {
    const variants = [...new Set(results.rows.filter((r) => r.cpu && r.variant).map((r) => r.variant))];
    const f = results.floor_ms;
    console.log(`\nCPU per call inside the workers (workerd), in floors. Floor (trivial JS worker, this run): ${f.median} ms per request (${f.n} measurements, ${f.min}–${f.max} ms).`);
    console.log('Median of the rounds, (min–max) when they differ.');
    console.log(`${pad('measurement', 48)}${pad('original (TS)*', 16)}${variants.map((v) => pad(v, 26)).join('')}per worker, ms (${variants[0]})`);
    for (const s of results.summary) {
      const cells = variants.map((v) => pad(s.variants[v] ? range(s.variants[v].floors) : '', 26)).join('');
      const split = Object.entries(s.variants[variants[0]]?.per_worker_ms ?? {}).map(([w, st]) => `${w} ${st.median}`).join(', ');
      console.log(`${pad(s.key.replace('@', ', conc '), 48)}${pad(s.original_floors ?? '', 16)}${cells}${split}`);
    }
    console.log(`* ${ORIGINAL.note}; its floor there was ${ORIGINAL.floor_ms} ms.`);
  }
  console.log(`\n${pad('variant', 12)}${pad('measurement', 48)}${pad('conc', 6)}${pad('req/s', 9)}${pad('p50 ms', 9)}${pad('p95 ms', 9)}${pad('p99 ms', 9)}${pad('n', 7)}${pad('err', 5)}${pad('cpu ms', 8)}${pad('floors', 8)}${pad('tooling', 9)}workers ms`);
  for (const r of [...results.floors, ...results.rows]) {
    const cpu = r.cpu ? [pad(r.cpu.workers_ms, 8), pad(r.cpu.floors ?? '', 8), pad(r.cpu.dev_tooling_ms, 9), Object.entries(r.cpu.workers).map(([w, ms]) => `${w} ${ms}`).join(', ')].join('') : '';
    console.log(`${pad(r.variant ?? '', 12)}${pad(r.name, 48)}${pad(r.concurrency, 6)}${pad(r.rps, 9)}${pad(r.p50_ms, 9)}${pad(r.p95_ms, 9)}${pad(r.p99_ms, 9)}${pad(r.requests, 7)}${pad(r.errors, 5)}${cpu}`);
    if (r.first_error) console.log(`    first error: ${r.first_error}`);
  }
  for (const [v, c] of Object.entries(results.concurrent_creates ?? {})) console.log(`${v}: 32 concurrent create_new_todo: kept ${c.kept}, lost ${c.lost}`);
  if (results.cold_start) console.log(`cold start: stack ready in ${results.cold_start.stack_ready_s} s, first initialize ${results.cold_start.first_initialize_ms} ms`);
  for (const [v, bundles] of Object.entries(results.bundles ?? {})) {
    for (const [name, s] of Object.entries(bundles)) console.log(`${pad(v, 12)}bundle ${pad(name, 12)} raw ${s.raw_kib} KiB, gzip ${s.gzip_kib} KiB`);
  }
  for (const [name, p] of Object.entries(results.v8profiles ?? {})) {
    console.log(`\nV8 profile, ${name}: ${p.busy_ms_per_call} ms busy per call; ${Object.entries(p.kinds_ms_per_call).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    for (const t of p.top.slice(0, 25)) console.log(`  ${pad(t.ms_per_call, 8)}${pad((t.share * 100).toFixed(1) + '%', 8)}${t.name.slice(0, 110)}`);
  }
  console.log(`original (TS, measured elsewhere): MCP worker bundle gzip ${ORIGINAL.mcp_bundle_gzip_kib} KiB`);
  writeFileSync(join(ROOT, 'bench-output', 'bench.json'), JSON.stringify(results, null, 2));
  console.log('\nwritten: bench-output/bench.json');
}

main().catch((err) => { console.error(err); process.exit(1); });
