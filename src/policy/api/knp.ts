/**
 * Kubernetes NetworkPolicy (networking.k8s.io/v1) → normalised rules, with the API server's
 * validation. Semantics: the podSelector picks pods in the policy's namespace; `policyTypes`
 * decides default deny (Ingress always, Egress when an egress section exists, unless listed);
 * a rule without `from`/`to` admits every peer, without `ports` every port; a peer is a
 * podSelector (same namespace), a namespaceSelector (namespace labels), both (AND), or an ipBlock.
 */
import { Checker, has, join } from './check.js';
import type { Json, JsonObject } from './check.js';
import { parsePrefix, prefixContains } from './cidr.js';
import { cidrPeer } from './cnp.js';
import { LABEL_KEY } from './labels.js';
import { isServiceName } from './ports.js';
import { parseSelector, scopeSubjectSelector } from './selector.js';
import type { L4Protocol, Peer, PeerRule, PortSpec, Requirement, Rule, Selector } from './types.js';

const SPEC_FIELDS = ['podSelector', 'policyTypes', 'ingress', 'egress'];
const PEER_FIELDS = ['podSelector', 'namespaceSelector', 'ipBlock'];
const PORT_FIELDS = ['protocol', 'port', 'endPort'];

/** Pod selector keys are Kubernetes labels (`k8s:` source) unless a source is given. */
export function k8sSource(s: Selector): Selector {
  return { requirements: s.requirements.map((r) => (r.source === 'any' ? { ...r, source: 'k8s' } : r)) };
}

export function namespaceLabels(s: Selector): Requirement[] {
  return s.requirements.map((r) => ({ ...r, source: 'k8s', key: `${LABEL_KEY.namespaceLabelPrefix}${r.key}` }));
}

/**
 * The `spec` of a Kubernetes API object (NetworkPolicy, ClusterNetworkPolicy): the top-level fields
 * checked, `spec` required and an object; null (reported) otherwise.
 */
export function requiredSpec(c: Checker, doc: JsonObject): JsonObject | null {
  c.fields(doc, '', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  if (!has(doc, 'spec')) {
    c.report('spec', 'required field is missing');
    return null;
  }
  return c.object(doc.spec, 'spec') ?? null;
}

export function parseNetworkPolicyObject(c: Checker, doc: JsonObject, namespace: string): Rule[] {
  const spec = requiredSpec(c, doc);
  if (!spec) return [];
  const before = c.issues.length;
  c.fields(spec, 'spec', SPEC_FIELDS);
  let subject: Selector | undefined;
  if (!has(spec, 'podSelector')) c.report('spec.podSelector', 'required field is missing');
  else {
    const s = parseSelector(c, spec.podSelector, 'spec.podSelector');
    if (s) subject = scopeSubjectSelector(k8sSource(s), namespace);
  }
  let types: string[] | undefined;
  if (has(spec, 'policyTypes')) {
    const arr = c.array(spec.policyTypes, 'spec.policyTypes');
    if (arr) {
      types = [];
      arr.forEach((t, i) => {
        const s = c.string(t, `spec.policyTypes[${i}]`);
        if (s === undefined) return;
        if (s !== 'Ingress' && s !== 'Egress') c.report(`spec.policyTypes[${i}]`, `Unsupported value: ${JSON.stringify(s)}: supported values: "Ingress", "Egress"`);
        else types!.push(s);
      });
    }
  }
  const ingress: PeerRule[] = [];
  const egress: PeerRule[] = [];
  for (const dir of ['ingress', 'egress'] as const) {
    if (!has(spec, dir)) continue;
    const arr = c.array(spec[dir], `spec.${dir}`);
    arr?.forEach((r, i) => {
      const pr = parseKnpRule(c, r, `spec.${dir}[${i}]`, dir, i, namespace);
      if (pr) (dir === 'ingress' ? ingress : egress).push(pr);
    });
  }
  if (c.issues.length > before || !subject) return [];
  // policyTypes decides which directions the policy governs; rules of a direction it does not
  // list are ignored, as the Kubernetes API defines. Without policyTypes: ingress always, egress
  // only when there are egress rules (so `egress: []` enforces nothing). Cilium v1.19 still
  // translates rules of an unlisted direction (cilium/cilium#48703, a bug with a fix under
  // review); we follow the Kubernetes semantics its fix restores.
  // An empty policyTypes list is defaulted like an absent one, as the API server does.
  const listed = types && types.length > 0 ? types : undefined;
  const ingressOn = listed ? listed.includes('Ingress') : true;
  const egressOn = listed ? listed.includes('Egress') : egress.length > 0;
  return [
    {
      endpointSelector: subject,
      hostPolicy: false,
      ingress: ingressOn ? ingress : [],
      ingressDeny: [],
      egress: egressOn ? egress : [],
      egressDeny: [],
      hasIngress: ingressOn,
      hasEgress: egressOn,
      defaultDenyIngress: ingressOn,
      defaultDenyEgress: egressOn,
      specIndex: 0,
    },
  ];
}

function parseKnpRule(c: Checker, v: Json, path: string, dir: 'ingress' | 'egress', index: number, namespace: string): PeerRule | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  const before = c.issues.length;
  const peerField = dir === 'ingress' ? 'from' : 'to';
  c.fields(o, path, [peerField, 'ports']);
  let peers: Peer[] | null = null;
  if (has(o, peerField)) {
    const arr = c.array(o[peerField], join(path, peerField));
    if (arr && arr.length > 0) {
      peers = [];
      arr.forEach((p, i) => {
        const peer = parseKnpPeer(c, p, join(join(path, peerField), i), namespace, `${peerField}[${i}]`);
        if (peer) peers!.push(peer);
      });
    }
  }
  let ports: PortSpec[] | null = null;
  if (has(o, 'ports')) {
    const arr = c.array(o.ports, join(path, 'ports'));
    if (arr && arr.length > 0) {
      ports = [];
      arr.forEach((p, i) => {
        const ps = parseKnpPort(c, p, join(join(path, 'ports'), i));
        if (ps) ports!.push(ps);
      });
    }
  }
  if (c.issues.length > before) return undefined;
  return { index, peers, ports };
}

