// CPU accounting for the benchmark: clock ticks (utime + stime, /proc/<pid>/stat) of the
// processes of each local stack child, split into the `workerd` that runs the worker's code (the
// one `wrangler dev` starts with an inspector address) and everything else of that child (its
// Node process, its proxy `workerd`, esbuild): the dev tooling, which production does not have.
// Under Miniflare's API (bench/miniflare.mjs) there is no such group: its `workerd` is a plain
// child of this process, named by pid (`workerdPid`), and it counts whole as the worker.
import { readdirSync, readFileSync } from 'node:fs';

export const TICK_MS = 1000 / 100; // CLK_TCK is 100 on Linux

function readStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain anything.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), pgid: Number(f[2]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

function cmdline(pid) {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { return []; }
}

/** Pids of the `workerd` processes this process started itself (Miniflare's runtime). */
export function childWorkerds() {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e) && readStat(e)?.ppid === process.pid && /workerd$/.test(cmdline(e)[0] ?? '')).map(Number);
}

/**
 * Ticks so far of every process of `children` (stack children: each is the leader of its own
 * process group; or { stackName, workerdPid } for a workerd of Miniflare's), as
 * { "<child>:worker" | "<child>:tooling": { pid: ticks } }.
 */
export function snapshot(children) {
  const groups = new Map(children.filter((c) => !c.workerdPid).map((c) => [c.pid, c.stackName]));
  const direct = new Map(children.filter((c) => c.workerdPid).map((c) => [String(c.workerdPid), c.stackName]));
  const out = {};
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = readStat(entry);
    if (st && direct.has(entry)) {
      (out[`${direct.get(entry)}:worker`] ??= {})[entry] = st.ticks;
      continue;
    }
    if (!st || !groups.has(st.pgid)) continue;
    const name = groups.get(st.pgid);
    const args = cmdline(entry);
    const runsCode = /workerd$/.test(args[0] ?? '') && args.some((a) => a.startsWith('--inspector-addr'));
    const key = `${name}:${runsCode ? 'worker' : 'tooling'}`;
    (out[key] ??= {})[entry] = st.ticks;
  }
  return out;
}

/** Milliseconds of CPU per key between two snapshots (processes gone meanwhile count nothing). */
export function spent(before, after) {
  const out = {};
  for (const [key, pids] of Object.entries(after)) {
    let ticks = 0;
    for (const [pid, t] of Object.entries(pids)) ticks += t - (before[key]?.[pid] ?? 0);
    out[key] = ticks * TICK_MS;
  }
  return out;
}
