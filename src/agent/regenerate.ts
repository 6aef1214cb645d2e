/**
 * Regeneration: desired state from policies + endpoints + identities, written to the maps.
 *
 *   policies ─┐
 *   endpoints ┼─► identities (endpoint labels, reserved, CIDR) ─► ipcache (prefix → identity)
 *             └─► per endpoint: resolveEndpointPolicy ─► policy map entries ─► enforcement flags
 *
 * Write order: ipcache first (new peers resolve); then an existing endpoint's enforcement is
 * reduced to what the old and new policy agree on, so nothing both allow is dropped while
 * entries change; then entries are synced (adds before deletes); then the new enforcement
 * flags are set. A new endpoint is enforced from its first write, so it starts closed.
 */
import type { Logger } from 'pino';
import {
  cidrIdentityLabels,
  endpointLabels,
  policyCidrs,
  reservedIdentities,
  resolveEndpointPolicy,
  RESERVED_IDENTITY,
  type EndpointPolicy,
  type Identity,
  type MapEntry,
  type PolicyObject,
  type ServiceInput,
} from '../policy/index.js';
import { ipv4ToNumber, parseIpv4Prefix, type Datapath, type PolicyMapEntry } from '../datapath/index.js';
import type { IdentityAllocator } from './identity-allocator.js';
import { linkIndexes, nodeAddresses, type Endpoint, type EndpointManager } from './endpoints.js';

export interface ProxyPorts {
  readonly http: number;
  readonly dns: number;
}

export interface RegenerationResult {
  readonly revision: number;
  readonly endpoints: number;
  readonly identities: number;
  readonly ipcache: { upserted: number; deleted: number };
  readonly policyEntries: { upserted: number; deleted: number };
  readonly durationMs: number;
}

export class Regenerator {
  #datapath: Datapath;
  #endpoints: EndpointManager;
  #identities: IdentityAllocator;
  #ports: ProxyPorts;
  #log: Logger;
  #revision = 0;
  #identityList: Identity[] = [];
  /** CIDR prefix → its local identity, for the prefixes the current policies name. */
  #cidrIdentities = new Map<string, number>();
  #ipcache: { base: number; mask: number; bits: number; id: number }[] = [];

  constructor(datapath: Datapath, endpoints: EndpointManager, identities: IdentityAllocator, ports: ProxyPorts, log: Logger) {
    this.#datapath = datapath;
    this.#endpoints = endpoints;
    this.#identities = identities;
    this.#ports = ports;
    this.#log = log;
  }

  get revision(): number {
    return this.#revision;
  }

