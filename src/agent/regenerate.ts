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
 *
 * Incremental: a PolicyEngine (src/policy) keeps every endpoint's resolution and the selector
 * cache across passes, so a pass resolves again only the endpoints a change can affect (a changed
 * policy's subjects, the readers of a selector an added/removed identity matches), and an endpoint
 * whose policy, identity, link and enforcement are as last written costs no map access. The
 * policy map is read only for endpoints not written since the agent started. No child process:
 * links by if_nametoindex, node addresses by getifaddrs (src/datapath/links.ts).
 *
 * toFQDNs: IPs the FQDN subsystem learned carry `fqdn:<selector>` labels, and their identity is
 * that label set, as since Cilium 1.16 (CFP-28427 "ToFQDN policy performance improvements"): the
 * fqdn labels, `reserved:world`, and the `cidr:` labels of the longest policy prefix in the
 * ipcache that contains the IP (labels propagate down to the addresses a prefix holds, so CIDR
 * rules and their `except`s select a learned IP as they select its prefix). Addresses the same
 * selectors select share one local identity: a new IP of a known name costs one ipcache write,
 * no identity and no policy entry. `applyFqdn` is the incremental path a DNS answer takes: for a
 * label set seen for the first time, every endpoint's policy entries of that identity only
 * (resolved against just those identities, memoised per endpoint kind and label signature until
 * the next pass: src/policy/resolve/fresh-memo.ts), then the ipcache entries, then the entries of
 * identities no address holds any more go: O(changed IPs + endpoints × new label sets). A full
 * pass keeps learned addresses on the identities the maps hold; those its new prefixes relabel
 * move after it by that same path, so no packet meets an identity whose entries are not written.
 */
import { isIPv4 } from 'node:net';
import type { Logger } from 'pino';
import {
  appendEntries,
  appendList,
  cidrIdentityLabels,
  endpointLabels,
  worldLabels,
  policyCidrs,
  FreshIdentityMemo,
  PolicyEngine,
  reservedIdentities,
  applyVisibility,
  RESERVED_IDENTITY,
  type DirectionPolicy,
  type EndpointPolicy,
  type FreshEntries,
  type Identity,
  type Label,
  type MapEntry,
  type PolicyObject,
  type ServiceInput,
} from '../policy/index.js';
import { ipv4ToNumber, linkIndex, nodeAddresses, parseIpv4Prefix, type Datapath, type DeferredDeletes, type PolicyMapEntry } from '../datapath/index.js';
import { fqdnLabelsKey, fqdnLearnKey } from '../fqdn/index.js';
import { LOCAL_IDENTITY_SCOPE, type IdentityAllocator } from './identity-allocator.js';
import type { Endpoint, EndpointManager } from './endpoints.js';

export interface ProxyPorts {
  readonly http: number;
  readonly dns: number;
  /** The TLS passthrough listener (serverNames without termination). */
  readonly tls: number;
}

export interface RegenerationResult {
  readonly revision: number;
  readonly endpoints: number;
  /** Endpoints whose policy or map state changed and were written; the others were left as they were. */
  readonly resolved: number;
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
  /** Every identity the datapath may see, by id (flows and the proxies look them up per event). */
  #identityById = new Map<number, Identity>();
  #identityList: Identity[] | null = [];
  /** CIDR prefix → its local identity, for the prefixes the current policies name. */
  #cidrIdentities = new Map<string, number>();
  /** CIDR prefix → its identity and the allocator's labels for it, from the last pass. */
  #cidrKnown = new Map<string, { id: number; labels: readonly Label[] }>();
  /** The ipcache as last written: exact /32 entries by address, other prefixes longest first. */
  #hostEntries = new Map<number, number>();
  #prefixEntries: { base: number; mask: number; bits: number; id: number }[] = [];
  /** Learned IP → the toFQDNs selector keys that select it (never empty: unselected IPs are removed). */
  #fqdnIps = new Map<string, readonly string[]>();
  /** Learned IP → its identity, as in the ipcache. */
  #fqdnIdentities = new Map<string, number>();
  /** A learned IPs' identity → how many learned IPs hold it (an identity goes when none does). */
  #fqdnIdRefs = new Map<number, number>();
  /** The ipcache's IPv4 CIDR prefixes (from the policies), by length, longest first: which one holds a learned IP. */
  #policyPrefixes: { bits: number; mask: number; byBase: Map<number, string> }[] = [];
  /** A learned IP's labels by containing prefix and selector keys (fqdnLabelsKey), for the current prefixes. */
  #fqdnLabelMemo = new Map<string, Label[]>();
  /** Learned IP → the fqdnLabelsKey of the labels its identity has (what a change of prefixes compares). */
  #fqdnLabelsKey = new Map<string, string>();
  /** fqdnLabelsKey → the identity learned IPs of those labels hold, while one does (the proxy workers' FqdnLearnTable). */
  #fqdnIdOfKey = new Map<string, number>();
  #fqdnKeyOfId = new Map<number, string>();
  /** Bumped when #fqdnIdOfKey may have changed or a full pass ran (the table is then built again, and sent only if it differs). */
  #fqdnTableVersion = 0;
  #fqdnTableBuilt = -1;
  #fqdnTableText = '';
  #fqdnTable: { version: number; identities: ReadonlyArray<readonly [string, number]> } = { version: 0, identities: [] };
  /** The IPv4 policy prefixes the learned IPs were last labelled against, sorted and joined. */
  #labelledPrefixes = '';
  /** The policy whose entries the policy map holds, per endpoint id (what the next pass diffs against). */
  #writtenPolicy = new Map<number, EndpointPolicy>();
  /** Its map entries by peer identity, derived when applyFqdn needs them (it touches a few identities' entries only). */
  #written = new Map<number, Map<number, PolicyMapEntry[]>>();
  #policies: readonly PolicyObject[] = [];
  #services: readonly ServiceInput[] = [];
  /** Resolution kept across passes: an endpoint nothing it depends on changed is not resolved again. */
  #engine = new PolicyEngine();
  /** applyFqdn's resolutions of fresh identities per endpoint kind, valid for one revision. */
  #freshMemo = new FreshIdentityMemo();
  /** The endpoints-map value last written per endpoint id, with the address it was written for. */
  #endpointWritten = new Map<number, { ip: string; ifindex: number; identity: number; ingress: boolean; egress: boolean }>();
  /** Per endpoint id: the policy the engine last resolved and its stable form (#stable). */
  #stableOf = new Map<number, { from: EndpointPolicy; to: EndpointPolicy }>();

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
    const host = this.#hostEntries.get(n);
    if (host !== undefined) return host;
    for (const e of this.#prefixEntries) if (((n & e.mask) >>> 0) === e.base) return e.id;
    return RESERVED_IDENTITY.world;
  }

  /** The agent's copy of the ipcache (identityOfIp), from what a full pass wrote. */
  #setIpcacheView(ipcache: ReadonlyMap<string, number>): void {
    this.#hostEntries.clear();
    const prefixes: { base: number; mask: number; bits: number; id: number }[] = [];
    for (const [prefix, id] of ipcache) {
      const p = parseIpv4Prefix(prefix);
      if (p.bits === 32) this.#hostEntries.set(p.base, id);
      else prefixes.push({ ...p, id });
    }
    this.#prefixEntries = prefixes.sort((a, b) => b.bits - a.bits);
  }

  /** Every identity the datapath may see, for the API (sorted by id). */
  identities(): readonly Identity[] {
    this.#identityList ??= [...this.#identityById.values()].sort((a, b) => a.id - b.id);
    return this.#identityList;
  }

  identity(id: number): Identity | undefined {
    return this.#identityById.get(id);
  }

  regenerate(policies: readonly PolicyObject[], services: readonly ServiceInput[] = []): RegenerationResult {
    const started = performance.now();
    const first = this.#revision === 0;
    const endpoints = this.#endpoints.list();
    this.#policies = policies;
    // Forgotten now, not when the pass completes: a pass that throws (a full map) leaves the new
    // policies in force for applyFqdn without moving the revision the memo is stamped with.
    this.#freshMemo.begin(-1 - this.#revision);
    this.#services = services;

    for (const ep of endpoints) {
      // An endpoint's spec does not change in place (an upsert makes a new Endpoint with
      // identity 0), and cluster identities are never released: labels and identity are computed once.
      if (ep.identity !== 0 && ep.labels.length > 0) continue;
      ep.labels = endpointLabels({
        namespace: ep.namespace,
        podLabels: { ...ep.podLabels },
        ...(ep.namespaceLabels ? { namespaceLabels: { ...ep.namespaceLabels } } : {}),
      });
      ep.identity = this.#identities.allocate(ep.labels);
    }
    const identities = this.#collectIdentities(endpoints, policies);
    this.#identityById = new Map(identities.map((i) => [i.id, i]));
    this.#identityList = identities;

    const ipcache = new Map<string, number>();
    for (const addr of nodeAddresses()) ipcache.set(`${addr}/32`, RESERVED_IDENTITY.host);
    // The ipcache is IPv4-only: an IPv6 prefix's identity is known to the policy engine, not written.
    for (const [prefix, id] of this.#cidrIdentities) if (!prefix.includes(':')) ipcache.set(prefix, id);
    for (const [ip, id] of this.#fqdnIdentities) ipcache.set(`${ip}/32`, id);
    for (const ep of endpoints) ipcache.set(`${ep.ip}/32`, ep.identity);

    // Cilium's order (and DESIGN.md's, as for an FQDN update): every endpoint's new and changed
    // entries first, then addresses move to their new identities (the ipcache: a new prefix or
    // endpoint; the endpoints map: a pod relabelled in place), then the stale entries go. A packet
    // in between is judged by old or new state, never by an identity the policy map does not know yet.
    const deferred: DeferredDeletes = [];
    const deferredFor = new Set<number>();
    const switched: { ep: Endpoint; ifindex: number }[] = [];
    const totals = { upserted: 0, deleted: 0 };
    this.#engine.setPolicies(policies);
    this.#engine.setServices(services);
    this.#engine.setIdentities(identities);
    let current: Map<string, { identity: number; ingressEnforced: boolean; egressEnforced: boolean }> | null = null;
    // The policy map is read only for endpoints this agent has not written since it started.
    let policyNow: ReturnType<Datapath['policySnapshot']> | null = null;
    let resolved = 0;
    for (const ep of endpoints) {
      const prevState = ep.state;
      ep.state = 'regenerating';
      try {
        // if_nametoindex per endpoint (a syscall, no child process): a link deleted and created
        // again under the same name gets a new ifindex and is attached again.
        const ifindex = linkIndex(ep.ifname);
        if (!ifindex) throw new Error(`link ${ep.ifname} does not exist`);
        if (ifindex !== ep.ifindex) {
          this.#datapath.attachEndpoint(ep.ifname, ifindex);
          ep.ifindex = ifindex;
        }
        const resolution = this.#engine.resolve(ep.id, { labels: ep.labels, ...(ep.namedPorts ? { namedPorts: ep.namedPorts } : {}) });
        const { changed } = resolution;
        // Proxy visibility (pod annotation): redirects only, no verdict changes; memoized per
        // resolution, so an unchanged one is the same object. An annotation changes by upsert only.
        const policy = this.#stable(ep.id, applyVisibility(resolution.policy, ep.visibility));
        const was = this.#endpointWritten.get(ep.id);
        const upToDate =
          !changed && prevState === 'ready' && this.#writtenPolicy.has(ep.id) && was !== undefined && was.ip === ep.ip && was.ifindex === ifindex &&
          was.identity === ep.identity && was.ingress === policy.ingress.enforced && was.egress === policy.egress.enforced;
        if (upToDate) {
          // Nothing this endpoint's policy depends on changed: its map state is what it was.
          ep.policy = policy;
          if (this.#writtenPolicy.get(ep.id) !== policy) {
            // An applyFqdn merge in between wrote the same entries as other objects.
            this.#writtenPolicy.set(ep.id, policy);
            this.#written.delete(ep.id);
          }
          ep.state = 'ready';
          continue;
        }
        resolved++;
        current ??= this.#datapath.dumpEndpoints();
        const old = current.get(ep.ip);
        // A pod relabelled in place keeps its old identity in the endpoints map until every
        // endpoint's entries for its new one are in (that map names the source of its packets,
        // as the ipcache names destinations): switched after the loop, with the ipcache.
        const shown = old && old.identity !== 0 && old.identity !== ep.identity ? old.identity : ep.identity;
        if (shown !== ep.identity) switched.push({ ep, ifindex });
        const base = { ifindex, identity: shown, endpointId: ep.id };
        // A known endpoint keeps only the enforcement both policies agree on while its entries
        // change; a new one starts enforced, so it is closed, not open, until they are written.
        this.#datapath.upsertEndpoint(ep.ip, {
          ...base,
          ingressEnforced: old ? old.ingressEnforced && policy.ingress.enforced : policy.ingress.enforced,
          egressEnforced: old ? old.egressEnforced && policy.egress.enforced : policy.egress.enforced,
        });
        const prev = this.#writtenPolicy.get(ep.id);
        // Until the write succeeds the map holds an unknown mix: read it again next time.
        this.#writtenPolicy.delete(ep.id);
        this.#written.delete(ep.id);
        this.#endpointWritten.delete(ep.id);
        // Entries are compared as objects: the engine keeps an unchanged identity's entries, so
        // only what changed is encoded and written.
        const held = deferred.length;
        const r = prev
          ? this.#datapath.writeEndpointPolicy(ep.id, ...this.#entryDiff(prev, policy), deferred)
          : this.#datapath.syncEndpointPolicy(ep.id, this.#mapEntries(policy), (policyNow ??= this.#datapath.policySnapshot()), deferred);
        if (deferred.length > held) deferredFor.add(ep.id);
        this.#writtenPolicy.set(ep.id, policy);
        totals.upserted += r.upserted;
        totals.deleted += r.deleted;
        this.#datapath.upsertEndpoint(ep.ip, {
          ...base,
          ingressEnforced: policy.ingress.enforced,
          egressEnforced: policy.egress.enforced,
        });
        this.#endpointWritten.set(ep.id, { ip: ep.ip, ifindex, identity: shown, ingress: policy.ingress.enforced, egress: policy.egress.enforced });
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
    let ipcacheResult: { upserted: number; deleted: number };
    try {
      for (const { ep, ifindex } of switched) {
        if (ep.state !== 'ready' || !ep.policy) continue;
        this.#datapath.upsertEndpoint(ep.ip, {
          ifindex,
          identity: ep.identity,
          endpointId: ep.id,
          ingressEnforced: ep.policy.ingress.enforced,
          egressEnforced: ep.policy.egress.enforced,
        });
        this.#endpointWritten.set(ep.id, { ip: ep.ip, ifindex, identity: ep.identity, ingress: ep.policy.ingress.enforced, egress: ep.policy.egress.enforced });
      }
      ipcacheResult = this.#datapath.syncIpcache(ipcache);
      this.#setIpcacheView(ipcache);
      for (const del of deferred) if (del()) totals.deleted++;
    } catch (err) {
      // The new entries are in, and some stale ones (or an old identity) still: these endpoints
      // are not ready, and the next pass reads their maps again (an FQDN update skips them).
      for (const id of new Set([...deferredFor, ...switched.map((x) => x.ep.id)])) {
        this.#writtenPolicy.delete(id);
        this.#written.delete(id);
        this.#endpointWritten.delete(id);
        const ep = endpoints.find((e) => e.id === id);
        if (ep) {
          ep.state = 'not-ready';
          ep.lastError = (err as Error).message;
        }
      }
      throw err;
    }
    this.#revision++;
    if (!first) {
      const moved = this.#relabelFqdnIps();
      totals.upserted += moved.policyEntries;
    }
    const result: RegenerationResult = {
      revision: this.#revision,
      endpoints: endpoints.length,
      resolved,
      identities: identities.length,
      ipcache: ipcacheResult,
      policyEntries: totals,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
    };
    this.#log.info(result, 'regenerated');
    return result;
  }

  /**
   * The incremental path of a DNS answer (or a policy change) for learned IPs: each change sets the
   * selector keys of one IP (empty: no toFQDNs selector selects it any more). Costs O(changed IPs):
   * their identities, their ipcache entries, and for each endpoint with toFQDNs rules the policy
   * entries of those identities only (resolved against just those identities: an entry depends on
   * its own identity's labels alone; per endpoint kind, once per signature of those labels within
   * a revision: FreshIdentityMemo, so an answer of `*.example.com` like the one before costs no
   * resolution). The entries of an endpoint's policy are not filtered unless an identity changes
   * under them (relabelled or re-learned address): the fresh ones are appended, which the proxy
   * workers' sync sends as the tail. Before the first regeneration it only records them.
   */
  applyFqdn(changes: ReadonlyArray<{ ip: string; labelKeys: readonly string[] }>): { ipcache: number; policyEntries: number } {
    const moves = newMoves();
    for (const { ip, labelKeys } of changes) {
      // The datapath is IPv4-only: an AAAA answer's addresses have no ipcache to go to.
      if (!isIPv4(ip)) continue;
      const keys = sortedKeys(labelKeys);
      const before = this.#fqdnIps.get(ip);
      if (before ? before.length === keys.length && before.every((k, i) => k === keys[i]) : keys.length === 0) continue;
      if (keys.length === 0) this.#fqdnIps.delete(ip);
      else this.#fqdnIps.set(ip, keys);
      // Before the first pass only recorded: the pass knows the prefixes the labels depend on.
      if (this.#revision === 0) continue;
      this.#moveFqdnIp(ip, keys, moves);
    }
    return this.#commitFqdnMoves(moves);
  }

  /**
   * After a full pass whose policy prefixes changed: the learned addresses a new prefix now holds
   * (or a removed one no longer does) move to the identity of their new labels by the same path
   * as an answer (#commitFqdnMoves: entries first, then the ipcache, then the old identity goes),
   * so no packet meets an identity without its entries. The pass kept them where they were.
   */
  #relabelFqdnIps(): { ipcache: number; policyEntries: number } {
    // The same prefixes as when they were labelled (most passes: endpoints, L7 rules): none moves.
    const prefixes = prefixesKey(this.#cidrIdentities.keys());
    if (prefixes === this.#labelledPrefixes) return { ipcache: 0, policyEntries: 0 };
    this.#labelledPrefixes = prefixes;
    const moves = newMoves();
    for (const [ip, keys] of this.#fqdnIps) {
      if (this.#fqdnLabelsKey.get(ip) !== fqdnLabelsKey(this.#containingPrefix(ip), keys)) this.#moveFqdnIp(ip, keys, moves);
    }
    return this.#commitFqdnMoves(moves);
  }

  /** One learned address to the identity of `keys` (none: empty), reference counts kept; the maps are written by #commitFqdnMoves. */
  #moveFqdnIp(ip: string, keys: readonly string[], m: FqdnMoves): void {
    const oldId = this.#fqdnIdentities.get(ip);
    let newId: number | undefined;
    if (keys.length > 0) {
      const { key, labels } = this.#fqdnLabels(ip, keys);
      newId = this.#identities.allocate(labels, 'local');
      this.#fqdnIdentities.set(ip, newId);
      this.#fqdnLabelsKey.set(ip, key);
      this.#fqdnIdRefs.set(newId, (this.#fqdnIdRefs.get(newId) ?? 0) + 1);
      if (this.#fqdnIdOfKey.get(key) !== newId) {
        this.#fqdnIdOfKey.set(key, newId);
        this.#fqdnKeyOfId.set(newId, key);
        this.#fqdnTableVersion++;
      }
      if (!this.#identityById.has(newId) && !m.freshIds.has(newId)) {
        m.fresh.push({ id: newId, labels: this.#identities.labelsOf(newId) ?? labels });
        m.freshIds.add(newId);
      }
    } else {
      this.#fqdnIdentities.delete(ip);
      this.#fqdnLabelsKey.delete(ip);
    }
    if (oldId !== undefined) {
      const refs = this.#fqdnIdRefs.get(oldId)! - 1;
      if (refs > 0) this.#fqdnIdRefs.set(oldId, refs);
      else {
        this.#fqdnIdRefs.delete(oldId);
        this.#forgetFqdnKeyOf(oldId);
        m.left.push(oldId);
      }
    }
    if (oldId !== newId) m.changed.push({ ip, newId });
  }

  /** Writes what #moveFqdnIp decided: the fresh identities' entries, the ipcache, then the retired identities' entries go. */
  #commitFqdnMoves({ changed, fresh, freshIds, left }: FqdnMoves): { ipcache: number; policyEntries: number } {
    if (changed.length === 0) return { ipcache: 0, policyEntries: 0 };
    let retired: Set<number> | null = null;
    if (left.length > 0) {
      for (const id of left) {
        if (this.#fqdnIdRefs.has(id)) continue; // taken again later in this call
        if (freshIds.has(id)) {
          // Allocated and given up within this call: the datapath never saw it.
          freshIds.delete(id);
          this.#identities.release(id);
        } else (retired ??= new Set()).add(id);
      }
      if (fresh.length !== freshIds.size) fresh.splice(0, fresh.length, ...fresh.filter((i) => freshIds.has(i.id)));
    }

    // The common case: every address joined an identity the maps already hold (a new IP of a
    // name seen before) and none was left empty: the ipcache entries are the whole change.
    if (fresh.length === 0 && retired === null) {
      for (const { ip, newId } of changed) this.#setFqdnIpcache(ip, newId);
      return { ipcache: changed.length, policyEntries: 0 };
    }
    this.#addIdentities(fresh, retired !== null);

    // Order of Cilium's (and DESIGN.md's) FQDN update: policy entries for the new identities
    // first, then the ipcache switches the addresses to them, then the retired identities'
    // entries go. A packet in between is judged by complete state, old or new. Every endpoint
    // is resolved against the new identities: CIDR, entity and wildcard rules select them too.
    let policyWrites = 0;
    const ready: Endpoint[] = [];
    for (const ep of this.#endpoints.list()) if (ep.state === 'ready' && ep.policy) ready.push(ep);
    /** The fresh identities' entries per endpoint id. */
    const resolved = new Map<number, FreshEntries>();
    /** Endpoints whose policy held entries of a fresh identity (relabelled or re-learned addresses). */
    const staleBefore = new Set<number>();
    // Endpoints with the same identity, named ports and visibility resolve the new identities
    // alike (replicas): one resolution each, not one per endpoint; and per kind, identities the
    // policies see alike (same selected labels) share one (src/policy/resolve/fresh-memo.ts).
    const byKind = new Map<string, FreshEntries>();
    this.#freshMemo.begin(this.#revision);
    for (const ep of ready) {
      const kind = endpointKind(ep);
      let partial = byKind.get(kind);
      if (!partial) {
        const visibility = ep.visibility;
        partial = this.#freshMemo.resolve(
          kind,
          {
            policies: this.#policies,
            services: this.#services,
            endpoint: { labels: ep.labels, ...(ep.namedPorts ? { namedPorts: ep.namedPorts } : {}) },
            // Visibility pins the new identities' answers against the same wildcard entries as the full pass.
            ...(visibility ? { finish: (p: EndpointPolicy) => applyVisibility(p, visibility) } : {}),
          },
          fresh,
        );
        byKind.set(kind, partial);
      }
      resolved.set(ep.id, partial);
      const written = this.#writtenEntries(ep.id);
      let before: PolicyMapEntry[] | null = null;
      for (const id of freshIds) {
        const w = written.get(id);
        if (!w) continue;
        staleBefore.add(ep.id);
        if (before) for (const e of w) before.push(e);
        else before = w;
        written.delete(id);
      }
      if (partial.ingress.length === 0 && partial.egress.length === 0 && before === null) continue;
      const after: PolicyMapEntry[] = [];
      for (const e of partial.ingress) after.push(this.#mapEntry(false, e));
      for (const e of partial.egress) after.push(this.#mapEntry(true, e));
      for (const e of after) {
        const w = written.get(e.identity);
        if (w) w.push(e);
        else written.set(e.identity, [e]);
      }
      // Nothing of these identities was written for this endpoint: the entries go as they are;
      // else only what differs from what was (a re-learned address's entries may be unchanged).
      const r = before === null ? this.#datapath.writeEndpointPolicy(ep.id, after, []) : this.#datapath.syncEndpointPolicy(ep.id, after, this.#datapath.snapshotOf(ep.id, before));
      policyWrites += r.upserted + r.deleted;
    }

    for (const { ip, newId } of changed) this.#setFqdnIpcache(ip, newId);

    for (const ep of ready) {
      const written = this.#writtenEntries(ep.id);
      // The written entries are ep.policy's: when they hold none of the retired or fresh
      // identities, ep.policy's entries need no filtering, only the fresh ones appended.
      let stale = staleBefore.has(ep.id);
      if (retired) {
        let gone: PolicyMapEntry[] | null = null;
        for (const id of retired) {
          const w = written.get(id);
          if (!w) continue;
          if (gone) for (const e of w) gone.push(e);
          else gone = w;
          written.delete(id);
        }
        if (gone) {
          stale = true;
          policyWrites += this.#datapath.writeEndpointPolicy(ep.id, [], gone).deleted;
        }
      }
      const partial = resolved.get(ep.id)!;
      const policy = ep.policy!;
      const ingress = mergeFresh(policy.ingress, partial.ingress, stale, retired, freshIds);
      const egress = mergeFresh(policy.egress, partial.egress, stale, retired, freshIds);
      if (ingress !== policy.ingress || egress !== policy.egress) ep.policy = { ingress, egress };
      this.#writtenPolicy.set(ep.id, ep.policy!);
    }
    if (retired) {
      for (const id of retired) {
        this.#identityById.delete(id);
        this.#identities.release(id);
      }
    }
    return { ipcache: changed.length, policyEntries: policyWrites };
  }

  /**
   * Adds applyFqdn's fresh identities to the identities by id; the sorted list (read by the
   * proxy workers' sync after every update) grows by them without a sort when they come after
   * it in id order (local identities are handed out in increasing order) and none is retired.
   */
  #addIdentities(fresh: readonly Identity[], retiring: boolean): void {
    let list = this.#identityList;
    if (list !== null && !retiring) {
      let last = list.length > 0 ? list[list.length - 1]!.id : -Infinity;
      for (const i of fresh) {
        if (i.id <= last || this.#identityById.has(i.id)) {
          list = null;
          break;
        }
        last = i.id;
      }
    } else list = null;
    for (const i of fresh) this.#identityById.set(i.id, i);
    // A new array: one handed out may be a WeakMap key of a resolution (arrayView).
    // appendList: the workers' sync tells at once that it extends the list before (extendsList).
    this.#identityList = list !== null && fresh.length > 0 ? appendList(list, fresh) : list;
  }

  /** Learned IPs and their selector keys, for the API and tests. */
  fqdnIps(): ReadonlyMap<string, readonly string[]> {
    return this.#fqdnIps;
  }

  #forgetFqdnKeyOf(id: number): void {
    const key = this.#fqdnKeyOfId.get(id);
    if (key === undefined) return;
    this.#fqdnKeyOfId.delete(id);
    if (this.#fqdnIdOfKey.get(key) === id) this.#fqdnIdOfKey.delete(key);
    this.#fqdnTableVersion++;
  }

  /**
   * The identities learned addresses hold, by fqdnLearnKey (the identity of their policy prefix in
   * the ipcache, or `world`, and their selector keys): with the toFQDNs selectors, what a proxy
   * worker needs to give a new address one of them itself (src/proxyworker/prelearn.ts). Every
   * identity listed has its entries in every ready endpoint's policy map. Left out: an identity
   * with a deny entry of its own anywhere (an egressDeny toCIDR on its prefix, …): one the worker
   * writes just as the agent retires it must not lose a deny (its lookups would then meet only
   * the wildcard entries, which deny nothing it allowed). `version` changes only with the content.
   */
  fqdnLearnTable(): { version: number; identities: ReadonlyArray<readonly [string, number]> } {
    if (this.#fqdnTableBuilt === this.#fqdnTableVersion) return this.#fqdnTable;
    this.#fqdnTableBuilt = this.#fqdnTableVersion;
    const denied = this.#identitiesWithDenies(new Set(this.#fqdnIdOfKey.values()));
    const identities: [string, number][] = [];
    for (const [key, id] of this.#fqdnIdOfKey) {
      if (denied.has(id)) continue;
      const bar = key.indexOf('|');
      const prefix = key.slice(0, bar);
      const prefixId = prefix === '' ? RESERVED_IDENTITY.world : this.#cidrIdentities.get(prefix);
      if (prefixId !== undefined) identities.push([fqdnLearnKey(prefixId, key.slice(bar + 1).split('|')), id]);
    }
    const text = JSON.stringify(identities);
    if (text !== this.#fqdnTableText) {
      this.#fqdnTableText = text;
      this.#fqdnTable = { version: this.#fqdnTable.version + 1, identities };
    }
    return this.#fqdnTable;
  }

  /** Which of `ids` some endpoint's written policy holds a deny entry of (either direction). */
  #identitiesWithDenies(ids: ReadonlySet<number>): Set<number> {
    const out = new Set<number>();
    if (ids.size === 0) return out;
    for (const policy of this.#writtenPolicy.values()) {
      for (const e of policy.ingress.entries) if (e.verdict === 'deny' && ids.has(e.identity)) out.add(e.identity);
      for (const e of policy.egress.entries) if (e.verdict === 'deny' && ids.has(e.identity)) out.add(e.identity);
    }
    return out;
  }

  /**
   * After the agent learned an answer a proxy worker released having written some of its
   * addresses itself (`written`, src/proxyworker/prelearn.ts): an address the agent did not
   * select after all (the answer taught nothing: its endpoint went, its name was not cached) and
   * whose /32 it holds no entry of its own for loses the worker's entry. Returns how many did.
   */
  settlePrewritten(written: ReadonlyArray<{ ip: string; identity: number }>): number {
    let cleared = 0;
    for (const { ip } of written) {
      if (!isIPv4(ip) || this.#hostEntries.has(ipv4ToNumber(ip))) continue;
      this.#datapath.deleteIpcache(`${ip}/32`);
      cleared++;
    }
    return cleared;
  }

  /** A learned address's ipcache entry: its identity, or (no longer selected) what the rest of the ipcache says about it. */
  #setFqdnIpcache(ip: string, id: number | undefined): void {
    const n = ipv4ToNumber(ip);
    id ??= this.#cidrIdentities.get(`${ip}/32`);
    if (id !== undefined) {
      this.#datapath.upsertIpcache(`${ip}/32`, id);
      this.#hostEntries.set(n, id);
    } else {
      this.#datapath.deleteIpcache(`${ip}/32`);
      this.#hostEntries.delete(n);
    }
  }

  /** The longest policy prefix in the ipcache that holds an IPv4 address, or null. */
  #containingPrefix(ip: string): string | null {
    const n = ipv4ToNumber(ip);
    for (const p of this.#policyPrefixes) {
      const prefix = p.byBase.get((n & p.mask) >>> 0);
      if (prefix !== undefined) return prefix;
    }
    return null;
  }

  /** A learned IP's labels (fqdnIdentityLabels of its containing prefix) and their fqdnLabelsKey, memoised per key. */
  #fqdnLabels(ip: string, keys: readonly string[]): { key: string; labels: Label[] } {
    const prefix = this.#containingPrefix(ip);
    const key = fqdnLabelsKey(prefix, keys);
    let labels = this.#fqdnLabelMemo.get(key);
    if (!labels) {
      labels = fqdnIdentityLabels(prefix, keys);
      // Bounded: label sets are few in practice, but keys come from the names pods ask for.
      if (this.#fqdnLabelMemo.size >= 4096) this.#fqdnLabelMemo.clear();
      this.#fqdnLabelMemo.set(key, labels);
    }
    return { key, labels };
  }

  /** Removes an endpoint's map state (its links are gone or going). */
  forget(ep: Endpoint): void {
    this.#written.delete(ep.id);
    this.#writtenPolicy.delete(ep.id);
    this.#endpointWritten.delete(ep.id);
    this.#engine.forget(ep.id);
    this.#stableOf.delete(ep.id);
    this.#datapath.syncEndpointPolicy(ep.id, []);
    this.#datapath.deleteEndpoint(ep.ip);
    this.#datapath.deleteIpcache(`${ep.ip}/32`);
    this.#datapath.detachEndpoint(ep.ifname);
  }

  /**
   * `policy` with every entry equal by value to one the endpoint's written policy holds replaced
   * by that object (a direction with nothing changed is the written one itself). The engine
   * re-resolves all of a peer identity's entries when one policy about it changes (a new port
   * beside twenty unchanged ones), and entries are compared by reference downstream: the map
   * writes (#entryDiff) and the proxy workers' deltas (an entry patch instead of the whole policy
   * and its flow endpoint, structured-cloned to every worker) then cost what changed only. The
   * same resolved policy gives the same stable object on the next pass (upToDate stays true).
   */
  #stable(id: number, policy: EndpointPolicy): EndpointPolicy {
    const known = this.#stableOf.get(id);
    if (known?.from === policy) return known.to;
    const prev = this.#writtenPolicy.get(id) ?? known?.to;
    let to = policy;
    if (prev) {
      const ingress = stableDirection(prev.ingress, policy.ingress);
      const egress = stableDirection(prev.egress, policy.egress);
      if (ingress === prev.ingress && egress === prev.egress) to = prev;
      else if (ingress !== policy.ingress || egress !== policy.egress) to = { ingress, egress };
    }
    this.#stableOf.set(id, { from: policy, to });
    return to;
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
    const cidrKnown = this.#cidrKnown;
    this.#cidrKnown = new Map();
    for (const prefix of policyCidrs(policies)) {
      // A prefix's identity as the last pass allocated it, while the allocator still holds it.
      let known = cidrKnown.get(prefix);
      if (!known || this.#identities.labelsOf(known.id) !== known.labels) {
        const id = this.#identities.allocate(cidrIdentityLabels(prefix), 'local');
        known = { id, labels: this.#identities.labelsOf(id)! };
      }
      this.#cidrKnown.set(prefix, known);
      byId.set(known.id, { id: known.id, labels: known.labels });
      this.#cidrIdentities.set(prefix, known.id);
    }
    // The learned IPs' labels follow the policy prefixes. After the first pass each keeps the
    // identity the maps hold through the pass; the ones the new prefixes relabel move after it
    // (#relabelFqdnIps). The first pass gives each its identity at once: nothing in this process
    // has written one, and the local identities of learned addresses no address holds (an
    // earlier run's, of an earlier labelling) are given back.
    this.#policyPrefixes = prefixIndex(this.#cidrIdentities.keys());
    this.#fqdnLabelMemo.clear();
    const first = this.#revision === 0;
    this.#fqdnTableVersion++;
    if (first) {
      this.#labelledPrefixes = prefixesKey(this.#cidrIdentities.keys());
      this.#fqdnIdRefs.clear();
      this.#fqdnIdentities.clear();
      this.#fqdnLabelsKey.clear();
      this.#fqdnIdOfKey.clear();
      this.#fqdnKeyOfId.clear();
    }
    // The maps are written by the pass itself: what #moveFqdnIp records for #commitFqdnMoves is not needed.
    const unused = newMoves();
    for (const [ip, keys] of this.#fqdnIps) {
      const held = this.#fqdnIdentities.get(ip);
      // Kept, unless the allocator no longer has it: then allocated as for an answer.
      if (held === undefined || !this.#identities.labelsOf(held)) this.#moveFqdnIp(ip, keys, unused);
      const id = this.#fqdnIdentities.get(ip)!;
      byId.set(id, { id, labels: this.#identities.labelsOf(id)! });
    }
    if (first) {
      for (const { id, labels } of this.#identities.entries()) {
        if (id > LOCAL_IDENTITY_SCOPE && !this.#fqdnIdRefs.has(id) && labels.some((l) => l.source === 'fqdn')) this.#identities.release(id);
      }
    }
    return [...byId.values()].sort((a, b) => a.id - b.id);
  }

  /** The map entries last written for an endpoint, by peer identity (empty when none are known). */
  #writtenEntries(id: number): Map<number, PolicyMapEntry[]> {
    let w = this.#written.get(id);
    if (!w) {
      const p = this.#writtenPolicy.get(id);
      w = new Map();
      for (const e of p ? this.#mapEntries(p) : []) {
        const list = w.get(e.identity);
        if (list) list.push(e);
        else w.set(e.identity, [e]);
      }
      this.#written.set(id, w);
    }
    return w;
  }

  /** Entries of `next` that `prev` does not hold (as objects), and entries of `prev` that `next` does not. */
  #entryDiff(prev: EndpointPolicy, next: EndpointPolicy): [PolicyMapEntry[], PolicyMapEntry[]] {
    const upserts: PolicyMapEntry[] = [];
    const deletes: PolicyMapEntry[] = [];
    for (const egress of [false, true]) {
      const a = (egress ? prev.egress : prev.ingress).entries;
      const b = (egress ? next.egress : next.ingress).entries;
      if (a === b) continue;
      const before = new Set(a);
      const after = new Set(b);
      for (const e of b) if (!before.has(e)) upserts.push(this.#mapEntry(egress, e));
      for (const e of a) if (!after.has(e)) deletes.push(this.#mapEntry(egress, e));
    }
    return [upserts, deletes];
  }

  #mapEntry(egress: boolean, e: MapEntry): PolicyMapEntry {
    return {
      endpointId: 0,
      egress,
      identity: e.identity,
      protocol: e.protocol,
      port: e.port,
      portPrefixLen: e.portPrefixLen,
      deny: e.verdict === 'deny',
      ...(e.dropReason !== undefined ? { dropReason: e.dropReason } : {}),
      proxyPort: e.verdict === 'redirect' ? (e.l7?.kind === 'dns' ? this.#ports.dns : e.l7?.kind === 'tls' ? this.#ports.tls : this.#ports.http) : 0,
    };
  }

  #mapEntries(policy: EndpointPolicy): PolicyMapEntry[] {
    const out: PolicyMapEntry[] = [];
    for (const e of policy.ingress.entries) out.push(this.#mapEntry(false, e));
    for (const e of policy.egress.entries) out.push(this.#mapEntry(true, e));
    return out;
  }
}

/** Ready endpoints alike for applyFqdn (same identity, named ports and visibility: replicas), by endpoint object (an upsert makes a new one). */
const kinds = new WeakMap<Endpoint, { identity: number; kind: string }>();

function endpointKind(ep: Endpoint): string {
  const k = kinds.get(ep);
  if (k && k.identity === ep.identity) return k.kind;
  const kind = `${ep.identity}|${ep.namedPorts ? JSON.stringify(ep.namedPorts) : ''}|${ep.visibility?.key ?? ''}`;
  kinds.set(ep, { identity: ep.identity, kind });
  return kind;
}

/** Label keys sorted, each once: as given when they already are (the name manager's are). */
function sortedKeys(keys: readonly string[]): readonly string[] {
  for (let i = 1; i < keys.length; i++) if (!(keys[i - 1]! < keys[i]!)) return [...new Set(keys)].sort();
  return keys;
}

/**
 * `now` (an endpoint's entries in one direction) with the fresh identities' entries `add`:
 * appended as they are when `now` holds none of the fresh or retired identities (`stale` false),
 * so the lookups of the in-process proxy index only those (appendEntries).
 */
function mergeFresh(now: DirectionPolicy, add: readonly MapEntry[], stale: boolean, retired: ReadonlySet<number> | null, fresh: ReadonlySet<number>): DirectionPolicy {
  if (!stale && add.length === 0) return now;
  if (!stale) return { enforced: now.enforced, entries: appendEntries(now.entries, add) };
  const kept = now.entries.filter((e) => !retired?.has(e.identity) && !fresh.has(e.identity));
  return { enforced: now.enforced, entries: add.length === 0 ? kept : kept.concat(add) };
}

/**
 * `next` with each entry equal by value (all fields, L7 rules and rule references included) to
 * one of `prev`'s replaced by `prev`'s object; `prev` itself when the entries are the same list.
 * O(entries of both).
 */
function stableDirection(prev: DirectionPolicy, next: DirectionPolicy): DirectionPolicy {
  if (prev === next || prev.entries === next.entries) return prev.enforced === next.enforced ? prev : next;
  if (prev.entries.length === 0 || next.entries.length === 0) return next;
  const byValue = new Map<string, MapEntry>();
  for (const e of prev.entries) byValue.set(JSON.stringify(e), e);
  let reused = 0;
  const entries = next.entries.map((e) => {
    const old = byValue.get(JSON.stringify(e));
    if (old === undefined) return e;
    reused++;
    return old;
  });
  if (reused === 0) return next;
  const same = prev.enforced === next.enforced && entries.length === prev.entries.length && entries.every((e, i) => e === prev.entries[i]);
  return same ? prev : { enforced: next.enforced, entries };
}

/** What #moveFqdnIp decided for a batch of learned addresses, for #commitFqdnMoves. */
interface FqdnMoves {
  readonly changed: { ip: string; newId: number | undefined }[];
  readonly fresh: Identity[];
  readonly freshIds: Set<number>;
  /** Identities an address left: retired if none holds them at the end. */
  readonly left: number[];
}

function newMoves(): FqdnMoves {
  return { changed: [], fresh: [], freshIds: new Set(), left: [] };
}

/**
 * The labels of a learned IPv4 address's identity, as Cilium (1.16+, CFP-28427) gives FQDN-selected
 * IPs: those of `prefix`, the longest policy prefix (or address) that holds it (`cidrIdentityLabels`:
 * its `cidr:` labels and `reserved:world`), or `reserved:world` alone when none does; then one
 * `fqdn:<selector key>` label per selector, in the order given.
 */
export function fqdnIdentityLabels(prefix: string | null, labelKeys: readonly string[]): Label[] {
  const base = prefix === null ? worldLabels(4) : cidrIdentityLabels(prefix);
  for (const key of labelKeys) base.push({ source: 'fqdn', key, value: '' });
  return base;
}

/** The IPv4 prefixes, sorted and joined: equal for the same set. */
function prefixesKey(prefixes: Iterable<string>): string {
  return [...prefixes].filter((p) => !p.includes(':')).sort().join(',');
}

/** IPv4 prefixes by length, longest first, each length a map from masked base address to the prefix's text. */
function prefixIndex(prefixes: Iterable<string>): { bits: number; mask: number; byBase: Map<number, string> }[] {
  const byBits = new Map<number, { bits: number; mask: number; byBase: Map<number, string> }>();
  for (const prefix of prefixes) {
    if (prefix.includes(':')) continue; // the ipcache is IPv4-only
    const p = parseIpv4Prefix(prefix);
    let level = byBits.get(p.bits);
    if (!level) byBits.set(p.bits, (level = { bits: p.bits, mask: p.mask, byBase: new Map() }));
    level.byBase.set(p.base, prefix);
  }
  return [...byBits.values()].sort((a, b) => b.bits - a.bits);
}
