/**
 * One side of a traced flow, from what the user gave to the identity Cilium would give it.
 *
 *   {labels, namespace?, namespaceLabels?, namedPorts?}
 *     ├─ a `reserved:` label (or `entity`)  → a reserved identity (host, world, remote-node, …)
 *     └─ pod labels `[k8s:|container:|unspec:]key=value`
 *          ├─ io.kubernetes.pod.namespace, io.cilium.k8s.policy.serviceaccount,
 *          │  io.cilium.k8s.policy.cluster, io.cilium.k8s.namespace.labels.*  → honoured as given
 *          └─ the rest → endpointLabels() (Cilium's derived labels fill what was not given)
 *
 * Label text is parsed as Cilium's `pkg/labels` ParseLabel does (source up to the first `:`); a
 * label without a source is a pod label (`k8s:`), as every label of a Kubernetes pod is. Bad or
 * contradictory input throws TraceInputError (a RangeError) naming the side and the field.
 */
import { endpointLabels, LABEL_KEY, LABEL_SOURCE, splitLabelSource } from '../api/labels.js';
import type { Label } from '../api/labels.js';
import { RESERVED_IDENTITY, reservedIdentities } from './identity.js';
import type { NamedPort } from './identity.js';

/** Transport protocols a container port can have (Kubernetes `ContainerPort.protocol`). */
export type NamedPortProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface TraceEndpointInput {
  /**
   * Labels, key → value. A key may carry Cilium's source (`k8s:app`, `container:x`, `unspec:x`,
   * `reserved:host`); without one it is a pod label (`k8s`). `any:` is read as a pod label too.
   */
  readonly labels?: Readonly<Record<string, string>>;
  /** The pod's namespace; 'default' when neither this nor the namespace label is given. */
  readonly namespace?: string;
  /** The namespace's labels besides kubernetes.io/metadata.name. */
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  /** The endpoint's named container ports: name → port (protocol TCP unless given). */
  readonly namedPorts?: Readonly<Record<string, { readonly port: number; readonly protocol?: NamedPortProtocol }>>;
  /** A Cilium entity instead of a pod (`host`, `world`, …); the same as the label `reserved:<entity>`. */
  readonly entity?: string;
}

/** The field of a side an input error is about, so a caller can name its own flag for it. */
export type TraceInputField = 'labels' | 'namespace' | 'namespaceLabels' | 'namedPorts' | 'entity' | 'cidr';

/** Bad or contradictory trace input: which side, which field, and why. */
export class TraceInputError extends RangeError {
  readonly side: 'src' | 'dst';
  readonly field: TraceInputField;
  constructor(side: 'src' | 'dst', field: TraceInputField, message: string) {
    super(message);
    this.name = 'TraceInputError';
    this.side = side;
    this.field = field;
  }
}

/** How a reserved identity is subject to policy, as in Cilium. */
export type EntityPolicy =
  /** Host firewall policies (CiliumClusterwideNetworkPolicy with nodeSelector) only. */
  | 'host'
  /** A local endpoint with a reserved label (init, health, ingress): rules whose endpointSelector names it. */
  | 'endpoint'
  /** Not a local endpoint: no policy of its own (world, remote-node, kube-apiserver, unmanaged). */
  | 'none';

export type TraceSide =
  | {
      readonly kind: 'endpoint';
      readonly labels: readonly Label[];
      readonly namespace: string;
      /** The pod labels as given (for the description). */
      readonly given: readonly Label[];
      readonly namedPorts: Readonly<Record<string, NamedPort>>;
    }
  | {
      readonly kind: 'entity';
      /** Cilium's entity name: host, world, remote-node, … */
      readonly entity: string;
      readonly id: number;
      readonly labels: readonly Label[];
      readonly policy: EntityPolicy;
    };

/** Entities that name one identity, with the reserved labels that identity carries (Cilium `pkg/labels`). */
const ENTITY_POLICY: Readonly<Record<string, EntityPolicy>> = {
  host: 'host',
  world: 'none',
  'world-ipv4': 'none',
  'world-ipv6': 'none',
  'remote-node': 'none',
  'kube-apiserver': 'none',
  unmanaged: 'none',
  init: 'endpoint',
  health: 'endpoint',
  ingress: 'endpoint',
};
/** Entities of `fromEntities`/`toEntities` that select several identities, not one. */
const GROUP_ENTITIES = new Set(['cluster', 'all', 'none', 'unknown']);

