// Headless Chromium for the tests of pages a person sees: Debian's /usr/bin/chromium driven by
// playwright-core, a loopback server standing in for the MCP client's redirect URI, and bounded
// waits. A browser test must never wait without a bound: a node --test file that times out
// loses the reports of all its tests.
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { freePort } from './stack.mjs';

export const CHROMIUM = '/usr/bin/chromium';
// A switch Chromium ignores, naming this test process's browsers so they can be killed if they wedge.
const MARKER = `--mcp-worker-test-run=${process.pid}`;

/** Launches headless Chromium (bounded), or fails saying how to install it. */
export async function launchChromium() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', MARKER],
  });
}

/**
 * A loopback HTTP server standing in for the MCP client's redirect URIs (`/callback` and
 * `/other-callback`). Only those paths reach `next()`: the browser's own requests to the origin
 * (a favicon) must not pass for a redirect meant for a later flow.
 */
export async function startCallbackServer() {
  const port = await freePort();
  const waiting = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    if (url.pathname !== '/callback' && url.pathname !== '/other-callback') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>Done</title><p>You can close this window.</p>');
    waiting.shift()?.(url);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}/callback`,
    otherUrl: `http://127.0.0.1:${port}/other-callback`,
    server,
    next: () => new Promise((r) => waiting.push(r)),
    async close() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}

/** `promise`, or a failure naming `what` and the page's URL and text after `ms`. */
export async function within(page, promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(async () => {
      const body = await page.textContent('body', { timeout: 2000 }).catch(() => '(no body)');
      reject(new Error(`${what}: nothing after ${ms} ms; the page is ${page.url()}:\n${body?.slice(0, 500)}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes a page, context or browser, giving up after `ms` (a wedged renderer must not hang a
 * test). A browser that will not close is killed, or its pipes would keep the test file alive.
 */
export async function closeWithin(thing, ms = 10_000) {
  if (!thing) return;
  let timer;
  const closed = await Promise.race([
    thing.close().then(() => true, () => true),
    new Promise((r) => { timer = setTimeout(() => r(false), ms); }),
  ]);
  clearTimeout(timer);
  if (!closed && typeof thing.newContext === 'function') {
    console.error(`chromium did not close within ${ms} ms; killing it`);
    spawnSync('pkill', ['-KILL', '-f', MARKER]);
  }
}
