/**
 * The DNS cache of the FQDN subsystem: what each endpoint learned (name → IPs, each with its
 * absolute expiry) and, across endpoints, which names map to an IP.
 *
 * Semantics from Cilium `pkg/fqdn/cache.go` (DNSCache, DNSZombieMappings):
 * - TTL = max(answer TTL, `--tofqdns-min-ttl`); per IP the latest-expiring lookup is kept.
 * - Per endpoint and name at most `--tofqdns-endpoint-max-ip-per-hostname` IPs; past it the
 *   earliest-expiring IPs are evicted (Cilium's `cleanupOverLimitEntries` order).
 * - An expired or evicted IP becomes a *zombie*: it stays selected until a GC finds no live
 *   connection to it (the injected `isAlive`, Cilium's CT GC marks). A zombie also lives while
 *   another zombie of one of its names is alive; alive zombies are capped per name by the per-host
 *   limit and per endpoint by `--tofqdns-max-deferred-connection-deletes`, evicting first the ones
 *   never seen alive, then the earliest scheduled, then those with the fewest names.
 * - A new lookup of (name, IP) takes the IP out of the zombies for that name (`ForceExpireByNameIP`).
 *
 * Everything is bounded: IPs per name, names per endpoint (Membrane's bound, Cilium has none),
 * zombies per endpoint (at most twice the cap between two GCs). Time comes from the injected
 * clock (ms since the epoch); nothing here does I/O.
 */
import { membraneError } from '../errors/index.js';
import { canonicalIp, compareIps } from './ip.js';
import { MAX_NAME_LENGTH, normalizeName } from './match.js';
import {
  DEFAULT_IDLE_CONNECTION_GRACE_PERIOD_MS,
  DEFAULT_MAX_DEFERRED_CONNECTION_DELETES,
  DEFAULT_MAX_IPS_PER_HOSTNAME,
  DEFAULT_MAX_NAMES_PER_ENDPOINT,
  DEFAULT_MIN_TTL_SECONDS,
} from './defaults.js';

export interface DnsCacheOptions {
  /** `--tofqdns-min-ttl`, seconds (default 0). */
  readonly minTtlSeconds?: number;
  /** `--tofqdns-endpoint-max-ip-per-hostname` (default 1000; 0 = no limit). */
  readonly maxIpsPerHostname?: number;
  /** `--tofqdns-max-deferred-connection-deletes`, per endpoint (default 10000; 0 = no zombies). */
  readonly maxDeferredConnectionDeletes?: number;
  /** Names kept per endpoint (default 50000). */
  readonly maxNamesPerEndpoint?: number;
  /** `--tofqdns-idle-connection-grace-period`, ms (default 0). */
  readonly idleConnectionGracePeriodMs?: number;
  /** Clock, ms since the epoch (default `Date.now`). */
  readonly now?: () => number;
}

/** One row of `membrane fqdn cache list` (the fields of Cilium's `models.DNSLookup`). */
export interface CacheEntry {
  readonly endpointId: number;
  /** `lookup`: learned from a DNS answer; `connection`: expired, kept while a connection may use it. */
  readonly source: 'lookup' | 'connection';
  /** Lower-case, trailing dot. */
  readonly fqdn: string;
  /** Seconds the answer was cached for (after `--tofqdns-min-ttl`); 0 for a zombie. */
  readonly ttl: number;
  /** ms since the epoch: when the answer was learned (a zombie: when last seen alive, else 0). */
  readonly lookupTime: number;
  /** ms since the epoch: when the lookup expires (a zombie: when it was scheduled for deletion). */
  readonly expirationTime: number;
  /** Sorted. */
  readonly ips: readonly string[];
}

/** What a cache change did: the IPs whose set of names changed (their selection may change). */
export interface CacheChange {
  readonly changedIps: ReadonlySet<string>;
}

interface IpRecord {
  readonly lookupTime: number;
  readonly expiry: number;
  readonly ttl: number;
}

interface Zombie {
  readonly ip: string;
  readonly names: Set<string>;
  deletePendingAt: number;
  aliveAt: number;
}

