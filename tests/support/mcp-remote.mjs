// mcp-remote (what Claude Desktop's config runs), driven headlessly: its "browser" is a script
// that records the authorization URL, which a test follows over HTTP (consent, IdP login, then
// mcp-remote's own loopback callback); then JSON-RPC over its stdio.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, ROOT } from './stack.mjs';
import { CookieJar } from './flow.mjs';
import { followAuthorization } from './sdk-oauth.mjs';

const MCP_REMOTE = join(ROOT, 'node_modules', 'mcp-remote', 'dist', 'proxy.js');

/**
 * Starts mcp-remote for `url` with its own config directory. Its "browser" is a script (run by
 * the `open` package's xdg-open through $BROWSER) that appends each URL to a file.
 */
export async function startMcpRemote(url, configDir, extraArgs = []) {
  mkdirSync(configDir, { recursive: true });
  const browser = join(configDir, 'browser.sh');
  if (!existsSync(browser)) {
    writeFileSync(browser, '#!/bin/sh\nprintf \'%s\\n\' "$1" >> "$BROWSER_URL_FILE"\n');
    chmodSync(browser, 0o755);
  }
  const urlFile = join(configDir, 'browser-urls.txt');
  const port = await freePort();
  const child = spawn(process.execPath, [MCP_REMOTE, url, String(port), '--host', '127.0.0.1', ...extraArgs], {
    env: {
      ...process.env, BROWSER: browser, BROWSER_URL_FILE: urlFile, MCP_REMOTE_CONFIG_DIR: configDir,
      DISPLAY: '', WAYLAND_DISPLAY: '',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const remote = {
    child, port, stderr: '', pending: new Map(), nextId: 1,
    exited: new Promise((r) => child.once('exit', r)),
    browserUrls: () => (existsSync(urlFile) ? readFileSync(urlFile, 'utf8').split('\n').filter(Boolean) : []),
    async waitFor(predicate, what, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (child.exitCode !== null) throw new Error(`mcp-remote exited (${child.exitCode}) waiting for ${what}:\n${remote.stderr}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${remote.stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    request(method, params = {}) {
      const id = remote.nextId++;
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer to ${method}:\n${remote.stderr}`)), 30_000);
        remote.pending.set(id, (msg) => { clearTimeout(timer); resolve(msg); });
      });
    },
    notify(method, params = {}) {
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method, params })}\n`);
    },
    async close() {
      child.stdin.end();
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await remote.exited;
      clearTimeout(t);
    },
  };
  child.stderr.on('data', (d) => { remote.stderr += d; });
  let buffered = '';
  child.stdout.on('data', (d) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line);
      remote.pending.get(msg.id)?.(msg);
      remote.pending.delete(msg.id);
    }
  });
  return remote;
}

/**
 * Signs `user` in through the authorization URL mcp-remote "opened" (the first one), landing on
 * mcp-remote's own callback server. Returns the trip (consentShown, idpLogin, …) and the URL.
 */
export async function signInThroughBrowser(remote, user) {
  await remote.waitFor(() => remote.browserUrls().length > 0, 'the browser to be opened');
  const [url] = remote.browserUrls();
  const redirectUri = new URL(url).searchParams.get('redirect_uri');
  const trip = await followAuthorization(url, { jar: new CookieJar(), user, redirectUri });
  const landing = await fetch(trip.redirect);
  if (landing.status !== 200) throw new Error(`mcp-remote's callback answered ${landing.status}`);
  await landing.arrayBuffer();
  return { trip, url };
}