function parseKnpPeer(c: Checker, v: Json, path: string, namespace: string, what: string): Peer | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, PEER_FIELDS);
  const hasPod = has(o, 'podSelector');
  const hasNs = has(o, 'namespaceSelector');
  const hasIp = has(o, 'ipBlock');
  if (!hasPod && !hasNs && !hasIp) {
    c.report(path, 'Required value: must specify a peer');
    return undefined;
  }
  if (hasIp && (hasPod || hasNs)) {
    c.report(path, 'Forbidden: may not specify more than 1 peer type when ipBlock is specified');
    return undefined;
  }
  if (hasIp) {
    const p = join(path, 'ipBlock');
    const ib = c.object(o.ipBlock, p);
    if (!ib) return undefined;
    c.fields(ib, p, ['cidr', 'except']);
    if (!has(ib, 'cidr')) {
      c.report(join(p, 'cidr'), 'Required value');
      return undefined;
    }
    const cs = c.string(ib.cidr, join(p, 'cidr'));
    if (cs === undefined) return undefined;
    const prefix = parsePrefix(cs);
    if (!prefix) {
      c.report(join(p, 'cidr'), `Invalid value: ${JSON.stringify(cs)}: must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`);
      return undefined;
    }
    const except = [];
    if (has(ib, 'except')) {
      const arr = c.array(ib.except, join(p, 'except'));
      for (const [i, e] of (arr ?? []).entries()) {
        const ep = join(join(p, 'except'), i);
        const es = c.string(e, ep);
        if (es === undefined) continue;
        const pe = parsePrefix(es);
        if (!pe) {
          c.report(ep, `Invalid value: ${JSON.stringify(es)}: must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`);
          continue;
        }
        if (!prefixContains(prefix, pe) || pe.len === prefix.len) {
          c.report(ep, `Invalid value: ${JSON.stringify(es)}: must be a strict subset of \`cidr\``);
          continue;
        }
        except.push(pe);
      }
    }
    return cidrPeer(prefix, except, `${what}.ipBlock`);
  }
  const reqs: Requirement[] = [];
  if (hasPod) {
    const s = parseSelector(c, o.podSelector, join(path, 'podSelector'));
    if (!s) return undefined;
    reqs.push(...k8sSource(s).requirements);
  }
  if (hasNs) {
    const s = parseSelector(c, o.namespaceSelector, join(path, 'namespaceSelector'));
    if (!s) return undefined;
    const nsReqs = namespaceLabels(s);
    reqs.push(...nsReqs);
    // Any namespace: still only Kubernetes pods.
    if (nsReqs.length === 0) reqs.push({ source: 'k8s', key: LABEL_KEY.podNamespace, operator: 'Exists', values: [] });
  } else {
    reqs.push({ source: 'k8s', key: LABEL_KEY.podNamespace, operator: 'In', values: [namespace] });
  }
  return { kind: 'selector', what, anyOf: [{ requirements: reqs }] };
}

function parseKnpPort(c: Checker, v: Json, path: string): PortSpec | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, PORT_FIELDS);
  let protocol: L4Protocol = 'TCP';
  if (has(o, 'protocol')) {
    const p = c.string(o.protocol, join(path, 'protocol'));
    if (p !== undefined) {
      if (p !== 'TCP' && p !== 'UDP' && p !== 'SCTP') {
        c.report(join(path, 'protocol'), `Unsupported value: ${JSON.stringify(p)}: supported values: "SCTP", "TCP", "UDP"`);
        return undefined;
      }
      protocol = p;
    }
  }
  let port: number | string = 0;
  let numeric = false;
  if (has(o, 'port')) {
    const pv = o.port;
    if (typeof pv === 'number') {
      if (!Number.isInteger(pv) || pv < 1 || pv > 65535) {
        c.report(join(path, 'port'), `Invalid value: ${pv}: must be between 1 and 65535, inclusive`);
        return undefined;
      }
      port = pv;
      numeric = true;
    } else if (typeof pv === 'string') {
      if (!isServiceName(pv)) {
        c.report(join(path, 'port'), `Invalid value: ${JSON.stringify(pv)}: must be a valid port name (IANA_SVC_NAME: at most 15 characters, lowercase alphanumerics and '-', at least one letter)`);
        return undefined;
      }
      port = pv;
    } else {
      c.report(join(path, 'port'), 'must be an integer or a string');
      return undefined;
    }
  }
  let endPort: number | undefined;
  if (has(o, 'endPort')) {
    const e = c.integer(o.endPort, join(path, 'endPort'));
    if (e === undefined) return undefined;
    if (!has(o, 'port')) {
      c.report(join(path, 'endPort'), 'Required value: may not be specified when `port` is not specified');
      return undefined;
    }
    if (!numeric) {
      c.report(join(path, 'endPort'), 'Invalid value: may not be specified when `port` is non-numeric');
      return undefined;
    }
    if (e < (port as number)) {
      c.report(join(path, 'endPort'), `Invalid value: ${e}: must be greater than or equal to \`port\``);
      return undefined;
    }
    if (e > 65535) {
      c.report(join(path, 'endPort'), `Invalid value: ${e}: must be between 1 and 65535, inclusive`);
      return undefined;
    }
    endPort = e;
  }
  return { protocol, port, ...(endPort !== undefined ? { endPort } : {}), l7: null };
}
