// V8 CPU profile of a worker under load, through the inspector port `wrangler dev` opens for it
// (the isolate of the worker and its Durable Objects; Miniflare's own services, such as local KV,
// run elsewhere). Self time is summed by function; Wasm functions carry their names only when the
// build kept its names section (scripts/build strips it; bench/run.mjs BENCH_ONLY=v8profile with
// BENCH_THIS_DIR pointing at an unstripped build).

async function target(port) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const t = list.find((x) => x.webSocketDebuggerUrl);
  if (!t) throw new Error(`no inspector target on port ${port}`);
  return t.webSocketDebuggerUrl;
}

function session(url) {
  // wrangler's inspector proxy wants a local Origin.
  const ws = new WebSocket(url, { headers: { origin: 'http://127.0.0.1' } });
  let id = 0;
  const pending = new Map();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(msg.error.message)); else resolve(msg.result);
    }
  };
  const opened = new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  return {
    opened,
    send(method, params = {}) {
      const n = ++id;
      ws.send(JSON.stringify({ id: n, method, params }));
      return new Promise((resolve, reject) => pending.set(n, { resolve, reject }));
    },
    close() { ws.close(); },
  };
}

/** Self time by function (ms) of a profile, and totals by kind (wasm, JS glue, runtime). */
export function summarize(profile, calls) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const deltas = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = (deltas[i + 1] ?? 0) / 1000;
    const f = node.callFrame;
    const wasm = f.url?.startsWith('wasm://') || /^\$|wasm-function/.test(f.functionName);
    const name = `${f.functionName || '(anonymous)'}${wasm ? ' [wasm]' : f.url ? ` ${f.url.split('/').pop()}:${f.lineNumber}` : ''}`;
    self.set(name, (self.get(name) ?? 0) + dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = self.get('(idle)') ?? 0;
  const kinds = {};
  for (const [name, ms] of self) {
    const kind = name === '(idle)' ? 'idle' : name.endsWith('[wasm]') ? 'wasm' : /^\((program|garbage collector)\)/.test(name) ? name : 'js';
    kinds[kind] = (kinds[kind] ?? 0) + ms;
  }
  const top = [...self].filter(([n]) => n !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 40)
    .map(([name, ms]) => ({ name, ms_per_call: +(ms / calls).toFixed(4), share: +(ms / (total - idle)).toFixed(3) }));
  return {
    calls, busy_ms_per_call: +((total - idle) / calls).toFixed(3),
    kinds_ms_per_call: Object.fromEntries(Object.entries(kinds).map(([k, v]) => [k, +(v / calls).toFixed(3)])), top,
  };
}

/** Profiles the isolate behind `inspectorPort` while `run()` runs; `run` resolves to the calls served. */
export async function profileWhile(inspectorPort, run) {
  const s = session(await target(inspectorPort));
  await s.opened;
  await s.send('Profiler.enable');
  await s.send('Profiler.setSamplingInterval', { interval: 200 });
  await s.send('Profiler.start');
  const calls = await run();
  const { profile } = await s.send('Profiler.stop');
  s.close();
  return summarize(profile, calls);
}
