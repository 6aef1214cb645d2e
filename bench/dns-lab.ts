/**
 * The DNS benchmark's node: the real Membrane agent in a node namespace of its own, its pinned
 * maps under a pin root of its own, and a lab of four pods joined to it by veth pairs:
 *
 *   bdn-client   (default, app=bench-dns-client)  Membrane's peer: DNS rule `*` + toFQDNs *.bench.test
 *   bdn-plain    (default, app=bench-dns-plain)   direct and dnsdist peers: port 53 allowed at L4 only
 *   bdn-dns      (kube-system, k8s-app=kube-dns)  dnsmasq, authoritative for bench.test, no upstream
 *   bdn-dnsdist  (default, app=dnsdist)           dnsdist forwarding bench.test to bdn-dns, REFUSED otherwise
 *
 * Names (`mbb-dns`, `bdn-*`, 10.231/16, answers in 10.232/16) are used by nothing else in the
 * repository, so the bench can run beside the tests and the demo. Every process started here is
 * recorded with its start time in RUN_FILE and killed by PID; a crashed earlier run's leftovers
 * (namespaces, pins, processes) are removed first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../src/cli/client.js';
import { registrarFor } from '../src/cli/lab-command.js';
import { labDown, labUp, parseLabSpec, type LabState } from '../src/lab/index.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');
const AGENT_MAIN = fileURLToPath(new URL('./dns-agent.js', import.meta.url));

export const NODE_NETNS = 'mbb-dns';
export const PIN_ROOT = `/sys/fs/bpf/${NODE_NETNS}`;
export const SUBNET = '10.231';
/** Where dnsmasq's synthesised answers point: never routed, never sent a packet. */
export const ANSWER_NET = '10.232';
export const ZONE = 'bench.test';
export const POD = { client: 'bdn-client', plain: 'bdn-plain', dns: 'bdn-dns', dnsdist: 'bdn-dnsdist' } as const;
const LAB_NAME = 'bdn-lab';
/** PIDs (with start times) of what this bench started, for the sweep after a crash. */
const RUN_FILE = join(tmpdir(), 'membrane-bench-dns.pids.json');

/** `h-10-232-c-d.bench.test`: dnsmasq's synth-domain name of 10.232.c.d. */
export function nameOf(index: number): string {
  return `h-${ANSWER_NET.replace('.', '-')}-${index >> 8}-${index & 255}.${ZONE}`;
}

const LAB_SPEC = `
apiVersion: membrane.dev/v1alpha1
kind: Lab
metadata:
  name: ${LAB_NAME}
spec:
  subnet: "${SUBNET}"
  pods:
    - {name: ${POD.client}, namespace: default, labels: {app: bench-dns-client}}
    - {name: ${POD.plain}, namespace: default, labels: {app: bench-dns-plain}}
    - {name: ${POD.dns}, namespace: kube-system, labels: {k8s-app: kube-dns}}
    - {name: ${POD.dnsdist}, namespace: default, labels: {app: dnsdist}}
`;

const KUBE_DNS = `
        - matchLabels:
            "k8s:io.kubernetes.pod.namespace": kube-system
            "k8s:k8s-app": kube-dns`;

/** Membrane's peer: every lookup through the DNS proxy, every answer through the FQDN path. */
const CLIENT_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bench-dns-client, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: bench-dns-client}}
  egress:
    - toFQDNs:
        - matchPattern: "*.${ZONE}"
    - toEndpoints:${KUBE_DNS}
      toPorts:
        - ports: [{port: "53", protocol: ANY}]
          rules:
            dns:
              - matchPattern: "*"
`;

/** The direct and dnsdist peers: the same datapath, port 53 allowed at L4 (no redirect). */
const PLAIN_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bench-dns-plain, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: bench-dns-plain}}
  egress:
    - toEndpoints:${KUBE_DNS}
        - matchLabels: {app: dnsdist}
      toPorts:
        - ports: [{port: "53", protocol: ANY}]
`;

