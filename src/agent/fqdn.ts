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
/** A changed cache is written at most this often (and at stop). */
const PERSIST_INTERVAL_MS = 1000;

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
  #persistTimer: NodeJS.Timeout | null = null;
  #gcTimer: NodeJS.Timeout | null = null;

  constructor(store: StateStore, regenerator: () => Regenerator, datapath: () => Datapath, opts: FqdnOptions, log: Logger) {
    this.#store = store;
    this.#log = log;
    this.#datapath = datapath;
    this.names = new NameManager({
      datapath: {
        // Synchronous map writes: the promise is settled once the maps hold the change.
        setIpSelectors: async (changes) => {
          regenerator().applyFqdn(changes);
          this.#dirty = true;
        },
      },
      minTtlSeconds: opts.minTtlSeconds,
      maxIpsPerHostname: opts.maxIpsPerHostname,
      maxDelayMs: opts.maxDelayMs,
      isAlive: (ip) => this.#live.has(ip),
      log,
    });
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
    return this.names.onAnswer(a);
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
