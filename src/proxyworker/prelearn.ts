/**
 * A DNS answer whose new addresses join identities the datapath already holds, released by the
 * proxy worker without waiting for the agent's thread (issue 9: the answer-release tail was the
 * round trip to the agent's event loop, its collections and its other work).
 *
 * The agent gives a learned IPv4 address the identity of its label set: the longest policy prefix
 * holding it and the keys of the toFQDNs selectors its names match (src/agent/regenerate.ts
 * allocates it and writes its policy entries into every endpoint's map before any address holds
 * it). The agent sends each worker its selectors and those identities (`FqdnLearnTable`, after
 * the deltas that carry them), keyed by the identity the ipcache gives the prefix
 * (`fqdnLearnKey`). For an answer, the worker computes each address's key from the answer's name
 * and from the ipcache itself (an LPM lookup: the prefix identity the kernel would give the
 * address now); when every address's key has an identity in the table, it writes each address
 * into the ipcache, only where the map holds no /32 for it (BPF_NOEXIST), checks that the prefix
 * under it is still the one it planned with (a policy prefix written meanwhile would carry
 * labels, a deny among them, that the identity lacks; then the entry goes again), tells the agent
 * (`prelearned`) and releases the answer: its addresses are in the ipcache and their identities'
 * entries in the policy maps, the ordering of ../shared/DESIGN.md. The agent learns the answer as
 * any other, adds the keys of the address's other names, and takes back an entry it did not keep
 * (`AgentFqdn.settlePrewritten`).
 *
 * Why that is never more permissive than the agent would be:
 * - Selectors: an address with no /32 entry is one the agent has not given an identity (it writes
 *   every address it selects), so the agent's keys for it are this name's plus any of names it has
 *   not pushed yet: a superset. toFQDNs selects only in allow rules, so fewer keys allow less. A
 *   worker with older selectors computes fewer or other keys: an identity of those allows no more
 *   than the selectors it was allocated for, which a policy in force named.
 * - Prefixes: read from the ipcache, before and after the write, not from the table.
 * - An identity the agent retires as the worker writes it: its entries go, so its lookups meet the
 *   wildcard entries only; the table lists no identity with a deny entry of its own, so those
 *   deny nothing its entries allowed (Regenerator.fqdnLearnTable).
 * A name no selector admits takes the round trip (a worker whose selectors are older than the
 * policy in force might release an answer the agent would hold), as does an address of a label
 * set with no identity yet or one the ipcache already holds.
 */
import { isIPv4 } from 'node:net';
import { fqdnLearnKey, SelectorIndex } from '../fqdn/index.js';
import type { FqdnLearnTable, PlannedIp } from './protocol.js';

export class FqdnPrelearn {
  #selectorsVersion = -1;
  #selectors = new SelectorIndex();
  #identities = new Map<string, number>();
  #ready = false;

  setTable(t: FqdnLearnTable): void {
    // Compiled again (RE2 per pattern) only when they changed: most tables bring new identities.
    if (t.selectorsVersion !== this.#selectorsVersion) {
      this.#selectors = new SelectorIndex(t.selectors);
      this.#selectorsVersion = t.selectorsVersion;
    }
    this.#identities = new Map(t.identities);
    this.#ready = true;
  }

  /**
   * The identity each IPv4 address of an answer to `qname` joins, when the table has one for every
   * address's label set; null otherwise (before a table, a name no selector admits). `prefixIdentity(ip)`:
   * what the ipcache gives the address now (its longest prefix's identity, `world` when none).
   * IPv6 addresses are left out: the ipcache is IPv4-only.
   */
  plan(qname: string, ips: readonly string[], prefixIdentity: (ip: string) => number): PlannedIp[] | null {
    if (!this.#ready) return null;
    const keys = this.#selectors.selectorsFor(qname);
    if (keys.length === 0) return null;
    const out: PlannedIp[] = [];
    for (const ip of ips) {
      if (!isIPv4(ip)) continue;
      const prefix = prefixIdentity(ip);
      const identity = this.#identities.get(fqdnLearnKey(prefix, keys));
      if (identity === undefined) return null;
      out.push({ ip, identity, prefixIdentity: prefix });
    }
    return out.length > 0 ? out : null;
  }
}
