/**
 * Lab specs (deploy/lab/*.yaml): pods as network namespaces on this machine, each with its
 * labels, address and optional server, wired to the agent's namespace by a veth pair.
 */
import { parse } from 'yaml';
import { membraneError } from '../errors/index.js';
import { parseDns, type LabDns } from './spec-dns.js';
import { parseWorld, WORLD_FIRST_OCTET, type LabWorld } from './spec-world.js';

export interface LabPod {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * Pod annotations, passed to the agent with the endpoint (`policy.cilium.io/proxy-visibility`;
   * `membrane lab up` refuses a spec whose visibility annotation does not parse, the agent itself,
   * like Cilium, would only warn and ignore it).
   */
  readonly annotations: Readonly<Record<string, string>>;
  /** Index of the pod's /24 inside the lab subnet: pod = x.y.N.2, host side = x.y.N.1. */
  readonly index: number;
  /** `app: dns` runs dnsmasq with `dns` (spec-dns.ts); other apps run src/lab/apps/main.ts. */
  readonly serve?: { readonly app: string; readonly ports: readonly number[]; readonly dns?: LabDns };
  /** Container port names, as a pod spec's `ports[].name` (for named ports in policies). */
  readonly namedPorts: Readonly<Record<string, { readonly port: number; readonly protocol: number }>>;
}

export interface LabSpec {
  readonly name: string;
  /** First two octets of the lab's 10.x range, e.g. "10.77". Only inside our namespaces. */
  readonly subnet: string;
  readonly pods: readonly LabPod[];
  /** Extra /etc/hosts names visible in every pod (read before DNS, as in a pod): name → pod. */
  readonly hosts: Readonly<Record<string, string>>;
  /** Labels of each Kubernetes namespace (kubernetes.io/metadata.name is always added). */
  readonly namespaces: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Services, for `toServices` policies (no load balancing: only their selectors matter). */
  readonly services: readonly LabService[];
  /** A network outside the cluster (identity reserved:world), see spec-world.ts. */
  readonly world?: LabWorld;
}

export interface LabService {
  readonly name: string;
  readonly namespace: string;
  readonly selector: Readonly<Record<string, string>>;
}

const PROTOCOLS: Readonly<Record<string, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

const NAME = /^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/;

