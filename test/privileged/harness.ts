/**
 * Privileged test harness: a whole "node" per test file, isolated from the machine and from
 * other test files running at the same time.
 *
 *   node netns  mbt-<id>            the agent runs here (its ip rules, proxy socket, forwarding)
 *   pin root    /sys/fs/bpf/mbt-<id> its maps and links
 *   pods        netns per pod, veth to the node netns, addresses 10.<subnet>.N.2 (ours only)
 *   temp dir    policies, state, API socket, lab state, logs
 *
 * cleanup() removes all of it and runs even when a test fails; setup first removes anything a
 * crashed earlier run of the same file left behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, openSync, closeSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../../src/cli/client.js';
import { AGENT_NODE_FLAGS } from '../../src/cli/agent-node-flags.js';
import { labDown, labUp, parseLabSpec, readLabState, type LabState } from '../../src/lab/index.js';
import { registrarFor } from '../../src/cli/lab-command.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist/cli/main.js');

export const isRoot = process.getuid?.() === 0;

/**
 * Whether a `CI` value means "running in CI": any non-empty value but false/0/no/off (CI
 * systems set `true`, `1`, `yes` or their own name), case and spaces ignored.
 */
export function isCi(value: string | undefined): boolean {
  const v = (value ?? '').trim().toLowerCase();
  return v !== '' && !['false', '0', 'no', 'off'].includes(v);
}

/** In CI every privileged test must run: a missing privilege is a failure, not a skip. */
export function privilegedSkipReason(env: NodeJS.ProcessEnv = process.env, root: boolean = isRoot): string | null {
  if (root) return null;
  if (isCi(env.CI)) throw new Error(`privileged tests must run as root in CI (CI=${env.CI ?? ''})`);
  return 'needs root: creates network namespaces and loads BPF programs';
}

