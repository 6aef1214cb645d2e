/**
 * The name manager: turns allowed DNS answers into fqdn labels of IPs, and holds each answer
 * until the datapath has them ("FQDN ordering" in ../shared/DESIGN.md; Cilium
 * `pkg/fqdn/namemanager/manager.go` UpdateGenerateDNS, `pkg/fqdn/messagehandler`).
 *
 * Per answer: update the endpoint's and the global cache (TTL = max(answer TTL, min-ttl)) →
 * for each IP whose names changed, the union of the label keys of the selectors matching its
 * names → push only the IPs whose keys changed (O(change), one `setIpSelectors` call) → resolve
 * when every IP of the answer is acknowledged by the datapath, or after `maxDelayMs` (then a
 * warning with Cilium's text and `stats().timeouts` + 1; the push goes on).
 *
 * Cilium serialises answers per name with a lock; here cache updates are synchronous, and an
 * answer whose IPs are still being pushed by an earlier answer waits for that push, so no answer
 * is released before the datapath holds its IPs (or the delay passed).
 */
import type { Logger } from 'pino';
import type { FqdnSelectorInfo } from '../policy/index.js';
import { membraneError } from '../errors/index.js';
import { DnsCache, type CacheEntry, type DnsCacheSnapshot } from './cache.js';
import { DEFAULT_PROXY_RESPONSE_MAX_DELAY_MS } from './defaults.js';
import { canonicalIp } from './ip.js';
import { SelectorIndex } from './selectors.js';

/** The datapath as the name manager sees it (the agent implements it with ipcache + policy maps). */
export interface FqdnDatapath {
  /**
   * Set the fqdn labels of these IPs (their identity becomes: reserved:world + fqdn:<key> per
   * selector + the cidr: labels of a policy prefix holding the IP; one identity per label set).
   * Resolves when ipcache and policy maps hold them. `labelKeys` empty = the IP is no longer
   * selected. Calls must take effect in the order they are made.
   */
  setIpSelectors(changes: ReadonlyArray<{ ip: string; labelKeys: readonly string[] }>): Promise<void>;
}

/** One allowed DNS answer, as the DNS proxy hands it over. */
export interface DnsAnswer {
  readonly endpointId: number;
  /** The question's name, as asked (any case, dot optional). */
  readonly qname: string;
  /** Only IPs on the question's own answer/CNAME chain: the DNS proxy filters. */
  readonly ips: readonly string[];
  /** Seconds, the minimum over the chain. */
  readonly ttl: number;
  /** When the answer came, ms since the epoch (default: when it is handed over): its TTL counts from then. */
  readonly at?: number;
}

export interface NameManagerOptions {
  readonly datapath: FqdnDatapath;
  /** `--tofqdns-min-ttl`, seconds (default 0). */
  readonly minTtlSeconds?: number;
  /** `--tofqdns-endpoint-max-ip-per-hostname` (default 1000). */
  readonly maxIpsPerHostname?: number;
  /** `--tofqdns-proxy-response-max-delay`, ms (default 100). */
  readonly maxDelayMs?: number;
  /** `--tofqdns-max-deferred-connection-deletes` (default 10000). */
  readonly maxDeferredConnectionDeletes?: number;
  /** `--tofqdns-idle-connection-grace-period`, ms (default 0). */
  readonly idleConnectionGracePeriodMs?: number;
  /** Names kept per endpoint (default 50000). */
  readonly maxNamesPerEndpoint?: number;
  /** Clock, ms since the epoch (default `Date.now`). */
  readonly now?: () => number;
  readonly log?: Logger;
  /** Whether a connection to `ip` is alive (conntrack); default: none is. */
  readonly isAlive?: (ip: string) => boolean;
}

/** Snapshot of the name manager: the cache and the labels the datapath was given. */
export interface NameManagerSnapshot {
  readonly version: 1;
  readonly cache: DnsCacheSnapshot;
  readonly selected: ReadonlyArray<{ ip: string; labelKeys: string[] }>;
}

