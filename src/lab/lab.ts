/**
 * `membrane lab up|down|exec`: builds the pods of a lab spec as network namespaces joined to
 * the agent's namespace by veth pairs, starts their servers (dnsmasq for `app: dns`), builds
 * the world namespace and its PKI, and registers the pods with the agent as endpoints.
 * Everything it creates is recorded in a state file before it is created, so `down` removes
 * exactly that, even after a crash; a failed `up` removes what it made before it returns.
 *
 * Each pod sees, through `ip netns exec` (which bind-mounts /etc/netns/<pod>/* over /etc/*):
 * - hosts: the pod's name and the spec's `hosts`;
 * - resolv.conf: the lab's DNS pod as its only nameserver, with a pod's search list and ndots:5;
 * - ssl/: a CA store holding the machine's bundle plus the lab CA, so every TLS client that
 *   reads /etc/ssl (curl, openssl, wget, python) trusts the world's certificates, whether run
 *   by `membrane lab exec` or by `ip netns exec` directly.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync, existsSync, closeSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { membraneError } from '../errors/index.js';
import { run } from '../datapath/index.js';
import { dnsPod, hostIfname, podAddress, type LabPod, type LabSpec } from './spec.js';
import { dnsmasqArgs, dnsmasqConfig } from './dnsmasq.js';
import { makeLabPki, type LabPki } from './pki.js';
import { worldDown, worldUp, type WorldState } from './world.js';

export const LAB_STATE_DIR = '/run/membrane/labs';
// Resolved from the repository root so it works from src/ (tests) and dist/ alike.
const APP_MAIN = fileURLToPath(new URL('../../dist/lab/apps/main.js', import.meta.url));

export interface LabState {
  readonly name: string;
  readonly agentNetns: string | null;
  readonly pods: { name: string; namespace: string; ip: string; ifname: string; labels: Record<string, string>; pid: number | null; log: string | null }[];
  readonly services: { name: string; namespace: string }[];
  /** The world namespace (absent in state files of labs without one). */
  world?: WorldState | null;
  /** Directory of the lab CA and the world's key and certificate. */
  pki?: string | null;
}

export interface EndpointRegistrar {
  register(ep: {
    name: string;
    namespace: string;
    podLabels: Record<string, string>;
    namespaceLabels: Record<string, string>;
    namedPorts: Record<string, { port: number; protocol: number }>;
    /** Pod annotations (proxy visibility); absent when the pod has none. */
    annotations?: Record<string, string>;
    ip: string;
    ifname: string;
    netns: string;
  }): Promise<void>;
  deregister(namespace: string, name: string): Promise<void>;
  registerService(svc: { name: string; namespace: string; selector: Record<string, string> }): Promise<void>;
  deregisterService(namespace: string, name: string): Promise<void>;
}

function inAgentNs(agentNetns: string | null, args: string[]): string[] {
  return agentNetns ? ['-n', agentNetns, ...args] : args;
}

function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

export function labStatePath(name: string, stateDir = LAB_STATE_DIR): string {
  return join(stateDir, `${name}.json`);
}

export function readLabState(name: string, stateDir = LAB_STATE_DIR): LabState | null {
  const path = labStatePath(name, stateDir);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as LabState) : null;
}

export async function labUp(
  spec: LabSpec,
  agentNetns: string | null,
  registrar: EndpointRegistrar,
  stateDir = LAB_STATE_DIR,
): Promise<LabState> {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const previous = readLabState(spec.name, stateDir);
  if (previous) await labDown(previous, registrar, stateDir);

  const state: LabState = { name: spec.name, agentNetns, pods: [], services: [], world: null, pki: null };
  const save = (): void => writeFileSync(labStatePath(spec.name, stateDir), JSON.stringify(state, null, 2));
  try {
    await build(spec, state, registrar, stateDir, save);
  } catch (err) {
    await labDown(state, registrar, stateDir);
    throw err;
  }
  return state;
}

