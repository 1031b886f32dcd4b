// The benchmark's second runtime: both workers in ONE workerd, started through Miniflare's API
// instead of `wrangler dev`. No dev proxy in front, no dev-registry proxy between them: the
// TODO_API service binding, the Durable Objects and KV are workerd's own (Miniflare's
// simulators), as close to production's plumbing as a local run gets. Requests still enter
// through Miniflare's entry worker, as they do in the workerd `wrangler dev` runs the code in.
//
// The stand-in IdP and every setting come from local/stack.mjs (a stack with only the IdP
// started), the bindings from the same frozen wrangler.toml files `wrangler dev` reads
// (wrangler's unstable_getMiniflareWorkerOptions), so both runtimes run the same workers with the
// same settings.
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { startStack } from '../local/stack.mjs';
import { childWorkerds } from './cpu.mjs';

/** The CPU key of the one workerd both workers share (no per-worker split is possible). */
export const SHARED = 'mcp+todo-api';

/** Miniflare worker options for the worker of wrangler config `config`, `vars` over its [vars]. */
function workerFrom(config, vars = {}, extra = {}) {
  const { workerOptions, main } = unstable_getMiniflareWorkerOptions(config);
  const name = readFileSync(config, 'utf8').match(/^name = "(.*)"$/m)[1];
  return {
    ...workerOptions,
    name,
    // worker-build's shim imports ../index.js (ESM, which Miniflare's default rules take for
    // CommonJS) and that imports ./index_bg.wasm; wrangler would bundle, Miniflare follows them.
    scriptPath: main,
    modules: true,
    modulesRules: [{ type: 'ESModule', include: ['**/*.js', '**/*.mjs'] }, ...workerOptions.modulesRules],
    bindings: { ...workerOptions.bindings, ...vars },
    ...extra,
  };
}

/** Starts a Miniflare instance and returns it with the pid of the workerd it spawned. */
async function startInstance(options, logFile) {
  const before = new Set(childWorkerds());
  const log = createWriteStream(logFile, { flags: 'a' });
  const mf = new Miniflare({
    host: '127.0.0.1',
    // As wrangler dev sets them: no request log (it costs a loopback call per request), no cf.json
    // download (the fallback object, which is what wrangler dev gets offline too).
    logRequests: false,
    cf: false,
    handleRuntimeStdio: (stdout, stderr) => { stdout.pipe(log); stderr.pipe(log); },
    ...options,
  });
  await mf.ready;
  const pids = childWorkerds().filter((p) => !before.has(p));
  if (pids.length !== 1) {
    await mf.dispose();
    throw new Error(`expected one new workerd child, found ${pids.length}`);
  }
  return { mf, pid: pids[0] };
}

/**
 * A stack like local/stack.mjs's, on Miniflare: the stand-in IdP (a stack child), then one
 * Miniflare instance running the MCP worker (entry socket, ports.mcp, so its public origin is the
 * stack's mcpOrigin that the IdP redirects back to) and the Todo API (its own direct socket on
 * ports.todoApi, the audience and API_URL the stack configures, for calls straight to it).
 * `floor` adds the floor worker in an instance of its own, as under wrangler dev (its own
 * workerd): its CPU per request is then not mixed with the idle work of the other two.
 * Returns the stack, its `children` including { stackName, workerdPid } entries for bench/cpu.mjs.
 */
export async function startMiniflareStack({ configs, ports, stateDir, mcpVars = {}, floor = null }) {
  const stack = await startStack({ ports, stateDir, dotenv: null, build: false, todoApi: false, mcp: false, mcpVars });
  const instances = [];
  try {
    const persist = join(stateDir, 'miniflare');
    mkdirSync(persist, { recursive: true });
    const main = await startInstance({
      port: ports.mcp,
      defaultPersistRoot: persist,
      workers: [
        workerFrom(configs.mcp, stack.mcpVars),
        workerFrom(configs.todoApi, stack.todoApiVars, { unsafeDirectSockets: [{ host: '127.0.0.1', port: ports.todoApi }] }),
      ],
    }, join(stack.logsDir, 'miniflare.log'));
    instances.push(main.mf);
    stack.children.push({ stackName: SHARED, workerdPid: main.pid });
    if (floor) {
      const port = floor.port;
      // Persisted like the main instance's: its /kv yardstick stands for the workers' local KV.
      const f = await startInstance({ port, defaultPersistRoot: join(stateDir, 'miniflare-floor'), workers: [workerFrom(floor.config)] }, join(stack.logsDir, 'floor.log'));
      instances.push(f.mf);
      stack.children.push({ stackName: 'floor', workerdPid: f.pid });
      stack.workerUrls.floor = `http://127.0.0.1:${port}`;
    }
  } catch (err) {
    await Promise.all(instances.map((mf) => mf.dispose()));
    await stack.stop();
    throw err;
  }
  const stopIdp = stack.stop;
  stack.stop = async function stop() {
    await Promise.all(instances.splice(0).map((mf) => mf.dispose()));
    this.children = this.children.filter((c) => !c.workerdPid);
    await stopIdp.call(this);
  };
  return stack;
}
