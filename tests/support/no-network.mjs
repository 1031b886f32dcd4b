// Preloaded (NODE_OPTIONS=--import) into wrangler by tests/deploy.test.mjs: records every
// attempt to open a network connection or resolve a name, other than loopback and Unix
// sockets, to the file named by NO_NETWORK_LOG, and refuses it. A command that works
// offline leaves the file empty.
import net from 'node:net';
import dns from 'node:dns';
import { appendFileSync } from 'node:fs';

const LOG = process.env.NO_NETWORK_LOG;
const LOOPBACK = /^(127\.|::1$|localhost$|0\.0\.0\.0$)/;

function record(what) {
  if (LOG) appendFileSync(LOG, `${process.pid} ${what}\n`);
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function patchedConnect(...args) {
  const opts = typeof args[0] === 'object' && args[0] !== null ? (Array.isArray(args[0]) ? args[0][0] : args[0]) : { port: args[0], host: args[1] };
  if (!opts?.path) {
    const host = opts?.host ?? 'localhost';
    if (!LOOPBACK.test(host)) {
      record(`connect ${host}:${opts?.port}`);
      const err = new Error(`network refused by the offline test: ${host}:${opts?.port}`);
      err.code = 'ENETUNREACH';
      process.nextTick(() => this.destroy(err));
      return this;
    }
  }
  return connect.apply(this, args);
};

const lookup = dns.lookup;
dns.lookup = function patchedLookup(host, ...rest) {
  if (!LOOPBACK.test(String(host))) record(`lookup ${host}`);
  return lookup.call(this, host, ...rest);
};
const { promises } = dns;
const promiseLookup = promises.lookup;
promises.lookup = function patchedPromiseLookup(host, ...rest) {
  if (!LOOPBACK.test(String(host))) record(`lookup ${host}`);
  return promiseLookup.call(this, host, ...rest);
};
