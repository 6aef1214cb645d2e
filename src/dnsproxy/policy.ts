/**
 * Stage 2, policy: the verdict for one query is the policy module's `decideL7` with
 * `{ kind: 'dns', qname }` — the same function the HTTP proxy and `policy trace --dns-name` call —
 * on the flow (source endpoint and identity, DNS server identity, port, protocol). Anything
 * unexpected (no policy state, an exception) denies.
 */

import { decideL7, type DirectionPolicy, type L7Flow } from '../policy/index.js';
import type { DnsProxyDeps, DnsTransport, HostPort } from './types.js';

export interface DnsDecision {
  allowed: boolean;
  reason: string;
  /** `namespace/name` of the policies that decided. */
  policies: string[];
  /** The DNS server's identity as the policy state knows it (for flows and the log). */
  dstIdentity: number;
}

export function evaluateQuery(
  l7Flow: DnsProxyDeps['l7Flow'],
  src: { ip: string; port: number; identity: number },
  dst: HostPort,
  protocol: DnsTransport,
  qname: string,
): DnsDecision {
  let dstIdentity = 0;
  try {
    const flow = l7Flow(src, dst, protocol);
    dstIdentity = flow.dstIdentity;
    const d = decideL7(flow, { kind: 'dns', qname });
    return { allowed: d.allowed, reason: d.reason, policies: [...d.policies], dstIdentity };
  } catch (err) {
    return { allowed: false, reason: `policy error: ${err instanceof Error ? err.message : String(err)}`, policies: [], dstIdentity };
  }
}

/** Decisions kept per pair of policies, at most (then that pair's are dropped and start again). */
export const DECISIONS_PER_POLICY_PAIR = 4096;

/** A side without a local endpoint (`undefined`) or without policy state (`null`), as a WeakMap key. */
const NOT_LOCAL = {};
const NO_STATE = {};

function sideKey(p: DirectionPolicy | null | undefined): object {
  return p === undefined ? NOT_LOCAL : p === null ? NO_STATE : p;
}

/**
 * `evaluateQuery` with its decisions remembered. `decideL7` is a function of the flow (the
 * source's egress and the destination's ingress DirectionPolicy, both identities, protocol, port)
 * and the name only; a DirectionPolicy is never changed in place (a new policy is a new object,
 * as src/policy/resolve/lookup.ts relies on when it indexes entries by array), so a decision is
 * kept under the two DirectionPolicy objects it was judged against (weakly: a replaced policy
 * takes its decisions with it) and the rest of the flow and the name. The flow itself is asked
 * of `l7Flow` every time: identities come from the live ipcache.
 */
export class DnsDecisions {
  readonly #bySrc = new WeakMap<object, WeakMap<object, Map<string, DnsDecision>>>();

  evaluate(l7Flow: DnsProxyDeps['l7Flow'], src: { ip: string; port: number; identity: number }, dst: HostPort, protocol: DnsTransport, qname: string): DnsDecision {
    let flow: L7Flow;
    try {
      flow = l7Flow(src, dst, protocol);
    } catch (err) {
      return { allowed: false, reason: `policy error: ${err instanceof Error ? err.message : String(err)}`, policies: [], dstIdentity: 0 };
    }
    const srcKey = sideKey(flow.srcPolicy === undefined ? undefined : (flow.srcPolicy?.egress ?? null));
    const dstKey = sideKey(flow.dstPolicy === undefined ? undefined : (flow.dstPolicy?.ingress ?? null));
    let byDst = this.#bySrc.get(srcKey);
    if (!byDst) {
      byDst = new WeakMap();
      this.#bySrc.set(srcKey, byDst);
    }
    let decisions = byDst.get(dstKey);
    if (!decisions) {
      decisions = new Map();
      byDst.set(dstKey, decisions);
    }
    const key = `${flow.srcIdentity} ${flow.dstIdentity} ${flow.protocol} ${flow.dport} ${qname}`;
    const known = decisions.get(key);
    if (known) return known;
    const decision = evaluateQuery(() => flow, src, dst, protocol, qname);
    // A policy error is not remembered: the next query asks again.
    if (decision.reason.startsWith('policy error: ')) return decision;
    if (decisions.size >= DECISIONS_PER_POLICY_PAIR) decisions.clear();
    decisions.set(key, Object.freeze(decision));
    return decision;
  }
}
