/**
 * Truth tables for the Kubernetes NetworkPolicy e2e topology (upstream
 * test/e2e/network/netpol, cyclonus): hosts × hosts × {tcp,udp}/{80,81}, an expectation written
 * from Kubernetes semantics, probes by real clients inside the pods' network namespaces, and a
 * readable diff.
 *
 *   expectation ──┐
 *                 ├─► compare ─► "" or a grid per port/protocol + one line per wrong cell
 *   probeMatrix ──┘
 *        │  TCP 80:            `ip netns exec <src> curl` (HTTP GET, body names the server pod)
 *        └─ TCP 81, UDP 80/81: one `ip netns exec <src> node -e PROBE` per source, every target
 *                              at once (connect / datagram, the answer must name the server)
 *
 * A dropped packet shows as a timeout, so negative probes cost their timeout: all probes of a
 * matrix run concurrently, and a cell expected open but seen closed is probed once more with a
 * longer timeout (a busy 2-core machine can be slow to start a client; it cannot open a port the
 * datapath drops, so a cell expected closed is never retried).
 */
import { spawn } from 'node:child_process';

export type Proto = 'tcp' | 'udp';
export interface PortProto {
  readonly proto: Proto;
  readonly port: number;
}
export const PORT_PROTOS: readonly PortProto[] = [
  { proto: 'tcp', port: 80 },
  { proto: 'tcp', port: 81 },
  { proto: 'udp', port: 80 },
  { proto: 'udp', port: 81 },
];
export const ppName = (pp: PortProto): string => `${pp.proto}/${pp.port}`;

export interface Host {
  /** `x/a` for pods, `ext/in` for the addresses outside the cluster. */
  readonly id: string;
  /** Network namespace the host's clients and server run in. */
  readonly netns: string;
  readonly ip: string;
  readonly namespace: string | null;
  readonly pod: string | null;
  readonly external: boolean;
}

export type HostFilter = (h: Host) => boolean;
export const anyHost: HostFilter = () => true;
export const podId = (...ids: string[]): HostFilter => (h) => ids.includes(h.id);
export const inNs = (...names: string[]): HostFilter => (h) => h.namespace !== null && names.includes(h.namespace);
export const podNamed = (...names: string[]): HostFilter => (h) => h.pod !== null && names.includes(h.pod);
export const isPod: HostFilter = (h) => !h.external;
export const isExternal: HostFilter = (h) => h.external;
export const not = (f: HostFilter): HostFilter => (h) => !f(h);
export const and = (...fs: HostFilter[]): HostFilter => (h) => fs.every((f) => f(h));

/** Loopback (a pod to itself) is ignored, as upstream; so is external → external (no datapath between them). */
export function probed(from: Host, to: Host): boolean {
  return from.id !== to.id && !(from.external && to.external);
}

export interface Verdict {
  readonly ok: boolean;
  /** How a failed probe failed (timeout, ECONNREFUSED, wrong answer...), for the diff. */
  readonly detail: string;
}

const key = (from: Host, to: Host, pp: PortProto): string => `${from.id}|${to.id}|${ppName(pp)}`;

/** Expected (or observed) reachability for every probed (from, to, port/proto). */
export class Truth {
  readonly hosts: readonly Host[];
  readonly cells = new Map<string, boolean>();

  constructor(hosts: readonly Host[], initial: boolean) {
    this.hosts = hosts;
    for (const from of hosts) for (const to of hosts) for (const pp of PORT_PROTOS) if (probed(from, to)) this.cells.set(key(from, to, pp), initial);
  }

  /** Sets every probed cell from a matching source to a matching destination on the given ports. */
  set(sel: { from?: HostFilter; to?: HostFilter; on?: readonly string[] }, value: boolean): this {
    for (const from of this.hosts) {
      if (sel.from && !sel.from(from)) continue;
      for (const to of this.hosts) {
        if ((sel.to && !sel.to(to)) || !probed(from, to)) continue;
        for (const pp of PORT_PROTOS) if (!sel.on || sel.on.includes(ppName(pp))) this.cells.set(key(from, to, pp), value);
      }
    }
    return this;
  }

  allow(sel: { from?: HostFilter; to?: HostFilter; on?: readonly string[] }): this {
    return this.set(sel, true);
  }

  deny(sel: { from?: HostFilter; to?: HostFilter; on?: readonly string[] }): this {
    return this.set(sel, false);
  }

  get(from: Host, to: Host, pp: PortProto): boolean | undefined {
    return this.cells.get(key(from, to, pp));
  }
}

export interface Observed {
  readonly hosts: readonly Host[];
  readonly verdicts: Map<string, Verdict>;
  readonly ms: number;
}

/**
 * Compares; returns "" when they agree, else one grid per port/protocol with a wrong cell, rows
 * = from, columns = to: `.` open, `X` closed, `-` not probed, and `!` after a cell that is wrong
 * (so `X!` = expected open, seen closed), followed by one line per wrong cell.
 */
