/**
 * Services known to the agent in local mode (the lab registers them; in Kubernetes mode they
 * would come from the API server). Policy uses them for `toServices`: a service's selector
 * stands for the pods behind it. Persisted so a restart resolves the same peers.
 */
import { membraneError } from '../errors/index.js';
import type { ServiceInput } from '../policy/index.js';
import type { StateStore } from './state-store.js';
import { stringMap } from './endpoints.js';

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function validateServiceSpec(input: unknown): ServiceInput {
  const o = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  if (typeof o.name !== 'string' || !NAME.test(o.name)) throw membraneError('MEMBRANE_ERR_ENDPOINT_INVALID', 'name: must be a DNS-1035 label');
  const namespace = o.namespace ?? 'default';
  if (typeof namespace !== 'string' || !NAME.test(namespace)) throw membraneError('MEMBRANE_ERR_ENDPOINT_INVALID', 'namespace: must be a DNS label');
  return {
    name: o.name,
    namespace,
    labels: stringMap(o.labels, 'labels'),
    // A service without a selector selects no pod (its endpoints are managed by hand).
    selector: o.selector === null || o.selector === undefined ? null : stringMap(o.selector, 'selector'),
  };
}

export class ServiceRegistry {
  #byKey = new Map<string, ServiceInput>();
  #store: StateStore;
  #file = 'services.json';

  constructor(store: StateStore) {
    this.#store = store;
    for (const s of store.read<{ services: ServiceInput[] }>(this.#file, { services: [] }).services) {
      this.#byKey.set(`${s.namespace}/${s.name}`, s);
    }
  }

  upsert(svc: ServiceInput): void {
    this.#byKey.set(`${svc.namespace}/${svc.name}`, svc);
    this.#persist();
  }

  remove(namespace: string, name: string): ServiceInput {
    const key = `${namespace}/${name}`;
    const svc = this.#byKey.get(key);
    if (!svc) throw membraneError('MEMBRANE_ERR_ENDPOINT_NOT_FOUND', `service ${key}`);
    this.#byKey.delete(key);
    this.#persist();
    return svc;
  }

  list(): ServiceInput[] {
    return [...this.#byKey.values()].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  }

  #persist(): void {
    this.#store.write(this.#file, { services: this.list() });
  }
}
