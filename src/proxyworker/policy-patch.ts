/**
 * Policy deltas for the proxy workers by entry, not whole policies: an FQDN update gives an
 * endpoint with toFQDNs rules the entries of the new identities beside the thousands it holds,
 * and sending the whole policy again per update cost the agent a structured clone of every entry
 * (and the worker its decoding) for each batch of answers. Entries are compared by reference (the
 * policy engine shares unchanged entries between policies); lookups do not depend on entry order
 * (src/policy/resolve/lookup.ts precedence), so the patched list keeps the survivors and appends.
 */
import { appendEntries, extendsList, type DirectionPolicy, type EndpointPolicy, type MapEntry } from '../policy/index.js';
import type { DirectionPatch } from './protocol.js';

/** A patch only pays while it is this small a share of the entries (else the whole policy goes). */
const MAX_SHARE = 0.5;

/**
 * The patch from `sent` (the entries the worker holds, in its order) to `next`, and the policy the
 * worker holds after it; null when a whole policy is the better message (flags changed, large change).
 * `prev`: the agent's policy `sent` holds the entries of (same entries, maybe another order); when
 * `next` only appends to it (an FQDN update of new addresses) the patch is its tail, found
 * without a set of either side's thousands of entries.
 */
export function policyPatch(
  sent: EndpointPolicy,
  next: EndpointPolicy,
  prev?: EndpointPolicy | null,
): { ingress: DirectionPatch; egress: DirectionPatch; result: EndpointPolicy } | null {
  const ingress = directionPatch(sent.ingress, next.ingress, prev?.ingress);
  const egress = directionPatch(sent.egress, next.egress, prev?.egress);
  if (!ingress || !egress) return null;
  return { ingress: ingress.patch, egress: egress.patch, result: { ingress: ingress.result, egress: egress.result } };
}

function directionPatch(sent: DirectionPolicy, next: DirectionPolicy, prev: DirectionPolicy | undefined): { patch: DirectionPatch; result: DirectionPolicy } | null {
  if (sent.enforced !== next.enforced) return null;
  if (sent.entries === next.entries) return { patch: { removed: [], added: [] }, result: sent };
  const tail = prev !== undefined && prev.enforced === next.enforced ? appended(prev.entries, next.entries) : null;
  if (tail !== null) {
    if (tail.length > MAX_SHARE * Math.max(1, next.entries.length)) return null;
    const patch = { removed: [], added: tail };
    return { patch, result: tail.length === 0 ? sent : { enforced: sent.enforced, entries: sent.entries.concat(tail) } };
  }
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

/** The entries `after` has beyond `before` when it starts with exactly `before`'s (same objects, same order); else null. */
function appended(before: readonly MapEntry[], after: readonly MapEntry[]): MapEntry[] | null {
  return extendsList(after, before) ? after.slice(before.length) : null;
}

/** `dir` after `patch` (a new object; `dir` is not changed). Throws RangeError on an index out of range. */
export function applyDirectionPatch(dir: DirectionPolicy, patch: DirectionPatch): DirectionPolicy {
  if (!Array.isArray(patch.added)) throw new RangeError('policy patch adds no list of entries');
  // Only added (an FQDN update's new addresses): no pass over the entries held, and lookups index
  // only the added ones (appendEntries).
  if (patch.removed.length === 0) return patch.added.length === 0 ? dir : { enforced: dir.enforced, entries: appendEntries(dir.entries, patch.added) };
  const gone = new Set(patch.removed);
  for (const i of gone) if (!Number.isInteger(i) || i < 0 || i >= dir.entries.length) throw new RangeError(`policy patch removes entry ${i} of ${dir.entries.length}`);
  const entries: MapEntry[] = [];
  dir.entries.forEach((e, i) => {
    if (!gone.has(i)) entries.push(e);
  });
  entries.push(...patch.added);
  return { enforced: dir.enforced, entries };
}
