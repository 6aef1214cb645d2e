/**
 * ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, kubernetes-sigs/network-policy-api
 * `apis/v1alpha2/clusternetworkpolicy_types.go`) → normalised rules, with the CRD's validation.
 *
 * Translation, as Cilium's `ParseClusterNetworkPolicy` (pkg/k8s/cluster_network_policy.go):
 * - `tier: Admin | Baseline` → the rule's tier; `priority` (0..1000) + `i/100` for the i-th
 *   ingress/egress rule → its priority in the tier (lower first);
 * - `Accept` → allow, `Deny` → deny, `Pass` → pass (skip the rest of the tier);
 * - one peer per `from`/`to` element: `namespaces` → namespace-label selector, `pods` → namespace
 *   AND pod selector (`kcnpParseNamespacedPod`; an empty namespace selector means every
 *   namespace, i.e. `io.kubernetes.pod.namespace Exists`, pkg/k8s/network_policy.go
 *   `processNamespaceSelector`), `networks` → CIDR peers;
 * - `protocols` → ports (`kcnpParseProtocols`; `destinationNamedPort` is a named port of any
 *   protocol);
 * - no rule enables default deny (`r.DefaultDeny = false`): a ClusterNetworkPolicy alone never
 *   puts a pod into default deny.
 * Not supported by Membrane (rejected, naming the field): egress `nodes` (Cilium needs
 * `enable-node-selector-labels`, as for `toNodes`) and `domainNames` (Cilium adds a DNS redirect
 * to `k8s-app=kube-dns` for them).
 */
import { Checker, has, join } from './check.js';
import type { Json, JsonObject } from './check.js';
import { parsePrefix } from './cidr.js';
import { cidrPeer } from './cnp.js';
import { k8sSource, namespaceLabels, requiredSpec } from './knp.js';
import { LABEL_KEY } from './labels.js';
import { isServiceName } from './ports.js';
import { parseSelector } from './selector.js';
import type { L4Protocol, Peer, PeerRule, PolicyTier, PortSpec, Requirement, Rule, Selector } from './types.js';

/** `spec.priority` bounds (CRD `Minimum=0`, `Maximum=1000`). */
export const KCNP_MAX_PRIORITY = 1000;
/** Rules per direction, peers per rule and protocols per rule (CRD `MaxItems=25`). */
export const KCNP_MAX_ITEMS = 25;
const RULE_NAME_MAX = 100;

const TIERS: Readonly<Record<string, PolicyTier>> = { Admin: 'admin', Baseline: 'baseline' };
const ACTIONS = ['Accept', 'Deny', 'Pass'] as const;
type Action = (typeof ACTIONS)[number];

const NOT_SUPPORTED: Readonly<Record<string, string>> = {
  nodes: 'egress peer `nodes` is not supported by Membrane (Cilium needs enable-node-selector-labels for it)',
  domainNames: 'egress peer `domainNames` is not supported by Membrane',
};

/** Exactly one of `fields` set (the CRD's MinProperties=1/MaxProperties=1); returns it. */
function oneOf(c: Checker, o: JsonObject, path: string, fields: readonly string[], what: string): string | undefined {
  c.fields(o, path, fields);
  const set = fields.filter((f) => has(o, f));
  if (set.length === 1) return set[0];
  c.report(path, set.length === 0 ? `${what} must set exactly one of ${fields.join(', ')}` : `${what} must set exactly one of ${fields.join(', ')}, got ${set.join(' and ')}`);
  return undefined;
}

/** A namespace selector as Cilium reads it: namespace labels; `{}` = every namespace (pods only). */
function namespaceRequirements(s: Selector): Requirement[] {
  const reqs = namespaceLabels(s);
  if (reqs.length === 0) reqs.push({ source: 'k8s', key: LABEL_KEY.podNamespace, operator: 'Exists', values: [] });
  return reqs;
}