interface EndpointState {
  readonly names: Map<string, Map<string, IpRecord>>;
  readonly zombies: Map<string, Zombie>;
}

/** JSON form (Cilium's field names for lookups and zombies; times RFC 3339). */
export interface DnsCacheSnapshot {
  readonly version: 1;
  readonly endpoints: ReadonlyArray<{
    readonly id: number;
    readonly lookups: ReadonlyArray<{ fqdn: string; ips: string[]; ttl: number; 'lookup-time': string; 'expiration-time': string }>;
    readonly zombies: ReadonlyArray<{ ip: string; names: string[]; 'delete-pending-at': string; 'alive-at'?: string }>;
  }>;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A name's IPs grouped by lookup (same lookup time, expiry and TTL: one answer), as Cilium lists them. */
function lookupGroups(ips: ReadonlyMap<string, IpRecord>): Iterable<{ r: IpRecord; ips: string[] }> {
  const groups = new Map<string, { r: IpRecord; ips: string[] }>();
  for (const [ip, r] of ips) {
    const k = `${r.lookupTime}/${r.expiry}/${r.ttl}`;
    const g = groups.get(k);
    if (g) g.ips.push(ip);
    else groups.set(k, { r, ips: [ip] });
  }
  return groups.values();
}

export class DnsCache {
  readonly minTtlSeconds: number;
  readonly maxIpsPerHostname: number;
  readonly maxZombies: number;
  readonly maxNamesPerEndpoint: number;
  readonly gracePeriodMs: number;
  private readonly now: () => number;
  private endpoints = new Map<number, EndpointState>();
  /** ip → name → how many (endpoint lookup | endpoint zombie) hold the pair. */
  private refs = new Map<string, Map<string, number>>();

  constructor(opts: DnsCacheOptions = {}) {
    this.minTtlSeconds = wholeOr(opts.minTtlSeconds, DEFAULT_MIN_TTL_SECONDS);
    this.maxIpsPerHostname = wholeOr(opts.maxIpsPerHostname, DEFAULT_MAX_IPS_PER_HOSTNAME);
    this.maxZombies = wholeOr(opts.maxDeferredConnectionDeletes, DEFAULT_MAX_DEFERRED_CONNECTION_DELETES);
    this.maxNamesPerEndpoint = Math.max(1, wholeOr(opts.maxNamesPerEndpoint, DEFAULT_MAX_NAMES_PER_ENDPOINT));
    this.gracePeriodMs = wholeOr(opts.idleConnectionGracePeriodMs, DEFAULT_IDLE_CONNECTION_GRACE_PERIOD_MS);
    this.now = opts.now ?? Date.now;
  }

  /**
   * Records an answer: `name` (any case, dot optional) resolved to `ips` for `endpointId`, valid for
   * `ttlSeconds` from now, or from `at` (ms since the epoch, when the answer came; never later than
   * now). Invalid IPs and over-long names are ignored (a well-formed answer has neither). Returns
   * the IPs whose names changed: new ones, and ones evicted by the bounds.
   */
  update(endpointId: number, name: string, ips: readonly string[], ttlSeconds: number, at?: number): CacheChange {
    const changed = new Set<string>();
    const fqdn = normalizeName(name);
    if (fqdn.length > MAX_NAME_LENGTH || fqdn === '.') return { changedIps: changed };
    const addrs = [...new Set(ips.map(canonicalIp).filter((ip): ip is string => ip !== null))];
    if (addrs.length === 0) return { changedIps: changed };
    const ttl = Math.max(Number.isFinite(ttlSeconds) && ttlSeconds > 0 ? Math.floor(ttlSeconds) : 0, this.minTtlSeconds);
    const now = at !== undefined && Number.isFinite(at) ? Math.min(at, this.now()) : this.now();
    const rec: IpRecord = { lookupTime: now, expiry: now + ttl * 1000, ttl };
    const st = this.endpoint(endpointId);
    for (const ip of addrs) this.unzombie(st, ip, fqdn, changed);
    this.insert(st, fqdn, addrs, rec, changed);
    this.trimZombies(st, 2 * this.maxZombies, changed);
    return { changedIps: changed };
  }

