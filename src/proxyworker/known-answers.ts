/**
 * The DNS answers a proxy worker may release without asking the agent: (name, IP) pairs the agent
 * has confirmed in the datapath (ipcache + policy maps, or "no selector selects it"). An answer
 * whose every IP is such a pair for its name teaches the datapath nothing, so it goes to the pod
 * at once and its TTL reaches the agent's FQDN cache afterwards (`learned`), not in its way.
 *
 * Why that keeps the ordering guarantee (no answer before its IPs are in the maps):
 * - A pair is added only from an `answered` that confirmed it (not released at the max delay, no
 *   datapath failure), stamped with the agent's FQDN epoch when it began; the agent bumps the
 *   epoch whenever a selection may shrink (policy selectors changed, DNS GC, an IP's labels lost
 *   or a datapath update failed) and every epoch newer than ours empties the set.
 * - The name must stay cached in the agent until the refresh arrives: a pair is used only while
 *   `GUARD_MS` of the TTL it was last sent with remain (the agent's expiry is at least that, as
 *   its min-ttl only lengthens it), so a GC in between cannot expire it. TTL 0: never used.
 *
 * Bounded (`max` pairs, least recently used go first): a forgotten pair costs one round trip.
 * Cilium has no worker split; this is Membrane's, for `--proxy-workers` (README "Proxy workers").
 */
import { LRUCache } from 'lru-cache';

/** TTL that must remain on a pair for it to be used, ms: covers the refresh's trip to the agent. */
export const GUARD_MS = 2000;

export class KnownAnswers {
  readonly #pairs: LRUCache<string, { expiresAt: number }>;
  #epoch = 0;
  /** Answers released without a round trip. */
  fastReleases = 0;

  constructor(max = 65_536) {
    this.#pairs = new LRUCache({ max });
  }

  get epoch(): number {
    return this.#epoch;
  }

  get size(): number {
    return this.#pairs.size;
  }

  /** The agent's epoch is `epoch`: a newer one forgets every pair. */
  seeEpoch(epoch: number): void {
    if (epoch > this.#epoch) {
      this.#epoch = epoch;
      this.#pairs.clear();
    }
  }

  /**
   * Whether every IP of the answer is a confirmed pair of `qname` with more than `GUARD_MS` to
   * live; if so, the pairs' expiry moves to `now + ttl` (the refresh the caller sends next).
   */
  take(qname: string, ips: readonly string[], ttlSeconds: number, now: number): boolean {
    if (ips.length === 0 || !(ttlSeconds * 1000 > GUARD_MS)) return false;
    const name = canonicalName(qname);
    const found: { expiresAt: number }[] = [];
    for (const ip of ips) {
      const p = this.#pairs.get(`${name} ${ip}`);
      if (!p || p.expiresAt - now <= GUARD_MS) return false;
      found.push(p);
    }
    const expiresAt = now + ttlSeconds * 1000;
    for (const p of found) if (expiresAt > p.expiresAt) p.expiresAt = expiresAt;
    this.fastReleases++;
    return true;
  }

  /** The agent confirmed the answer sent at `sentAt` (ms) in `epoch`: its pairs may be used. */
  confirm(qname: string, ips: readonly string[], ttlSeconds: number, sentAt: number, epoch: number): void {
    this.seeEpoch(epoch);
    if (epoch !== this.#epoch || !(ttlSeconds > 0)) return;
    const name = canonicalName(qname);
    const expiresAt = sentAt + ttlSeconds * 1000;
    for (const ip of ips) {
      const key = `${name} ${ip}`;
      const p = this.#pairs.get(key);
      if (!p) this.#pairs.set(key, { expiresAt });
      else if (expiresAt > p.expiresAt) p.expiresAt = expiresAt;
    }
  }
}

/** `WWW.Example.COM.` → `www.example.com` (the FQDN cache's own names compare so too). */
function canonicalName(qname: string): string {
  const n = qname.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}