function parseNamespaces(c: Checker, v: Json, path: string): Selector | undefined {
  const s = parseSelector(c, v, path);
  return s ? { requirements: namespaceRequirements(s) } : undefined;
}

/** `NamespacedPod`: namespaceSelector (optional, empty = all) AND podSelector (required). */
function parsePods(c: Checker, v: Json, path: string): Selector | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, ['namespaceSelector', 'podSelector']);
  if (!has(o, 'podSelector')) {
    c.report(join(path, 'podSelector'), 'required field is missing');
    return undefined;
  }
  const pods = parseSelector(c, o.podSelector, join(path, 'podSelector'));
  const ns = has(o, 'namespaceSelector') ? parseSelector(c, o.namespaceSelector, join(path, 'namespaceSelector')) : { requirements: [] };
  if (!pods || !ns) return undefined;
  return { requirements: [...k8sSource(pods).requirements, ...namespaceRequirements(ns)] };
}

function parsePeer(c: Checker, v: Json, path: string, dir: 'ingress' | 'egress', what: string): Peer | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  const fields = dir === 'ingress' ? ['namespaces', 'pods'] : ['namespaces', 'pods', 'nodes', 'networks', 'domainNames'];
  const field = oneOf(c, o, path, fields, 'a peer');
  if (field === undefined) return undefined;
  const p = join(path, field);
  if (NOT_SUPPORTED[field]) {
    c.report(p, NOT_SUPPORTED[field]!);
    return undefined;
  }
  if (field === 'networks') {
    const arr = c.array(o.networks, p);
    if (!arr) return undefined;
    if (arr.length === 0) c.report(p, 'must have at least 1 item');
    c.maxItems(arr, p, KCNP_MAX_ITEMS);
    const anyOf: Selector[] = [];
    const cidrs: string[] = [];
    const seen = new Set<string>();
    arr.forEach((e, i) => {
      const s = c.string(e, join(p, i));
      if (s === undefined) return;
      // +listType=set in the CRD.
      if (seen.has(s)) {
        c.report(join(p, i), `Duplicate value: ${JSON.stringify(s)}`);
        return;
      }
      seen.add(s);
      const prefix = parsePrefix(s);
      if (!prefix) {
        c.report(join(p, i), `Invalid value: ${JSON.stringify(s)}: Invalid CIDR format provided`);
        return;
      }
      const peer = cidrPeer(prefix, [], `${what}.networks[${i}]`);
      if (peer.kind === 'selector') {
        anyOf.push(...peer.anyOf);
        cidrs.push(...(peer.cidrs ?? []));
      }
    });
    return { kind: 'selector', what: `${what}.networks`, anyOf, cidrs };
  }
  const sel = field === 'pods' ? parsePods(c, o.pods, p) : parseNamespaces(c, o.namespaces, p);
  return sel ? { kind: 'selector', what: `${what}.${field}`, anyOf: [sel] } : undefined;
}

function parsePort(c: Checker, v: Json, path: string): { port: number; endPort?: number } | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  const field = oneOf(c, o, path, ['number', 'range'], 'destinationPort');
  if (field === undefined) return undefined;
  const inRange = (n: number, p: string): boolean => {
    if (n >= 1 && n <= 65535) return true;
    c.report(p, `Invalid value: ${n}: must be between 1 and 65535, inclusive`);
    return false;
  };
  if (field === 'number') {
    const n = c.integer(o.number, join(path, 'number'));
    return n !== undefined && inRange(n, join(path, 'number')) ? { port: n } : undefined;
  }
  const rp = join(path, 'range');
  const r = c.object(o.range, rp);
  if (!r) return undefined;
  c.fields(r, rp, ['start', 'end']);
  for (const k of ['start', 'end']) if (!has(r, k)) c.report(join(rp, k), 'required field is missing');
  if (!has(r, 'start') || !has(r, 'end')) return undefined;
  const start = c.integer(r.start, join(rp, 'start'));
  const end = c.integer(r.end, join(rp, 'end'));
  if (start === undefined || end === undefined || !inRange(start, join(rp, 'start')) || !inRange(end, join(rp, 'end'))) return undefined;
  if (!(start < end)) {
    c.report(rp, 'Start port must be less than End port');
    return undefined;
  }
  return { port: start, endPort: end };
}

