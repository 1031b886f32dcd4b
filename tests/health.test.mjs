// The MCP worker starts in workerd and reports who it is.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestStack, ROOT } from './support/stack.mjs';

const stack = await startTestStack({ idp: false, todoApi: false });
after(() => stack.stop());

test('GET /health answers with name, version and status', async () => {
  const res = await fetch(`${stack.mcpOrigin}/health`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const version = readFileSync(`${ROOT}/Cargo.toml`, 'utf8').match(/\[package\][^[]*?version = "([^"]+)"/)[1];
  assert.deepEqual(await res.json(), { name: 'pingone-mcp-worker', version, status: 'ok' });
});

test('an unknown path is a JSON 404, not a crash', async () => {
  const res = await fetch(`${stack.mcpOrigin}/no-such-thing`);
  assert.equal(res.status, 404);
  assert.equal((await res.json()).error, 'not_found');
});
