/**
 * A benchmark's node (bench/dns.ts, bench/datapath.ts): the real Membrane agent in a node network
 * namespace of its own, pins under a pin root of its own, a lab of pods (src/lab) joined by veth
 * pairs; processes recorded and killed by PID (lib/proc.ts), a crashed run's leftovers swept. And:
 *
 * - the agent runs through bench/agent-probe.ts (same argv as `membrane …`) with an IPC channel:
 *   CPU profiles of the agent on request; the proxies' access log read from a mark (`accessLogSince`);
 * - MEMBRANE_BENCH_NODE=/path/to/node runs the agent under that Node.js binary (e.g. Node 22 or
 *   24 from the npm registry's `node` package: scripts/node-matrix.sh); the bench keeps its own;
 * - a lab without the agent's programs (`labUp(false)`), whose pods can be registered with the
 *   agent and deregistered again (`registerPods`/`deregisterPods`): the same links measured with
 *   and without Membrane's programs.
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../src/cli/client.js';
import { AGENT_NODE_FLAGS } from '../src/cli/agent-node-flags.js';
import { registrarFor } from '../src/cli/lab-command.js';
import { labDown, labUp, parseLabSpec, type EndpointRegistrar, type LabState } from '../src/lab/index.js';

/** The repository root (dist-bench/bench/ → ../../). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist/cli/main.js');
const PROBE_MAIN = fileURLToPath(new URL('./agent-probe.js', import.meta.url));

/** The Node.js binary the agent runs under: MEMBRANE_BENCH_NODE, else the bench's own. */
export const AGENT_NODE = process.env.MEMBRANE_BENCH_NODE || process.execPath;

/** `node --version` of a binary. */
export function nodeVersion(bin: string): string {
  return spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
}

export interface NodeOptions {
  /** Node network namespace, also the pin root's last component and the process record's name. */
  readonly netns: string;
  /** Pod namespace names (for the sweep after a crash). */
  readonly pods: readonly string[];
  /** The lab spec (YAML), pods as listed in `pods`. */
  readonly labSpec: string;
  /** Policy files written to the agent's policy directory before it starts: name → YAML. */
  readonly policies: Readonly<Record<string, string>>;
}

interface Started {
  readonly pid: number;
  readonly start: string;
}

