/**
 * Diagnostics channels of the proxy, all named here as `membrane:l7proxy:<event>`. Subscribers
 * (metrics, tracing) get the exchange; publishing costs nothing when nobody listens.
 */

import { channel } from 'node:diagnostics_channel';

export const channels = {
  /** `{ exchange }` after the policy decision. */
  request: channel('membrane:l7proxy:request'),
  /** `{ exchange }` when the exchange ended (relayed, denied, failed or aborted). */
  done: channel('membrane:l7proxy:done'),
  /** `{ reason, conn }` when a connection is refused at accept. */
  rejected: channel('membrane:l7proxy:rejected'),
} as const;
