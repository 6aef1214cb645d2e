/**
 * `membrane lab up|down|exec`: builds the pods of a lab spec as network namespaces joined to
 * the agent's namespace by veth pairs, starts their servers, and registers them with the
 * agent as endpoints. Everything it creates is recorded in a state file so `down` removes
 * exactly that, even after a crash.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync, existsSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { membraneError } from '../errors/index.js';
import { run } from '../datapath/index.js';
import { hostIfname, podAddress, type LabSpec } from './spec.js';

export const LAB_STATE_DIR = '/run/membrane/labs';
// Resolved from the repository root so it works from src/ (tests) and dist/ alike.
const APP_MAIN = fileURLToPath(new URL('../../dist/lab/apps/main.js', import.meta.url));

export interface LabState {
  readonly name: string;
  readonly agentNetns: string | null;
  readonly pods: { name: string; namespace: string; ip: string; ifname: string; labels: Record<string, string>; pid: number | null; log: string | null }[];
  readonly services: { name: string; namespace: string }[];
}

export interface EndpointRegistrar {
  register(ep: {
    name: string;
    namespace: string;
    podLabels: Record<string, string>;
    namespaceLabels: Record<string, string>;
    namedPorts: Record<string, { port: number; protocol: number }>;
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

  const state: LabState = { name: spec.name, agentNetns, pods: [], services: [] };
  const save = (): void => writeFileSync(labStatePath(spec.name, stateDir), JSON.stringify(state, null, 2));
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
    // `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts for the command.
    mkdirSync(`/etc/netns/${pod.name}`, { recursive: true });
    writeFileSync(`/etc/netns/${pod.name}/hosts`, ['127.0.0.1\tlocalhost', `${addr.pod}\t${pod.name}`, ...hostsLines, ''].join('\n'));
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
      ip: entry.ip,
      ifname: entry.ifname,
      netns: pod.name,
    });
    if (pod.serve) {
      const log = join(stateDir, `${spec.name}-${pod.name}.log`);
      const fd = openSync(log, 'w');
      const child = spawn(
        'ip',
        ['netns', 'exec', pod.name, process.execPath, APP_MAIN, pod.serve.app, ...pod.serve.ports.flatMap((p) => ['--port', String(p)]), '--name', pod.name],
        { detached: true, stdio: ['ignore', fd, fd] },
      );
      closeSync(fd);
      child.unref();
      entry.pid = child.pid ?? null;
      entry.log = log;
      save();
      for (const port of pod.serve.ports) await waitForListening(pod.name, port, log);
    }
  }
  for (const svc of spec.services) {
    await registrar.registerService({ name: svc.name, namespace: svc.namespace, selector: { ...svc.selector } });
    state.services.push({ name: svc.name, namespace: svc.namespace });
    save();
  }
  save();
  return state;
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
  for (const pod of state.pods) {
    if (pod.pid) {
      // Only the process we started, by its PID: its process group is the server.
      try {
        process.kill(-pod.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    if (registrar) await registrar.deregister(pod.namespace, pod.name).catch(() => undefined);
    if (netnsExists(pod.name)) run('ip', ['netns', 'del', pod.name], { allowFail: true });
    run('ip', inAgentNs(state.agentNetns, ['link', 'del', pod.ifname]), { allowFail: true });
    rmSync(`/etc/netns/${pod.name}`, { recursive: true, force: true });
  }
  rmSync(labStatePath(state.name, stateDir), { force: true });
}

/** Runs a command inside a pod, as `kubectl exec` would. */
export function labExec(pod: string, argv: readonly string[]): number {
  if (!netnsExists(pod)) throw membraneError('MEMBRANE_ERR_LAB_COMMAND', `no lab pod ${pod}`);
  const r = spawnSync('ip', ['netns', 'exec', pod, ...argv], { stdio: 'inherit' });
  return r.status ?? 1;
}
