/**
 * The agent's side of toFQDNs: the FQDN name manager wired to the regenerator's incremental path,
 * its state kept in the state directory across restarts, and Cilium's DNS garbage collection.
 *
 *   DNS proxy ─allowed answer─► NameManager.onAnswer ─► setIpSelectors ─► Regenerator.applyFqdn
 *        (ipcache + policy entries of the changed IPs only) ─► the answer is released
 *
 * Restart: the snapshot (cache with absolute expiries, and the selector keys the datapath was
 * given) is restored and handed to the regenerator BEFORE its first pass, so that pass writes the
 * learned IPs back instead of deleting them from the pinned ipcache; then the policy in force is
 * applied, which pushes only what changed while the agent was down.
 */
import type { Logger } from 'pino';
import { canonicalIp, DNS_GC_INTERVAL_MS, MAX_NAME_LENGTH, NameManager, normalizeName, type DnsAnswer, type NameManagerSnapshot } from '../fqdn/index.js';
import { policyFqdnSelectors, type FqdnSelectorInfo, type PolicyObject } from '../policy/index.js';
import type { Datapath } from '../datapath/index.js';
import type { Regenerator } from './regenerate.js';
import { JsonText, type StateStore } from './state-store.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const SNAPSHOT_FILE = 'fqdn-cache.json';
/** A changed cache is written at most this often (and at stop): a crash loses at most the names learned since, which the next lookups teach again. */
const PERSIST_INTERVAL_MS = 5000;

export interface FqdnOptions {
  /** `--tofqdns-min-ttl`, seconds. */
  readonly minTtlSeconds: number;
  /** `--tofqdns-endpoint-max-ip-per-hostname`. */
  readonly maxIpsPerHostname: number;
  /** `--tofqdns-proxy-response-max-delay`, ms. */
  readonly maxDelayMs: number;
  /**
   * Whether an endpoint id is registered now (default: every id). An answer for one that is not
   * (removed while its query was in flight) teaches nothing: its history went with it.
   */
  readonly isEndpoint?: (endpointId: number) => boolean;
}

export class AgentFqdn {
  readonly names: NameManager;
  #store: StateStore;
  #log: Logger;
  #datapath: () => Datapath;
  #live = new Set<string>();
  #dirty = false;
  #observeRelease: ((seconds: number, timedOut: boolean) => void) | null = null;
  #persistTimer: NodeJS.Timeout | null = null;
  #gcTimer: NodeJS.Timeout | null = null;
  #queue: { changes: ReadonlyArray<{ ip: string; labelKeys: readonly string[] }>; resolve: () => void; reject: (err: unknown) => void }[] = [];
  #applied: (() => void) | null = null;
  #epochListener: ((epoch: number) => void) | null = null;
  #epoch = 0;
  /** An answer was handed out in this epoch (so a worker may hold confirmations of it). */
  #answeredInEpoch = false;
  /** The toFQDNs selectors last set, as text: a policy change that keeps them moves nothing. */
  #selectorsKey = '';
  #selectors: readonly FqdnSelectorInfo[] = [];
  /** Bumped with every new set of selectors (the proxy workers' table follows it). */
  #selectorsVersion = 0;
  #regenerator: () => Regenerator;
  /** Selectors are being pushed: the epoch moved on before the push, relabels need not move it again. */
  #pushingSelectors = false;
  /** ip → label keys given to the datapath (as NameManager's `selected`): what a change shrinks. */
  #given = new Map<string, readonly string[]>();
  readonly #isEndpoint: (endpointId: number) => boolean;

  constructor(store: StateStore, regenerator: () => Regenerator, datapath: () => Datapath, opts: FqdnOptions, log: Logger) {
    this.#store = store;
    this.#log = log;
    this.#regenerator = regenerator;
    this.#datapath = datapath;
    this.#isEndpoint = opts.isEndpoint ?? (() => true);
    this.names = new NameManager({
      datapath: {
        // Answers that arrive in the same turn of the event loop (a recvmmsg batch) are applied
        // together: one resolution per endpoint for all their new addresses. The promise settles
        // once the maps hold the change; calls take effect in the order they were made.
        setIpSelectors: (changes) =>
          new Promise<void>((resolve, reject) => {
            this.#noteRelabels(changes);
            this.#queue.push({ changes, resolve, reject });
            if (this.#queue.length === 1) setImmediate(() => this.#flush(regenerator()));
          }),
      },
      minTtlSeconds: opts.minTtlSeconds,
      maxIpsPerHostname: opts.maxIpsPerHostname,
      maxDelayMs: opts.maxDelayMs,
      isAlive: (ip) => this.#live.has(ip),
      log,
    });
  }

  #flush(regenerator: Regenerator): void {
    const batch = this.#queue;
    this.#queue = [];
    // The last change of an address wins, as if the calls had been applied one by one.
    const last = new Map<string, readonly string[]>();
    for (const { changes } of batch) for (const c of changes) last.set(c.ip, c.labelKeys);
    try {
      regenerator.applyFqdn([...last].map(([ip, labelKeys]) => ({ ip, labelKeys })));
      this.#dirty = true;
    } catch (err) {
      // The datapath's state is unknown: nothing learned before may be released unasked.
      this.#bumpEpoch();
      for (const b of batch) b.reject(err);
      return;
    }
    // The new identities and policies go to the proxy workers before any answer is released.
    try {
      this.#applied?.();
    } catch (err) {
      this.#log.error({ err }, 'FQDN update not passed on to the proxy workers');
    }
    for (const b of batch) b.resolve();
  }