  /** Unexpired IPs of `name` (sorted), for one endpoint or across all. */
  lookupName(name: string, endpointId?: number): string[] {
    const fqdn = normalizeName(name);
    const now = this.now();
    const out = new Set<string>();
    for (const [id, st] of this.endpoints) {
      if (endpointId !== undefined && id !== endpointId) continue;
      for (const [ip, r] of st.names.get(fqdn) ?? []) if (now <= r.expiry) out.add(ip);
    }
    return [...out].sort(compareIps);
  }

  /**
   * Names whose unexpired lookups returned `ip` (Cilium's `LookupIP`), on one endpoint (its
   * `DNSHistory`, which Hubble's `GetNamesOf` reads) or on any. Sorted.
   */
  lookupIp(ip: string, endpointId?: number): string[] {
    const addr = canonicalIp(ip);
    if (addr === null) return [];
    const names = this.refs.get(addr);
    if (names === undefined) return [];
    const now = this.now();
    const out: string[] = [];
    const only = endpointId === undefined ? undefined : this.endpoints.get(endpointId);
    if (endpointId !== undefined && only === undefined) return [];
    for (const name of names.keys()) {
      for (const st of only ? [only] : this.endpoints.values()) {
        const r = st.names.get(name)?.get(addr);
        if (r && now <= r.expiry) {
          out.push(name);
          break;
        }
      }
    }
    return out.sort(byText);
  }

  /**
   * Every name that currently keeps `ip` selected: lookups (also expired ones a GC has not yet
   * collected) and zombies, on any endpoint. Sorted.
   */
  namesOfIp(ip: string): string[] {
    const addr = canonicalIp(ip);
    return addr === null ? [] : [...(this.refs.get(addr)?.keys() ?? [])].sort(byText);
  }

  /** Every IP some name keeps selected. */
  ips(): IterableIterator<string> {
    return this.refs.keys();
  }

  /**
   * Collects expired lookups (they become zombies) and dead zombies: a zombie is dead when
   * `isAlive(ip)` is false, its grace period is over and no other zombie of its names is alive,
   * or when the bounds evict it. Returns the IPs whose names changed.
   */
  gc(isAlive: (ip: string) => boolean): CacheChange {
    const changed = new Set<string>();
    const now = this.now();
    for (const [id, st] of this.endpoints) {
      for (const [name, ips] of st.names) {
        for (const [ip, r] of ips) {
          if (now <= r.expiry) continue;
          ips.delete(ip);
          this.upsertZombie(st, ip, name, r.expiry, changed);
          this.unref(ip, name, changed);
        }
        if (ips.size === 0) st.names.delete(name);
      }
      this.collectZombies(st, isAlive, now, changed);
      if (st.names.size === 0 && st.zombies.size === 0) this.endpoints.delete(id);
    }
    return { changedIps: changed };
  }

  /**
   * Forgets everything endpoint `endpointId` learned, lookups and zombies: the endpoint is gone
   * (Cilium keeps DNS history in the endpoint, so it goes with it), and a later endpoint that gets
   * the same id starts with none. Returns the IPs whose names changed.
   */
  forgetEndpoint(endpointId: number): CacheChange {
    const changed = new Set<string>();
    const st = this.endpoints.get(endpointId);
    if (!st) return { changedIps: changed };
    for (const [name, ips] of st.names) for (const ip of ips.keys()) this.unref(ip, name, changed);
    for (const z of [...st.zombies.values()]) this.dropZombie(st, z, changed);
    this.endpoints.delete(endpointId);
    return { changedIps: changed };
  }