function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Start time of a process (field 22), so a recycled PID is never taken for ours. */
function startTime(pid: number): string | null {
  return statFields(pid)?.[19] ?? null;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** utime+stime of one process, all its threads, µs. 0 if gone. */
function cpuMicros(pid: number): number {
  const f = statFields(pid);
  return f ? ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK : 0;
}

/** `pid` and its descendants now. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = Number(statFields(Number(name))?.[1]);
    if (!Number.isFinite(ppid)) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
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

/** µs of utime+stime of a process tree (proxy workers included) between `start()` and `stop()`. */
export class TreeCpu {
  readonly #pid: number;
  #before = new Map<number, number>();
  constructor(pid: number) {
    this.#pid = pid;
  }
  start(): void {
    this.#before = new Map(processTree(this.#pid).map((p) => [p, cpuMicros(p)]));
  }
  stop(): number {
    let total = 0;
    for (const p of new Set([...this.#before.keys(), ...processTree(this.#pid)])) total += Math.max(0, cpuMicros(p) - (this.#before.get(p) ?? 0));
    return total;
  }
}

/** Runs a command to completion; throws with its stderr when it fails (unless `allowFail`). */
export function run(cmd: string, args: readonly string[], opts: { allowFail?: boolean; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, maxBuffer: 64 << 20 });
  if (!opts.allowFail && (r.status !== 0 || r.error)) {
    throw new Error(`${cmd} ${args.slice(0, 12).join(' ')} failed (${r.error?.message ?? r.status}): ${r.stderr?.trim().slice(0, 2000) ?? ''}`);
  }
  return r.stdout ?? '';
}

/** The processes one benchmark started, recorded in `$TMPDIR/membrane-bench-<name>.pids.json`. */
export class Processes {
  readonly #file: string;
  readonly #started: Started[] = [];
  readonly #children: ChildProcess[] = [];

  constructor(name: string) {
    this.#file = join(tmpdir(), `membrane-bench-${name}.pids.json`);
  }

  /** Kills (SIGKILL, by PID, start time checked) what a crashed earlier run of `name` recorded. */
  static sweep(name: string): void {
    const file = join(tmpdir(), `membrane-bench-${name}.pids.json`);
    if (!existsSync(file)) return;
    try {
      for (const p of JSON.parse(readFileSync(file, 'utf8')) as Started[]) {
        if (startTime(p.pid) === p.start) process.kill(p.pid, 'SIGKILL');
      }
    } catch {
      // an unreadable record: nothing we can identify as ours
    }
    rmSync(file, { force: true });
  }

  /** Spawns and records a process (`ip netns exec`/`nsenter` exec, so the PID is the program's). */
  spawn(cmd: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
    const child = spawn(cmd, args, opts);
    this.#children.push(child);
    const start = child.pid ? startTime(child.pid) : null;
    if (child.pid && start !== null) {
      this.#started.push({ pid: child.pid, start });
      writeFileSync(this.#file, JSON.stringify(this.#started));
    }
    return child;
  }

  /** SIGTERM, then SIGKILL after `graceMs`, by PID; resolves when it has exited. */
  static async stop(child: ChildProcess, graceMs = 3000): Promise<void> {
    if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Stops every recorded process still running (newest first) and removes the record. */
  async stopAll(): Promise<void> {
    for (const c of [...this.#children].reverse()) await Processes.stop(c);
    rmSync(this.#file, { force: true });
  }
}

type Registration = Parameters<EndpointRegistrar['register']>[0];

export class ProbedNode {
  readonly opts: NodeOptions;
  readonly dir = mkdtempSync(join(tmpdir(), 'membrane-bench-'));
  readonly policyDir = join(this.dir, 'policies');
  readonly socket = join(this.dir, 'agent.sock');
  readonly client = new AgentClient(this.socket);
  readonly registrar: EndpointRegistrar = registrarFor(this.client);
  readonly pinRoot: string;
  readonly procs: Processes;
  agent: ChildProcess | null = null;
  lab: LabState | null = null;
  #registrations: Registration[] = [];
  #served: ChildProcess[] = [];
  #cleaned = false;

  constructor(opts: NodeOptions) {
    this.opts = opts;
    this.pinRoot = `/sys/fs/bpf/${opts.netns}`;
    this.procs = new Processes(opts.netns);
    mkdirSync(this.policyDir, { recursive: true });
    for (const [name, yaml] of Object.entries(opts.policies)) writeFileSync(join(this.policyDir, name), yaml);
  }

  /** Removes what a crashed earlier run with these names left: processes (by recorded PID), pods, node, pins. */
  static sweep(opts: Pick<NodeOptions, 'netns' | 'pods'>): void {
    Processes.sweep(opts.netns);
    for (const ns of opts.pods) {
      if (existsSync(`/run/netns/${ns}`)) run('ip', ['netns', 'del', ns], { allowFail: true });
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    const pinRoot = `/sys/fs/bpf/${opts.netns}`;
    if (existsSync(`/run/netns/${opts.netns}`)) {
      run(process.execPath, [CLI, 'uninstall', '--pin-root', pinRoot, '--netns', opts.netns], { allowFail: true });
      run('ip', ['netns', 'del', opts.netns], { allowFail: true });
    }
    rmSync(pinRoot, { recursive: true, force: true });
  }

  /** The agent under AGENT_NODE through the probe, with `extraArgs` and `env` added to ours; waits for its API. */
  async startAgent(extraArgs: readonly string[] = [], env: Readonly<Record<string, string>> = {}): Promise<void> {
    this.nodeUp();
    const fd = openSync(join(this.dir, 'agent.log'), 'a');
    const agent = this.procs.spawn(
      'nsenter',
      [
        `--net=/run/netns/${this.opts.netns}`,
        AGENT_NODE, ...AGENT_NODE_FLAGS, PROBE_MAIN, '--api-socket', this.socket, 'agent', '--netns', this.opts.netns,
        '--policy-dir', this.policyDir, '--state-dir', join(this.dir, 'state'), '--pin-root', this.pinRoot,
        '--node-name', this.opts.netns, '--access-log', join(this.dir, 'access.log'), ...extraArgs,
      ],
      { stdio: ['ignore', fd, fd, 'ipc'], env: { ...process.env, ...env, MEMBRANE_AGENT_NETNS: this.opts.netns } },
    );
    this.agent = agent;
    closeSync(fd);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (agent.exitCode !== null) throw new Error(`agent exited (${agent.exitCode}):\n${this.log('agent.log').slice(-4000)}`);
      if (await this.client.request('GET', '/v1/healthz').then(() => true, () => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`agent not ready in 30 s:\n${this.log('agent.log').slice(-4000)}`);
  }

  /** The node namespace without the agent, forwarding on (as the agent sets it). */
  nodeUp(): void {
    if (!existsSync(`/run/netns/${this.opts.netns}`)) run('ip', ['netns', 'add', this.opts.netns]);
    run('ip', ['netns', 'exec', this.opts.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    run('ip', ['-n', this.opts.netns, 'link', 'set', 'lo', 'up']);
  }

  /** The lab's pods; registered with the agent when `withAgent`, else namespaces and links only. */
  async labUp(withAgent = true): Promise<LabState> {
    if (!withAgent) this.nodeUp();
    const capture: EndpointRegistrar = {
      ...this.registrar,
      register: async (ep) => {
        this.#registrations.push(ep);
        if (withAgent) await this.registrar.register(ep);
      },
    };
    this.lab = await labUp(parseLabSpec(this.opts.labSpec, `${this.opts.netns}-lab.yaml`), this.opts.netns, capture, join(this.dir, 'labs'));
    return this.lab;
  }

  /** Registers the lab's pods with the running agent: its programs attach to their links. */
  async registerPods(): Promise<void> {
    for (const ep of this.#registrations) await this.registrar.register(ep);
    await this.waitReady();
  }

  /** Deregisters the lab's pods: the agent detaches its programs; the links stay. */
  async deregisterPods(): Promise<void> {
    for (const ep of this.#registrations) await this.registrar.deregister(ep.namespace, ep.name);
  }

  /** Where the access log ends now: `accessLogSince(mark)` reads what comes after. */
  accessLogMark(): number {
    try {
      return statSync(join(this.dir, 'access.log')).size;
    } catch {
      return 0;
    }
  }

  /**
   * The access-log lines written since `mark` (parsed JSON). The proxies write them from any
   * thread (proxy workers send theirs to the agent in batches); a rotation in between
   * (--access-log-max-size-mb) is followed into FILE.1.
   */
  accessLogSince(mark: number): Record<string, unknown>[] {
    const file = join(this.dir, 'access.log');
    const read = (f: string, from: number): string => {
      try {
        return readFileSync(f).subarray(from).toString('utf8');
      } catch {
        return '';
      }
    };
    const size = this.accessLogMark();
    const text = size >= mark ? read(file, mark) : read(`${file}.1`, mark) + read(file, 0);
    const out: Record<string, unknown>[] = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut by the end of the read: not ours to judge
      }
    }
    return out;
  }

  /** Starts a CPU profile of the agent (agent-probe.ts). */
  profileStart(): void {
    this.agent?.send({ profile: 'start' });
  }

  /** Writes the agent's CPU profile since `profileStart` to `file`. */
  profileStop(file: string): Promise<void> {
    const agent = this.agent;
    if (!agent) return Promise.resolve();
    return new Promise((resolve) => {
      const on = (m: unknown): void => {
        if ((m as { profiled?: string }).profiled !== file) return;
        agent.off('message', on);
        resolve();
      };
      agent.on('message', on);
      agent.send({ profile: 'stop', file });
    });
  }

  /** Stops the agent (SIGTERM, then SIGKILL after 10 s); its pins and the lab stay. */
  async stopAgent(): Promise<void> {
    if (this.agent) await Processes.stop(this.agent, 10_000);
    this.agent = null;
  }

  /** Waits until every endpoint the agent knows is `ready` (its policy written), at most `ms`. */
  async waitReady(ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    let last = '';
    while (Date.now() < deadline) {
      const eps = await this.client.request<{ name?: string; ipv4?: string; status: string }[]>('GET', '/v1/endpoints').catch(() => []);
      last = eps.map((e) => `${e.name ?? e.ipv4}:${e.status}`).join(' ');
      if (eps.length && eps.every((e) => e.status === 'ready')) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`endpoints not ready in ${ms} ms: ${last}`);
  }

  podIp(pod: string): string {
    const ip = this.lab?.pods.find((p) => p.name === pod)?.ip;
    if (!ip) throw new Error(`no pod ${pod}`);
    return ip;
  }

  /** Starts `argv` in network namespace `netns` (`ip netns exec` execs it: the PID is the program's). */
  serve(netns: string, argv: readonly string[], logName: string): ChildProcess {
    const fd = openSync(join(this.dir, logName), 'w');
    const child = this.procs.spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.#served.push(child);
    return child;
  }

  /** Waits until something listens on TCP `port` in `netns`. */
  async listening(netns: string, port: number, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (run('ip', ['netns', 'exec', netns, 'ss', '-Hltn', `sport = :${port}`], { allowFail: true }).trim()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nothing listens on ${port} in ${netns}`);
  }

  log(name: string): string {
    const f = join(this.dir, name);
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  /** Stops every process, takes the lab down, uninstalls the datapath, removes namespaces and pins. Safe twice. */
  async cleanup(): Promise<void> {
    if (this.#cleaned) return;
    this.#cleaned = true;
    for (const c of this.#served.reverse()) await Processes.stop(c);
    if (this.lab) {
      const reachable = this.agent ? await this.client.request('GET', '/v1/healthz').then(() => true, () => false) : false;
      await labDown(this.lab, reachable ? this.registrar : null, join(this.dir, 'labs')).catch(() => undefined);
    }
    await this.procs.stopAll();
    await this.client.close().catch(() => undefined);
    ProbedNode.sweep(this.opts);
    if (!process.env.MEMBRANE_BENCH_KEEP_LOGS) rmSync(this.dir, { recursive: true, force: true });
  }
}
