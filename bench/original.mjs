// The original TypeScript worker (pingidentity/cloudflare-mcp, folder remote-mcp-pingone), run in
// the benchmark beside ours: BENCH_ORIGINAL=<that folder>. Nothing of its code is in this
// repository; this file only drives a checkout of it:
//   - installs its dependencies (`npm ci` in mcp/ and api/ when node_modules is missing) and
//     builds it as its README says (`npm run build`: `wrangler types && tsc --build`, to dist/);
//   - serves the stand-in IdP (local/idp) over HTTPS at a PingOne-shaped issuer
//     (https://127.0.0.1:<port>/<envId>/as): its oauth4webapi refuses an http issuer. The
//     certificate is self-signed, made here with openssl; every process of the run (this one,
//     wrangler, workerd) trusts it through NODE_EXTRA_CA_CERTS, which Node reads only at start,
//     so bench/run.mjs starts itself again with it set (`reexecWithCa`);
//   - starts its two workers with this repository's `wrangler dev` (the same wrangler and workerd
//     as ours) from copies of its wrangler.jsonc written to the state directory: `main` made
//     absolute, and without the `ai` binding (`remote: true`, which would need a Cloudflare login;
//     its code never uses it). Everything else (KV, the session Durable Object, compatibility
//     date and flags) is its own. Its MCP worker reaches its Todo API at API_URL over HTTP (it
//     has no service binding); its Todo API fetches the IdP's JWKS over HTTPS.
// Its children are named as ours ('mcp', 'todo-api', 'idp'), so bench/cpu.mjs counts its
// workers' `workerd` exactly as it counts ours.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { selfSignedCert } from '../tests/support/tls.mjs';
import { ROOT, freePort, startProcess, startWranglerDev, stopProcess, waitForHttp } from '../local/stack.mjs';

const TLS_DIR = join(ROOT, 'bench-output', 'original-tls');
// A PingOne environment id's shape; any UUID.
const ENV_ID = '6f1c2a9e-4b7d-4e1a-9c3f-0d8b5e2a7c41';
const CLIENT = { id: 'mcp-worker', secret: 'dev-secret-change-me' };

/**
 * Starts this process again with NODE_EXTRA_CA_CERTS naming a fresh self-signed certificate
 * for 127.0.0.1 (and any CA file it already named), unless that is done: returns the child's
 * exit status then, null in the child (which goes on).
 */
export function reexecWithCa() {
  if (process.env.BENCH_ORIGINAL_CA) return null;
  rmSync(TLS_DIR, { recursive: true, force: true });
  mkdirSync(TLS_DIR, { recursive: true });
  const { certPath: cert } = selfSignedCert(TLS_DIR, { days: 7 });
  let bundle = cert;
  if (process.env.NODE_EXTRA_CA_CERTS && existsSync(process.env.NODE_EXTRA_CA_CERTS)) {
    bundle = join(TLS_DIR, 'ca-bundle.pem');
    writeFileSync(bundle, `${readFileSync(process.env.NODE_EXTRA_CA_CERTS, 'utf8').trim()}\n${readFileSync(cert, 'utf8')}`);
  }
  const res = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: 'inherit', env: { ...process.env, BENCH_ORIGINAL_CA: cert, NODE_EXTRA_CA_CERTS: bundle },
  });
  return res.status ?? 1;
}

/** JSON from JSONC: comments outside strings and trailing commas removed. */
function parseJsonc(text) {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i + 2) + 1;
    } else out += c;
  }
  return JSON.parse(out.replace(/,(\s*[}\]])/g, '$1'));
}

/** Installs and builds one of its workers (`mcp` or `api`) where that is not done yet. */
function prepare(dir, log) {
  const run = (args) => execFileSync('npm', args, { cwd: dir, stdio: ['ignore', log, log] });
  if (!existsSync(join(dir, 'node_modules'))) run(['ci', '--no-audit', '--no-fund']);
  if (!existsSync(join(dir, 'dist', 'index.js'))) run(['run', 'build']);
}

/** A copy of its wrangler.jsonc in `stateDir` that `wrangler dev` can run from there. */
function runnableConfig(dir, name, stateDir) {
  const cfg = parseJsonc(readFileSync(join(dir, 'wrangler.jsonc'), 'utf8'));
  cfg.main = resolve(dir, cfg.main);
  delete cfg.$schema;
  delete cfg.ai; // remote-only (needs a Cloudflare login); unused by its code
  const out = join(stateDir, `${name}.wrangler.json`);
  writeFileSync(out, JSON.stringify(cfg, null, 2));
  return out;
}