function dnsmasqConf(): string {
  return [
    'no-resolv', // no upstream: it can only answer from what follows
    'no-poll',
    'no-hosts',
    'port=53',
    'user=nobody',
    'log-facility=-',
    'cache-size=0',
    `local=/${ZONE}/`, // unknown names in the zone: NXDOMAIN; every other name: REFUSED
    'local-ttl=3600',
    // Each name carries its own address: h-10-232-c-d.bench.test → 10.232.c.d.
    `synth-domain=${ZONE},${ANSWER_NET}.0.0,${ANSWER_NET}.255.255,h-`,
    '',
  ].join('\n');
}

/** dnsdist with the equivalent QName rule: the bench suffix is forwarded, everything else REFUSED. */
function dnsdistConf(listen: string, backend: string): string {
  return [
    "setSecurityPollSuffix('')", // no look-ups of its own outside the lab
    `setLocal('${listen}:53')`,
    `newServer({address='${backend}:53', healthCheckMode='up'})`,
    'local allowed = newSuffixMatchNode()',
    `allowed:add('${ZONE}.')`,
    'addAction(NotRule(SuffixMatchNodeRule(allowed, true)), RCodeAction(DNSRCode.REFUSED))',
    '',
  ].join('\n');
}

interface Started {
  pid: number;
  start: string;
}