export function diffTruth(expected: Truth, observed: Observed): string {
  const hosts = expected.hosts;
  const out: string[] = [];
  for (const pp of PORT_PROTOS) {
    const wrong: string[] = [];
    const w = Math.max(...hosts.map((h) => h.id.length)) + 1;
    const first = Math.max(w, ppName(pp).length + 2);
    const lines = [`${ppName(pp).padEnd(first)}${hosts.map((h) => h.id.padEnd(w)).join('')}`.trimEnd()];
    for (const from of hosts) {
      let line = from.id.padEnd(first);
      for (const to of hosts) {
        const exp = expected.get(from, to, pp);
        const got = observed.verdicts.get(key(from, to, pp));
        if (exp === undefined || !got) {
          line += '-'.padEnd(w);
          continue;
        }
        const bad = exp !== got.ok;
        line += `${got.ok ? '.' : 'X'}${bad ? '!' : ''}`.padEnd(w);
        if (bad) {
          wrong.push(
            `  ${from.id} (${from.ip}) -> ${to.id} (${to.ip}) ${ppName(pp)}: expected ${exp ? 'allowed' : 'blocked'}, got ${got.ok ? 'allowed' : `blocked (${got.detail})`}`,
          );
        }
      }
      lines.push(line.trimEnd());
    }
    if (wrong.length) out.push(`${lines.join('\n')}\n${wrong.length} wrong:\n${wrong.join('\n')}`);
  }
  if (!out.length) return '';
  return `truth table mismatch (rows = from, columns = to; . allowed, X blocked, ! = differs from the expectation)\n\n${out.join('\n\n')}`;
}

/** One line of JSON per target on stdout: {i, ok, detail}. Run as `node -e PROBE_SCRIPT <json>`. */
const PROBE_SCRIPT = String.raw`
const net = require('node:net');
const dgram = require('node:dgram');
const { targets, timeoutMs } = JSON.parse(process.argv[1]);
let left = targets.length;
const done = (i, ok, detail) => {
  process.stdout.write(JSON.stringify({ i, ok, detail }) + '\n');
  if (--left === 0) process.exit(0);
};
targets.forEach((t, i) => {
  let finished = false;
  const finish = (ok, detail, close) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    try { close(); } catch {}
    done(i, ok, detail);
  };
  let timer;
  if (t.proto === 'tcp') {
    let data = '';
    const s = net.connect({ host: t.ip, port: t.port });
    const close = () => s.destroy();
    timer = setTimeout(() => finish(false, 'timeout', close), timeoutMs);
    s.on('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false, 'connected, no answer', close), 3000);
    });
    s.on('data', (d) => {
      data += d;
      if (data.includes(t.expect)) finish(true, 'answered', close);
    });
    s.on('end', () => finish(false, 'closed without the expected answer: ' + JSON.stringify(data.slice(0, 60)), close));
    s.on('error', (e) => finish(false, e.code || e.message, close));
  } else {
    const s = dgram.createSocket('udp4');
    let resend;
    const close = () => { clearInterval(resend); s.close(); };
    const send = () => s.send('probe', t.port, t.ip, () => undefined);
    timer = setTimeout(() => finish(false, 'timeout', close), timeoutMs);
    s.on('message', (m) => {
      if (String(m).includes(t.expect)) finish(true, 'answered', close);
    });
    s.on('error', (e) => finish(false, e.code || e.message, close));
    s.bind({ port: t.sport, address: '0.0.0.0', exclusive: true }, () => {
      send();
      resend = setInterval(send, 150);
    });
  }
});
if (targets.length === 0) process.exit(0);
`;

interface Job {
  readonly from: Host;
  readonly to: Host;
  readonly pp: PortProto;
  /** UDP source port; by default a fresh one per probe (see nextUdpSport). */
  readonly sport?: number;
}

