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
import { DNS_GC_INTERVAL_MS, NameManager, type DnsAnswer, type NameManagerSnapshot } from '../fqdn/index.js';
import { policyFqdnSelectors, type PolicyObject } from '../policy/index.js';
import type { Datapath } from '../datapath/index.js';
import type { Regenerator } from './regenerate.js';
import type { StateStore } from './state-store.js';

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

  constructor(store: StateStore, regenerator: () => Regenerator, datapath: () => Datapath, opts: FqdnOptions, log: Logger) {
    this.#store = store;
    this.#log = log;
    this.#datapath = datapath;
    this.names = new NameManager({
      datapath: {
        // Answers that arrive in the same turn of the event loop (a recvmmsg batch) are applied
        // together: one resolution per endpoint for all their new addresses. The promise settles
        // once the maps hold the change; calls take effect in the order they were made.
        setIpSelectors: (changes) =>
          new Promise<void>((resolve, reject) => {
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
      for (const b of batch) b.resolve();
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
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
      regenerator.applyFqdn(saved.selected);
      this.#log.info({ names: this.names.stats().names, ips: saved.selected.length }, 'FQDN cache restored');
    }
  }

  /** An allowed DNS answer from the DNS proxy: resolves when the datapath has its new IPs. */
  onAnswer(a: DnsAnswer): Promise<{ newIps: number; timedOut: boolean }> {
    this.#dirty = true; // TTLs move even when no IP changes
    const released = this.names.onAnswer(a);
    const observe = this.#observeRelease;
    if (!observe) return released;
    const started = performance.now();
    return released.then((r) => {
      observe((performance.now() - started) / 1000, r.timedOut);
      return r;
    });
  }

  /** Called with how long each answer was held for the datapath (seconds) and whether the delay ran out. */
  observeRelease(listener: (seconds: number, timedOut: boolean) => void): void {
    this.#observeRelease = listener;
  }

  /** The policy in force changed: which IPs its toFQDNs selectors select. */
  async setPolicies(policies: readonly PolicyObject[]): Promise<void> {
    await this.names.setSelectors(policyFqdnSelectors(policies));
  }

  start(): void {
    this.#persistTimer = setInterval(() => this.persist(), PERSIST_INTERVAL_MS);
    this.#persistTimer.unref();
    this.#gcTimer = setInterval(() => void this.gc(), DNS_GC_INTERVAL_MS);
    this.#gcTimer.unref();
  }

  /** Cilium's DNS GC: expired names go, but an IP with a live connection stays (a zombie). */
  async gc(): Promise<void> {
    try {
      const live = new Set<string>();
      for (const e of this.#datapath().dumpConntrack()) {
        live.add(e.saddr);
        live.add(e.daddr);
      }
      this.#live = live;
      await this.names.gc();
      this.#dirty = true;
    } catch (err) {
      this.#log.error({ err }, 'FQDN garbage collection failed');
    }
  }

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

  stop(): void {
    if (this.#persistTimer) clearInterval(this.#persistTimer);
    if (this.#gcTimer) clearInterval(this.#gcTimer);
    this.#dirty = true;
    this.persist();
  }
}
