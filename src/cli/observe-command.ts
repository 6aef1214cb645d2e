/**
 * `membrane observe` over the agent's Hubble observer API (gRPC, Hubble's observer.proto): the
 * same request the hubble CLI sends (`number`, `follow`, whitelist/blacklist of FlowFilter), the
 * flows printed by the observe printers exactly as before.
 */
import { membraneError } from '../errors/index.js';
import { ObserverClient } from '../hubble/index.js';
import type { FilterSet, Flow } from '../observe/index.js';

export const MAX_LAST = 1_000_000;

/** `--last N`: a whole number from 1 to 1 000 000 (Hubble's `number`; 0 would mean "all"). */
export function lastFlows(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1 || n > MAX_LAST) {
    throw membraneError('MEMBRANE_ERR_CLI_USAGE', `--last ${raw}: expected a whole number from 1 to ${MAX_LAST}`);
  }
  return n;
}

export interface ObserveRequest {
  last: number;
  follow: boolean;
  filters: FilterSet;
  print: (flow: Flow) => void;
}

/**
 * Prints the last `last` matching flows, then (with `follow`) every new one until SIGINT.
 * Errors: the agent's (e.g. MEMBRANE_ERR_OBSERVE_FILTER), or MEMBRANE_ERR_AGENT_UNREACHABLE.
 */
export async function observeFlows(server: string, req: ObserveRequest): Promise<void> {
  const client = new ObserverClient(server);
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  if (req.follow) process.once('SIGINT', onSigint);
  try {
    await client.getFlows({ number: req.last, follow: req.follow, filters: req.filters }, req.print, ac.signal, (n) =>
      process.stderr.write(`EVENTS LOST: HUBBLE_RING_BUFFER ${n}\n`),
    );
  } finally {
    process.off('SIGINT', onSigint);
    client.close();
  }
}