/** Cilium's warning (`pkg/fqdn/messagehandler`), so users find the same advice. */
export const DATAPATH_TIMEOUT_WARNING =
  'Timed out waiting for datapath updates of FQDN IP information; returning response. Consider increasing --tofqdns-proxy-response-max-delay';

type Change = { ip: string; labelKeys: readonly string[] };

/** An answer held for the datapath: `settle` until it is released (then null). */
interface Waiter {
  /** The clock's time (NameManagerOptions.now) at which it is released unconfirmed. */
  readonly deadline: number;
  settle: ((timedOut: boolean) => void) | null;
}

/** IPs relabelled per turn of the event loop by `setSelectors` and `gc`. */
const RELABEL_CHUNK = 1024;

export class NameManager {
  private readonly datapath: FqdnDatapath;
  private readonly cache: DnsCache;
  private readonly maxDelayMs: number;
  private readonly log: Logger | undefined;
  private readonly isAlive: (ip: string) => boolean;
  private readonly now: () => number;
  private index = new SelectorIndex();
  /** ip → label keys the datapath was given (or is being given); `null`: unknown after a failed push. */
  private selected = new Map<string, readonly string[] | null>();
  /** ip → settles when every push so far that included the IP has settled. */
  private readonly pending = new Map<string, Promise<void>>();
  private timeouts = 0;
  private failures = 0;
  /** Bumped by every `setSelectors`, so an older relabel still in progress stops. */
  private generation = 0;
  /**
   * Answers waiting for the datapath, oldest first: one delay for all, so deadlines come in order
   * and one timer (for the oldest unsettled) serves them, not one timer per answer. Settled ones
   * leave when they reach the front: at most the answers of one delay are held.
   */
  private waiters: Waiter[] = [];
  private waitersHead = 0;
  private waitTimer: ReturnType<typeof setTimeout> | null = null;
  /** The waiter the timer was set for. */
  private waitFor: Waiter | null = null;

  constructor(opts: NameManagerOptions) {
    this.datapath = opts.datapath;
    this.cache = new DnsCache({
      ...(opts.minTtlSeconds !== undefined ? { minTtlSeconds: opts.minTtlSeconds } : {}),
      ...(opts.maxIpsPerHostname !== undefined ? { maxIpsPerHostname: opts.maxIpsPerHostname } : {}),
      ...(opts.maxDeferredConnectionDeletes !== undefined ? { maxDeferredConnectionDeletes: opts.maxDeferredConnectionDeletes } : {}),
      ...(opts.idleConnectionGracePeriodMs !== undefined ? { idleConnectionGracePeriodMs: opts.idleConnectionGracePeriodMs } : {}),
      ...(opts.maxNamesPerEndpoint !== undefined ? { maxNamesPerEndpoint: opts.maxNamesPerEndpoint } : {}),
      ...(opts.now !== undefined ? { now: opts.now } : {}),
    });
    const d = opts.maxDelayMs;
    this.maxDelayMs = d !== undefined && Number.isFinite(d) && d >= 0 ? d : DEFAULT_PROXY_RESPONSE_MAX_DELAY_MS;
    this.log = opts.log;
    this.isAlive = opts.isAlive ?? (() => false);
    this.now = opts.now ?? Date.now;
  }

  /**
   * The policy's toFQDNs selectors changed (`policyFqdnSelectors(policies)`): recomputes the labels
   * of every cached IP and pushes only the IPs whose labels changed, in chunks that leave the
   * event loop free in between. Resolves when the datapath has them (a failed push is logged and
   * retried on the IP's next change); a newer call takes over the IPs an older one has not reached.
   */
  async setSelectors(selectors: readonly FqdnSelectorInfo[]): Promise<void> {
    this.index = new SelectorIndex(selectors);
    const generation = ++this.generation;
    const ips = new Set<string>(this.cache.ips());
    for (const ip of this.selected.keys()) ips.add(ip);
    await this.push(ips, () => generation !== this.generation);
  }