  /** Rows for `membrane fqdn cache list`, by endpoint, name, source. */
  entries(filter: { endpointId?: number | undefined; name?: string | undefined } = {}): CacheEntry[] {
    const want = filter.name === undefined ? undefined : normalizeName(filter.name);
    const out: CacheEntry[] = [];
    for (const [id, st] of this.endpoints) {
      if (filter.endpointId !== undefined && id !== filter.endpointId) continue;
      for (const [name, ips] of st.names) {
        if (want !== undefined && name !== want) continue;
        for (const { r, ips: list } of lookupGroups(ips)) {
          out.push({ endpointId: id, source: 'lookup', fqdn: name, ttl: r.ttl, lookupTime: r.lookupTime, expirationTime: r.expiry, ips: list.sort(compareIps) });
        }
      }
      for (const z of st.zombies.values()) {
        for (const name of z.names) {
          if (want !== undefined && name !== want) continue;
          out.push({ endpointId: id, source: 'connection', fqdn: name, ttl: 0, lookupTime: z.aliveAt, expirationTime: z.deletePendingAt, ips: [z.ip] });
        }
      }
    }
    return out.sort(
      (a, b) =>
        a.endpointId - b.endpointId ||
        byText(a.fqdn, b.fqdn) ||
        byText(a.source, b.source) ||
        a.expirationTime - b.expirationTime ||
        compareIps(a.ips[0] ?? '', b.ips[0] ?? ''),
    );
  }

  /** Names (per endpoint, summed), distinct selected IPs, zombies (summed over endpoints). */
  counts(): { names: number; ips: number; zombies: number } {
    let names = 0;
    let zombies = 0;
    for (const st of this.endpoints.values()) {
      names += st.names.size;
      zombies += st.zombies.size;
    }
    return { names, ips: this.refs.size, zombies };
  }

  /** Everything needed to rebuild the cache after a restart; times are absolute. */
  snapshot(): DnsCacheSnapshot {
    const iso = (ms: number): string => new Date(ms).toISOString();
    const endpoints = [...this.endpoints.entries()]
      .sort(([a], [b]) => a - b)
      .map(([id]) => ({
        id,
        lookups: this.entries({ endpointId: id })
          .filter((e) => e.source === 'lookup')
          .map((e) => ({ fqdn: e.fqdn, ips: [...e.ips], ttl: e.ttl, 'lookup-time': iso(e.lookupTime), 'expiration-time': iso(e.expirationTime) })),
        zombies: [...(this.endpoints.get(id)?.zombies.values() ?? [])].map((z) => ({
          ip: z.ip,
          names: [...z.names].sort(byText),
          'delete-pending-at': iso(z.deletePendingAt),
          ...(z.aliveAt ? { 'alive-at': iso(z.aliveAt) } : {}),
        })),
      }));
    return { version: 1, endpoints };
  }

  /**
   * `snapshot()`'s document as JSON text, built `sliceSize` names at a time with `pause()` awaited
   * between slices, so a large cache never holds the event loop for its whole size (the agent's
   * timed save: DNS answers wait on that loop). Not a point-in-time copy: each name's lookups are
   * as they were when its slice ran; names gone by then are left out, names added after the start
   * wait for the next save. Lookups and zombies in no particular order (`restore` takes any).
   */
  async snapshotJson(pause: () => Promise<void>, sliceSize = 512): Promise<string> {
    const iso = (ms: number): string => new Date(ms).toISOString();
    const endpoints: string[] = [];
    let done = 0;
    for (const id of [...this.endpoints.keys()].sort((a, b) => a - b)) {
      const lookups: string[] = [];
      const zombies: string[] = [];
      const names = [...(this.endpoints.get(id)?.names.keys() ?? [])];
      for (const name of names) {
        if (++done % sliceSize === 0) await pause();
        const ips = this.endpoints.get(id)?.names.get(name);
        if (!ips) continue;
        for (const { r, ips: list } of lookupGroups(ips)) {
          lookups.push(JSON.stringify({ fqdn: name, ips: list, ttl: r.ttl, 'lookup-time': iso(r.lookupTime), 'expiration-time': iso(r.expiry) }));
        }
      }
      for (const z of [...(this.endpoints.get(id)?.zombies.values() ?? [])]) {
        if (++done % sliceSize === 0) await pause();
        zombies.push(
          JSON.stringify({ ip: z.ip, names: [...z.names], 'delete-pending-at': iso(z.deletePendingAt), ...(z.aliveAt ? { 'alive-at': iso(z.aliveAt) } : {}) }),
        );
      }
      endpoints.push(`{"id":${id},"lookups":[${lookups.join(',')}],"zombies":[${zombies.join(',')}]}`);
    }
    return `{"version":1,"endpoints":[${endpoints.join(',')}]}`;
  }