/**
 * Builds and starts the original at `dir` (its remote-mcp-pingone folder) with its own HTTPS
 * stand-in IdP; returns a stack shaped like local/stack.mjs's (children, stop(), logsDir, …).
 */
export async function startOriginalStack(dir, stateDir) {
  if (!process.env.BENCH_ORIGINAL_CA) throw new Error('the original needs the IdP certificate in NODE_EXTRA_CA_CERTS (reexecWithCa)');
  const mcpDir = join(dir, 'mcp');
  const apiDir = join(dir, 'api');
  for (const d of [mcpDir, apiDir]) {
    if (!existsSync(join(d, 'wrangler.jsonc'))) throw new Error(`BENCH_ORIGINAL=${dir}: no ${d}/wrangler.jsonc (give the remote-mcp-pingone folder of pingidentity/cloudflare-mcp)`);
  }
  rmSync(stateDir, { recursive: true, force: true });
  const logsDir = join(stateDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  const prepLog = openSync(join(logsDir, 'prepare.log'), 'a');
  prepare(mcpDir, prepLog);
  prepare(apiDir, prepLog);

  const ports = {
    idp: await freePort(), todoApi: await freePort(), mcp: await freePort(),
    todoApiInspector: await freePort(), mcpInspector: await freePort(),
  };
  const issuer = `https://127.0.0.1:${ports.idp}/${ENV_ID}/as`;
  const mcpOrigin = `http://127.0.0.1:${ports.mcp}`;
  const todoApiOrigin = `http://127.0.0.1:${ports.todoApi}`;
  const apiIdentifier = todoApiOrigin;
  const stack = {
    original: true, issuer, ports, stateDir, logsDir, mcpOrigin, mcpUrl: `${mcpOrigin}/mcp`,
    todoApiUrl: todoApiOrigin, children: [], workerUrls: {},
    async stop() {
      await Promise.all(this.children.map((c) => stopProcess(c)));
      this.children = [];
    },
  };
  try {
    const idp = startProcess('idp', process.execPath, [join(ROOT, 'local', 'idp', 'server.mjs')], {
      logFile: join(logsDir, 'idp.log'),
      env: {
        IDP_HOST: '127.0.0.1', IDP_PORT: String(ports.idp), IDP_ISSUER: issuer, IDP_STATE_DIR: join(stateDir, 'idp'),
        IDP_TLS_KEY: join(TLS_DIR, 'key.pem'), IDP_TLS_CERT: process.env.BENCH_ORIGINAL_CA,
        MCP_CLIENT_ID: CLIENT.id, MCP_CLIENT_SECRET: CLIENT.secret,
        MCP_REDIRECT_URIS: `${mcpOrigin}/callback`, API_IDENTIFIER: apiIdentifier,
      },
    });
    stack.children.push(idp);
    await waitForHttp(`${issuer}/.well-known/openid-configuration`, { child: idp, name: 'stand-in IdP (HTTPS)', logLine: /^Development identity provider/m });

    const wrangler = (name, config, port, inspector, vars) =>
      startWranglerDev(stack, { name, config, port, inspector, vars, stateDir, logsDir, label: `original ${name}` });
    stack.configs = { mcp: runnableConfig(mcpDir, 'mcp', stateDir), todoApi: runnableConfig(apiDir, 'todo-api', stateDir) };
    await Promise.all([
      wrangler('todo-api', stack.configs.todoApi, ports.todoApi, ports.todoApiInspector, { API_ISSUER: issuer, API_AUDIENCE: apiIdentifier }),
      wrangler('mcp', stack.configs.mcp, ports.mcp, ports.mcpInspector, {
        PINGONE_ISSUER: issuer, MCP_SERVER_CLIENT_ID: CLIENT.id, MCP_SERVER_CLIENT_SECRET: CLIENT.secret,
        API_IDENTIFIER: apiIdentifier, API_URL: todoApiOrigin,
        COOKIE_ENCRYPTION_KEY: 'local-benchmark-cookie-key-not-secret',
      }),
    ]);
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}