function sh(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

export interface CurlResult {
  readonly body: string;
  readonly status: number;
  readonly exitCode: number;
  readonly timedOut: boolean;
}

export class TestNode {
  readonly id: string;
  readonly netns: string;
  readonly pinRoot: string;
  readonly dir: string;
  readonly policyDir: string;
  readonly socket: string;
  readonly labDir: string;
  readonly accessLogPath: string;
  agent: ChildProcess | null = null;
  client: AgentClient;
  lab: LabState | null = null;
  #agentLogs: string[] = [];

  constructor(id: string) {
    this.id = id;
    this.netns = `mbt-${id}`;
    this.pinRoot = `/sys/fs/bpf/mbt-${id}`;
    this.dir = mkdtempSync(join(tmpdir(), `membrane-${id}-`));
    this.policyDir = join(this.dir, 'policies');
    this.socket = join(this.dir, 'agent.sock');
    this.labDir = join(this.dir, 'labs');
    this.accessLogPath = join(this.dir, 'access.log');
    this.client = new AgentClient(this.socket);
  }

  /** Removes leftovers of a crashed earlier run of the same test id. */
  static sweep(id: string, podNames: readonly string[]): void {
    for (const p of podNames) {
      if (existsSync(`/run/netns/${p}`)) sh('ip', ['netns', 'del', p]);
      rmSync(`/etc/netns/${p}`, { recursive: true, force: true });
    }
    if (existsSync(`/run/netns/mbt-${id}`)) sh('ip', ['netns', 'del', `mbt-${id}`]);
    rmSync(`/sys/fs/bpf/mbt-${id}`, { recursive: true, force: true });
  }

  async startAgent(extraArgs: string[] = []): Promise<void> {
    const log = join(this.dir, `agent-${this.#agentLogs.length}.log`);
    this.#agentLogs.push(log);
    const fd = openSync(log, 'w');
    if (!existsSync(`/run/netns/${this.netns}`)) spawnSync('ip', ['netns', 'add', this.netns]);
    // nsenter execs node directly, so the child we hold is the agent itself (its PID is the
    // one we signal and wait for); the env tells it it is already in its namespace.
    this.agent = spawn(
      'nsenter',
      [
        `--net=/run/netns/${this.netns}`,
        process.execPath,
        ...AGENT_NODE_FLAGS,
        CLI, '--api-socket', this.socket, 'agent', '--netns', this.netns, '--policy-dir', this.policyDir,
        '--state-dir', join(this.dir, 'state'), '--pin-root', this.pinRoot, '--node-name', this.netns,
        '--log-level', 'debug', '--access-log', this.accessLogPath, ...extraArgs,
      ],
      { stdio: ['ignore', fd, fd], env: { ...process.env, MEMBRANE_AGENT_NETNS: this.netns } },
    );
    closeSync(fd);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (this.agent.exitCode !== null) throw new Error(`agent exited (${this.agent.exitCode}):\n${this.agentLog()}`);
      if (await this.client.request('GET', '/v1/healthz').then(() => true, () => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`agent not ready in 20s:\n${this.agentLog()}`);
  }

  async stopAgent(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const a = this.agent;
    if (!a || a.exitCode !== null) return a?.exitCode ?? null;
    const exited = new Promise((r) => a.once('exit', r));
    a.kill(signal);
    const timer = setTimeout(() => a.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    this.agent = null;
    return a.exitCode;
  }

  /** The proxy's access log, one parsed JSON object per request. */
  accessLog(): Record<string, unknown>[] {
    if (!existsSync(this.accessLogPath)) return [];
    return readFileSync(this.accessLogPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  agentLog(): string {
    return this.#agentLogs.map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join('\n--- restart ---\n');
  }

  async labUp(specText: string): Promise<LabState> {
    const spec = parseLabSpec(specText, 'test-lab.yaml');
    this.lab = await labUp(spec, this.netns, registrarFor(this.client), this.labDir);
    return this.lab;
  }

  podIp(name: string): string {
    const ip = this.lab?.pods.find((p) => p.name === name)?.ip;
    if (!ip) throw new Error(`no pod ${name}`);
    return ip;
  }

  serverLog(pod: string): string {
    const log = readLabState(this.lab?.name ?? '', this.labDir)?.pods.find((p) => p.name === pod)?.log;
    return log && existsSync(log) ? readFileSync(log, 'utf8') : '';
  }

  /** Runs the membrane CLI against this node's agent. */
  cli(args: string[]): { stdout: string; stderr: string; status: number } {
    const r = spawnSync(process.execPath, [CLI, '--api-socket', this.socket, ...args], { encoding: 'utf8' });
    return { stdout: r.stdout, stderr: r.stderr, status: r.status ?? -1 };
  }

  /** curl from inside a pod; a dropped SYN shows as a timeout (exit 28). */
  curl(pod: string, method: string, url: string, timeoutSec = 2): CurlResult {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', pod, 'curl', '-s', '--max-time', String(timeoutSec), '-o', '-', '-w', '\n%{http_code}', '-X', method, url],
      { encoding: 'utf8' },
    );
    const out = r.stdout ?? '';
    const nl = out.lastIndexOf('\n');
    return {
      body: nl >= 0 ? out.slice(0, nl) : out,
      status: Number(nl >= 0 ? out.slice(nl + 1) : '0'),
      exitCode: r.status ?? -1,
      timedOut: r.status === 28,
    };
  }

  writePolicy(name: string, text: string): void {
    writeFileSync(join(this.policyDir, `${name}.tmp`), text);
    spawnSync('mv', [join(this.policyDir, `${name}.tmp`), join(this.policyDir, name)]);
  }

  removePolicy(name: string): void {
    rmSync(join(this.policyDir, name), { force: true });
  }

  policyFiles(): string[] {
    return existsSync(this.policyDir) ? readdirSync(this.policyDir) : [];
  }

  async cleanup(): Promise<void> {
    if (this.lab) await labDown(this.lab, null, this.labDir).catch(() => undefined);
    await this.stopAgent('SIGTERM').catch(() => undefined);
    await this.client.close().catch(() => undefined);
    // What a user would run: pins, node settings and the node namespace go.
    this.cli(['uninstall', '--pin-root', this.pinRoot, '--netns', this.netns]);
    sh('ip', ['netns', 'del', this.netns]);
    rmSync(this.pinRoot, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls `check` until it returns true or `ms` pass. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 2000, every = 50): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, every));
  }
}

export function starwarsLab(prefix: string, subnet: string): string {
  return `
apiVersion: membrane.dev/v1alpha1
kind: Lab
metadata:
  name: ${prefix}-sw
spec:
  subnet: "${subnet}"
  pods:
    - name: ${prefix}-ds
      labels: {org: empire, class: deathstar}
      serve: {app: starwars, port: 80}
    - name: ${prefix}-tie
      labels: {org: empire, class: tiefighter}
    - name: ${prefix}-xw
      labels: {org: alliance, class: xwing}
  hosts:
    deathstar.default.svc.cluster.local: ${prefix}-ds
  services:
    - {name: deathstar, namespace: default, selector: {org: empire, class: deathstar}}
`;
}

export const RULE1_L3L4 = readFileSync(join(ROOT, 'deploy/lab/starwars/sw_l3_l4_policy.yaml'), 'utf8');
export const RULE1_L7 = readFileSync(join(ROOT, 'deploy/lab/starwars/sw_l3_l4_l7_policy.yaml'), 'utf8');