  /**
   * The identity the datapath gives an address (its ipcache, longest prefix first), from the
   * copy the last regeneration wrote, so the proxy never has to read the map per connection.
   */
  identityOfIp(ip: string): number {
    const n = ipv4ToNumber(ip);
    for (const e of this.#ipcache) if (((n & e.mask) >>> 0) === e.base) return e.id;
    return RESERVED_IDENTITY.world;
  }

  /** Every identity the last regeneration knew, for flows and the API. */
  identities(): readonly Identity[] {
    return this.#identityList;
  }

  identity(id: number): Identity | undefined {
    return this.#identityList.find((i) => i.id === id);
  }

  regenerate(policies: readonly PolicyObject[], services: readonly ServiceInput[] = []): RegenerationResult {
    const started = performance.now();
    const endpoints = this.#endpoints.list();

    for (const ep of endpoints) {
      ep.labels = endpointLabels({
        namespace: ep.namespace,
        podLabels: { ...ep.podLabels },
        ...(ep.namespaceLabels ? { namespaceLabels: { ...ep.namespaceLabels } } : {}),
      });
      ep.identity = this.#identities.allocate(ep.labels);
    }
    const identities = this.#collectIdentities(endpoints, policies);
    this.#identityList = identities;

    const ipcache = new Map<string, number>();
    for (const addr of nodeAddresses()) ipcache.set(`${addr}/32`, RESERVED_IDENTITY.host);
    for (const [prefix, id] of this.#cidrIdentities) ipcache.set(prefix, id);
    for (const ep of endpoints) ipcache.set(`${ep.ip}/32`, ep.identity);
    const ipcacheResult = this.#datapath.syncIpcache(ipcache);
    this.#ipcache = [...ipcache].map(([prefix, id]) => ({ ...parseIpv4Prefix(prefix), id })).sort((a, b) => b.bits - a.bits);

    const totals = { upserted: 0, deleted: 0 };
    const current = this.#datapath.dumpEndpoints();
    const policyNow = this.#datapath.policySnapshot();
    const links = linkIndexes();
    for (const ep of endpoints) {
      ep.state = 'regenerating';
      try {
        const ifindex = links.get(ep.ifname) ?? 0;
        if (!ifindex) throw new Error(`link ${ep.ifname} does not exist`);
        if (ifindex !== ep.ifindex) {
          this.#datapath.attachEndpoint(ep.ifname, ifindex);
          ep.ifindex = ifindex;
        }
        const policy = resolveEndpointPolicy({
          policies,
          endpoint: { labels: ep.labels, ...(ep.namedPorts ? { namedPorts: ep.namedPorts } : {}) },
          identities,
          services,
        });
        const old = current.get(ep.ip);
        const base = { ifindex, identity: ep.identity, endpointId: ep.id };
        // A known endpoint keeps only the enforcement both policies agree on while its entries
        // change; a new one starts enforced, so it is closed, not open, until they are written.
        this.#datapath.upsertEndpoint(ep.ip, {
          ...base,
          ingressEnforced: old ? old.ingressEnforced && policy.ingress.enforced : policy.ingress.enforced,
          egressEnforced: old ? old.egressEnforced && policy.egress.enforced : policy.egress.enforced,
        });
        const r = this.#datapath.syncEndpointPolicy(ep.id, this.#mapEntries(policy), policyNow);
        totals.upserted += r.upserted;
        totals.deleted += r.deleted;
        this.#datapath.upsertEndpoint(ep.ip, {
          ...base,
          ingressEnforced: policy.ingress.enforced,
          egressEnforced: policy.egress.enforced,
        });
        ep.policy = policy;
        ep.state = 'ready';
        delete ep.lastError;
      } catch (err) {
        // Fail closed: the endpoint keeps whatever the maps enforced before.
        ep.state = 'not-ready';
        ep.lastError = (err as Error).message;
        this.#log.error({ err, endpoint: `${ep.namespace}/${ep.name}` }, 'endpoint regeneration failed');
      }
    }
    this.#revision++;
    const result: RegenerationResult = {
      revision: this.#revision,
      endpoints: endpoints.length,
      identities: identities.length,
      ipcache: ipcacheResult,
      policyEntries: totals,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
    };
    this.#log.info(result, 'regenerated');
    return result;
  }

  /** Removes an endpoint's map state (its links are gone or going). */
  forget(ep: Endpoint): void {
    this.#datapath.syncEndpointPolicy(ep.id, []);
    this.#datapath.deleteEndpoint(ep.ip);
    this.#datapath.deleteIpcache(`${ep.ip}/32`);
    this.#datapath.detachEndpoint(ep.ifname);
  }

  #collectIdentities(endpoints: readonly Endpoint[], policies: readonly PolicyObject[]): Identity[] {
    const byId = new Map<number, Identity>();
    for (const r of reservedIdentities()) byId.set(r.id, r);
    for (const ep of endpoints) {
      const prev = byId.get(ep.identity);
      const namedPorts = { ...(prev?.namedPorts ?? {}), ...(ep.namedPorts ?? {}) };
      byId.set(ep.identity, { id: ep.identity, labels: ep.labels, namedPorts });
    }
    this.#cidrIdentities.clear();
    for (const prefix of policyCidrs(policies)) {
      const labels = cidrIdentityLabels(prefix);
      const id = this.#identities.allocate(labels, 'local');
      byId.set(id, { id, labels });
      this.#cidrIdentities.set(prefix, id);
    }
    return [...byId.values()].sort((a, b) => a.id - b.id);
  }

  #mapEntries(policy: EndpointPolicy): PolicyMapEntry[] {
    const out: PolicyMapEntry[] = [];
    const add = (egress: boolean, e: MapEntry): void => {
      out.push({
        endpointId: 0,
        egress,
        identity: e.identity,
        protocol: e.protocol,
        port: e.port,
        portPrefixLen: e.portPrefixLen,
        deny: e.verdict === 'deny',
        ...(e.dropReason !== undefined ? { dropReason: e.dropReason } : {}),
        proxyPort: e.verdict === 'redirect' ? (e.l7?.kind === 'dns' ? this.#ports.dns : this.#ports.http) : 0,
      });
    };
    for (const e of policy.ingress.entries) add(false, e);
    for (const e of policy.egress.entries) add(true, e);
    return out;
  }
}

