/**
 * Diagnostics channels of the DNS proxy, all named here as `membrane:dnsproxy:<event>`.
 * Subscribers (metrics, tracing, benchmarks) get the exchange; publishing costs nothing when
 * nobody listens.
 */

import { channel } from 'node:diagnostics_channel';

export const channels = {
  /** `{ exchange }` after the policy decision. */
  query: channel('membrane:dnsproxy:query'),
  /**
   * `{ exchange }` when the learned IPs reached the datapath (or `onAnswer` failed), just before
   * the answer is released: `releaseDelayNs` is set, and the wait ended now.
   */
  released: channel('membrane:dnsproxy:released'),
  /** `{ exchange }` when the client was answered (relayed, refused, SERVFAIL) or the query dropped after parsing. */
  done: channel('membrane:dnsproxy:done'),
  /** `{ reason, client, server, protocol }` for a message dropped before policy (malformed, unknown source). */
  dropped: channel('membrane:dnsproxy:dropped'),
} as const;