  /**
   * Replaces the contents with a snapshot. Lookups already expired become zombies (the next GC
   * keeps them only while a connection uses them). The whole snapshot is checked first: on any
   * fault this throws `MEMBRANE_ERR_STATE` naming the field, and the cache is unchanged.
   */
  restore(raw: unknown): void {
    const snap = parseSnapshot(raw);
    const old = { endpoints: this.endpoints, refs: this.refs };
    this.endpoints = new Map();
    this.refs = new Map();
    try {
      const now = this.now();
      const sink = new Set<string>();
      for (const ep of snap.endpoints) {
        const st = this.endpoint(ep.id);
        for (const l of ep.lookups) {
          const rec: IpRecord = { lookupTime: l.lookupTime, expiry: l.expiry, ttl: l.ttl };
          if (now > l.expiry) for (const ip of l.ips) this.upsertZombie(st, ip, l.fqdn, l.expiry, sink);
          else this.insert(st, l.fqdn, l.ips, rec, sink);
        }
        for (const z of ep.zombies) {
          for (const name of z.names) this.upsertZombie(st, z.ip, name, z.deletePendingAt, sink);
          const zz = st.zombies.get(z.ip);
          if (zz) zz.aliveAt = Math.max(zz.aliveAt, z.aliveAt);
        }
        this.trimZombies(st, this.maxZombies, sink);
        if (st.names.size === 0 && st.zombies.size === 0) this.endpoints.delete(ep.id);
      }
    } catch (err) {
      this.endpoints = old.endpoints;
      this.refs = old.refs;
      throw err;
    }
  }

  private endpoint(id: number): EndpointState {
    let st = this.endpoints.get(id);
    if (!st) {
      st = { names: new Map(), zombies: new Map() };
      this.endpoints.set(id, st);
    }
    return st;
  }

  /** Adds (name, ips) with `rec` to the endpoint, keeping the later expiry per IP, then applies the bounds. */
  private insert(st: EndpointState, name: string, ips: readonly string[], rec: IpRecord, changed: Set<string>): void {
    let entries = st.names.get(name);
    if (!entries) {
      if (st.names.size >= this.maxNamesPerEndpoint) this.evictNames(st, changed);
      entries = new Map();
      st.names.set(name, entries);
    }
    for (const ip of ips) {
      const old = entries.get(ip);
      if (!old) {
        entries.set(ip, rec);
        this.ref(ip, name, changed);
      } else if (rec.expiry > old.expiry) {
        entries.set(ip, rec);
      }
    }
    const over = this.maxIpsPerHostname > 0 ? entries.size - this.maxIpsPerHostname : 0;
    if (over > 0) {
      const now = this.now();
      // Stable sort: among equal expiries the IP learned first goes first.
      const oldest = [...entries].sort(([, a], [, b]) => a.expiry - b.expiry || a.lookupTime - b.lookupTime).slice(0, over);
      for (const [ip] of oldest) {
        entries.delete(ip);
        this.upsertZombie(st, ip, name, now, changed);
        this.unref(ip, name, changed);
      }
    }
  }

  /** Makes room for a new name: the tenth of the names that expire first leave (IPs to zombies). */
  private evictNames(st: EndpointState, changed: Set<string>): void {
    const now = this.now();
    const lastExpiry = (ips: Map<string, IpRecord>): number => Math.max(...[...ips.values()].map((r) => r.expiry));
    const victims = [...st.names]
      .map(([name, ips]) => ({ name, ips, expiry: lastExpiry(ips) }))
      .sort((a, b) => a.expiry - b.expiry || byText(a.name, b.name))
      .slice(0, Math.max(1, Math.ceil(st.names.size / 10)));
    for (const v of victims) {
      st.names.delete(v.name);
      for (const ip of v.ips.keys()) {
        this.upsertZombie(st, ip, v.name, now, changed);
        this.unref(ip, v.name, changed);
      }
    }
  }

