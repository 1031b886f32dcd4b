// The stand-in IdP's test users. PingOne identifies users by a UUID `sub`; here it is derived
// from the username so it is the same on every start and every machine.
import { createHash, timingSafeEqual } from 'node:crypto';

export const DEFAULT_USERS = [
  { username: 'alice', password: 'alice-password', name: 'Alice Example', email: 'alice@example.com', groups: ['todo-users'] },
  { username: 'bob', password: 'bob-password', name: 'Bob Example', email: 'bob@example.com', groups: ['todo-users', 'admins'] },
  // In no group: for trying access control (ALLOWED_GROUPS) on the MCP worker.
  { username: 'mallory', password: 'mallory-password', name: 'Mallory Example', email: 'mallory@example.com' },
];

/** Claim carrying a user's group names when none is configured (PingOne: the attribute mapping's name). */
export const DEFAULT_GROUPS_CLAIM = 'groups';

/** A UUID-shaped stable subject identifier for `username`. */
export function subFor(username) {
  const h = createHash('sha256').update(`pingone-standin-user:${username}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Normalises a user list: an array of `{ username, password, name?, email?, email_verified?, sub?,
 * groups? }`, or an object mapping username to a password or to `{ password, name?, email?,
 * email_verified?, sub?, groups? }`. `groups` is an array of group names; `email_verified: false`
 * marks the address unverified (PingOne's claim says so), otherwise it is verified.
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
      emailVerified: u.email_verified !== false,
      groups: normaliseGroups(u.groups, u.username),
    });
  }
  if (users.size === 0) throw new Error('at least one user is needed');
  return new UserDirectory(users);
}

function normaliseGroups(groups, username) {
  if (groups === undefined) return [];
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string' && g)) {
    throw new Error(`"groups" of user ${username} must be an array of group names`);
  }
  return [...new Set(groups)];
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

  /**
   * The OpenID claims of a user, as PingOne returns them for the profile and email scopes, plus
   * the user's groups under `groupsClaim` when they have any (PingOne sends an attribute mapped
   * into the application's tokens whatever the scopes).
   */
  static claims(user, groupsClaim = DEFAULT_GROUPS_CLAIM) {
    const claims = { sub: user.sub, preferred_username: user.username, name: user.name };
    if (user.email) Object.assign(claims, { email: user.email, email_verified: user.emailVerified !== false });
    if (user.groups?.length) claims[groupsClaim] = [...user.groups];
    return claims;
  }
}

export const userClaims = UserDirectory.claims;
