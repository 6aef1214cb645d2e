/**
 * CiliumCIDRGroup (cilium.io/v2alpha1 and v2, cluster-scoped): a named, labelled list of
 * external CIDRs that `fromCIDRSet`/`toCIDRSet` entries reference by name (`cidrGroupRef`) or by
 * labels (`cidrGroupSelector`). Source: cilium `pkg/k8s/apis/cilium.io/v2/cidrgroups_types.go`
 * (spec.externalCIDRs is required and may be empty; each entry is an `api.CIDR` in prefix form).
 */
import { Checker, has, join } from './check.js';
import type { JsonObject } from './check.js';
import { formatPrefix, parsePrefix } from './cidr.js';
import { cidrPeer } from './cnp.js';
import type { Label } from './labels.js';
import { selectorMatches } from './selector.js';
import type { CidrGroup, Peer, PolicyObject } from './types.js';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Checks spec/metadata.labels of a CiliumCIDRGroup document; problems go to `c`. */
export function parseCidrGroupObject(c: Checker, doc: JsonObject): CidrGroup | undefined {
  c.fields(doc, '', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  const before = c.issues.length;
  const labels: Record<string, string> = {};
  const meta = doc.metadata;
  if (typeof meta === 'object' && meta !== null && !Array.isArray(meta) && has(meta, 'labels')) {
    const lo = c.object(meta.labels, 'metadata.labels');
    for (const [k, v] of Object.entries(lo ?? {})) {
      const p = join('metadata.labels', k);
      const s = c.string(v, p);
      if (s === undefined) continue;
      if (k === '' || k.includes(':')) c.report(p, `invalid label key ${JSON.stringify(k)}`);
      else if (s.length > 63 || !LABEL_VALUE.test(s)) c.report(p, `invalid label value ${JSON.stringify(s)}: at most 63 characters of [A-Za-z0-9-_.], starting and ending with an alphanumeric`);
      else labels[k] = s;
    }
  }
  if (!has(doc, 'spec')) {
    c.report('spec', 'required field is missing');
    return undefined;
  }
  const spec = c.object(doc.spec, 'spec');
  if (!spec) return undefined;
  c.fields(spec, 'spec', ['externalCIDRs']);
  if (!has(spec, 'externalCIDRs')) {
    c.report('spec.externalCIDRs', 'required field is missing');
    return undefined;
  }
  const arr = c.array(spec.externalCIDRs, 'spec.externalCIDRs');
  const externalCIDRs: string[] = [];
  arr?.forEach((e, i) => {
    const p = join('spec.externalCIDRs', i);
    const s = c.string(e, p);
    if (s === undefined) return;
    const prefix = parsePrefix(s);
    if (!prefix) c.report(p, `invalid CIDR ${JSON.stringify(s)}: expected an address/prefix-length`);
    else externalCIDRs.push(formatPrefix(prefix));
  });
  if (c.issues.length > before) return undefined;
  return { labels, externalCIDRs: [...new Set(externalCIDRs)] };
}

/** The CiliumCIDRGroups among `policies` a `cidrGroup` peer names (by name or by labels). */
export function matchingCidrGroups(peer: Peer & { kind: 'cidrGroup' }, policies: readonly PolicyObject[]): PolicyObject[] {
  return policies.filter((p) => {
    if (p.cidrGroup === undefined) return false;
    if (peer.ref !== undefined) return p.name === peer.ref;
    const labels: Label[] = Object.entries(p.cidrGroup.labels).map(([key, value]) => ({ source: 'k8s', key, value }));
    return peer.selector !== undefined && selectorMatches(peer.selector, labels);
  });
}

/**
 * A `cidrGroup` peer as the CIDR peers it stands for: one per external CIDR of every group it
 * names, each with the rule's `except` prefixes of its family (so it selects exactly the CIDR
 * identities a `cidr:` entry with the same prefix and excepts would).
 */
export function expandCidrGroupPeer(peer: Peer & { kind: 'cidrGroup' }, policies: readonly PolicyObject[]): Peer[] {
  const except = peer.except.flatMap((e) => parsePrefix(e) ?? []);
  const out: Peer[] = [];
  for (const group of matchingCidrGroups(peer, policies)) {
    for (const text of group.cidrGroup!.externalCIDRs) {
      const prefix = parsePrefix(text);
      if (!prefix) continue;
      out.push(cidrPeer(prefix, except.filter((e) => e.family === prefix.family), `${peer.what} (${group.name}: ${text})`));
    }
  }
  return out;
}