  /**
   * An allowed answer: learn it, and resolve when the datapath holds its IPs or `maxDelayMs`
   * passed (`timedOut`). `newIps`: IPs of the answer whose labels this answer changed. An answer
   * with an invalid endpoint id, name or no valid IP teaches nothing and resolves at once.
   * `released`: the answer already went to the pod (a proxy worker wrote its addresses itself:
   * src/proxyworker/prelearn.ts): learned the same way, but nothing waits for the push, so no
   * timeout is counted or logged for it.
   */
  async onAnswer(a: DnsAnswer, released = false): Promise<{ newIps: number; timedOut: boolean }> {
    if (!Number.isSafeInteger(a.endpointId) || a.endpointId < 0) {
      this.log?.warn({ endpointId: a.endpointId, qname: a.qname }, 'FQDN answer for an invalid endpoint id ignored');
      return { newIps: 0, timedOut: false };
    }
    const answerIps = [...new Set(a.ips.map(canonicalIp).filter((ip): ip is string => ip !== null))];
    const { changedIps } = this.cache.update(a.endpointId, a.qname, answerIps, a.ttl, a.at);
    // The answer's own IPs too: one whose earlier push failed is pushed again.
    const changes = this.diff(new Set([...changedIps, ...answerIps]));
    void this.start(changes);
    const mine = new Set(answerIps);
    const newIps = changes.filter((c) => mine.has(c.ip) && c.labelKeys.length > 0).length;
    let waits: Promise<void>[] | null = null;
    for (const ip of answerIps) {
      const p = this.pending.get(ip);
      if (p) (waits ??= []).push(p);
    }
    if (waits === null || released) return { newIps, timedOut: false };
    const all = waits.length === 1 ? waits[0]! : Promise.all(waits);
    const timedOut = await new Promise<boolean>((resolve) => {
      const w: Waiter = { deadline: this.now() + this.maxDelayMs, settle: resolve };
      this.wait(w);
      void all.then(() => {
        if (w.settle === null) return;
        w.settle = null;
        resolve(false);
      });
    });
    if (timedOut) {
      this.timeouts++;
      this.log?.warn({ endpointId: a.endpointId, qname: a.qname, ips: answerIps.length, maxDelayMs: this.maxDelayMs }, DATAPATH_TIMEOUT_WARNING);
    }
    return { newIps, timedOut };
  }

  private wait(w: Waiter): void {
    this.waiters.push(w);
    if (this.waitTimer === null) this.arm(w, this.maxDelayMs);
  }

  private arm(w: Waiter, ms: number): void {
    this.waitFor = w;
    this.waitTimer = setTimeout(this.expire, ms);
  }

  /**
   * Releases the waiters whose delay is over, and waits for the next. The timer is the judge for
   * the waiter it was set for (and any due no later), so a clock that stands still or went back
   * never holds an answer past its delay; one that jumped ahead releases early (unconfirmed, as
   * at the delay).
   */
  private readonly expire = (): void => {
    this.waitTimer = null;
    const now = this.now();
    const due = this.waitFor?.deadline ?? -Infinity;
    this.waitFor = null;
    const ws = this.waiters;
    let head = this.waitersHead;
    while (head < ws.length) {
      const w = ws[head]!;
      if (w.settle !== null && w.deadline > now && w.deadline > due && w.deadline - now <= this.maxDelayMs) break;
      head++;
      const settle = w.settle;
      w.settle = null;
      settle?.(true);
    }
    if (head === ws.length) {
      this.waiters = [];
      head = 0;
    } else if (head > 1024 && head * 2 > ws.length) {
      this.waiters = ws.slice(head);
      head = 0;
    }
    this.waitersHead = head;
    const next = this.waiters[head];
    if (next) this.arm(next, Math.min(this.maxDelayMs, Math.max(1, next.deadline - now)));
  };