function entitySide(which: 'src' | 'dst', field: TraceInputField, names: readonly string[]): TraceSide {
  const want = [...new Set(names)].sort();
  for (const n of want) {
    if (GROUP_ENTITIES.has(n)) throw new TraceInputError(which, field, `${which}: reserved:${n} is not one identity (${n === 'unknown' ? 'identity 0 is never a peer' : 'it is a group of identities'}); trace one of host, remote-node, kube-apiserver, world, world-ipv4, world-ipv6, health, init, ingress, unmanaged`);
    if (!(n in ENTITY_POLICY)) throw new TraceInputError(which, field, `${which}: reserved:${n} is not a reserved identity; Cilium's are ${Object.keys(ENTITY_POLICY).join(', ')}`);
  }
  const key = want.join(',');
  // The kube-apiserver on this node is the host identity with both labels (Cilium's host identity
  // gains reserved:kube-apiserver); elsewhere it is identity 7.
  if (key === 'host,kube-apiserver') {
    return { kind: 'entity', entity: 'host', id: RESERVED_IDENTITY.host, labels: want.map((n) => ({ source: LABEL_SOURCE.reserved, key: n, value: '' })), policy: 'host' };
  }
  const ids = reservedIdentities();
  const byName = (n: string) => ids.find((i) => i.labels[0]?.key === n);
  const id = want.length === 1 ? byName(want[0]!) : key === 'kube-apiserver,remote-node' ? byName('kube-apiserver') : undefined;
  if (!id) throw new TraceInputError(which, field, `${which}: no reserved identity has exactly the labels ${want.map((n) => `reserved:${n}`).join(', ')}`);
  const entity = id.labels[0]!.key;
  return { kind: 'entity', entity, id: id.id, labels: id.labels, policy: ENTITY_POLICY[entity]! };
}

/** Kubernetes IANA_SVC_NAME: 1–15 of [a-z0-9-], at least one letter, no leading/trailing/double '-'. */
const SVC_NAME = /^[a-z0-9](?:[a-z0-9-]{0,13}[a-z0-9])?$/;
const PORT_PROTO: Readonly<Record<NamedPortProtocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };
/** A named port's protocol number as a trace input names it (an endpoint's ports given to a trace). */
export const NAMED_PORT_PROTOCOL: Readonly<Record<number, NamedPortProtocol>> = Object.fromEntries(
  Object.entries(PORT_PROTO).map(([name, n]) => [n, name as NamedPortProtocol]),
);

function namedPorts(which: 'src' | 'dst', given: TraceEndpointInput['namedPorts']): Record<string, NamedPort> {
  const out: Record<string, NamedPort> = {};
  for (const [name, np] of Object.entries(given ?? {})) {
    if (!SVC_NAME.test(name) || !/[a-z]/.test(name) || name.includes('--')) {
      throw new TraceInputError(which, 'namedPorts', `${which}: named port ${JSON.stringify(name)} is not a container port name (1-15 lower-case letters, digits and '-', with a letter)`);
    }
    const port = (np as { port?: unknown } | null)?.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TraceInputError(which, 'namedPorts', `${which}: named port ${name}: ${JSON.stringify(port)} is not a port from 1 to 65535`);
    }
    const protoName = np.protocol ?? 'TCP';
    const protocol = PORT_PROTO[protoName];
    if (protocol === undefined) throw new TraceInputError(which, 'namedPorts', `${which}: named port ${name}: protocol must be TCP, UDP or SCTP`);
    out[name] = { port, protocol };
  }
  return out;
}

/** Pod-label sources: what a Kubernetes pod's labels can carry. */
const POD_SOURCES = new Set<string>(['', LABEL_SOURCE.k8s, LABEL_SOURCE.any]);
const OTHER_ENDPOINT_SOURCES = new Set<string>([LABEL_SOURCE.container, LABEL_SOURCE.unspec, LABEL_SOURCE.cni]);

/**
 * The identity labels of one side. `which` names the side in errors. Throws TraceInputError on
 * an unknown label source, a label of a source no endpoint carries, pod labels mixed with a
 * reserved one, or a label that contradicts `namespace` / `namespaceLabels`.
 */
