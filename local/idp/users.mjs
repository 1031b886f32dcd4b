// The stand-in IdP's test users. PingOne identifies users by a UUID `sub`; here it is derived
// from the username so it is the same on every start and every machine.
import { createHash, timingSafeEqual } from 'node:crypto';

export const DEFAULT_USERS = [
  { username: 'alice', password: 'alice-password', name: 'Alice Example', email: 'alice@example.com' },
  { username: 'bob', password: 'bob-password', name: 'Bob Example', email: 'bob@example.com' },
];

/** A UUID-shaped stable subject identifier for `username`. */
export function subFor(username) {
  const h = createHash('sha256').update(`pingone-standin-user:${username}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Normalises a user list: an array of `{ username, password, name?, email?, sub? }`, or an
 * object mapping username to a password or to `{ password, name?, email?, sub? }`.
 */
export function normaliseUsers(spec = DEFAULT_USERS) {
  const list = Array.isArray(spec)
    ? spec
    : Object.entries(spec).map(([username, v]) => (typeof v === 'string' ? { username, password: v } : { username, ...v }));
  const users = new Map();
  for (const u of list) {
    if (!u || typeof u.username !== 'string' || !u.username || typeof u.password !== 'string') {
      throw new Error('each user needs a non-empty "username" and a "password" string');
    }
    users.set(u.username, {
      username: u.username,
      password: u.password,
      sub: u.sub ?? subFor(u.username),
      name: u.name ?? u.username,
      email: u.email,
    });
  }
  if (users.size === 0) throw new Error('at least one user is needed');
  return new UserDirectory(users);
}

/** Parses env `IDP_USERS` (JSON, see normaliseUsers); undefined when unset. */
export function usersFromEnv(value) {
  if (!value) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    throw new Error('IDP_USERS must be JSON: [{"username":"…","password":"…"}] or {"name":"password"}');
  }
}

function sameSecret(a, b) {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

class UserDirectory {
  constructor(byUsername) {
    this.byUsername = byUsername;
    this.bySub = new Map([...byUsername.values()].map((u) => [u.sub, u]));
  }

  get usernames() {
    return [...this.byUsername.keys()];
  }

  /** The user whose credentials these are, or null. */
  authenticate(username, password) {
    const user = this.byUsername.get(String(username ?? '').trim());
    if (!user || !sameSecret(user.password, String(password ?? ''))) return null;
    return user;
  }

  findBySub(sub) {
    return this.bySub.get(sub) ?? null;
  }

  /** The OpenID claims of a user, as PingOne returns them for the profile and email scopes. */
  static claims(user) {
    const claims = { sub: user.sub, preferred_username: user.username, name: user.name };
    if (user.email) Object.assign(claims, { email: user.email, email_verified: true });
    return claims;
  }
}

export const userClaims = UserDirectory.claims;