  /**
   * Expires names (Cilium's DNS GC, every minute): expired IPs become zombies, zombies without a
   * live connection (`isAlive`) go, and IPs no longer selected by any remaining name get
   * `labelKeys: []`. Resolves when the datapath has the changes.
   */
  async gc(): Promise<void> {
    const { changedIps } = this.cache.gc(this.isAlive);
    await this.push(changedIps);
  }

  /**
   * Forgets what endpoint `endpointId` learned (it was removed): IPs no other endpoint's names
   * select lose their `fqdn:` labels. Resolves when the datapath has the changes.
   */
  async forgetEndpoint(endpointId: number): Promise<void> {
    const { changedIps } = this.cache.forgetEndpoint(endpointId);
    await this.push(changedIps);
  }

  /** Rows for `membrane fqdn cache list [--endpoint ID] [--name N]`. */
  cacheList(filter?: { endpointId?: number; name?: string }): CacheEntry[] {
    return this.cache.entries(filter ?? {});
  }

  /**
   * The names `endpointId` looked up and got `ip` for, unexpired, without the trailing dot: a
   * flow's `destination_names`/`source_names`, as Cilium's `GetNamesOf` gives Hubble. Sorted.
   */
  namesOf(endpointId: number, ip: string): string[] {
    return this.cache.lookupIp(ip, endpointId).map((n) => (n.endsWith('.') ? n.slice(0, -1) : n));
  }

  /** The names that keep `ip` selected (lookups and zombies) and its labels in the datapath. */
  selectionOf(ip: string): { names: string[]; labelKeys: readonly string[] } {
    const addr = canonicalIp(ip);
    return { names: this.cache.namesOfIp(ip), labelKeys: (addr !== null ? this.selected.get(addr) : undefined) ?? [] };
  }

  /**
   * `names`: names cached (summed over endpoints); `ips`: distinct IPs in the cache; `timeouts`:
   * answers released after `maxDelayMs`; `zombies`: IPs kept for connections; `selectedIps`: IPs
   * with fqdn labels; `datapathFailures`: rejected `setIpSelectors` calls.
   */
  stats(): { names: number; ips: number; timeouts: number; zombies: number; selectedIps: number; datapathFailures: number } {
    const c = this.cache.counts();
    let selectedIps = 0;
    for (const k of this.selected.values()) if (k && k.length > 0) selectedIps++;
    return { names: c.names, ips: c.ips, timeouts: this.timeouts, zombies: c.zombies, selectedIps, datapathFailures: this.failures };
  }

  /**
   * `snapshot()` as JSON text, built in slices with `pause()` awaited between them
   * (`DnsCache.snapshotJson`): what the agent's timed save writes. Selected IPs in no particular order.
   */
  async snapshotJson(pause: () => Promise<void>, sliceSize = 2048): Promise<string> {
    const cache = await this.cache.snapshotJson(pause, sliceSize >> 2);
    const selected: string[] = [];
    let n = 0;
    for (const [ip, keys] of [...this.selected]) {
      if (++n % sliceSize === 0) await pause();
      if (keys !== null && keys.length > 0) selected.push(JSON.stringify({ ip, labelKeys: keys }));
    }
    return `{"version":1,"cache":${cache},"selected":[${selected.join(',')}]}`;
  }

  /** JSON-safe state for the state directory; expiry times are absolute. */
  snapshot(): NameManagerSnapshot {
    const selected = [...this.selected]
      .filter((e): e is [string, readonly string[]] => e[1] !== null && e[1].length > 0)
      .map(([ip, keys]) => ({ ip, labelKeys: [...keys] }))
      .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
    return { version: 1, cache: this.cache.snapshot(), selected };
  }

