// Benchmark of the whole chain: MCP client → MCP worker → session Durable Object →
// Todo API → per-user Durable Object. Prints a table and writes bench-output/bench.json.
//
//   scripts/bench                       local stack (started and stopped here)
//   BENCH_BASE_URL=https://… BENCH_ACCESS_TOKEN=… [BENCH_REFRESH_TOKENS=a,b,…
//     BENCH_CLIENT_ID=…] scripts/bench  another deployment of the same endpoints
//
// Knobs: BENCH_SECONDS (per measurement, default 10), BENCH_LEVELS (default 1,8,32).
//
// Locally it then starts the stack in gateway mode (proxy to local/downstream-mcp.mjs, which
// here does not check tokens, so both paths do the same work downstream) and measures the same
// tools/call through the gateway and straight to the downstream server, in the same run
// (BENCH_ONLY=gateway measures only that).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { ROOT, startStack, freePort, waitForHttp } from '../local/stack.mjs';
import { CookieJar, authorize, exchangeCode, registerClient } from '../tests/support/flow.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const LEVELS = (process.env.BENCH_LEVELS ?? '1,8,32').split(',').map(Number);
const PROTOCOL = '2025-06-18';

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

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

/** Runs `concurrency` loops of `op` for SECONDS after a short warm-up. */
async function load(name, concurrency, makeLoop) {
  const loops = await Promise.all(Array.from({ length: concurrency }, (_, i) => makeLoop(i)));
  const warmEnd = performance.now() + 1000;
  await Promise.all(loops.map(async (op) => { while (performance.now() < warmEnd) await op().catch(() => {}); }));
  const latencies = [];
  let errors = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(loops.map(async (op) => {
    while (performance.now() < end) {
      const t = performance.now();
      try { await op(); latencies.push(performance.now() - t); } catch { errors += 1; }
    }
  }));
  return summarize(name, concurrency, latencies, errors, performance.now() - start);
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

function bundleSizes() {
  const out = {};
  for (const [name, config] of [['mcp-worker', 'wrangler.toml'], ['todo-api', 'todo-api/wrangler.toml']]) {
    const dir = join(ROOT, 'bench-output', `dist-${name}`);
    rmSync(dir, { recursive: true, force: true });
    execFileSync(join(ROOT, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '--outdir', dir, '--config', config],
      { cwd: ROOT, stdio: 'ignore', env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
    out[name] = dirSizes(dir);
  }
  return out;
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
  const results = { date: new Date().toISOString(), seconds_per_run: SECONDS, rows: [] };
  let stack = null;
  let mcpOrigin = process.env.BENCH_BASE_URL?.replace(/\/$/, '');
  let token = process.env.BENCH_ACCESS_TOKEN;
  let refreshSetup = null;

  if (process.env.BENCH_ONLY === 'gateway') {
    results.rows.push(...await gatewayRows());
    return report(results);
  }
  if (!mcpOrigin) {
    const ports = { idp: await freePort(), todoApi: await freePort(), mcp: await freePort(), todoApiInspector: await freePort(), mcpInspector: await freePort() };
    const stateDir = join(ROOT, 'bench-output', 'state');
    rmSync(stateDir, { recursive: true, force: true });
    const t0 = performance.now();
    stack = await startStack({ ports, stateDir, dotenv: null });
    results.stack_start_s = +((performance.now() - t0) / 1000).toFixed(1);
    mcpOrigin = stack.mcpOrigin;
  }
  const mcpUrl = `${mcpOrigin}/mcp`;
  try {
    if (!token) {
      const client = await registerClient(mcpOrigin);
      const auth = await authorize({ mcpOrigin, client, jar: new CookieJar() });
      token = (await exchangeCode({ mcpOrigin, client, code: auth.code, verifier: auth.pkce.verifier })).access_token;
      // Refresh chains: one grant per concurrent loop (a grant's refresh token rotates).
      refreshSetup = async (n) => Promise.all(Array.from({ length: n }, async () => {
        const c = await registerClient(mcpOrigin);
        const a = await authorize({ mcpOrigin, client: c, jar: new CookieJar() });
        const t = await exchangeCode({ mcpOrigin, client: c, code: a.code, verifier: a.pkce.verifier });
        return { client: c, refreshToken: t.refresh_token };
      }));
    } else if (process.env.BENCH_REFRESH_TOKENS && process.env.BENCH_CLIENT_ID) {
      const list = process.env.BENCH_REFRESH_TOKENS.split(',');
      refreshSetup = async () => list.map((r) => ({ client: { client_id: process.env.BENCH_CLIENT_ID }, refreshToken: r }));
    }

    // tools/call get_my_todo_list through the whole chain.
    for (const c of LEVELS) {
      results.rows.push(await load('tools/call get_my_todo_list', c, async (i) => {
        const sid = await openSession(mcpUrl, token);
        let id = 1;
        return async () => {
          const { json } = await rpc(mcpUrl, token, sid, { jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'get_my_todo_list', arguments: {} } });
          if (!json.result || json.result.isError) throw new Error(JSON.stringify(json).slice(0, 200));
        };
      }));
    }
    // ping: bearer validation + session lookup, no Todo API.
    results.rows.push(await load('ping', 8, async () => {
      const sid = await openSession(mcpUrl, token);
      let id = 1;
      return async () => {
        const { json } = await rpc(mcpUrl, token, sid, { jsonrpc: '2.0', id: id++, method: 'ping' });
        if (!json.result) throw new Error('no result');
      };
    }));
    // Refresh-token grants.
    if (refreshSetup) {
      const chains = await refreshSetup(8);
      results.rows.push(await load('refresh_token grant', 8, async (i) => {
        const chain = chains[i];
        return async () => {
          const res = await fetch(`${mcpOrigin}/token`, {
            method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: chain.refreshToken, client_id: chain.client.client_id }),
          });
          const body = await res.json();
          if (res.status !== 200) throw new Error(JSON.stringify(body));
          chain.refreshToken = body.refresh_token;
        };
      }));
    }
    // 32 todos created at once by one user: how many survive?
    {
      const sids = await Promise.all(Array.from({ length: 32 }, () => openSession(mcpUrl, token)));
      const before = await rpc(mcpUrl, token, sids[0], { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_my_todo_list', arguments: {} } });
      const count = (r) => r.json.result.structuredContent?.todos?.length ?? NaN;
      const n0 = count(before);
      await Promise.all(sids.map((sid, i) => rpc(mcpUrl, token, sid, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'create_new_todo', arguments: { text: `bench todo ${i}` } } })));
      const after = await rpc(mcpUrl, token, sids[0], { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'get_my_todo_list', arguments: {} } });
      results.concurrent_creates = { attempted: 32, kept: count(after) - n0, lost: 32 - (count(after) - n0) };
    }
    // Cold start: restart the MCP worker and time its first answers.
    if (stack) {
      const mcpChild = stack.children.find((c) => c.stackName === 'mcp');
      if (mcpChild) {
        await stack.stop();
        const t0 = performance.now();
        stack = await startStack({ ports: stack.ports, stateDir: stack.stateDir, dotenv: null, build: false, idp: true, todoApi: true });
        const ready = performance.now() - t0;
        const t1 = performance.now();
        await rpc(mcpUrl, token, null, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'bench', version: '1' } } });
        results.cold_start = { stack_ready_s: +(ready / 1000).toFixed(1), first_initialize_ms: Math.round(performance.now() - t1) };
      }
    }
    if (!process.env.BENCH_BASE_URL) results.bundles = bundleSizes();
  } finally {
    if (stack) await stack.stop();
  }
  if (!process.env.BENCH_BASE_URL) results.rows.push(...await gatewayRows());
  report(results);
}