function run(cmd: string, args: string[], killAfterMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Our own child only, by its handle: a hung client must not hang the suite.
    const guard = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

async function pool<T>(tasks: readonly (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

/** curl exit codes that mean the connection never opened (28 = timeout). */
const CURL_CODES: Record<number, string> = { 7: 'refused/unreachable', 28: 'timeout', 52: 'empty reply', 56: 'recv failure' };

function curlTask(job: Job, connectTimeoutMs: number): () => Promise<[Job, Verdict]> {
  return async () => {
    const url = `http://${job.to.ip}:${job.pp.port}/netpol`;
    const r = await run(
      'ip',
      ['netns', 'exec', job.from.netns, 'curl', '-s', '--connect-timeout', String(connectTimeoutMs / 1000), '--max-time', '4', '-o', '-', url],
      8000,
    );
    // The echo app answers "<pod> GET /netpol": the answer must come from the pod we asked.
    const ok = r.code === 0 && r.stdout.startsWith(`${job.to.netns} GET /netpol`);
    const detail = ok ? 'answered' : r.code === 0 ? `wrong answer ${JSON.stringify(r.stdout.slice(0, 60))}` : `curl exit ${r.code}${CURL_CODES[r.code ?? -1] ? ` (${CURL_CODES[r.code ?? -1]})` : ''}`;
    return [job, { ok, detail }];
  };
}

/**
 * UDP source ports for probes: each probe of a run gets its own, below the kernel's ephemeral
 * range (32768+), so a probe never repeats the 5-tuple of an earlier one. The datapath's
 * conntrack keeps a UDP flow for 60 s; a new probe that happened to reuse the tuple of a flow
 * allowed under an earlier policy would test conntrack, not the policy in force (that question
 * has its own case, with a deliberately reused tuple).
 */
const UDP_SPORT_FIRST = 20_000;
const UDP_SPORT_COUNT = 10_000;
let udpSportNext = 0;
export function nextUdpSport(): number {
  return UDP_SPORT_FIRST + (udpSportNext++ % UDP_SPORT_COUNT);
}

function nodeProbeTask(from: Host, jobs: readonly Job[], timeoutMs: number): () => Promise<[Job, Verdict][]> {
  return async () => {
    const targets = jobs.map((j) => ({
      ip: j.to.ip,
      port: j.pp.port,
      proto: j.pp.proto,
      expect: j.to.netns,
      sport: j.sport ?? (j.pp.proto === 'udp' ? nextUdpSport() : 0),
    }));
    const r = await run('ip', ['netns', 'exec', from.netns, process.execPath, '-e', PROBE_SCRIPT, JSON.stringify({ targets, timeoutMs })], timeoutMs + 10_000);
    const byIndex = new Map<number, Verdict>();
    for (const line of r.stdout.split('\n')) {
      if (!line.trim()) continue;
      const v = JSON.parse(line) as { i: number; ok: boolean; detail: string };
      byIndex.set(v.i, { ok: v.ok, detail: v.detail });
    }
    return jobs.map((j, i) => [j, byIndex.get(i) ?? { ok: false, detail: `prober failed (exit ${r.code}): ${r.stderr.slice(0, 200)}` }]);
  };
}

async function probeJobs(jobs: readonly Job[], timeoutMs: number): Promise<Map<string, Verdict>> {
  const tasks: (() => Promise<[Job, Verdict][]>)[] = [];
  const bySource = new Map<Host, Job[]>();
  for (const j of jobs) {
    if (j.pp.proto === 'tcp' && j.pp.port === 80) {
      const t = curlTask(j, timeoutMs);
      tasks.push(async () => [await t()]);
    } else {
      bySource.set(j.from, [...(bySource.get(j.from) ?? []), j]);
    }
  }
  // The node probers first: each carries many probes, so they should not wait behind curls.
  const probers = [...bySource].map(([from, js]) => nodeProbeTask(from, js, timeoutMs));
  const results = await pool([...probers, ...tasks], 24);
  const out = new Map<string, Verdict>();
  for (const [j, v] of results.flat()) out.set(key(j.from, j.to, j.pp), v);
  return out;
}

/**
 * Probes every cell of `expected` (hosts × hosts × PORT_PROTOS, minus loopback). Cells expected
 * open but seen closed are probed once more with `retryTimeoutMs`.
 */
export async function probeMatrix(expected: Truth, opts: { timeoutMs?: number; retryTimeoutMs?: number } = {}): Promise<Observed> {
  const started = Date.now();
  const jobs: Job[] = [];
  for (const from of expected.hosts) for (const to of expected.hosts) for (const pp of PORT_PROTOS) if (probed(from, to)) jobs.push({ from, to, pp });
  const verdicts = await probeJobs(jobs, opts.timeoutMs ?? 400);
  const again = jobs.filter((j) => expected.get(j.from, j.to, j.pp) === true && verdicts.get(key(j.from, j.to, j.pp))?.ok === false);
  if (again.length) {
    const second = await probeJobs(again, opts.retryTimeoutMs ?? 2000);
    for (const [k, v] of second) verdicts.set(k, v.ok ? v : { ok: false, detail: `${v.detail}; first try: ${verdicts.get(k)?.detail ?? '?'}` });
  }
  return { hosts: expected.hosts, verdicts, ms: Date.now() - started };
}

/** One UDP probe from a given source port (to repeat a 5-tuple on purpose). */
export async function probeUdp(from: Host, to: Host, port: number, sport: number, timeoutMs = 500): Promise<Verdict> {
  const [[, v]] = (await nodeProbeTask(from, [{ from, to, pp: { proto: 'udp', port }, sport }], timeoutMs)()) as [[Job, Verdict]];
  return v;
}
