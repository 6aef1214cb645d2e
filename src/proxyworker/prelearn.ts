/**
 * A DNS answer whose new addresses join identities the datapath already holds, released by the
 * proxy worker without waiting for the agent's thread (issue 9: the answer-release tail was the
 * round trip to the agent's event loop, its collections and its other work).
 *
 * The agent gives a learned IPv4 address the identity of its label set: the longest policy prefix
 * holding it and the keys of the toFQDNs selectors its names match (src/fqdn/learned-identity.ts;
 * src/agent/regenerate.ts allocates it and writes its policy entries into every endpoint's map
 * before any address holds it). The agent sends each worker those selectors, prefixes and
 * identities (`FqdnLearnTable`, after the deltas that carry the identities). For an answer, the
 * worker computes each address's key from the answer's name alone; when every address's key has
 * an identity in the table, it writes each address into the ipcache itself, only where the map
 * holds no /32 for it (BPF_NOEXIST, `IpcacheView.insertIfAbsent`), and releases the answer: its
 * addresses are in the ipcache and their identities' entries in the policy maps, the ordering of
 * ../shared/DESIGN.md. The agent then learns the answer as any other (`prelearned`), which also
 * adds the keys of the address's other names, and takes back an entry it would not have written
 * (`Regenerator.settlePrewritten`).
 *
 * Why the worker's label set is never wider than the agent's: an address with no /32 entry is
 * one the agent has not given an identity (it writes every address it selects), so the agent's
 * keys for it are this name's plus any of names it has not yet pushed: a superset. toFQDNs
 * selects only in allow rules (Cilium has no toFQDNs in deny rules), so fewer keys allow less.
 * The prefix part is the agent's own prefixes. Anything else (a key set with no identity yet, an
 * address that has an entry, a table not yet received) takes the round trip to the agent.
 */
import { fqdnLabelsKey, Ipv4PrefixIndex, ipv4Number, SelectorIndex } from '../fqdn/index.js';
import type { FqdnLearnTable, PrewrittenIp } from './protocol.js';

export class FqdnPrelearn {
  #version = '';
  #selectors = new SelectorIndex();
  #prefixes = new Ipv4PrefixIndex([]);
  #identities = new Map<string, number>();
  #ready = false;

  /** Whether a table was received (before it, every answer takes the round trip). */
  get ready(): boolean {
    return this.#ready;
  }

  get version(): string {
    return this.#version;
  }

  setTable(t: FqdnLearnTable): void {
    this.#version = t.version;
    this.#selectors = new SelectorIndex(t.selectors);
    this.#prefixes = new Ipv4PrefixIndex(t.prefixes);
    this.#identities = new Map(t.identities);
    this.#ready = true;
  }

  /** Forgets the table: every answer takes the round trip until the next one. */
  clear(): void {
    this.#ready = false;
    this.#identities.clear();
  }

  /**
   * The identity each IPv4 address of an answer to `qname` joins, when the table has one for every
   * address's label set; null otherwise (or before a table). Addresses no selector admits through
   * this name are left out: the answer teaches the datapath nothing about them. IPv6 addresses too:
   * the ipcache is IPv4-only.
   */
  plan(qname: string, ips: readonly string[]): PrewrittenIp[] | null {
    if (!this.#ready) return null;
    const keys = this.#selectors.selectorsFor(qname);
    const out: PrewrittenIp[] = [];
    if (keys.length === 0) return out;
    for (const ip of ips) {
      if (Number.isNaN(ipv4Number(ip))) continue;
      const identity = this.#identities.get(fqdnLabelsKey(this.#prefixes.longest(ip), keys));
      if (identity === undefined) return null;
      out.push({ ip, identity });
    }
    return out;
  }
}
