/**
 * Local endpoints (pods on this node): registered through the API (the lab does it in local
 * mode), persisted in the state directory, restored on start.
 */
import { membraneError } from '../errors/index.js';
import type { EndpointPolicy, Label } from '../policy/index.js';
import type { StateStore } from './state-store.js';
import { endpointVisibility, type EndpointVisibility } from './visibility.js';

export interface EndpointSpec {
  readonly name: string;
  readonly namespace: string;
  readonly podLabels: Readonly<Record<string, string>>;
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  readonly ip: string;
  /** Host-side interface of the pod's veth, in the agent's network namespace. */
  readonly ifname: string;
  /** The pod's network namespace, for display and for the lab. */
  readonly netns?: string;
  readonly namedPorts?: Readonly<Record<string, { port: number; protocol: number }>>;
  /** Pod annotations; `policy.cilium.io/proxy-visibility` is read (./visibility.ts). */
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface Endpoint extends EndpointSpec, EndpointVisibility {
  readonly id: number;
  ifindex: number;
  identity: number;
  labels: readonly Label[];
  policy: EndpointPolicy | null;
  state: 'ready' | 'regenerating' | 'not-ready';
  lastError?: string;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** A `{key: "value"}` object from the API (absent = empty), or an error naming the field. */
export function stringMap(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Object.values(value).some((v) => typeof v !== 'string')) {
    throw membraneError('MEMBRANE_ERR_ENDPOINT_INVALID', `${field}: must map keys to string values`);
  }
  return value as Record<string, string>;
}

export function validateEndpointSpec(input: unknown): EndpointSpec {
  const bad = (field: string, why: string): never => {
    throw membraneError('MEMBRANE_ERR_ENDPOINT_INVALID', `${field}: ${why}`);
  };
  if (typeof input !== 'object' || input === null) bad('body', 'must be an object');
  const o = input as Record<string, unknown>;
  if (typeof o.name !== 'string' || !NAME.test(o.name)) bad('name', 'must be a DNS-1123 name');
  const namespace = o.namespace ?? 'default';
  if (typeof namespace !== 'string' || !NAME.test(namespace)) bad('namespace', 'must be a DNS-1123 name');
  if (typeof o.ip !== 'string' || !IPV4.test(o.ip)) bad('ip', 'must be an IPv4 address');
  if (typeof o.ifname !== 'string' || !IFNAME.test(o.ifname)) bad('ifname', 'must be an interface name');
  const labels = stringMap(o.podLabels, 'podLabels');
  stringMap(o.namespaceLabels, 'namespaceLabels');
  const annotations = stringMap(o.annotations, 'annotations');
  for (const [name, np] of Object.entries((o.namedPorts ?? {}) as Record<string, { port?: unknown; protocol?: unknown }>)) {
    const port = np?.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) bad(`namedPorts.${name}.port`, 'must be a port number');
    if (![6, 17, 132].includes(np?.protocol as number)) bad(`namedPorts.${name}.protocol`, 'must be 6 (TCP), 17 (UDP) or 132 (SCTP)');
  }
  const spec: EndpointSpec = {
    name: o.name as string,
    namespace: namespace as string,
    podLabels: labels,
    ip: o.ip as string,
    ifname: o.ifname as string,
    ...(typeof o.netns === 'string' ? { netns: o.netns } : {}),
    ...(o.namespaceLabels && typeof o.namespaceLabels === 'object'
      ? { namespaceLabels: o.namespaceLabels as Record<string, string> }
      : {}),
    ...(o.namedPorts && typeof o.namedPorts === 'object'
      ? { namedPorts: o.namedPorts as Record<string, { port: number; protocol: number }> }
      : {}),
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
  return spec;
}

interface PersistedEndpoint extends EndpointSpec {
  id: number;
}

export class EndpointManager {
  #byName = new Map<string, Endpoint>();
  #store: StateStore;
  #file = 'endpoints.json';

  constructor(store: StateStore) {
    this.#store = store;
  }

  /** Endpoints saved by the previous run; their links may have gone meanwhile. */
  restore(): Endpoint[] {
    const saved = this.#store.read<{ endpoints: PersistedEndpoint[] }>(this.#file, { endpoints: [] });
    for (const e of saved.endpoints) {
      this.#byName.set(key(e.namespace, e.name), { ...e, ...endpointVisibility(e.annotations), ifindex: 0, identity: 0, labels: [], policy: null, state: 'not-ready' });
    }
    return this.list();
  }

  upsert(spec: EndpointSpec): Endpoint {
    const k = key(spec.namespace, spec.name);
    const existing = this.#byName.get(k);
    for (const other of this.#byName.values()) {
      if (other !== existing && other.ip === spec.ip) {
        throw membraneError('MEMBRANE_ERR_ENDPOINT_INVALID', `ip ${spec.ip} already belongs to ${other.namespace}/${other.name}`);
      }
    }
    const id = existing?.id ?? this.#nextId();
    const ep: Endpoint = { ...spec, ...endpointVisibility(spec.annotations), id, ifindex: 0, identity: 0, labels: [], policy: null, state: 'not-ready' };
    this.#byName.set(k, ep);
    this.#persist();
    return ep;
  }

  remove(namespace: string, name: string): Endpoint {
    const k = key(namespace, name);
    const ep = this.#byName.get(k);
    if (!ep) throw membraneError('MEMBRANE_ERR_ENDPOINT_NOT_FOUND', `${namespace}/${name}`);
    this.#byName.delete(k);
    this.#persist();
    return ep;
  }

  get(namespace: string, name: string): Endpoint | undefined {
    return this.#byName.get(key(namespace, name));
  }

  byIp(ip: string): Endpoint | undefined {
    for (const ep of this.#byName.values()) if (ep.ip === ip) return ep;
    return undefined;
  }

  byId(id: number): Endpoint | undefined {
    for (const ep of this.#byName.values()) if (ep.id === id) return ep;
    return undefined;
  }

  list(): Endpoint[] {
    return [...this.#byName.values()].sort((a, b) => a.id - b.id);
  }

  #nextId(): number {
    const used = new Set([...this.#byName.values()].map((e) => e.id));
    let id = 1;
    while (used.has(id)) id++;
    if (id > 0xffff) throw membraneError('MEMBRANE_ERR_ENDPOINT_INVALID', 'no free endpoint id');
    return id;
  }

  #persist(): void {
    const endpoints: PersistedEndpoint[] = this.list().map((e) => ({
      id: e.id,
      name: e.name,
      namespace: e.namespace,
      podLabels: e.podLabels,
      ip: e.ip,
      ifname: e.ifname,
      ...(e.netns ? { netns: e.netns } : {}),
      ...(e.namespaceLabels ? { namespaceLabels: e.namespaceLabels } : {}),
      ...(e.namedPorts ? { namedPorts: e.namedPorts } : {}),
      ...(e.annotations ? { annotations: e.annotations } : {}),
    }));
    this.#store.write(this.#file, { endpoints });
  }
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