  private upsertZombie(st: EndpointState, ip: string, name: string, at: number, changed: Set<string>): void {
    if (this.maxZombies === 0) return;
    let z = st.zombies.get(ip);
    if (!z) {
      z = { ip, names: new Set(), deletePendingAt: at, aliveAt: 0 };
      st.zombies.set(ip, z);
    } else if (at > z.deletePendingAt) {
      z.deletePendingAt = at;
    }
    if (!z.names.has(name)) {
      z.names.add(name);
      this.ref(ip, name, changed);
    }
  }

  /** A fresh lookup of (name, ip): the IP is no longer pending deletion for that name. */
  private unzombie(st: EndpointState, ip: string, name: string, changed: Set<string>): void {
    const z = st.zombies.get(ip);
    if (!z?.names.delete(name)) return;
    this.unref(ip, name, changed);
    if (z.names.size === 0) st.zombies.delete(ip);
  }

  private dropZombie(st: EndpointState, z: Zombie, changed: Set<string>): void {
    if (st.zombies.get(z.ip) !== z) return;
    st.zombies.delete(z.ip);
    for (const name of z.names) this.unref(z.ip, name, changed);
  }

  /** Cilium's `DNSZombieMappings.GC` with `isAlive` in place of the CT GC marks. */
  private collectZombies(st: EndpointState, isAlive: (ip: string) => boolean, now: number, changed: Set<string>): void {
    const connAlive = new Set<Zombie>();
    for (const z of st.zombies.values()) {
      if (isAlive(z.ip)) {
        z.aliveAt = now;
        connAlive.add(z);
      } else if (now < z.deletePendingAt + this.gracePeriodMs) {
        connAlive.add(z);
      }
    }
    // A name is alive while one of its zombies has a live connection; its other zombies live too.
    const aliveNames = new Map<string, Zombie[]>();
    for (const z of connAlive) {
      for (const n of z.names) {
        const group = aliveNames.get(n);
        if (group) group.push(z);
        else aliveNames.set(n, [z]);
      }
    }
    for (const z of st.zombies.values()) {
      if (connAlive.has(z)) continue;
      for (const n of z.names) aliveNames.get(n)?.push(z);
    }
    const limit = this.maxIpsPerHostname;
    const alive = new Set<Zombie>();
    const dead = new Set<Zombie>();
    for (const z of st.zombies.values()) {
      let zAlive = connAlive.has(z);
      let overLimit = false;
      for (const n of z.names) {
        const group = aliveNames.get(n);
        if (!group) continue;
        zAlive = true;
        if (limit > 0 && group.length > limit) overLimit = true;
      }
      if (overLimit) continue;
      (zAlive ? alive : dead).add(z);
    }
    if (limit > 0) {
      const possible = new Set<Zombie>();
      const evicted = new Set<Zombie>();
      for (const group of aliveNames.values()) {
        if (group.length <= limit) continue;
        const sorted = [...group].sort(zombieOrder);
        const over = sorted.length - limit;
        for (const z of sorted.slice(0, over)) evicted.add(z);
        for (const z of sorted.slice(over)) possible.add(z);
      }
      for (const z of evicted) {
        dead.add(z);
        alive.delete(z);
      }
      for (const z of possible) if (!evicted.has(z)) alive.add(z);
    }
    if (alive.size > this.maxZombies) {
      for (const z of [...alive].sort(zombieOrder).slice(0, alive.size - this.maxZombies)) dead.add(z);
    }
    for (const z of dead) this.dropZombie(st, z, changed);
  }

  /** Keeps at most `max` zombies on the endpoint, evicting in Cilium's order. */
  private trimZombies(st: EndpointState, max: number, changed: Set<string>): void {
    if (st.zombies.size <= max) return;
    const keep = Math.min(max, this.maxZombies);
    for (const z of [...st.zombies.values()].sort(zombieOrder).slice(0, st.zombies.size - keep)) this.dropZombie(st, z, changed);
  }

  private ref(ip: string, name: string, changed: Set<string>): void {
    let names = this.refs.get(ip);
    if (!names) {
      names = new Map();
      this.refs.set(ip, names);
    }
    const n = names.get(name) ?? 0;
    names.set(name, n + 1);
    if (n === 0) changed.add(ip);
  }

