/**
 * CPU accounting of a process tree from /proc: utime+stime of every thread of a process and of
 * each of its descendants (a proxy's workers, nginx's worker under its master), over an interval.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** utime+stime of one process, all its threads, µs (/proc/PID/stat fields 14 and 15). 0 if gone. */
export function cpuMicros(pid: number): number {
  const f = statFields(pid);
  return f ? ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK : 0;
}

/** `pid` and its descendants now (from /proc/PID/stat ppid fields). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = Number(statFields(Number(name))?.[1]);
    if (!Number.isFinite(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/**
 * CPU of a process tree over an interval: call `start()` before and `stop()` after; the result is
 * µs of utime+stime of `pid` and every descendant seen at either end (workers, nginx's worker).
 */
export class TreeCpu {
  #before = new Map<number, number>();
  readonly pid: number;
  constructor(pid: number) {
    this.pid = pid;
  }
  start(): void {
    this.#before = new Map(processTree(this.pid).map((p) => [p, cpuMicros(p)]));
  }
  stop(): number {
    let total = 0;
    const pids = new Set([...this.#before.keys(), ...processTree(this.pid)]);
    for (const p of pids) total += Math.max(0, cpuMicros(p) - (this.#before.get(p) ?? 0));
    return total;
  }
}

/** CPU of each thread of a process over an interval (/proc/PID/task/TID/stat), busiest first. */
export class ThreadCpu {
  #before = new Map<number, number>();
  readonly pid: number;
  constructor(pid: number) {
    this.pid = pid;
  }
  #sample(): Map<number, { name: string; us: number }> {
    const out = new Map<number, { name: string; us: number }>();
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${this.pid}/task`);
    } catch {
      return out;
    }
    for (const t of tids) {
      try {
        const stat = readFileSync(`/proc/${this.pid}/task/${t}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.set(Number(t), { name, us: ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK });
      } catch {
        // a thread that ended between the listing and the read
      }
    }
    return out;
  }
  start(): void {
    this.#before = new Map([...this.#sample()].map(([t, s]) => [t, s.us]));
  }
  /** Threads that used CPU since `start`, as `{tid, name, us}`, busiest first. */
  stop(): { tid: number; name: string; us: number }[] {
    return [...this.#sample()]
      .map(([tid, s]) => ({ tid, name: s.name, us: s.us - (this.#before.get(tid) ?? 0) }))
      .filter((t) => t.us > 0)
      .sort((a, b) => b.us - a.us);
  }
}