function parseProtocol(c: Checker, v: Json, path: string): PortSpec | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  const field = oneOf(c, o, path, ['tcp', 'udp', 'sctp', 'destinationNamedPort'], 'a protocol');
  if (field === undefined) return undefined;
  const p = join(path, field);
  if (field === 'destinationNamedPort') {
    const name = c.string(o.destinationNamedPort, p);
    if (name === undefined) return undefined;
    if (!isServiceName(name)) {
      c.report(p, `Invalid value: ${JSON.stringify(name)}: must be a valid port name (IANA_SVC_NAME: at most 15 characters, lowercase alphanumerics and '-', at least one letter)`);
      return undefined;
    }
    return { protocol: 'ANY', port: name, l7: null };
  }
  const protocol: L4Protocol = field === 'tcp' ? 'TCP' : field === 'udp' ? 'UDP' : 'SCTP';
  const po = c.object(o[field], p);
  if (!po) return undefined;
  c.fields(po, p, ['destinationPort']);
  // MinProperties=1: `tcp: {}` is rejected by the CRD.
  if (!has(po, 'destinationPort')) {
    c.report(join(p, 'destinationPort'), 'required field is missing');
    return undefined;
  }
  const port = parsePort(c, po.destinationPort, join(p, 'destinationPort'));
  return port ? { protocol, ...port, l7: null } : undefined;
}

function parseRule(c: Checker, v: Json, path: string, dir: 'ingress' | 'egress', index: number, tier: PolicyTier, basePriority: number): { rule: PeerRule; action: Action } | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  const before = c.issues.length;
  const peerField = dir === 'ingress' ? 'from' : 'to';
  c.fields(o, path, ['name', 'action', peerField, 'protocols']);
  let ruleName: string | undefined;
  if (has(o, 'name')) {
    ruleName = c.string(o.name, join(path, 'name'));
    if (ruleName !== undefined && ruleName.length > RULE_NAME_MAX) c.report(join(path, 'name'), `Too long: may not be more than ${RULE_NAME_MAX} characters`);
  }
  let action: Action | undefined;
  if (!has(o, 'action')) c.report(join(path, 'action'), 'required field is missing');
  else {
    const a = c.string(o.action, join(path, 'action'));
    if (a !== undefined) {
      if ((ACTIONS as readonly string[]).includes(a)) action = a as Action;
      else c.report(join(path, 'action'), `Unsupported value: ${JSON.stringify(a)}: supported values: "Accept", "Deny", "Pass"`);
    }
  }
  const peers: Peer[] = [];
  if (!has(o, peerField)) c.report(join(path, peerField), 'required field is missing');
  else {
    const pp = join(path, peerField);
    const arr = c.array(o[peerField], pp);
    if (arr) {
      if (arr.length === 0) c.report(pp, 'must have at least 1 item');
      c.maxItems(arr, pp, KCNP_MAX_ITEMS);
      arr.forEach((e, i) => {
        const peer = parsePeer(c, e, join(pp, i), dir, `${dir}[${index}].${peerField}[${i}]`);
        if (peer) peers.push(peer);
      });
    }
  }
  let ports: PortSpec[] | null = null;
  if (has(o, 'protocols')) {
    const pp = join(path, 'protocols');
    const arr = c.array(o.protocols, pp);
    if (arr) {
      if (arr.length === 0) c.report(pp, 'must have at least 1 item');
      c.maxItems(arr, pp, KCNP_MAX_ITEMS);
      ports = [];
      arr.forEach((e, i) => {
        const ps = parseProtocol(c, e, join(pp, i));
        if (ps) ports!.push(ps);
      });
    }
  }
  // The CRD's XValidation of an egress rule: "networks/nodes/domainNames peer cannot be set with
  // namedPorts since there are no namedPorts for networks/nodes/domainNames".
  if (ports?.some((ps) => typeof ps.port === 'string') && peers.some((pe) => pe.kind === 'selector' && pe.what.endsWith('.networks'))) {
    c.report(path, 'Invalid value: "object": networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames');
  }
  if (c.issues.length > before || action === undefined) return undefined;
  return {
    action,
    rule: {
      index,
      peers,
      ports,
      tier,
      priority: basePriority + index / 100,
      ...(action === 'Pass' ? { pass: true as const } : {}),
      ...(ruleName !== undefined && ruleName !== '' ? { ruleName } : {}),
    },
  };
}