  private unref(ip: string, name: string, changed: Set<string>): void {
    const names = this.refs.get(ip);
    const n = names?.get(name);
    if (!names || n === undefined) return;
    if (n > 1) {
      names.set(name, n - 1);
      return;
    }
    names.delete(name);
    changed.add(ip);
    if (names.size === 0) this.refs.delete(ip);
  }
}

/** Eviction order of Cilium's `sortZombieMappingSlice`: never seen alive, then earliest scheduled, then fewest names. */
function zombieOrder(a: Zombie, b: Zombie): number {
  return a.aliveAt - b.aliveAt || a.deletePendingAt - b.deletePendingAt || a.names.size - b.names.size || byText(a.ip, b.ip);
}

function wholeOr(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? Math.floor(v) : dflt;
}

interface ParsedSnapshot {
  endpoints: Array<{
    id: number;
    lookups: Array<{ fqdn: string; ips: string[]; ttl: number; lookupTime: number; expiry: number }>;
    zombies: Array<{ ip: string; names: string[]; deletePendingAt: number; aliveAt: number }>;
  }>;
}

/** Strict reader of {@link DnsCacheSnapshot}: every fault names its path. */
function parseSnapshot(raw: unknown): ParsedSnapshot {
  const fail = (path: string, what: string): never => {
    throw membraneError('MEMBRANE_ERR_STATE', `FQDN cache snapshot: ${path}: ${what}`, { details: { path } });
  };
  const obj = (v: unknown, path: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(path, 'expected an object');
  const arr = (v: unknown, path: string): unknown[] => (Array.isArray(v) ? v : fail(path, 'expected an array'));
  const time = (v: unknown, path: string): number => {
    const t = typeof v === 'string' ? Date.parse(v) : NaN;
    return Number.isFinite(t) ? t : fail(path, 'expected an RFC 3339 time');
  };
  const ip = (v: unknown, path: string): string => (typeof v === 'string' ? canonicalIp(v) : null) ?? fail(path, 'expected an IP address');
  const name = (v: unknown, path: string): string => {
    const n = typeof v === 'string' ? normalizeName(v) : '';
    return n.length > 1 && n.length <= MAX_NAME_LENGTH ? n : fail(path, 'expected a DNS name');
  };
  const s = obj(raw, '$');
  if (s.version !== 1) fail('version', `unsupported version ${JSON.stringify(s.version)} (expected 1)`);
  const seen = new Set<number>();
  return {
    endpoints: arr(s.endpoints, 'endpoints').map((e, i) => {
      const p = `endpoints[${i}]`;
      const o = obj(e, p);
      const id = Number.isSafeInteger(o.id) && (o.id as number) >= 0 ? (o.id as number) : fail(`${p}.id`, 'expected an endpoint id');
      if (seen.has(id)) fail(`${p}.id`, `endpoint ${id} appears twice`);
      seen.add(id);
      return {
        id,
        lookups: arr(o.lookups, `${p}.lookups`).map((l, j) => {
          const q = `${p}.lookups[${j}]`;
          const lo = obj(l, q);
          const ttl = Number.isSafeInteger(lo.ttl) && (lo.ttl as number) >= 0 ? (lo.ttl as number) : fail(`${q}.ttl`, 'expected whole seconds');
          return {
            fqdn: name(lo.fqdn, `${q}.fqdn`),
            ips: arr(lo.ips, `${q}.ips`).map((x, k) => ip(x, `${q}.ips[${k}]`)),
            ttl,
            lookupTime: time(lo['lookup-time'], `${q}.lookup-time`),
            expiry: time(lo['expiration-time'], `${q}.expiration-time`),
          };
        }),
        zombies: arr(o.zombies, `${p}.zombies`).map((z, j) => {
          const q = `${p}.zombies[${j}]`;
          const zo = obj(z, q);
          return {
            ip: ip(zo.ip, `${q}.ip`),
            names: arr(zo.names, `${q}.names`).map((x, k) => name(x, `${q}.names[${k}]`)),
            deletePendingAt: time(zo['delete-pending-at'], `${q}.delete-pending-at`),
            aliveAt: zo['alive-at'] === undefined ? 0 : time(zo['alive-at'], `${q}.alive-at`),
          };
        }),
      };
    }),
  };
}