export function parseLabSpec(text: string, file: string): LabSpec {
  const bad = (path: string, why: string): never => {
    throw membraneError('MEMBRANE_ERR_LAB_SPEC', `${file}: ${path}: ${why}`);
  };
  const doc = parse(text) as Record<string, unknown> | null;
  if (!doc || doc.kind !== 'Lab') bad('kind', 'must be Lab');
  const meta = (doc?.metadata ?? {}) as Record<string, unknown>;
  if (typeof meta.name !== 'string' || !NAME.test(meta.name)) bad('metadata.name', 'must be a short DNS label');
  const spec = (doc?.spec ?? {}) as Record<string, unknown>;
  const subnet = spec.subnet ?? '10.77';
  if (typeof subnet !== 'string' || !/^10\.(25[0-5]|2[0-4]\d|1?\d?\d)$/.test(subnet)) {
    bad('spec.subnet', 'must be "10.N": labs only use 10.x addresses inside their own namespaces');
  }
  if (!Array.isArray(spec.pods) || spec.pods.length === 0) bad('spec.pods', 'must list at least one pod');
  // Pod /24s are <subnet>.1 up to <subnet>.<count>; the world's start at WORLD_FIRST_OCTET.
  if ((spec.pods as unknown[]).length >= WORLD_FIRST_OCTET) bad('spec.pods', `at most ${WORLD_FIRST_OCTET - 1} pods`);
  const pods: LabPod[] = (spec.pods as unknown[]).map((raw, i) => {
    const p = raw as Record<string, unknown>;
    const at = `spec.pods[${i}]`;
    if (typeof p.name !== 'string' || !NAME.test(p.name)) bad(`${at}.name`, 'must be a DNS label of at most 12 characters');
    const labels = p.labels ?? {};
    if (typeof labels !== 'object' || Object.values(labels as object).some((v) => typeof v !== 'string')) {
      bad(`${at}.labels`, 'must map keys to string values');
    }
    const annotations = p.annotations ?? {};
    if (typeof annotations !== 'object' || annotations === null || Object.values(annotations).some((v) => typeof v !== 'string')) {
      bad(`${at}.annotations`, 'must map keys to string values');
    }
    const serve = p.serve as Record<string, unknown> | undefined;
    const servePorts = serve ? (Array.isArray(serve.ports) ? serve.ports : [serve.port]) : [];
    if (serve && (typeof serve.app !== 'string' || servePorts.length === 0 || servePorts.some((n) => !Number.isInteger(n) || n < 1 || n > 65535))) {
      bad(`${at}.serve`, 'needs app and port (or ports)');
    }
    if (serve && (serve.app === 'dns') !== (serve.dns !== undefined)) bad(`${at}.serve.dns`, 'goes with app: dns, and app: dns needs it');
    if (serve?.app === 'dns' && servePorts.length !== 1) bad(`${at}.serve.ports`, 'app: dns serves one port (53 for a kube-dns pod)');
    const namedPorts: Record<string, { port: number; protocol: number }> = {};
    for (const [j, np] of (Array.isArray(p.ports) ? (p.ports as Record<string, unknown>[]) : []).entries()) {
      const protocol = PROTOCOLS[typeof np.protocol === 'string' ? np.protocol : 'TCP'];
      if (typeof np.name !== 'string' || !/^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/.test(np.name)) bad(`${at}.ports[${j}].name`, 'must be an IANA service name (≤15 characters)');
      if (typeof np.containerPort !== 'number' || !Number.isInteger(np.containerPort) || np.containerPort < 1 || np.containerPort > 65535) {
        bad(`${at}.ports[${j}].containerPort`, 'must be a port number');
      }
      if (protocol === undefined) bad(`${at}.ports[${j}].protocol`, 'must be TCP, UDP or SCTP');
      namedPorts[np.name as string] = { port: np.containerPort as number, protocol: protocol ?? 6 };
    }
    return {
      name: p.name as string,
      namedPorts,
      namespace: typeof p.namespace === 'string' ? p.namespace : 'default',
      labels: labels as Record<string, string>,
      annotations: annotations as Record<string, string>,
      index: i + 1,
      ...(serve ? { serve: { app: serve.app as string, ports: servePorts as number[] } } : {}),
    };
  });
  const hosts = (spec.hosts ?? {}) as Record<string, string>;
  for (const [host, pod] of Object.entries(hosts)) {
    if (!pods.some((p) => p.name === pod)) bad(`spec.hosts.${host}`, `names unknown pod ${pod}`);
  }
  const namespaces: Record<string, Record<string, string>> = {};
  for (const [ns, entry] of Object.entries((spec.namespaces ?? {}) as Record<string, unknown>)) {
    // `{ns: {labels: {k: v}}}`: anything else beside `labels` (the labels written without it, most
    // likely) would silently give the namespace none.
    if (entry !== null && (typeof entry !== 'object' || Array.isArray(entry))) bad(`spec.namespaces.${ns}`, 'must be a mapping with labels');
    const extra = entry !== null && typeof entry === 'object' ? Object.keys(entry).filter((k) => k !== 'labels') : [];
    if (extra.length > 0) bad(`spec.namespaces.${ns}.${extra[0]!}`, 'unknown field (namespace labels go under spec.namespaces.<name>.labels)');
    const l = (entry as { labels?: unknown } | null)?.labels ?? {};
    if (typeof l !== 'object' || l === null || Object.values(l).some((v) => typeof v !== 'string')) {
      bad(`spec.namespaces.${ns}.labels`, 'must map keys to string values');
    }
    namespaces[ns] = l as Record<string, string>;
  }
  const services: LabService[] = (Array.isArray(spec.services) ? (spec.services as Record<string, unknown>[]) : []).map((svc, i) => {
    const at = `spec.services[${i}]`;
    if (typeof svc.name !== 'string' || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(svc.name)) bad(`${at}.name`, 'must be a DNS label');
    const selector = svc.selector ?? {};
    if (typeof selector !== 'object' || selector === null || Object.values(selector).some((v) => typeof v !== 'string')) {
      bad(`${at}.selector`, 'must map keys to string values');
    }
    return { name: svc.name as string, namespace: typeof svc.namespace === 'string' ? svc.namespace : 'default', selector: selector as Record<string, string> };
  });
  const podNames = pods.map((p) => p.name);
  const dupPod = podNames.find((n, i) => podNames.indexOf(n) !== i);
  if (dupPod) bad('spec.pods', `${dupPod} is listed twice`);
  const world = spec.world === undefined ? undefined : parseWorld(spec.world, subnet as string, podNames, bad);
  const labAddresses = new Set([...pods.map((p) => `${subnet as string}.${p.index}.2`), ...(world?.addresses ?? [])]);
  const rawPods = spec.pods as Record<string, unknown>[];
  const withDns = pods.map((pod, i) => {
    const rawDns = (rawPods[i]?.serve as Record<string, unknown> | undefined)?.dns;
    if (!pod.serve || rawDns === undefined) return pod;
    return { ...pod, serve: { ...pod.serve, dns: parseDns(rawDns, `spec.pods[${i}].serve.dns`, labAddresses, bad) } };
  });
  const dnsPods = withDns.filter((p) => p.serve?.dns);
  if (dnsPods.length > 1) bad('spec.pods', `one DNS server per lab (${dnsPods.map((p) => p.name).join(', ')})`);
  return {
    name: meta.name as string,
    subnet: subnet as string,
    pods: withDns,
    hosts,
    namespaces,
    services,
    ...(world ? { world } : {}),
  };
}

/** The pod whose server is the lab's DNS (every pod's resolver), if any. */
export function dnsPod(spec: LabSpec): LabPod | undefined {
  return spec.pods.find((p) => p.serve?.dns);
}

export function podAddress(spec: LabSpec, pod: LabPod): { pod: string; host: string } {
  return { pod: `${spec.subnet}.${pod.index}.2`, host: `${spec.subnet}.${pod.index}.1` };
}

/** Host-side interface name: at most 15 characters, unique per lab pod. */
export function hostIfname(pod: LabPod): string {
  return `mb-${pod.name}`.slice(0, 15);
}
