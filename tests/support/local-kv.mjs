// Reads the MCP worker's KV namespace the way `wrangler dev` persisted it (Miniflare's layout
// under `<stateDir>/mcp/v3/kv/`): the keys live in a SQLite table `_mf_entries` of the namespace's
// Durable Object, each value in a blob file named by the row's `blob_id`. Read with the stack
// stopped (or at least with nothing written meanwhile): workerd owns these files while it runs.
//
//   readLocalKv(stateDir)  → [{ key, value, expiration (ms | null) }], every row physically present,
//                            including rows whose expiration has passed but nobody has removed yet
//   localKvFiles(stateDir) → every file of the namespace's storage (SQLite, WAL, blobs), for raw scans
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const NAMESPACE_ID = '00000000000000000000000000000000'; // OAUTH_KV's id in wrangler.toml

function kvDir(stateDir) {
  const dir = join(stateDir, 'mcp', 'v3', 'kv');
  if (!existsSync(dir)) throw new Error(`no local KV under ${dir}`);
  return dir;
}

export async function readLocalKv(stateDir) {
  const { DatabaseSync } = await import('node:sqlite').catch(() => {
    throw new Error(`reading the local KV needs node:sqlite (Node.js 22.13+, the one in node_modules); this is ${process.version}`);
  });
  const dir = kvDir(stateDir);
  const objects = join(dir, 'miniflare-KVNamespaceObject');
  const blobs = join(dir, NAMESPACE_ID, 'blobs');
  const rows = [];
  let tables = 0;
  for (const file of readdirSync(objects).filter((f) => f.endsWith('.sqlite'))) {
    const db = new DatabaseSync(join(objects, file), { readOnly: true });
    try {
      const hasEntries = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_mf_entries'").get();
      if (!hasEntries) continue;
      tables += 1;
      for (const r of db.prepare('SELECT key, blob_id, expiration FROM _mf_entries ORDER BY key').all()) {
        rows.push({ key: r.key, value: readFileSync(join(blobs, r.blob_id), 'utf8'), expiration: r.expiration ?? null });
      }
    } finally {
      db.close();
    }
  }
  if (tables !== 1) throw new Error(`expected one KV namespace table under ${objects}, found ${tables}`);
  return rows;
}

export function localKvFiles(stateDir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(kvDir(stateDir));
  return out;
}
