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
  /** Indexes of #byName: flows and the in-process proxies look endpoints up by address per event. */
  #byIp = new Map<string, Endpoint>();
  #byId = new Map<number, Endpoint>();
  /** The list sorted by id, until the next change (regeneration reads it per pass). */
  #sorted: Endpoint[] | null = null;
  /** Lowest id that may be free: ids below it are all in use. */
  #freeFrom = 1;
  #store: StateStore;
  #file = 'endpoints.json';

  constructor(store: StateStore) {
    this.#store = store;
  }

  /** Endpoints saved by the previous run; their links may have gone meanwhile. */
  restore(): readonly Endpoint[] {
    const saved = this.#store.read<{ endpoints: PersistedEndpoint[] }>(this.#file, { endpoints: [] });
    for (const e of saved.endpoints) {
      this.#set({ ...e, ...endpointVisibility(e.annotations), ifindex: 0, identity: 0, labels: [], policy: null, state: 'not-ready' });
    }
    return this.list();
  }

  /**
   * Adds or replaces an endpoint (a new Endpoint object, identity 0 until the next regeneration).
   * The state file is written soon, off the event loop (`persisted`). Throws
   * MEMBRANE_ERR_ENDPOINT_INVALID when another endpoint has the address or no id is free.
   */
  upsert(spec: EndpointSpec): Endpoint {
    const k = key(spec.namespace, spec.name);
    const existing = this.#byName.get(k);
    const other = this.#byIp.get(spec.ip);
    if (other && other !== existing) {
      throw membraneError('MEMBRANE_ERR_ENDPOINT_INVALID', `ip ${spec.ip} already belongs to ${other.namespace}/${other.name}`);
    }
    const id = existing?.id ?? this.#nextId();
    const ep: Endpoint = { ...spec, ...endpointVisibility(spec.annotations), id, ifindex: 0, identity: 0, labels: [], policy: null, state: 'not-ready' };
    if (existing) this.#unset(existing);
    this.#set(ep);
    this.#persist();
    return ep;
  }

  /** Removes an endpoint (state file written soon, `persisted`); MEMBRANE_ERR_ENDPOINT_NOT_FOUND when unknown. */
  remove(namespace: string, name: string): Endpoint {
    const ep = this.#byName.get(key(namespace, name));
    if (!ep) throw membraneError('MEMBRANE_ERR_ENDPOINT_NOT_FOUND', `${namespace}/${name}`);
    this.#unset(ep);
    this.#persist();
    return ep;
  }

  /**
   * Resolves once the state file holds every change made before this call (renamed into place);
   * rejects with MEMBRANE_ERR_STATE when it could not be written (the previous version stays).
   */
  persisted(): Promise<void> {
    return this.#persisting ?? Promise.resolve();
  }

  get(namespace: string, name: string): Endpoint | undefined {
    return this.#byName.get(key(namespace, name));
  }

  byIp(ip: string): Endpoint | undefined {
    return this.#byIp.get(ip);
  }

  byId(id: number): Endpoint | undefined {
    return this.#byId.get(id);
  }

  /** Every endpoint by id; the same array until the next change (do not modify it). */
  list(): readonly Endpoint[] {
    this.#sorted ??= [...this.#byId.values()].sort((a, b) => a.id - b.id);
    return this.#sorted;
  }

  get size(): number {
    return this.#byName.size;
  }

  #set(ep: Endpoint): void {
    this.#byName.set(key(ep.namespace, ep.name), ep);
    this.#byIp.set(ep.ip, ep);
    this.#byId.set(ep.id, ep);
    this.#sorted = null;
  }

  #unset(ep: Endpoint): void {
    this.#byName.delete(key(ep.namespace, ep.name));
    if (this.#byIp.get(ep.ip) === ep) this.#byIp.delete(ep.ip);
    if (this.#byId.get(ep.id) === ep) this.#byId.delete(ep.id);
    if (ep.id < this.#freeFrom) this.#freeFrom = ep.id;
    this.#sorted = null;
  }

  /** The lowest free id (Cilium reuses endpoint ids too); amortised O(1) under add/remove churn. */
  #nextId(): number {
    let id = this.#freeFrom;
    while (this.#byId.has(id)) id++;
    if (id > 0xffff) throw membraneError('MEMBRANE_ERR_ENDPOINT_INVALID', 'no free endpoint id');
    this.#freeFrom = id + 1;
    return id;
  }

  #persisting: Promise<void> | null = null;

  #persist(): void {
    const persisting = this.#store.writeSoon(this.#file, () => ({ endpoints: this.list().map(persisted) }));
    this.#persisting = persisting;
    void persisting.then(
      () => {
        if (this.#persisting === persisting) this.#persisting = null;
      },
      () => undefined,
    );
  }
}

function persisted(e: Endpoint): PersistedEndpoint {
  return {
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
  };
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