export function parseClusterNetworkPolicyObject(c: Checker, doc: JsonObject): Rule[] {
  const spec = requiredSpec(c, doc);
  if (!spec) return [];
  const before = c.issues.length;
  c.fields(spec, 'spec', ['tier', 'priority', 'subject', 'ingress', 'egress']);
  let tier: PolicyTier | undefined;
  if (!has(spec, 'tier')) c.report('spec.tier', 'required field is missing');
  else {
    const t = c.string(spec.tier, 'spec.tier');
    if (t !== undefined) {
      tier = TIERS[t];
      if (!tier) c.report('spec.tier', `Unsupported value: ${JSON.stringify(t)}: supported values: "Admin", "Baseline"`);
    }
  }
  let priority: number | undefined;
  if (!has(spec, 'priority')) c.report('spec.priority', 'required field is missing');
  else {
    priority = c.integer(spec.priority, 'spec.priority');
    if (priority !== undefined && (priority < 0 || priority > KCNP_MAX_PRIORITY)) {
      c.report('spec.priority', `Invalid value: ${priority}: must be between 0 and ${KCNP_MAX_PRIORITY}, inclusive`);
      priority = undefined;
    }
  }
  let subject: Selector | undefined;
  if (!has(spec, 'subject')) c.report('spec.subject', 'required field is missing');
  else {
    const so = c.object(spec.subject, 'spec.subject');
    const field = so ? oneOf(c, so, 'spec.subject', ['namespaces', 'pods'], 'subject') : undefined;
    if (so && field) subject = field === 'pods' ? parsePods(c, so.pods, 'spec.subject.pods') : parseNamespaces(c, so.namespaces, 'spec.subject.namespaces');
  }
  const sections = { ingress: [] as PeerRule[], ingressDeny: [] as PeerRule[], egress: [] as PeerRule[], egressDeny: [] as PeerRule[] };
  const present = { ingress: false, egress: false };
  for (const dir of ['ingress', 'egress'] as const) {
    if (!has(spec, dir)) continue;
    const arr = c.array(spec[dir], `spec.${dir}`);
    if (!arr) continue;
    c.maxItems(arr, `spec.${dir}`, KCNP_MAX_ITEMS);
    present[dir] = arr.length > 0;
    arr.forEach((r, i) => {
      const parsed = parseRule(c, r, `spec.${dir}[${i}]`, dir, i, tier ?? 'admin', priority ?? 0);
      if (!parsed) return;
      (parsed.action === 'Deny' ? sections[dir === 'ingress' ? 'ingressDeny' : 'egressDeny'] : sections[dir]).push(parsed.rule);
    });
  }
  if (c.issues.length > before || !subject || !tier || priority === undefined) return [];
  return [
    {
      endpointSelector: subject,
      hostPolicy: false,
      ...sections,
      hasIngress: present.ingress,
      hasEgress: present.egress,
      // A ClusterNetworkPolicy never enables default deny (Cilium sets DefaultDeny = false).
      defaultDenyIngress: false,
      defaultDenyEgress: false,
      specIndex: 0,
    },
  ];
}