  /**
   * An IP already given whose label keys change (its names expired or were evicted, the selectors
   * changed, another name now selects it) starts a new epoch: answers confirmed before no longer
   * say what the datapath holds. A new IP does not: nothing was confirmed about it.
   */
  #noteRelabels(changes: ReadonlyArray<{ ip: string; labelKeys: readonly string[] }>): void {
    let shrunk = false;
    for (const c of changes) {
      const before = this.#given.get(c.ip);
      if (before && !(before.length === c.labelKeys.length && before.every((k) => c.labelKeys.includes(k)))) shrunk = true;
      if (c.labelKeys.length === 0) this.#given.delete(c.ip);
      else this.#given.set(c.ip, c.labelKeys);
    }
    if (shrunk && !this.#pushingSelectors) this.#bumpEpoch();
  }

  #bumpEpoch(): void {
    this.#epoch++;
    this.#answeredInEpoch = false;
    this.#epochListener?.(this.#epoch);
  }

  /** Bumped whenever a selection the datapath was given may shrink (see `onEpoch`). */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * `listener(epoch)` runs when the epoch moves on: proxy workers then forget the answers they
   * release without asking the agent (src/proxyworker/known-answers.ts).
   */
  onEpoch(listener: (epoch: number) => void): void {
    this.#epochListener = listener;
  }

  /** `listener()` runs after each FQDN map update, before the answers waiting for it are released. */
  onApplied(listener: () => void): void {
    this.#applied = listener;
  }

  /**
   * Restores the saved cache and gives the regenerator the IPs' selector keys, before its first
   * pass. A snapshot that cannot be read is logged and set aside (names are learned again).
   */
  restore(regenerator: Regenerator): void {
    let saved: NameManagerSnapshot | null = null;
    try {
      saved = this.#store.read<NameManagerSnapshot | null>(SNAPSHOT_FILE, null);
      if (saved) this.names.restore(saved);
    } catch (err) {
      this.#log.warn({ err }, 'FQDN cache not restored; names will be learned again');
      saved = null;
    }
    if (saved) {
      for (const { ip, labelKeys } of saved.selected) this.#given.set(ip, labelKeys);
      regenerator.applyFqdn(saved.selected);
      this.#log.info({ names: this.names.stats().names, ips: saved.selected.length }, 'FQDN cache restored');
    }
  }

  /**
   * An allowed DNS answer from the DNS proxy: resolves when the datapath has its new IPs
   * (`timedOut`: released at the max delay without that), with the epoch it began in and the
   * answer's IPs it taught (`ips`, as given; none when it was ignored). `released`: a proxy worker
   * already sent it (NameManager.onAnswer): resolves once it is learned, without waiting for the push.
   */
  onAnswer(a: DnsAnswer, released = false): Promise<{ newIps: number; timedOut: boolean; epoch: number; ips: readonly string[] }> {
    this.#dirty = true; // TTLs move even when no IP changes
    const epoch = this.#epoch;
    this.#answeredInEpoch = true;
    // What the answer teaches the datapath (NameManager.onAnswer and DnsCache.update ignore an
    // invalid endpoint id, name or IP): only these may be confirmed to a proxy worker
    // (src/proxyworker/answered.ts); an answer that taught nothing confirms nothing.
    if (!this.#isEndpoint(a.endpointId)) return Promise.resolve({ newIps: 0, timedOut: false, epoch, ips: [] });
    const name = normalizeName(a.qname);
    const taught = Number.isSafeInteger(a.endpointId) && a.endpointId >= 0 && name.length <= MAX_NAME_LENGTH && name !== '.';
    const ips = taught ? a.ips.filter((ip) => canonicalIp(ip) !== null) : [];
    const learned = this.names.onAnswer(a, released);
    // An answer already released has no hold to observe.
    const observeRelease = released ? null : this.#observeRelease;
    const started = observeRelease ? performance.now() : 0;
    return learned.then((r) => {
      observeRelease?.((performance.now() - started) / 1000, r.timedOut);
      return { ...r, epoch, ips };
    });
  }

  /**
   * An answer a proxy worker already released, having written `written` into the ipcache itself
   * (src/proxyworker/prelearn.ts): learned as any answer (no hold, no release delay to observe),
   * then the worker's entries the agent did not keep go.
   */
  async onPrelearned(a: DnsAnswer, written: ReadonlyArray<{ ip: string; identity: number }>): Promise<void> {
    try {
      await this.onAnswer(a, true);
    } finally {
      this.settlePrewritten(written);
    }
  }

  /**
   * Worker-written addresses (src/proxyworker/prelearn.ts) of an answer the agent has learned:
   * the ones it did not keep lose their entry (Regenerator.settlePrewritten), but never one the
   * name manager selects (its push may still be on its way: the answer's wait ended at the max
   * delay).
   */
  settlePrewritten(written: ReadonlyArray<{ ip: string; identity: number }>): void {
    const unselected = written.filter((w) => this.names.selectionOf(w.ip).labelKeys.length === 0);
    if (unselected.length > 0) this.#regenerator().settlePrewritten(unselected);
  }

  /**
   * What a proxy worker needs to give new learned addresses their identities itself
   * (src/proxyworker/prelearn.ts): the toFQDNs selectors and the regenerator's identities.
   */
  learnTable(): { version: string; selectorsVersion: number; selectors: readonly FqdnSelectorInfo[]; identities: ReadonlyArray<readonly [string, number]> } {
    const t = this.#regenerator().fqdnLearnTable();
    return { version: `${this.#selectorsVersion}.${t.version}`, selectorsVersion: this.#selectorsVersion, selectors: this.#selectors, identities: t.identities };
  }

  /** Called with how long each answer was held for the datapath (seconds) and whether the delay ran out. */
  observeRelease(listener: (seconds: number, timedOut: boolean) => void): void {
    this.#observeRelease = listener;
  }

  /** The policy in force changed: which IPs its toFQDNs selectors select. */
  async setPolicies(policies: readonly PolicyObject[]): Promise<void> {
    const selectors = policyFqdnSelectors(policies);
    const key = JSON.stringify(selectors);
    // A new selector gives labels to IPs that had none (which #noteRelabels cannot see as a
    // change): an answer a worker holds as confirmed no longer says what the datapath will hold,
    // so the epoch moves on before the selectors are pushed.
    if (key !== this.#selectorsKey && this.#answeredInEpoch) this.#bumpEpoch();
    if (key !== this.#selectorsKey) this.#selectorsVersion++;
    this.#selectorsKey = key;
    this.#selectors = selectors;
    this.#pushingSelectors = true;
    try {
      await this.names.setSelectors(selectors);
    } finally {
      this.#pushingSelectors = false;
    }
    // The workers' table follows the selectors even when no address moved (no apply to carry it).
    try {
      this.#applied?.();
    } catch (err) {
      this.#log.error({ err }, 'FQDN selectors not passed on to the proxy workers');
    }
  }

  start(): void {
    this.#persistTimer = setInterval(() => this.#persistSoon(), PERSIST_INTERVAL_MS);
    this.#persistTimer.unref();
    this.#gcTimer = setInterval(() => void this.gc(), DNS_GC_INTERVAL_MS);
    this.#gcTimer.unref();
  }

  /**
   * Cilium's DNS GC: expired names go, but an IP with a live connection stays (a zombie). Live
   * means an unexpired conntrack entry; the expired ones are deleted on the way, as Cilium's
   * conntrack GC does before it marks the zombies it saw alive.
   */
  async gc(): Promise<void> {
    try {
      const live = new Set<string>();
      const ct = this.#datapath().gcConntrack();
      for (const e of ct.live) {
        live.add(e.saddr);
        live.add(e.daddr);
      }
      if (ct.deleted > 0) this.#log.debug({ deleted: ct.deleted, live: ct.live.length }, 'expired conntrack entries deleted');
      this.#live = live;
      // Names expire here; the IPs they leave unselected start a new epoch (#noteRelabels).
      await this.names.gc();
      this.#dirty = true;
    } catch (err) {
      this.#log.error({ err }, 'FQDN garbage collection failed');
    }
  }

  /**
   * Endpoint `endpointId` was removed: what it learned goes with it (Cilium keeps DNS history in
   * the endpoint), so its names no longer select addresses and an endpoint that reuses the id
   * starts with none. Resolves when the datapath has the change.
   */
  async forgetEndpoint(endpointId: number): Promise<void> {
    // The cache changes at once (before the datapath does): saved even if the push fails.
    this.#dirty = true;
    try {
      await this.names.forgetEndpoint(endpointId);
    } catch (err) {
      this.#log.error({ err, endpointId }, 'FQDN history of a removed endpoint not forgotten');
    }
  }

  /**
   * Writes the cache if it changed, synchronously (stop, tests). The timer's writes go through
   * `#persistSoon` instead: the file and its fsync leave the event loop, which answers wait on.
   */
  persist(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    try {
      this.#store.write(SNAPSHOT_FILE, this.names.snapshot());
    } catch (err) {
      this.#dirty = true;
      this.#log.error({ err }, 'FQDN cache not saved');
    }
  }

  #persistSoon(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    // Built in slices between other work: answers wait on this loop, and the cache may hold 50,000 names per endpoint.
    this.#store.writeSoon(SNAPSHOT_FILE, async () => new JsonText(await this.names.snapshotJson(nextTurn))).catch((err: unknown) => {
      this.#dirty = true;
      this.#log.error({ err }, 'FQDN cache not saved');
    });
  }

  stop(): void {
    if (this.#persistTimer) clearInterval(this.#persistTimer);
    if (this.#gcTimer) clearInterval(this.#gcTimer);
    this.#dirty = true;
    this.persist();
  }
}