/** Field 22 of /proc/PID/stat: the start time, so a recycled PID is never mistaken for ours. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** CPU time of a process (all threads), µs. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
}
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function sh(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

export class BenchNode {
  readonly dir = mkdtempSync(join(tmpdir(), 'membrane-bench-dns-'));
  readonly socket = join(this.dir, 'agent.sock');
  readonly client = new AgentClient(this.socket);
  agent: ChildProcess | null = null;
  dnsmasq: ChildProcess | null = null;
  dnsdist: ChildProcess | null = null;
  lab: LabState | null = null;
  #started: Started[] = [];

  /** Removes what a crashed earlier run left: its processes (by recorded PID), namespaces, pins. */
  static sweep(): void {
    if (existsSync(RUN_FILE)) {
      try {
        for (const p of JSON.parse(readFileSync(RUN_FILE, 'utf8')) as Started[]) {
          if (startTime(p.pid) === p.start) process.kill(p.pid, 'SIGKILL');
        }
      } catch {
        // an unreadable record: nothing we can identify as ours
      }
      rmSync(RUN_FILE, { force: true });
    }
    for (const ns of Object.values(POD)) {
      if (existsSync(`/run/netns/${ns}`)) sh('ip', ['netns', 'del', ns]);
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    if (existsSync(`/run/netns/${NODE_NETNS}`)) {
      sh(process.execPath, [CLI, 'uninstall', '--pin-root', PIN_ROOT, '--netns', NODE_NETNS]);
      sh('ip', ['netns', 'del', NODE_NETNS]);
    }
    rmSync(PIN_ROOT, { recursive: true, force: true });
  }

  #record(child: ChildProcess): void {
    const pid = child.pid;
    const start = pid ? startTime(pid) : null;
    if (!pid || start === null) return;
    this.#started.push({ pid, start });
    writeFileSync(RUN_FILE, JSON.stringify(this.#started));
  }

  /** The agent (with the release-delay probe), its policies already in the policy directory. */
  async startAgent(): Promise<void> {
    const policyDir = join(this.dir, 'policies');
    mkdirSync(policyDir, { recursive: true });
    writeFileSync(join(policyDir, 'client.yaml'), CLIENT_POLICY);
    writeFileSync(join(policyDir, 'plain.yaml'), PLAIN_POLICY);
    sh('ip', ['netns', 'add', NODE_NETNS]);
    const fd = openSync(join(this.dir, 'agent.log'), 'w');
    this.agent = spawn(
      'nsenter',
      [
        `--net=/run/netns/${NODE_NETNS}`,
        process.execPath,
        AGENT_MAIN, '--api-socket', this.socket, 'agent', '--netns', NODE_NETNS, '--policy-dir', policyDir,
        '--state-dir', join(this.dir, 'state'), '--pin-root', PIN_ROOT, '--node-name', NODE_NETNS,
        '--access-log', join(this.dir, 'access.log'),
      ],
      { stdio: ['ignore', fd, fd, 'ipc'], env: { ...process.env, MEMBRANE_AGENT_NETNS: NODE_NETNS } },
    );
    closeSync(fd);
    this.#record(this.agent);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (this.agent.exitCode !== null) throw new Error(`agent exited (${this.agent.exitCode}):\n${this.agentLog()}`);
      if (await this.client.request('GET', '/v1/healthz').then(() => true, () => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`agent not ready in 20 s:\n${this.agentLog()}`);
  }

  agentLog(): string {
    const f = join(this.dir, 'agent.log');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  /** Release delays (µs) the agent's DNS proxy measured since the last call. */
  releaseDelays(): Promise<number[]> {
    const agent = this.agent;
    if (!agent) return Promise.resolve([]);
    return new Promise((resolve) => {
      const on = (m: unknown): void => {
        const release = (m as { release?: number[] }).release;
        if (!release) return;
        agent.off('message', on);
        resolve(release);
      };
      agent.on('message', on);
      agent.send('release');
    });
  }

  /** Starts a CPU profile of the agent (see dns-agent.ts). */
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

  async labUp(): Promise<LabState> {
    this.lab = await labUp(parseLabSpec(LAB_SPEC, 'bench-dns-lab.yaml'), NODE_NETNS, registrarFor(this.client), join(this.dir, 'labs'));
    return this.lab;
  }

  podIp(pod: string): string {
    const ip = this.lab?.pods.find((p) => p.name === pod)?.ip;
    if (!ip) throw new Error(`no pod ${pod}`);
    return ip;
  }

  /** A server in a pod; `ip netns exec` execs it, so the PID we hold is the server's. */
  #serve(pod: string, argv: string[], log: string): ChildProcess {
    const fd = openSync(join(this.dir, log), 'w');
    const child = spawn('ip', ['netns', 'exec', pod, ...argv], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.#record(child);
    return child;
  }

  startServers(): void {
    const dnsConf = join(this.dir, 'dnsmasq.conf');
    writeFileSync(dnsConf, dnsmasqConf(), { mode: 0o644 });
    this.dnsmasq = this.#serve(POD.dns, ['dnsmasq', '--keep-in-foreground', `--conf-file=${dnsConf}`, '--pid-file'], 'dnsmasq.log');
    const ddConf = join(this.dir, 'dnsdist.conf');
    writeFileSync(ddConf, dnsdistConf(this.podIp(POD.dnsdist), this.podIp(POD.dns)));
    this.dnsdist = this.#serve(POD.dnsdist, ['dnsdist', '--supervised', '--disable-syslog', '-C', ddConf], 'dnsdist.log');
  }

  log(name: string): string {
    const f = join(this.dir, name);
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  async cleanup(): Promise<void> {
    for (const c of [this.dnsdist, this.dnsmasq]) {
      if (c?.pid && c.exitCode === null && c.signalCode === null) {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
    }
    if (this.lab) await labDown(this.lab, registrarFor(this.client), join(this.dir, 'labs')).catch(() => undefined);
    const a = this.agent;
    if (a && a.exitCode === null && a.signalCode === null) {
      const exited = new Promise((r) => a.once('exit', r));
      a.kill('SIGTERM');
      const timer = setTimeout(() => a.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await this.client.close().catch(() => undefined);
    sh(process.execPath, [CLI, '--api-socket', this.socket, 'uninstall', '--pin-root', PIN_ROOT, '--netns', NODE_NETNS]);
    sh('ip', ['netns', 'del', NODE_NETNS]);
    rmSync(PIN_ROOT, { recursive: true, force: true });
    if (!process.env.MEMBRANE_BENCH_KEEP_LOGS) rmSync(this.dir, { recursive: true, force: true });
    rmSync(RUN_FILE, { force: true });
  }
}
