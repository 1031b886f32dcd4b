// Storage for oidc-provider's stateful artifacts (sessions, grants, interactions, codes,
// refresh tokens), kept in memory and mirrored to a JSON file in the state directory so a
// restarted IdP still honours the refresh tokens it issued. One store is shared by every
// Provider instance of an IdP (a key rotation builds a new Provider over the same store).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const nowSecs = () => Math.floor(Date.now() / 1000);

/** Models whose entries are indexed by grant so a grant revocation can find them. */
const GRANTABLE = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode',
]);

export class Store {
  /** `file`: where to mirror the entries, or null to keep them in memory only. */
  constructor(file = null) {
    this.file = file;
    this.entries = new Map(); // key -> { value, exp (epoch seconds) | null }
    this.timer = null;
    if (file && existsSync(file)) {
      try {
        for (const [key, entry] of JSON.parse(readFileSync(file, 'utf8'))) this.entries.set(key, entry);
      } catch {
        // A corrupt store only costs the user a new sign-in; start empty.
        this.entries.clear();
      }
      this.prune();
    }
  }

  get(key) {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.exp !== null && entry.exp <= nowSecs()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key, value, expiresIn) {
    const exp = typeof expiresIn === 'number' ? nowSecs() + expiresIn : null;
    this.entries.set(key, { value, exp });
    this.changed();
  }

  delete(key) {
    if (this.entries.delete(key)) this.changed();
  }

  prune() {
    const now = nowSecs();
    for (const [key, { exp }] of this.entries) if (exp !== null && exp <= now) this.entries.delete(key);
  }

  changed() {
    if (!this.file || this.timer) return;
    // Coalesce the several writes of one request into one file write.
    this.timer = setTimeout(() => this.flush(), 50);
    this.timer.unref();
  }

  /** Writes the entries to the file now (also called on close). */
  flush() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.file) return;
    this.prune();
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify([...this.entries]), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

/** An oidc-provider adapter factory over `store` (see oidc-provider's adapter interface). */
export function adapterFor(store) {
  return (model) => new StoreAdapter(model, store);
}

class StoreAdapter {
  constructor(model, store) {
    this.model = model;
    this.store = store;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    this.store.set(key, payload, expiresIn);
    if (this.model === 'Session' && payload.uid) this.store.set(`sessionUid:${payload.uid}`, id, expiresIn);
    if (payload.userCode) this.store.set(`userCode:${payload.userCode}`, id, expiresIn);
    if (GRANTABLE.has(this.model) && payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      const members = [...new Set([...(this.store.get(grantKey) ?? []), key])]
        .filter((member) => this.store.get(member) !== undefined);
      // The index lives as long as its longest-lived member.
      const exps = members.map((member) => this.store.entries.get(member).exp);
      const ttl = exps.includes(null) ? undefined : Math.max(...exps) - nowSecs();
      this.store.set(grantKey, members, ttl);
    }
  }

  async find(id) {
    return id === undefined ? undefined : this.store.get(this.key(id));
  }

  async findByUid(uid) {
    return this.find(this.store.get(`sessionUid:${uid}`));
  }

  async findByUserCode(userCode) {
    return this.find(this.store.get(`userCode:${userCode}`));
  }

  async consume(id) {
    const key = this.key(id);
    const entry = this.store.entries.get(key);
    if (!entry) return;
    entry.value.consumed = nowSecs();
    this.store.changed();
  }

  async destroy(id) {
    this.store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    for (const key of this.store.get(grantKey) ?? []) this.store.delete(key);
    this.store.delete(grantKey);
  }
}
