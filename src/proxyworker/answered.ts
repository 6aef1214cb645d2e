/**
 * The `answered` round trip of a DNS answer (protocol.ts): what the agent tells the worker, and
 * what the worker then holds as confirmed (known-answers.ts). Only the IPs the agent says the
 * datapath was taught are confirmed: an answer that taught nothing (an invalid endpoint id, no
 * valid IP: NameManager.onAnswer ignores it) confirms nothing, so a later answer with the same
 * name and IPs from a real endpoint still waits for the datapath.
 */
import type { DnsAnswer } from '../dnsproxy/index.js';
import type { KnownAnswers } from './known-answers.js';

/** The `answered` fields besides `t` and `id`. */
export interface AnsweredReply {
  readonly error?: string;
  readonly confirmed?: boolean;
  readonly epoch?: number;
  /** The answer's IPs (as the worker sent them) the datapath holds; only these are confirmed. */
  readonly ips?: readonly string[];
}

/**
 * The reply to an answer from what AgentFqdn.onAnswer resolved with (`{ timedOut, epoch, ips }`):
 * confirmed only when it did not time out, has an epoch and taught at least one IP.
 */
export function answeredReply(result: unknown): AnsweredReply {
  const x = result as { timedOut?: boolean; epoch?: number; ips?: readonly string[] } | undefined;
  if (x?.epoch === undefined || x.timedOut === true || !Array.isArray(x.ips) || x.ips.length === 0) return {};
  return { confirmed: true, epoch: x.epoch, ips: x.ips };
}

/** The worker's side: records the confirmed pairs of `answer` (sent at `sentAt`, ms), if any. */
export function confirmAnswered(known: KnownAnswers, answer: DnsAnswer, reply: AnsweredReply, sentAt: number): void {
  if (reply.confirmed !== true || reply.epoch === undefined || !reply.ips || reply.ips.length === 0) return;
  // Never more than the answer itself held (the agent names a subset of them).
  const mine = new Set(answer.ips);
  const ips = reply.ips.filter((ip) => mine.has(ip));
  if (ips.length > 0) known.confirm(answer.qname, ips, answer.ttl, sentAt, reply.epoch);
}
