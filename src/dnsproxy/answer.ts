/**
 * What an allowed answer teaches: the IPs on the question's own answer chain (Cilium
 * `ExtractMsgDetails`, `pkg/fqdn/dnsproxy/proxy.go`): start at the question's name, follow CNAME
 * records whose owner is the current name, collect the A and AAAA records owned by a name on
 * that chain. A record owned by any other name teaches nothing, whatever the server put in the
 * answer section (a poisoned `evil.example. A 6.6.6.6` beside the real answer is relayed to the
 * client, as the server sent it, but never reaches the FQDN cache). Cilium rejects the whole
 * message on an off-chain record; keeping the chain's own IPs and ignoring the rest is the same
 * protection without failing the lookup.
 */

import { TYPE, type AnswerRecord } from './wire.js';

/** A chain longer than this (or a CNAME loop) stops being followed: resolvers give up at 8–16. */
export const MAX_CNAME_CHAIN = 16;

export interface AnswerDetails {
  /** The question's name, lower-case, trailing dot. */
  qname: string;
  /** A and AAAA addresses on the chain, in answer order, deduplicated. */
  ips: string[];
  /** CNAME targets in chain order, as the server wrote them (lower-case). */
  cnames: string[];
  /** Minimum TTL over the chain's CNAME, A and AAAA records (seconds); 0 without any. */
  ttl: number;
  /** Record types of the whole answer section, in order (Hubble `rrtypes`). */
  rrtypes: number[];
}

export function answerDetails(qname: string, answers: readonly AnswerRecord[]): AnswerDetails {
  const q = qname.toLowerCase();
  const chain = new Set<string>([q]);
  const cnames: string[] = [];
  let ttl = Number.POSITIVE_INFINITY;
  let current = q;
  for (let hop = 0; hop < MAX_CNAME_CHAIN; hop++) {
    const link = answers.find((a) => a.type === TYPE.CNAME && a.name.toLowerCase() === current && a.target !== undefined);
    if (!link) break;
    const target = link.target!.toLowerCase();
    ttl = Math.min(ttl, link.ttl);
    cnames.push(target);
    if (chain.has(target)) break;
    chain.add(target);
    current = target;
  }
  const ips = new Set<string>();
  for (const a of answers) {
    if ((a.type !== TYPE.A && a.type !== TYPE.AAAA) || a.ip === undefined) continue;
    if (!chain.has(a.name.toLowerCase())) continue;
    ttl = Math.min(ttl, a.ttl);
    ips.add(a.ip);
  }
  return { qname: q, ips: [...ips], cnames, ttl: Number.isFinite(ttl) ? ttl : 0, rrtypes: answers.map((a) => a.type) };
}