  /**
   * Restores a {@link snapshot}: the cache (lookups already expired become zombies) and the labels
   * the datapath was given before the restart (its pinned maps still hold them). Then call
   * `setSelectors` with the policy in force: it pushes only what changed meanwhile. A malformed
   * snapshot throws `MEMBRANE_ERR_STATE` naming the field and changes nothing.
   */
  restore(s: unknown): void {
    const fail = (path: string, what: string): never => {
      throw membraneError('MEMBRANE_ERR_STATE', `FQDN name manager snapshot: ${path}: ${what}`, { details: { path } });
    };
    if (typeof s !== 'object' || s === null || Array.isArray(s)) fail('$', 'expected an object');
    const o = s as Record<string, unknown>;
    if (o.version !== 1) fail('version', `unsupported version ${JSON.stringify(o.version)} (expected 1)`);
    if (!Array.isArray(o.selected)) fail('selected', 'expected an array');
    const selected = new Map<string, readonly string[]>();
    (o.selected as unknown[]).forEach((e, i) => {
      const r = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
      const ip = typeof r.ip === 'string' ? canonicalIp(r.ip) : null;
      if (ip === null) fail(`selected[${i}].ip`, 'expected an IP address');
      const keys = r.labelKeys;
      if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string' && k.length > 0)) fail(`selected[${i}].labelKeys`, 'expected label keys');
      selected.set(ip as string, [...new Set(keys as string[])].sort());
    });
    this.cache.restore(o.cache);
    this.selected = selected;
  }

  /**
   * Computes the new label keys of `ips` and pushes the changed ones; settles when they are
   * applied. Large sets go in chunks of {@link RELABEL_CHUNK} with the event loop free in between
   * (a relabel of the whole cache must not stall the proxies); `superseded` stops early when a
   * newer relabel covers every IP anyway.
   */
  private async push(ips: Iterable<string>, superseded: () => boolean = () => false): Promise<void> {
    const all = [...ips];
    const pushes: Promise<void>[] = [];
    for (let i = 0; i < all.length; i += RELABEL_CHUNK) {
      if (i > 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (superseded()) break;
      }
      pushes.push(this.start(this.diff(all.slice(i, i + RELABEL_CHUNK))));
    }
    await Promise.all(pushes);
  }

  /** The label keys of an IP: the union over the names that select it. */
  private keysOf(ip: string): readonly string[] {
    const names = this.cache.namesOfIp(ip);
    if (names.length === 1) return this.index.selectorsFor(names[0]!);
    const keys = new Set<string>();
    for (const n of names) for (const k of this.index.selectorsFor(n)) keys.add(k);
    return [...keys].sort();
  }

  /** Changes against what the datapath was given; records the new state as given. */
  private diff(ips: Iterable<string>): Change[] {
    const changes: Change[] = [];
    for (const ip of ips) {
      const keys = this.keysOf(ip);
      const prev = this.selected.get(ip);
      if (prev === undefined ? keys.length === 0 : prev !== null && sameKeys(prev, keys)) continue;
      changes.push({ ip, labelKeys: keys });
      if (keys.length === 0) this.selected.delete(ip);
      else this.selected.set(ip, keys);
    }
    return changes;
  }

  /** One datapath call for the changes; every IP's pending promise includes it. Never rejects. */
  private start(changes: Change[]): Promise<void> {
    if (changes.length === 0) return Promise.resolve();
    const call = Promise.resolve()
      .then(() => this.datapath.setIpSelectors(changes))
      .catch((err: unknown) => {
        this.failures++;
        this.log?.error({ err, ips: changes.length }, 'FQDN datapath update failed; the IPs are pushed again on their next change');
        // The datapath's state is unknown: make the next computation push these IPs whatever it finds.
        for (const c of changes) if (this.selected.get(c.ip) === undefined || this.selected.get(c.ip) === c.labelKeys) this.selected.set(c.ip, null);
      });
    for (const c of changes) {
      const prev = this.pending.get(c.ip);
      const done: Promise<void> = (prev ? Promise.all([prev, call]).then(() => undefined) : call).finally(() => {
        if (this.pending.get(c.ip) === done) this.pending.delete(c.ip);
      });
      this.pending.set(c.ip, done);
    }
    return call;
  }
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}
