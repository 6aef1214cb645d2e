/**
 * Security labels: `source:key=value`, as Cilium writes them.
 *
 * Sources we use: `k8s` (pod and namespace labels), `reserved` (reserved identities), `cidr`
 * (CIDR identities), `fqdn` (identities of IPs learnt from DNS), `any` (a selector key that
 * matches every source), `unspec`.
 */

export interface Label {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

export const LABEL_SOURCE = {
  any: 'any',
  k8s: 'k8s',
  reserved: 'reserved',
  cidr: 'cidr',
  fqdn: 'fqdn',
  unspec: 'unspec',
} as const;

/** Well-known label keys the policy engine reads. */
export const LABEL_KEY = {
  podNamespace: 'io.kubernetes.pod.namespace',
  cluster: 'io.cilium.k8s.policy.cluster',
  serviceAccount: 'io.cilium.k8s.policy.serviceaccount',
  namespaceLabelPrefix: 'io.cilium.k8s.namespace.labels.',
  namespaceName: 'kubernetes.io/metadata.name',
} as const;

/**
 * Parses `source:key=value`. Without a source the label's source is `any`; without `=` the value
 * is empty. `cidr:` keys keep every `:` after the source (IPv6 prefixes).
 */
export function parseLabel(s: string): Label {
  let source: string = LABEL_SOURCE.any;
  let rest = s;
  const colon = s.indexOf(':');
  const eq = s.indexOf('=');
  if (colon > 0 && (eq < 0 || colon < eq)) {
    source = s.slice(0, colon);
    rest = s.slice(colon + 1);
  } else if (colon === 0) {
    rest = s.slice(1);
  }
  const e = rest.indexOf('=');
  if (e < 0) return { source, key: rest, value: '' };
  return { source, key: rest.slice(0, e), value: rest.slice(e + 1) };
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