async function build(spec: LabSpec, state: LabState, registrar: EndpointRegistrar, stateDir: string, save: () => void): Promise<void> {
  const { agentNetns } = state;
  save();
  let pki: LabPki | null = null;
  if (spec.world) {
    state.pki = join(stateDir, `${spec.name}-pki`);
    save();
    pki = makeLabPki(state.pki, spec.name, spec.world.sites.map((s) => s.host));
  }
  const dns = dnsPod(spec);
  const hostsLines = Object.entries(spec.hosts).map(([host, podName]) => {
    const pod = spec.pods.find((p) => p.name === podName);
    return pod ? `${podAddress(spec, pod).pod}\t${host}` : '';
  });

  for (const pod of spec.pods) {
    const addr = podAddress(spec, pod);
    const ifname = hostIfname(pod);
    // A namespace left by a crashed run would make `ip netns add` fail: clear it first.
    if (netnsExists(pod.name)) run('ip', ['netns', 'del', pod.name]);
    run('ip', inAgentNs(agentNetns, ['link', 'del', ifname]), { allowFail: true });
    run('ip', ['netns', 'add', pod.name]);
    state.pods.push({ name: pod.name, namespace: pod.namespace, ip: addr.pod, ifname, labels: { ...pod.labels }, pid: null, log: null });
    save();
    run('ip', inAgentNs(agentNetns, ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]));
    // The lab is IPv4-only; without this the node side sends IPv6 neighbour discovery that the
    // datapath (rightly) drops, which only adds noise to `membrane observe`.
    const disableIpv6 = ['-qw', `net.ipv6.conf.${ifname}.disable_ipv6=1`];
    if (agentNetns) run('ip', ['netns', 'exec', agentNetns, 'sysctl', ...disableIpv6]);
    else run('sysctl', disableIpv6);
    run('ip', inAgentNs(agentNetns, ['addr', 'add', `${addr.host}/24`, 'dev', ifname]));
    run('ip', inAgentNs(agentNetns, ['link', 'set', ifname, 'up']));
    run('ip', ['netns', 'exec', pod.name, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    run('ip', ['-n', pod.name, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', pod.name, 'addr', 'add', `${addr.pod}/24`, 'dev', 'eth0']);
    run('ip', ['-n', pod.name, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', pod.name, 'route', 'add', 'default', 'via', addr.host]);
    // `ip netns exec` bind-mounts /etc/netns/<ns>/* over /etc/* for the command.
    const etc = `/etc/netns/${pod.name}`;
    mkdirSync(etc, { recursive: true });
    writeFileSync(`${etc}/hosts`, ['127.0.0.1\tlocalhost', `${addr.pod}\t${pod.name}`, ...hostsLines, ''].join('\n'));
    if (dns) writeFileSync(`${etc}/resolv.conf`, resolvConf(pod, podAddress(spec, dns).pod));
    if (pki) writeTrustStore(`${etc}/ssl`, pki);
  }

  if (spec.world) {
    const world = worldUp(spec.world, spec.name, spec.subnet, agentNetns, (w) => {
      state.world = w;
      save();
    });
    state.world = world;
    save();
  }

  for (const pod of spec.pods) {
    const entry = state.pods.find((p) => p.name === pod.name);
    if (!entry) continue;
    await registrar.register({
      name: pod.name,
      namespace: pod.namespace,
      podLabels: { ...pod.labels },
      namespaceLabels: { ...(spec.namespaces[pod.namespace] ?? {}) },
      namedPorts: { ...pod.namedPorts },
      ...(Object.keys(pod.annotations).length > 0 ? { annotations: { ...pod.annotations } } : {}),
      ip: entry.ip,
      ifname: entry.ifname,
      netns: pod.name,
    });
    if (pod.serve) {
      const log = join(stateDir, `${spec.name}-${pod.name}.log`);
      let argv: string[];
      if (pod.serve.dns) {
        const conf = join(stateDir, `${spec.name}-${pod.name}.dnsmasq.conf`);
        writeFileSync(conf, dnsmasqConfig(pod.serve.dns, pod.serve.ports[0] ?? 53), { mode: 0o600 });
        argv = dnsmasqArgs(conf);
      } else {
        argv = [process.execPath, APP_MAIN, pod.serve.app, ...pod.serve.ports.flatMap((p) => ['--port', String(p)]), '--name', pod.name];
      }
      entry.log = log;
      entry.pid = startServer(pod.name, argv, log);
      save();
      for (const port of pod.serve.ports) await waitForListening(pod.name, port, log);
    }
  }

  if (spec.world && state.world && pki) {
    const world = state.world;
    const config = join(stateDir, `${spec.name}-world.json`);
    writeFileSync(
      config,
      JSON.stringify({ name: spec.world.name, sites: spec.world.sites, cert: pki.serverCert, key: pki.serverKey, httpsPort: 443, httpPort: 80 }),
      { mode: 0o600 },
    );
    world.log = join(stateDir, `${spec.name}-${world.netns}.log`);
    world.pid = startServer(world.netns, [process.execPath, APP_MAIN, 'world', '--name', world.netns, '--config', config], world.log);
    save();
    for (const port of [443, 80]) await waitForListening(world.netns, port, world.log);
  }

  for (const svc of spec.services) {
    await registrar.registerService({ name: svc.name, namespace: svc.namespace, selector: { ...svc.selector } });
    state.services.push({ name: svc.name, namespace: svc.namespace });
    save();
  }
  save();
}

/** A pod's resolv.conf as the kubelet writes it (ClusterFirst): the DNS pod, search list, ndots:5. */
function resolvConf(pod: LabPod, nameserver: string): string {
  return [`search ${pod.namespace}.svc.cluster.local svc.cluster.local cluster.local`, `nameserver ${nameserver}`, 'options ndots:5', ''].join('\n');
}

/**
 * /etc/netns/<pod>/ssl, mounted over /etc/ssl in the pod: Debian's bundle (if present) plus the
 * lab CA in certs/ca-certificates.crt (curl's and OpenSSL's default CA file), the lab CA under
 * its subject hash for clients that only read the directory, and the machine's openssl.cnf.
 */
function writeTrustStore(dir: string, pki: LabPki): void {
  mkdirSync(join(dir, 'certs'), { recursive: true });
  const system = '/etc/ssl/certs/ca-certificates.crt';
  const ca = readFileSync(pki.caCert, 'utf8');
  writeFileSync(join(dir, 'certs/ca-certificates.crt'), (existsSync(system) ? readFileSync(system, 'utf8') : '') + ca);
  const hash = run('openssl', ['x509', '-hash', '-noout', '-in', pki.caCert]).trim();
  writeFileSync(join(dir, `certs/${hash}.0`), ca);
  if (existsSync('/etc/ssl/openssl.cnf')) copyFileSync('/etc/ssl/openssl.cnf', join(dir, 'openssl.cnf'));
}

/** Starts `argv` in `netns` as its own process group, output to `log`; returns its PID. */
function startServer(netns: string, argv: string[], log: string): number | null {
  const fd = openSync(log, 'w');
  // `ip netns exec` execs the command, so this PID (and process group) is the server itself.
  const child = spawn('ip', ['netns', 'exec', netns, ...argv], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  return child.pid ?? null;
}

async function waitForListening(netns: string, port: number, log: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const out = spawnSync('ip', ['netns', 'exec', netns, 'ss', '-Hltn', `sport = :${port}`], { encoding: 'utf8' });
    if (out.stdout.trim()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw membraneError('MEMBRANE_ERR_LAB_COMMAND', `server in ${netns} did not listen on ${port}; see ${log}`);
}

export async function labDown(state: LabState, registrar: EndpointRegistrar | null, stateDir = LAB_STATE_DIR): Promise<void> {
  for (const svc of state.services ?? []) {
    if (registrar) await registrar.deregisterService(svc.namespace, svc.name).catch(() => undefined);
  }
  // Servers first, and wait until they are gone: nothing of the lab outlives `down`.
  await Promise.all([state.world?.pid ?? null, ...state.pods.map((p) => p.pid)].map((pid) => stopGroup(pid)));
  if (state.world) worldDown(state.world, state.agentNetns);
  for (const pod of state.pods) {
    if (registrar) await registrar.deregister(pod.namespace, pod.name).catch(() => undefined);
    if (netnsExists(pod.name)) run('ip', ['netns', 'del', pod.name], { allowFail: true });
    run('ip', inAgentNs(state.agentNetns, ['link', 'del', pod.ifname]), { allowFail: true });
    rmSync(`/etc/netns/${pod.name}`, { recursive: true, force: true });
    rmSync(join(stateDir, `${state.name}-${pod.name}.dnsmasq.conf`), { force: true });
  }
  if (state.pki) rmSync(state.pki, { recursive: true, force: true });
  rmSync(join(stateDir, `${state.name}-world.json`), { force: true });
  rmSync(labStatePath(state.name, stateDir), { force: true });
}

/** Whether `pid` runs (a zombie waiting for its parent to reap it counts as gone). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Stops a server we started, by its PID: its process group gets SIGTERM, then SIGKILL if it is
 * still running after `graceMs`.
 */
async function stopGroup(pid: number | null, graceMs = 3000): Promise<void> {
  if (!pid || !running(pid)) return;
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig);
    } catch {
      /* already gone */
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (running(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (running(pid)) signal('SIGKILL');
}

/** Runs a command inside a pod, as `kubectl exec` would. */
export function labExec(pod: string, argv: readonly string[]): number {
  if (!netnsExists(pod)) throw membraneError('MEMBRANE_ERR_LAB_COMMAND', `no lab pod ${pod}`);
  const r = spawnSync('ip', ['netns', 'exec', pod, ...argv], { stdio: 'inherit' });
  return r.status ?? 1;
}