function report(results) {

  const pad = (s, n) => String(s).padEnd(n);
  console.log(`\n${pad('measurement', 40)}${pad('conc', 6)}${pad('req/s', 9)}${pad('p50 ms', 9)}${pad('p95 ms', 9)}${pad('p99 ms', 9)}${pad('n', 7)}errors`);
  for (const r of results.rows) {
    console.log(`${pad(r.name, 40)}${pad(r.concurrency, 6)}${pad(r.rps, 9)}${pad(r.p50_ms, 9)}${pad(r.p95_ms, 9)}${pad(r.p99_ms, 9)}${pad(r.requests, 7)}${r.errors}`);
  }
  if (results.concurrent_creates) console.log(`32 concurrent create_new_todo: kept ${results.concurrent_creates.kept}, lost ${results.concurrent_creates.lost}`);
  if (results.cold_start) console.log(`cold start: stack ready in ${results.cold_start.stack_ready_s} s, first initialize ${results.cold_start.first_initialize_ms} ms`);
  for (const [name, s] of Object.entries(results.bundles ?? {})) console.log(`bundle ${pad(name, 12)} raw ${s.raw_kib} KiB, gzip ${s.gzip_kib} KiB`);
  writeFileSync(join(ROOT, 'bench-output', 'bench.json'), JSON.stringify(results, null, 2));
  console.log('\nwritten: bench-output/bench.json');
}

main().catch((err) => { console.error(err); process.exit(1); });
