/**
 * Policy deltas for the proxy workers by entry, not whole policies: an FQDN update gives an
 * endpoint with toFQDNs rules the entries of the new identities beside the thousands it holds,
 * and sending the whole policy again per update cost the agent a structured clone of every entry
 * (and the worker its decoding) for each batch of answers. Entries are compared by reference (the
 * policy engine shares unchanged entries between policies); lookups do not depend on entry order
 * (src/policy/resolve/lookup.ts precedence), so the patched list keeps the survivors and appends.
 */
import type { DirectionPolicy, EndpointPolicy, MapEntry } from '../policy/index.js';
import type { DirectionPatch } from './protocol.js';

/** A patch only pays while it is this small a share of the entries (else the whole policy goes). */
const MAX_SHARE = 0.5;

/**
 * The patch from `sent` (the entries the worker holds, in its order) to `next`, and the policy the
 * worker holds after it; null when a whole policy is the better message (flags changed, large change).
 */
export function policyPatch(sent: EndpointPolicy, next: EndpointPolicy): { ingress: DirectionPatch; egress: DirectionPatch; result: EndpointPolicy } | null {
  const ingress = directionPatch(sent.ingress, next.ingress);
  const egress = directionPatch(sent.egress, next.egress);
  if (!ingress || !egress) return null;
  return { ingress: ingress.patch, egress: egress.patch, result: { ingress: ingress.result, egress: egress.result } };
}

function directionPatch(sent: DirectionPolicy, next: DirectionPolicy): { patch: DirectionPatch; result: DirectionPolicy } | null {
  if (sent.enforced !== next.enforced) return null;
  if (sent.entries === next.entries) return { patch: { removed: [], added: [] }, result: sent };
  const nextSet = new Set(next.entries);
  const sentSet = new Set(sent.entries);
  const removed: number[] = [];
  sent.entries.forEach((e, i) => {
    if (!nextSet.has(e)) removed.push(i);
  });
  const added = next.entries.filter((e) => !sentSet.has(e));
  if (removed.length + added.length > MAX_SHARE * Math.max(1, next.entries.length)) return null;
  const patch = { removed, added };
  return { patch, result: applyDirectionPatch(sent, patch) };
}

/** `dir` after `patch` (a new object; `dir` is not changed). Throws RangeError on an index out of range. */
export function applyDirectionPatch(dir: DirectionPolicy, patch: DirectionPatch): DirectionPolicy {
  if (patch.removed.length === 0 && patch.added.length === 0) return dir;
  const gone = new Set(patch.removed);
  for (const i of gone) if (!Number.isInteger(i) || i < 0 || i >= dir.entries.length) throw new RangeError(`policy patch removes entry ${i} of ${dir.entries.length}`);
  const entries: MapEntry[] = [];
  dir.entries.forEach((e, i) => {
    if (!gone.has(i)) entries.push(e);
  });
  entries.push(...patch.added);
  return { enforced: dir.enforced, entries };
}