export function traceSide(which: 'src' | 'dst', input: TraceEndpointInput): TraceSide {
  const podLabels: Record<string, string> = {};
  const other: Label[] = [];
  const reserved: string[] = [];
  let nsFromLabel: string | undefined;
  let serviceAccount: string | undefined;
  let cluster: string | undefined;
  const nsLabelsFromLabels: Record<string, string> = {};
  for (const [text, value] of Object.entries(input.labels ?? {})) {
    const { source, rest } = splitLabelSource(text);
    const shown = value === '' ? text : `${text}=${value}`;
    if (rest === '' || rest.includes('=')) throw new TraceInputError(which, 'labels', `${which}: label ${JSON.stringify(shown)} has no key`);
    if (source === LABEL_SOURCE.reserved) {
      if (value !== '') throw new TraceInputError(which, 'labels', `${which}: reserved labels have no value: write reserved:${rest}`);
      reserved.push(rest);
      continue;
    }
    if (source === LABEL_SOURCE.cidr) throw new TraceInputError(which, 'labels', `${which}: ${shown} is a CIDR identity label; give the address as the ${which} CIDR instead`);
    if (OTHER_ENDPOINT_SOURCES.has(source)) {
      if (rest === LABEL_KEY.podNamespace || rest === LABEL_KEY.serviceAccount || rest === LABEL_KEY.cluster || rest.startsWith(LABEL_KEY.namespaceLabelPrefix)) {
        throw new TraceInputError(which, 'labels', `${which}: ${shown}: Cilium derives ${rest} as a k8s: label; write k8s:${rest} or ${rest}`);
      }
      other.push({ source, key: rest, value });
      continue;
    }
    if (!POD_SOURCES.has(source)) {
      const known = [LABEL_SOURCE.k8s, LABEL_SOURCE.container, LABEL_SOURCE.unspec, LABEL_SOURCE.reserved, LABEL_SOURCE.any];
      throw new TraceInputError(
        which,
        'labels',
        Object.values(LABEL_SOURCE).includes(source as never)
          ? `${which}: ${shown}: an endpoint has no labels of source ${source}: (use ${known.join(':, ')}:)`
          : `${which}: ${shown}: unknown label source ${JSON.stringify(source)} (Cilium's endpoint label sources: ${known.join(', ')})`,
      );
    }
    // `org`, `k8s:org` and `any:org` are one pod label: two values for it would lose one.
    const seen = rest === LABEL_KEY.podNamespace ? nsFromLabel : rest === LABEL_KEY.serviceAccount ? serviceAccount : rest === LABEL_KEY.cluster ? cluster : podLabels[rest];
    if (seen !== undefined && seen !== value) throw new TraceInputError(which, 'labels', `${which}: the label ${rest} is given twice (${seen} and ${value})`);
    if (rest === LABEL_KEY.podNamespace) nsFromLabel = value;
    else if (rest === LABEL_KEY.serviceAccount) serviceAccount = value;
    else if (rest === LABEL_KEY.cluster) cluster = value;
    else if (rest.startsWith(LABEL_KEY.namespaceLabelPrefix) && rest.length > LABEL_KEY.namespaceLabelPrefix.length) nsLabelsFromLabels[rest.slice(LABEL_KEY.namespaceLabelPrefix.length)] = value;
    else podLabels[rest] = value;
  }
  if (input.entity !== undefined) {
    if (reserved.length && !reserved.includes(input.entity)) throw new TraceInputError(which, 'entity', `${which}: entity ${input.entity} disagrees with the label reserved:${reserved[0]}`);
    reserved.push(input.entity);
  }
  const hasPod = Object.keys(podLabels).length > 0 || other.length > 0 || nsFromLabel !== undefined || serviceAccount !== undefined || cluster !== undefined || Object.keys(nsLabelsFromLabels).length > 0;
  if (reserved.length) {
    const field: TraceInputField = input.entity !== undefined ? 'entity' : 'labels';
    if (hasPod) throw new TraceInputError(which, field, `${which}: reserved:${reserved[0]} is an entity, not a pod: it cannot have pod labels as well`);
    if (input.namespace !== undefined || input.namespaceLabels !== undefined) throw new TraceInputError(which, 'namespace', `${which}: reserved:${reserved[0]} is not in a namespace`);
    if (input.namedPorts !== undefined && Object.keys(input.namedPorts).length) throw new TraceInputError(which, 'namedPorts', `${which}: reserved:${reserved[0]} has no container ports`);
    return entitySide(which, field, reserved);
  }

  if (nsFromLabel !== undefined && input.namespace !== undefined && nsFromLabel !== input.namespace) {
    throw new TraceInputError(which, 'namespace', `${which}: the namespace ${input.namespace} disagrees with the label ${LABEL_KEY.podNamespace}=${nsFromLabel}`);
  }
  const namespace = nsFromLabel ?? input.namespace ?? 'default';
  if (namespace === '') throw new TraceInputError(which, nsFromLabel !== undefined ? 'labels' : 'namespace', `${which}: the namespace is empty`);
  const nsLabels: Record<string, string> = { ...(input.namespaceLabels ?? {}) };
  for (const [k, v] of Object.entries(nsLabelsFromLabels)) {
    if (k in nsLabels && nsLabels[k] !== v) {
      throw new TraceInputError(which, 'namespaceLabels', `${which}: the namespace label ${k}=${nsLabels[k]} disagrees with the label ${LABEL_KEY.namespaceLabelPrefix}${k}=${v}`);
    }
    nsLabels[k] = v;
  }
  const metaName = nsLabels[LABEL_KEY.namespaceName];
  if (metaName !== undefined && metaName !== namespace) {
    const field: TraceInputField = LABEL_KEY.namespaceName in nsLabelsFromLabels ? 'labels' : 'namespaceLabels';
    throw new TraceInputError(which, field, `${which}: the namespace label ${LABEL_KEY.namespaceName}=${metaName} disagrees with the namespace ${namespace}`);
  }
  const labels = endpointLabels({
    namespace,
    podLabels,
    namespaceLabels: nsLabels,
    ...(serviceAccount !== undefined ? { serviceAccount } : {}),
    ...(cluster !== undefined ? { cluster } : {}),
    otherLabels: other,
  });
  const given = [...Object.entries(podLabels).map(([key, value]) => ({ source: LABEL_SOURCE.k8s, key, value })), ...other];
  return { kind: 'endpoint', labels, namespace, given, namedPorts: namedPorts(which, input.namedPorts) };
}
