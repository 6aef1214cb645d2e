/**
 * Security labels: `source:key=value`, as Cilium writes them (cilium `pkg/labels`).
 *
 * Sources Cilium uses: `k8s` (pod and namespace labels), `container` (container runtime),
 * `reserved` (reserved identities), `cidr` / `cidrgroup` (CIDR identities), `fqdn` (IPs learnt
 * from DNS), `node` (remote nodes), `cni`, `directory`, `unspec` (no source given) and `any` (a
 * selector key that matches every source).
 */

export interface Label {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

export const LABEL_SOURCE = {
  any: 'any',
  k8s: 'k8s',
  container: 'container',
  reserved: 'reserved',
  cidr: 'cidr',
  cidrgroup: 'cidrgroup',
  fqdn: 'fqdn',
  node: 'node',
  cni: 'cni',
  directory: 'directory',
  unspec: 'unspec',
} as const;

/** The sources Cilium defines (`pkg/labels` LabelSource*). */
export const KNOWN_LABEL_SOURCES: ReadonlySet<string> = new Set(Object.values(LABEL_SOURCE));

/** Well-known label keys the policy engine reads. */
export const LABEL_KEY = {
  podNamespace: 'io.kubernetes.pod.namespace',
  cluster: 'io.cilium.k8s.policy.cluster',
  serviceAccount: 'io.cilium.k8s.policy.serviceaccount',
  namespaceLabelPrefix: 'io.cilium.k8s.namespace.labels.',
  namespaceName: 'kubernetes.io/metadata.name',
} as const;

/**
 * Splits off the source as Cilium's `ParseSource` does: the text before the first `:` is the
 * source (`k8s:app=x` → k8s, `cidr:2001-db8--0/32` keeps the rest whole), `$host` is
 * `reserved:host` and `reserved.host` (no `:`) is `reserved:host`. A `:` after the first `=` is
 * part of the value (label values cannot hold one, so `a=b:c` is never meant as source `a=b`).
 * Returns source '' when none is given.
 */
export function splitLabelSource(s: string): { source: string; rest: string } {
  if (s.startsWith('$')) return { source: LABEL_SOURCE.reserved, rest: s.slice(1) };
  const colon = s.indexOf(':');
  const eq = s.indexOf('=');
  if (colon >= 0 && (eq < 0 || colon < eq)) return { source: s.slice(0, colon), rest: s.slice(colon + 1) };
  if (s.startsWith(`${LABEL_SOURCE.reserved}.`)) return { source: LABEL_SOURCE.reserved, rest: s.slice(LABEL_SOURCE.reserved.length + 1) };
  return { source: '', rest: s };
}

function splitKeyValue(source: string, rest: string): Label {
  const e = rest.indexOf('=');
  if (e < 0) return { source, key: rest, value: '' };
  // Cilium: `reserved:=host` is the key `host`.
  if (e === 0 && source === LABEL_SOURCE.reserved) return { source, key: rest.slice(1), value: '' };
  return { source, key: rest.slice(0, e), value: rest.slice(e + 1) };
}

/**
 * Cilium's `ParseLabel`: `[source:]key[=value]`; without a source the label's source is
 * `unspec`; without `=` the value is empty. An empty source (`:key`) is `unspec` too.
 */
export function parseLabel(s: string): Label {
  const { source, rest } = splitLabelSource(s);
  return splitKeyValue(source === '' ? LABEL_SOURCE.unspec : source, rest);
}

/**
 * Cilium's `ParseSelectLabel`: as parseLabel, but a label without a source selects every source
 * (`any`), as a key in a policy selector does.
 */
export function parseSelectLabel(s: string): Label {
  const l = parseLabel(s);
  return l.source === LABEL_SOURCE.unspec ? { ...l, source: LABEL_SOURCE.any } : l;
}

export function formatLabel(l: Label): string {
  return l.value === '' ? `${l.source}:${l.key}` : `${l.source}:${l.key}=${l.value}`;
}

export function label(source: string, key: string, value = ''): Label {
  return { source, key, value };
}

export interface EndpointLabelInput {
  readonly namespace: string;
  readonly podLabels: Readonly<Record<string, string>>;
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  readonly serviceAccount?: string;
  readonly cluster?: string;
  /** Labels of other sources than k8s (e.g. `container:`), kept as they are. */
  readonly otherLabels?: readonly Label[];
}

/**
 * The labels Cilium derives for a pod: its own labels, its namespace, cluster, service account and
 * the namespace's labels (which always include `kubernetes.io/metadata.name=<namespace>`).
 */
export function endpointLabels(input: EndpointLabelInput): Label[] {
  const out: Label[] = [];
  for (const [k, v] of Object.entries(input.podLabels)) out.push(label('k8s', k, v));
  out.push(label('k8s', LABEL_KEY.podNamespace, input.namespace));
  out.push(label('k8s', LABEL_KEY.cluster, input.cluster ?? 'default'));
  out.push(label('k8s', LABEL_KEY.serviceAccount, input.serviceAccount ?? 'default'));
  const nsLabels: Record<string, string> = { ...(input.namespaceLabels ?? {}) };
  nsLabels[LABEL_KEY.namespaceName] = input.namespace;
  for (const [k, v] of Object.entries(nsLabels)) {
    out.push(label('k8s', `${LABEL_KEY.namespaceLabelPrefix}${k}`, v));
  }
  out.push(...(input.otherLabels ?? []));
  return dedupeLabels(out);
}

/** Removes duplicate (source, key) pairs, the later one winning, and sorts by source then key. */
export function dedupeLabels(labels: readonly Label[]): Label[] {
  const m = new Map<string, Label>();
  for (const l of labels) m.set(`${l.source}:${l.key}`, l);
  return [...m.values()].sort((a, b) =>
    a.source === b.source ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.source < b.source ? -1 : 1,
  );
}

/** Parses `k=v,k2=v2` (the CLI's LABELS form) into a record. Empty input gives `{}`. */
export function parseLabelList(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const e = p.indexOf('=');
    if (e < 0) out[p] = '';
    else out[p.slice(0, e)] = p.slice(e + 1);
  }
  return out;
}
