/**
 * CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy (cilium.io/v2): CRD shape checks (unknown
 * fields, types) and Cilium's rule sanitising, producing the normalised `Rule` form.
 *
 * Messages reuse Cilium's wording where users will search for it ("Combining X and Y is not
 * supported yet", "unsupported entity: X", ...). Features Cilium accepts but Membrane cannot
 * enforce (TLS interception, listeners, cloud groups) are rejected with "not supported by
 * Membrane" rather than silently enforced differently. Those Membrane can refuse safely (Kafka
 * and generic l7proto rules, mutual authentication) are accepted with a warning and fail closed.
 */
import { Checker, has, join } from './check.js';
import type { Json, JsonObject } from './check.js';
import { parseAddressOrPrefix, parsePrefix, prefixContains, cidrLabelKey, formatPrefix } from './cidr.js';
import type { Prefix } from './cidr.js';
import { entityPeer } from './entities.js';
import { fqdnSelectorKey, validateMatchName, validateMatchPattern } from './fqdn.js';
import { validateServerName } from './server-name.js';
import { ICMP4_TYPES, ICMP6_TYPES, isServiceName, parseGoUint16 } from './ports.js';
import { compileFullMatch, MAX_PROGRAM_SIZE } from '../../re2/index.js';
import { formatSelector, parseSelector, scopePeerSelector, scopeSubjectSelector, selectorHasKey } from './selector.js';
import type {
  DnsRuleSpec,
  HttpHeaderMatch,
  HttpRuleSpec,
  L4Protocol,
  L7Spec,
  Peer,
  PeerRule,
  PortSpec,
  Rule,
  Selector,
} from './types.js';

const RULE_FIELDS = ['endpointSelector', 'nodeSelector', 'ingress', 'ingressDeny', 'egress', 'egressDeny', 'labels', 'enableDefaultDeny', 'description', 'log'];
const INGRESS_FIELDS = ['fromEndpoints', 'fromRequires', 'fromCIDR', 'fromCIDRSet', 'fromEntities', 'fromGroups', 'fromNodes', 'toPorts', 'icmps', 'authentication'];
const INGRESS_DENY_FIELDS = ['fromEndpoints', 'fromRequires', 'fromCIDR', 'fromCIDRSet', 'fromEntities', 'fromGroups', 'fromNodes', 'toPorts', 'icmps'];
const EGRESS_FIELDS = ['toEndpoints', 'toRequires', 'toCIDR', 'toCIDRSet', 'toEntities', 'toServices', 'toGroups', 'toNodes', 'toFQDNs', 'toPorts', 'icmps', 'authentication'];
const EGRESS_DENY_FIELDS = ['toEndpoints', 'toRequires', 'toCIDR', 'toCIDRSet', 'toEntities', 'toServices', 'toGroups', 'toNodes', 'toPorts', 'icmps'];
const PORT_RULE_FIELDS = ['ports', 'terminatingTLS', 'originatingTLS', 'serverNames', 'listener', 'rules'];
const PORT_DENY_RULE_FIELDS = ['ports'];
const PORT_FIELDS = ['port', 'endPort', 'protocol'];
const L7_FIELDS = ['http', 'kafka', 'dns', 'l7proto', 'l7'];
const HTTP_FIELDS = ['path', 'method', 'host', 'headers', 'headerMatches'];
const HEADER_MATCH_FIELDS = ['mismatch', 'name', 'secret', 'value'];
const DNS_FIELDS = ['matchName', 'matchPattern'];
const KAFKA_FIELDS = ['role', 'apiKey', 'apiVersion', 'clientID', 'topic'];
const CIDR_RULE_FIELDS = ['cidr', 'cidrGroupRef', 'cidrGroupSelector', 'except'];
const SERVICE_FIELDS = ['k8sService', 'k8sServiceSelector'];
const ICMP_FIELDS = ['fields'];
const ICMP_FIELD_FIELDS = ['type', 'family'];
const PROTOCOLS: readonly string[] = ['TCP', 'UDP', 'SCTP', 'VRRP', 'IGMP', 'ANY'];
/** Protocols without transport ports: `port` must be empty or "0" (Cilium's PortProtocol.Validate). */
const PORTLESS_PROTOCOLS: readonly string[] = ['VRRP', 'IGMP'];
const MAX_PORTS = 40;
const MAX_ICMP_FIELDS = 40;
const MISMATCH_ACTIONS = ['LOG', 'ADD', 'DELETE', 'REPLACE'];

type Section = 'ingress' | 'ingressDeny' | 'egress' | 'egressDeny';

interface Ctx {
  readonly c: Checker;
  /** undefined for clusterwide policies. */
  readonly namespace: string | undefined;
  readonly subjectMatchesInit: boolean;
}

function notSupported(c: Checker, path: string, what: string): void {
  c.report(path, `${what} is not supported by Membrane`);
}

/** Parses one rule (`spec` or an element of `specs`). */
export function parseCiliumRule(c: Checker, v: Json | undefined, path: string, namespace: string | undefined, specIndex: number): Rule | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  const before = c.issues.length;
  c.fields(o, path, RULE_FIELDS);

  const hasES = has(o, 'endpointSelector');
  const hasNS = has(o, 'nodeSelector');
  if (!hasES && !hasNS) c.report(path, 'rule must have one of EndpointSelector or NodeSelector');
  if (hasES && hasNS) c.report(path, 'rule cannot have both EndpointSelector and NodeSelector');
  let subject: Selector | null = null;
  if (hasES) {
    const s = parseSelector(c, o.endpointSelector, join(path, 'endpointSelector'));
    if (s) subject = scopeSubjectSelector(s, namespace);
  }
  if (hasNS) {
    parseSelector(c, o.nodeSelector, join(path, 'nodeSelector'));
    // Cilium's CiliumNetworkPolicy.Parse: host policies exist only cluster-wide.
    if (namespace !== undefined && !hasES) {
      c.report(join(path, 'nodeSelector'), 'rule cannot have NodeSelector: a namespaced CiliumNetworkPolicy cannot select nodes (use a CiliumClusterwideNetworkPolicy)');
    }
  }
  const subjectMatchesInit = subject !== null && selectorHasKey(subject, 'reserved', 'init');
  const ctx: Ctx = { c, namespace, subjectMatchesInit };

  if (has(o, 'description')) c.string(o.description, join(path, 'description'));
  if (has(o, 'labels')) parseRuleLabels(c, o.labels, join(path, 'labels'));
  if (has(o, 'log')) {
    const lo = c.object(o.log, join(path, 'log'));
    if (lo) {
      c.fields(lo, join(path, 'log'), ['value']);
      if (has(lo, 'value')) c.string(lo.value, join(join(path, 'log'), 'value'));
    }
  }
  let ddIngress: boolean | undefined;
  let ddEgress: boolean | undefined;
  if (has(o, 'enableDefaultDeny')) {
    const p = join(path, 'enableDefaultDeny');
    const d = c.object(o.enableDefaultDeny, p);
    if (d) {
      c.fields(d, p, ['ingress', 'egress']);
      if (has(d, 'ingress')) ddIngress = c.boolean(d.ingress, join(p, 'ingress'));
      if (has(d, 'egress')) ddEgress = c.boolean(d.egress, join(p, 'egress'));
    }
  }

  // The CRD schema requires at least one direction section (anyOf).
  if (!['ingress', 'ingressDeny', 'egress', 'egressDeny'].some((k) => has(o, k))) {
    c.report(path, 'must specify at least one of ingress, ingressDeny, egress or egressDeny');
  }
  const sections: Record<Section, PeerRule[]> = { ingress: [], ingressDeny: [], egress: [], egressDeny: [] };
  const lengths: Record<Section, number> = { ingress: 0, ingressDeny: 0, egress: 0, egressDeny: 0 };
  for (const sec of ['ingress', 'ingressDeny', 'egress', 'egressDeny'] as const) {
    if (!has(o, sec)) continue;
    const sp = join(path, sec);
    const arr = c.array(o[sec], sp);
    if (!arr) continue;
    lengths[sec] = arr.length;
    arr.forEach((item, i) => {
      const pr = parsePeerRule(ctx, item, join(sp, i), sec, i, hasNS);
      if (pr) sections[sec].push(pr);
    });
  }

  // Cilium's Rule.Validate: the sections may be present, but at least one must be non-empty
  // (`ingress: []` alone is rejected; `ingress: [{}]` is the way to ask for default deny).
  const present = (['ingress', 'ingressDeny', 'egress', 'egressDeny'] as const).filter((k) => has(o, k));
  if (present.length > 0 && present.every((k) => Array.isArray(o[k])) && present.every((k) => lengths[k] === 0)) {
    c.report(path, 'rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny');
  }
  if (c.issues.length > before) return undefined;
  const hasIngress = lengths.ingress > 0 || lengths.ingressDeny > 0;
  const hasEgress = lengths.egress > 0 || lengths.egressDeny > 0;
  const rule: Rule = {
    endpointSelector: subject,
    hostPolicy: hasNS,
    ingress: sections.ingress,
    ingressDeny: sections.ingressDeny,
    egress: sections.egress,
    egressDeny: sections.egressDeny,
    hasIngress,
    hasEgress,
    defaultDenyIngress: ddIngress ?? hasIngress,
    defaultDenyEgress: ddEgress ?? hasEgress,
    specIndex,
    ...(typeof o.description === 'string' ? { description: o.description } : {}),
  };
  return rule;
}

function parseRuleLabels(c: Checker, v: Json | undefined, path: string): void {
  const arr = c.array(v, path);
  if (!arr) return;
  arr.forEach((l, i) => {
    const p = join(path, i);
    const lo = c.object(l, p);
    if (!lo) return;
    c.fields(lo, p, ['key', 'value', 'source']);
    if (!has(lo, 'key')) c.report(join(p, 'key'), 'required field is missing');
    else c.string(lo.key, join(p, 'key'));
    if (has(lo, 'value')) c.string(lo.value, join(p, 'value'));
    if (has(lo, 'source')) c.string(lo.source, join(p, 'source'));
  });
}

const L3_MEMBERS: Record<Section, readonly [string, string][]> = {
  ingress: [
    ['fromEndpoints', 'FromEndpoints'],
    ['fromCIDR', 'FromCIDR'],
    ['fromCIDRSet', 'FromCIDRSet'],
    ['fromEntities', 'FromEntities'],
    ['fromNodes', 'FromNodes'],
    ['fromGroups', 'FromGroups'],
  ],
  ingressDeny: [
    ['fromEndpoints', 'FromEndpoints'],
    ['fromCIDR', 'FromCIDR'],
    ['fromCIDRSet', 'FromCIDRSet'],
    ['fromEntities', 'FromEntities'],
    ['fromNodes', 'FromNodes'],
    ['fromGroups', 'FromGroups'],
  ],
  egress: [
    ['toCIDR', 'ToCIDR'],
    ['toCIDRSet', 'ToCIDRSet'],
    ['toEndpoints', 'ToEndpoints'],
    ['toEntities', 'ToEntities'],
    ['toServices', 'ToServices'],
    ['toFQDNs', 'ToFQDNs'],
    ['toGroups', 'ToGroups'],
    ['toNodes', 'ToNodes'],
  ],
  egressDeny: [
    ['toCIDR', 'ToCIDR'],
    ['toCIDRSet', 'ToCIDRSet'],
    ['toEndpoints', 'ToEndpoints'],
    ['toEntities', 'ToEntities'],
    ['toServices', 'ToServices'],
    ['toGroups', 'ToGroups'],
    ['toNodes', 'ToNodes'],
  ],
};

function listLength(v: Json | undefined): number {
  return Array.isArray(v) ? v.length : 0;
}

function parsePeerRule(ctx: Ctx, v: Json, path: string, sec: Section, index: number, hostPolicy: boolean): PeerRule | undefined {
  const { c } = ctx;
  const o = c.object(v, path);
  if (!o) return undefined;
  const before = c.issues.length;
  const isIngress = sec === 'ingress' || sec === 'ingressDeny';
  const isDeny = sec === 'ingressDeny' || sec === 'egressDeny';
  c.fields(o, path, sec === 'ingress' ? INGRESS_FIELDS : sec === 'ingressDeny' ? INGRESS_DENY_FIELDS : sec === 'egress' ? EGRESS_FIELDS : EGRESS_DENY_FIELDS);

  // Cilium: peers of different kinds cannot share one rule.
  const members = L3_MEMBERS[sec].filter(([f]) => listLength(o[f]) > 0);
  if (members.length > 1) c.report(path, `Combining ${members[0]![1]} and ${members[1]![1]} is not supported yet`);
  // toServices may be combined with toPorts (every egress L3 member supports L4 since Cilium 1.17).
  if (listLength(o.icmps) > 0 && listLength(o.toPorts) > 0) {
    c.report(path, 'The ICMPs block may only be present without ToPorts. Define a separate rule to use ToPorts.');
  }

  const requiresField = isIngress ? 'fromRequires' : 'toRequires';
  if (has(o, requiresField)) {
    const arr = c.array(o[requiresField], join(path, requiresField));
    if (arr && arr.length > 0) {
      c.report(join(path, requiresField), `Too many: ${arr.length}: must have at most 0 items (${requiresField} was removed in Cilium 1.19)`);
    }
  }

  const peers: Peer[] = [];
  let anyPeerField = false;
  const epField = isIngress ? 'fromEndpoints' : 'toEndpoints';
  if (has(o, epField)) {
    anyPeerField = true;
    const arr = c.array(o[epField], join(path, epField));
    if (arr) {
      if (arr.length === 0) peers.push({ kind: 'none', what: `${epField}: []` });
      arr.forEach((e, i) => {
        const s = parseSelector(c, e, join(join(path, epField), i));
        if (s) peers.push({ kind: 'selector', what: `${epField}[${i}]`, anyOf: [scopePeerSelector(s, ctx.namespace, ctx.subjectMatchesInit)] });
      });
    }
  }
  const cidrField = isIngress ? 'fromCIDR' : 'toCIDR';
  if (has(o, cidrField)) {
    const arr = c.array(o[cidrField], join(path, cidrField));
    if (arr) anyPeerField = true;
    if (arr && arr.length === 0) peers.push({ kind: 'none', what: `${cidrField}: []` });
    arr?.forEach((e, i) => {
      const p = join(join(path, cidrField), i);
      const s = c.string(e, p);
      if (s === undefined) return;
      if (s === '') {
        c.report(p, 'IP must be specified');
        return;
      }
      const pre = parseAddressOrPrefix(s);
      if (!pre) {
        c.report(p, `unable to parse CIDR: ${JSON.stringify(s)}`);
        return;
      }
      peers.push(cidrPeer(pre, [], `${cidrField}[${i}]`));
    });
  }
  const setField = isIngress ? 'fromCIDRSet' : 'toCIDRSet';
  if (has(o, setField)) {
    const arr = c.array(o[setField], join(path, setField));
    if (arr) anyPeerField = true;
    if (arr && arr.length === 0) peers.push({ kind: 'none', what: `${setField}: []` });
    arr?.forEach((e, i) => {
      const p = join(join(path, setField), i);
      const peer = parseCidrRule(c, e, p, `${setField}[${i}]`);
      if (peer) peers.push(peer);
    });
  }
  const entField = isIngress ? 'fromEntities' : 'toEntities';
  if (has(o, entField)) {
    const arr = c.array(o[entField], join(path, entField));
    if (arr) anyPeerField = true;
    if (arr && arr.length === 0) peers.push({ kind: 'none', what: `${entField}: []` });
    arr?.forEach((e, i) => {
      const p = join(join(path, entField), i);
      const s = c.string(e, p);
      if (s === undefined) return;
      const peer = entityPeer(s, `${entField}[${i}]=${s}`);
      if (!peer) c.report(p, `unsupported entity: ${s}`);
      else peers.push(peer);
    });
  }
  const nodesField = isIngress ? 'fromNodes' : 'toNodes';
  if (has(o, nodesField)) {
    const arr = c.array(o[nodesField], join(path, nodesField));
    if (arr) {
      arr.forEach((e, i) => parseSelector(c, e, join(join(path, nodesField), i)));
      // Cilium rejects only a non-empty list; `fromNodes: []` is valid and selects nothing.
      if (arr.length > 0) c.report(join(path, nodesField), 'FromNodes/ToNodes rules can only be applied when the "enable-node-selector-labels" flag is set');
    }
  }
  const groupsField = isIngress ? 'fromGroups' : 'toGroups';
  if (has(o, groupsField)) {
    const arr = c.array(o[groupsField], join(path, groupsField));
    if (arr && arr.length > 0) notSupported(c, join(path, groupsField), `${groupsField} (cloud provider groups)`);
  }
  if (!isIngress && has(o, 'toServices')) {
    const arr = c.array(o.toServices, join(path, 'toServices'));
    if (arr && arr.length > 0) anyPeerField = true;
    arr?.forEach((e, i) => {
      const got = parseService(ctx, e, join(join(path, 'toServices'), i), `toServices[${i}]`);
      if (got) peers.push(...got);
    });
  }
  if (sec === 'egress' && has(o, 'toFQDNs')) {
    const arr = c.array(o.toFQDNs, join(path, 'toFQDNs'));
    if (arr && arr.length > 0) anyPeerField = true;
    arr?.forEach((e, i) => {
      const peer = parseFqdnSelector(c, e, join(join(path, 'toFQDNs'), i), `toFQDNs[${i}]`);
      if (peer) peers.push(peer);
    });
  }
  let authMode: PeerRule['authMode'];
  if (has(o, 'authentication')) {
    const p = join(path, 'authentication');
    const ao = c.object(o.authentication, p);
    if (ao) {
      c.fields(ao, p, ['mode']);
      const mode = has(ao, 'mode') ? c.string(ao.mode, join(p, 'mode')) : (c.report(join(p, 'mode'), 'required field is missing'), undefined);
      if (mode !== undefined && !['disabled', 'required', 'test-always-fail'].includes(mode)) {
        c.report(join(p, 'mode'), `unsupported value ${JSON.stringify(mode)}: must be one of disabled, required, test-always-fail`);
      } else if (mode === 'required' || mode === 'test-always-fail') {
        authMode = mode;
        c.warn(
          join(p, 'mode'),
          `Membrane has no mutual authentication: what this rule allows is dropped with AUTH_REQUIRED (fails closed)`,
        );
      }
    }
  }

  // Ports.
  let ports: PortSpec[] | null = null;
  if (has(o, 'toPorts')) {
    const p = join(path, 'toPorts');
    const arr = c.array(o.toPorts, p);
    if (arr && arr.length > 0) {
      ports = [];
      arr.forEach((e, i) => {
        const got = parsePortRule(c, e, join(p, i), { isIngress, isDeny, hostPolicy });
        if (got) ports!.push(...got);
      });
    }
  }
  if (has(o, 'icmps')) {
    const p = join(path, 'icmps');
    const arr = c.array(o.icmps, p);
    if (arr && arr.length > 0) {
      ports ??= [];
      arr.forEach((e, i) => {
        const got = parseIcmpRule(c, e, join(p, i));
        if (got) ports!.push(...got);
      });
    }
  }
  if (c.issues.length > before) return undefined;
  const auth = authMode !== undefined ? { authMode } : {};
  // A rule with neither peers nor ports selects nothing (but still counts for default deny).
  if (!anyPeerField && ports === null) return { index, peers: [], ports: null, ...auth };
  // Cilium (RulesToPolicyEntries → mergeEndpointSelectors): an empty but present list of
  // endpoints, entities, CIDRs or CIDR sets makes the whole rule select no peer, whatever else it names.
  const emptyField = [epField, cidrField, setField, entField, nodesField].find((f) => Array.isArray(o[f]) && (o[f] as Json[]).length === 0);
  if (emptyField !== undefined) return { index, peers: [{ kind: 'none', what: `${emptyField}: []` }], ports, ...auth };
  return { index, peers: anyPeerField ? peers : null, ports, ...auth };
}

export function cidrPeer(prefix: Prefix, except: readonly Prefix[], what: string): Peer {
  const base: Selector = {
    requirements: [
      { source: 'cidr', key: cidrLabelKey(prefix), operator: 'Exists', values: [] },
      ...except.map((e) => ({ source: 'cidr', key: cidrLabelKey(e), operator: 'DoesNotExist' as const, values: [] })),
    ],
  };
  const anyOf: Selector[] = [base];
  if (prefix.len === 0) {
    // The whole address family also covers the world identities (IPs outside every allocated prefix).
    // reserved:world alone is family-less: exclude identities of the other family (its CIDR
    // identities, and learned addresses outside every policy prefix: world + world-ipvN + fqdn:).
    const fam = prefix.family === 4 ? 'world-ipv4' : 'world-ipv6';
    const otherFam = prefix.family === 4 ? 'world-ipv6' : 'world-ipv4';
    const otherAll = cidrLabelKey({ family: prefix.family === 4 ? 6 : 4, addr: 0n, len: 0 });
    anyOf.push({ requirements: [{ source: 'reserved', key: fam, operator: 'Exists', values: [] }] });
    anyOf.push({
      requirements: [
        { source: 'reserved', key: 'world', operator: 'Exists', values: [] },
        { source: 'cidr', key: otherAll, operator: 'DoesNotExist', values: [] },
        { source: 'reserved', key: otherFam, operator: 'DoesNotExist', values: [] },
      ],
    });
  }
  return {
    kind: 'selector',
    cidrs: [prefix, ...except].map(formatPrefix),
    what: except.length ? `${what}=${formatPrefix(prefix)} except ${except.map(formatPrefix).join(',')}` : `${what}=${formatPrefix(prefix)}`,
    anyOf,
  };
}

function parseCidrRule(c: Checker, v: Json, path: string, what: string): Peer | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, CIDR_RULE_FIELDS);
  // Cilium's CIDRRule.Validate counts non-empty values.
  const set = ['cidr', 'cidrGroupRef', 'cidrGroupSelector'].filter((k) => has(o, k) && o[k] !== '');
  if (set.length === 0) {
    c.report(path, 'one of cidr, cidrGroupRef, or cidrGroupSelector is required');
    return undefined;
  }
  if (set.length > 1) {
    c.report(path, 'more than one of cidr, cidrGroupRef, or cidrGroupSelector may not be set');
    return undefined;
  }
  let prefix: Prefix | null = null;
  let groupRef: string | undefined;
  let groupSelector: Selector | undefined;
  if (set[0] === 'cidr') {
    const s = c.string(o.cidr, join(path, 'cidr'));
    if (s === undefined) return undefined;
    prefix = parsePrefix(s);
    if (!prefix) {
      c.report(join(path, 'cidr'), `Unable to parse CIDRRule ${JSON.stringify(s)}: expected an address/prefix-length`);
      return undefined;
    }
  } else if (set[0] === 'cidrGroupRef') {
    groupRef = c.string(o.cidrGroupRef, join(path, 'cidrGroupRef'));
    if (groupRef === undefined) return undefined;
  } else {
    const sp = join(path, 'cidrGroupSelector');
    groupSelector = parseSelector(c, o.cidrGroupSelector, sp);
    if (!groupSelector) return undefined;
    // Groups are selected by their Kubernetes labels: a key cannot carry a label source.
    const sourced = groupSelector.requirements.find((r) => r.source !== 'any');
    if (sourced) {
      c.report(sp, `failed to sanitize cidrGroupSelector: invalid label key "${sourced.source}:${sourced.key}": a label source prefix is not allowed`);
      return undefined;
    }
  }
  const s = prefix ? formatPrefix(prefix) : '';
  const except: Prefix[] = [];
  if (has(o, 'except')) {
    const arr = c.array(o.except, join(path, 'except'));
    arr?.forEach((e, i) => {
      const p = join(join(path, 'except'), i);
      const es = c.string(e, p);
      if (es === undefined) return;
      const ep = parsePrefix(es);
      if (!ep) {
        c.report(p, `unable to parse CIDR prefix ${JSON.stringify(es)}`);
        return;
      }
      // Cilium checks that the parent contains the except prefix's address (and family) and that
      // the except prefix is not shorter than the parent. A group's CIDRs are checked when resolved.
      const addrOnly: Prefix = { family: ep.family, addr: ep.addr, len: ep.family === 4 ? 32 : 128 };
      if (prefix && (!prefixContains(prefix, addrOnly) || ep.len < prefix.len)) {
        c.report(p, `allow CIDR prefix ${s} does not contain exclude CIDR prefix ${es}`);
        return;
      }
      except.push(ep);
    });
  }
  if (prefix) return cidrPeer(prefix, except, what);
  const exceptText = except.length ? ` except ${except.map(formatPrefix).join(',')}` : '';
  return {
    kind: 'cidrGroup',
    what: `${what}=${groupRef !== undefined ? `group ${groupRef}` : `groups ${formatSelector(groupSelector!)}`}${exceptText}`,
    ref: groupRef,
    selector: groupSelector,
    except: except.map(formatPrefix),
  };
}

function parseService(ctx: Ctx, v: Json, path: string, what: string): Peer[] | undefined {
  const { c } = ctx;
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, SERVICE_FIELDS);
  const out: Peer[] = [];
  if (has(o, 'k8sService')) {
    const p = join(path, 'k8sService');
    const so = c.object(o.k8sService, p);
    if (!so) return undefined;
    c.fields(so, p, ['serviceName', 'namespace']);
    const name = has(so, 'serviceName') ? c.string(so.serviceName, join(p, 'serviceName')) : undefined;
    const ns = has(so, 'namespace') ? c.string(so.namespace, join(p, 'namespace')) : undefined;
    // Without a namespace, a namespaced policy reaches services of its own namespace only.
    if (name) out.push({ kind: 'service', what: `${what}=${ns || ctx.namespace || '*'}/${name}`, serviceName: name, serviceSelector: undefined, namespace: ns || ctx.namespace });
    else out.push({ kind: 'none', what: `${what} (no serviceName)` });
  }
  if (has(o, 'k8sServiceSelector')) {
    const p = join(path, 'k8sServiceSelector');
    const so = c.object(o.k8sServiceSelector, p);
    if (!so) return undefined;
    c.fields(so, p, ['selector', 'namespace']);
    if (!has(so, 'selector')) {
      c.report(join(p, 'selector'), 'required field is missing');
      return undefined;
    }
    const sel = parseSelector(c, so.selector, join(p, 'selector'));
    const ns = has(so, 'namespace') ? c.string(so.namespace, join(p, 'namespace')) : undefined;
    if (!sel) return undefined;
    out.push({ kind: 'service', what, serviceName: undefined, serviceSelector: sel, namespace: ns || ctx.namespace });
  }
  if (out.length === 0) out.push({ kind: 'none', what: `${what} (empty)` });
  return out;
}

function parseFqdnSelector(c: Checker, v: Json, path: string, what: string): Peer | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, DNS_FIELDS);
  const name = has(o, 'matchName') ? c.string(o.matchName, join(path, 'matchName')) : undefined;
  const pattern = has(o, 'matchPattern') ? c.string(o.matchPattern, join(path, 'matchPattern')) : undefined;
  if (name !== undefined && pattern !== undefined) {
    c.report(path, 'only one of MatchName or MatchPattern is allowed in an FQDNSelector');
    return undefined;
  }
  if (name === undefined && pattern === undefined) {
    c.report(path, 'one of MatchName or MatchPattern is required in an FQDNSelector');
    return undefined;
  }
  if (name !== undefined) {
    const err = validateMatchName(name);
    if (err) {
      c.report(join(path, 'matchName'), err);
      return undefined;
    }
  }
  if (pattern !== undefined) {
    const err = validateMatchPattern(pattern);
    if (err) {
      c.report(join(path, 'matchPattern'), err);
      return undefined;
    }
  }
  return {
    kind: 'fqdn',
    what: `${what}=${name ?? pattern}`,
    matchName: name,
    matchPattern: pattern,
    labelKey: fqdnSelectorKey({ matchName: name, matchPattern: pattern }),
  };
}

interface PortCtx {
  readonly isIngress: boolean;
  readonly isDeny: boolean;
  readonly hostPolicy: boolean;
}

interface ParsedPort {
  readonly protocol: L4Protocol;
  readonly port: number | string;
  readonly endPort: number | undefined;
}

/**
 * One `ports[]` entry. Returns undefined when it has a problem, so that later checks (L7 on TCP
 * only, port 0) never report a consequence of the same fault.
 */
function parsePortProtocol(c: Checker, v: Json, path: string): ParsedPort | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  const before = c.issues.length;
  c.fields(o, path, PORT_FIELDS);
  let port: number | string | undefined;
  const portless = typeof o.protocol === 'string' && PORTLESS_PROTOCOLS.includes(o.protocol);
  if (!has(o, 'port')) {
    if (portless) port = 0;
    else c.report(join(path, 'port'), 'Port must be specified');
  } else if (typeof o.port !== 'string') {
    c.report(join(path, 'port'), `must be a string (quote it, e.g. "${String(o.port)}"), got ${typeof o.port}`);
  } else if (o.port === '') {
    if (portless) port = 0;
    else c.report(join(path, 'port'), 'Port must be specified');
  } else if (isServiceName(o.port)) {
    port = o.port.toLowerCase();
  } else if (portless && o.port !== '0') {
    // Cilium's PortProtocol.Validate: these protocols have no ports.
    c.report(join(path, 'port'), `port must be empty or 0 for protocol ${String(o.protocol)}`);
  } else {
    const r = parseGoUint16(o.port);
    if (!r.ok) c.report(join(path, 'port'), `Unable to parse port: ${r.error}`);
    else port = r.value;
  }
  let endPort: number | undefined;
  if (has(o, 'endPort')) {
    const e = c.integer(o.endPort, join(path, 'endPort'));
    if (e !== undefined) {
      if (e < 0 || e > 65535) c.report(join(path, 'endPort'), `must be between 0 and 65535, got ${e}`);
      else if (e > 0) endPort = e; // 0 = unset
    }
  }
  let protocol: L4Protocol = 'ANY';
  if (has(o, 'protocol')) {
    const p = c.string(o.protocol, join(path, 'protocol'));
    if (p !== undefined) {
      if (!PROTOCOLS.includes(p)) c.report(join(path, 'protocol'), `unsupported value ${JSON.stringify(p)}: must be one of ${PROTOCOLS.join(', ')}`);
      else protocol = p as L4Protocol;
    }
  }
  if (port === undefined || c.issues.length > before) return undefined;
  return { protocol, port, endPort };
}

function parsePortRule(c: Checker, v: Json, path: string, pc: PortCtx): PortSpec[] | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  const before = c.issues.length;
  c.fields(o, path, pc.isDeny ? PORT_DENY_RULE_FIELDS : PORT_RULE_FIELDS);
  const parsed: ParsedPort[] = [];
  if (has(o, 'ports')) {
    const arr = c.array(o.ports, join(path, 'ports'));
    if (arr) {
      if (arr.length > MAX_PORTS) c.report(join(path, 'ports'), `too many ports, the max is ${MAX_PORTS}`);
      arr.forEach((e, i) => {
        const pp = parsePortProtocol(c, e, join(join(path, 'ports'), i));
        if (pp) parsed.push(pp);
      });
    }
  }
  let l7: L7Spec | null = null;
  const rulesPath = join(path, 'rules');
  if (has(o, 'rules')) {
    l7 = parseL7Rules(c, o.rules, rulesPath, pc, parsed, has(o, 'ports') ? listLength(o.ports) : 0);
  }
  // serverNames without TLS termination: the port is redirected to the TLS passthrough proxy,
  // which allows a connection only if its ClientHello's SNI is listed (Cilium PortRule.sanitize).
  const serverNames: string[] = [];
  if (has(o, 'serverNames')) {
    const arr = c.array(o.serverNames, join(path, 'serverNames'));
    arr?.forEach((s, i) => {
      const str = c.string(s, join(join(path, 'serverNames'), i));
      if (str === undefined) return;
      const err = validateServerName(str);
      if (err) c.report(join(join(path, 'serverNames'), i), err);
      else serverNames.push(str);
    });
    if (arr && arr.length > 0 && l7 !== null && !has(o, 'terminatingTLS')) {
      c.report(join(path, 'serverNames'), 'ServerNames are not allowed with L7 rules without TLS termination');
    }
  }
  for (const tls of ['terminatingTLS', 'originatingTLS']) {
    if (has(o, tls)) notSupported(c, join(path, tls), `${tls} (TLS interception)`);
  }
  if (has(o, 'listener')) {
    if (pc.isIngress) c.report(join(path, 'listener'), 'Listener is not allowed on ingress');
    else if (l7 !== null) c.report(join(path, 'listener'), 'Listener is not allowed with L7 rules');
    else notSupported(c, join(path, 'listener'), 'listener (custom Envoy listeners)');
  }
  if (c.issues.length > before) return undefined;
  if (serverNames.length > 0 && l7 === null) l7 = { kind: 'tls', serverNames };
  // An empty `ports` list means every port of every protocol.
  if (parsed.length === 0) return [{ protocol: 'ANY', port: 0, l7 }];
  return parsed.map((p) => ({ protocol: p.protocol, port: p.port, ...(p.endPort !== undefined ? { endPort: p.endPort } : {}), l7 }));
}

function parseL7Rules(c: Checker, v: Json | undefined, path: string, pc: PortCtx, ports: readonly ParsedPort[], portCount: number): L7Spec | null {
  const o = c.object(v, path);
  if (!o) return null;
  c.fields(o, path, L7_FIELDS);
  const present = ['http', 'kafka', 'dns'].filter((k) => has(o, k));
  // An empty l7proto is no protocol (Cilium's L7Rules.Validate tests `L7Proto != ""`).
  const hasL7Proto = has(o, 'l7proto') && o.l7proto !== '';
  if (hasL7Proto) present.push('l7proto');
  if (has(o, 'l7') && !hasL7Proto) {
    c.report(join(path, 'l7'), "'l7' may only be specified when a 'l7proto' is also specified");
    return null;
  }
  if (present.length === 0) {
    c.report(path, 'must specify exactly one of http, kafka, dns or l7proto');
    return null;
  }
  // Cilium's IngressRule/EgressRule.Validate (v1.19): a host policy may use DNS rules on egress
  // only; generic l7proto rules are not counted there.
  if (pc.hostPolicy) {
    const counted = present.filter((k) => k !== 'l7proto');
    if (pc.isIngress && counted.length > 0) {
      c.report(path, 'L7 policy is not supported on host ingress yet');
      return null;
    }
    const notOnHostEgress = counted.find((k) => k !== 'dns');
    if (!pc.isIngress && notOnHostEgress) {
      c.report(join(path, notOnHostEgress), `L7 protocol ${L7_NAMES[notOnHostEgress]} is not supported on host egress yet`);
      return null;
    }
  }
  if (present.length > 1) {
    c.report(path, 'multiple L7 protocol rule types specified in single rule');
    return null;
  }
  const kind = present[0]!;
  if (kind === 'dns' && pc.isIngress) {
    c.report(join(path, 'dns'), 'L7 protocol DNS is not supported on ingress yet');
    return null;
  }
  for (const p of ports) {
    if (p.port === 0) {
      c.report(path, 'L7 rules can not be used when a port is 0');
      return null;
    }
    if (kind !== 'dns' && p.protocol !== 'TCP') {
      c.report(path, `L7 rules can only apply to TCP (not ${p.protocol}) except for DNS rules`);
      return null;
    }
    if (kind === 'dns' && typeof p.port === 'number' && p.endPort !== undefined && p.endPort > p.port) {
      c.report(path, 'DNS rules do not support port ranges');
      return null;
    }
  }
  if (ports.length === 0 && portCount === 0) {
    if (kind === 'dns') {
      c.report(path, 'Port 53 must be specified for DNS rules');
      return null;
    }
    c.report(path, 'L7 rules can not be used when a port is 0');
    return null;
  }
  if (kind === 'http') {
    const arr = c.array(o.http, join(path, 'http'));
    if (!arr) return null;
    const rules: HttpRuleSpec[] = [];
    arr.forEach((e, i) => {
      const r = parseHttpRule(c, e, join(join(path, 'http'), i));
      if (r) rules.push(r);
    });
    return { kind: 'http', rules };
  }
  if (kind === 'dns') {
    const arr = c.array(o.dns, join(path, 'dns'));
    if (!arr) return null;
    const rules: DnsRuleSpec[] = [];
    arr.forEach((e, i) => {
      const p = join(join(path, 'dns'), i);
      const d = c.object(e, p);
      if (!d) return;
      c.fields(d, p, DNS_FIELDS);
      const name = has(d, 'matchName') ? c.string(d.matchName, join(p, 'matchName')) : undefined;
      const pattern = has(d, 'matchPattern') ? c.string(d.matchPattern, join(p, 'matchPattern')) : undefined;
      // Unlike a toFQDNs selector, a DNS rule may set both (either one allows the lookup) or
      // neither (it allows no name): Cilium's PortRuleDNS.Sanitize (pkg/policy/api/fqdn.go) checks
      // only each field, and the DNS proxy ORs them (pkg/fqdn/dnsproxy GeneratePattern).
      if (name === undefined && pattern === undefined) c.warn(p, 'a DNS rule with neither matchName nor matchPattern allows no name: lookups it alone covers are refused');
      if (name !== undefined) {
        const err = validateMatchName(name);
        if (err) c.report(join(p, 'matchName'), err);
      }
      if (pattern !== undefined) {
        const err = validateMatchPattern(pattern);
        if (err) c.report(join(p, 'matchPattern'), err);
      }
      rules.push({ ...(name !== undefined ? { matchName: name } : {}), ...(pattern !== undefined ? { matchPattern: pattern } : {}) });
    });
    return { kind: 'dns', rules };
  }
  const before = c.issues.length;
  let what: string;
  if (kind === 'kafka') {
    const arr = c.array(o.kafka, join(path, 'kafka'));
    arr?.forEach((e, i) => parseKafkaRule(c, e, join(join(path, 'kafka'), i)));
    what = 'Kafka';
  } else {
    const proto = c.string(o.l7proto, join(path, 'l7proto'));
    if (has(o, 'l7')) {
      const arr = c.array(o.l7, join(path, 'l7'));
      arr?.forEach((e, i) => {
        const p = join(join(path, 'l7'), i);
        const m = c.object(e, p);
        if (!m) return;
        for (const [k, val] of Object.entries(m)) c.string(val, join(p, k));
        // Cilium's PortRuleL7.Validate.
        if (Object.hasOwn(m, '')) c.report(p, 'Empty key not allowed');
      });
    }
    what = `L7 protocol ${JSON.stringify(proto ?? '')}`;
  }
  if (c.issues.length > before) return null;
  c.warn(join(path, kind), `Membrane does not parse ${what}: ${describePorts(ports)} ${ports.length > 1 ? 'fail' : 'fails'} closed (the connections this rule allows there are refused)`);
  return { kind: 'unsupported', what: kind === 'kafka' ? 'kafka' : `l7proto ${String(o.l7proto)}` };
}

const L7_NAMES: Readonly<Record<string, string>> = { http: 'HTTP', kafka: 'Kafka', dns: 'DNS', l7proto: 'l7proto' };

/** `9092/TCP`, `8000-8080/TCP`, `kafka/TCP`, joined with commas. */
function describePorts(ports: readonly ParsedPort[]): string {
  const text = ports.map((p) => `${p.port}${typeof p.port === 'number' && p.endPort !== undefined && p.endPort > p.port ? `-${p.endPort}` : ''}/${p.protocol}`);
  return `${text.length > 1 ? 'ports' : 'port'} ${text.join(', ')}`;
}

/** Kafka API keys by lower-case name (Cilium `pkg/policy/api/kafka` APIKeyMap). */
const KAFKA_API_KEYS: ReadonlySet<string> = new Set([
  'produce', 'fetch', 'offsets', 'metadata', 'leaderandisr', 'stopreplica', 'updatemetadata', 'controlledshutdown',
  'offsetcommit', 'offsetfetch', 'findcoordinator', 'joingroup', 'heartbeat', 'leavegroup', 'syncgroup',
  'describegroups', 'listgroups', 'saslhandshake', 'apiversions', 'createtopics', 'deletetopics', 'deleterecords',
  'initproducerid', 'offsetforleaderepoch', 'addpartitionstotxn', 'addoffsetstotxn', 'endtxn', 'writetxnmarkers',
  'txnoffsetcommit', 'describeacls', 'createacls', 'deleteacls', 'describeconfigs', 'alterconfigs',
]);
const KAFKA_ROLES: ReadonlySet<string> = new Set(['produce', 'consume']);
const KAFKA_MAX_TOPIC_LEN = 255;
/** Cilium's TopicValidChar; its class also admits a backslash. */
const KAFKA_TOPIC = /^[a-zA-Z0-9\\._-]+$/;

/**
 * One `kafka[]` rule, checked as Cilium's kafka.PortRule.Sanitize does (first fault only, its
 * wording): role and apiKey exclusive, known apiKey (case-insensitive), produce/consume role,
 * apiVersion a non-negative int16, topic at most 255 of [a-zA-Z0-9._-].
 */
function parseKafkaRule(c: Checker, v: Json, path: string): void {
  const k = c.object(v, path);
  if (!k) return;
  const before = c.issues.length;
  c.fields(k, path, KAFKA_FIELDS);
  const f: Record<string, string> = {};
  for (const name of KAFKA_FIELDS) {
    if (!has(k, name)) continue;
    const val = c.string(k[name], join(path, name));
    if (val !== undefined) f[name] = val;
  }
  if (c.issues.length > before) return;
  const { role = '', apiKey = '', apiVersion = '', topic = '' } = f;
  if (apiKey !== '' && role !== '') c.report(path, `cannot set both Role ${JSON.stringify(role)} and APIKey ${JSON.stringify(apiKey)} together`);
  else if (apiKey !== '' && !KAFKA_API_KEYS.has(apiKey.toLowerCase())) c.report(join(path, 'apiKey'), `invalid Kafka APIKey ${JSON.stringify(apiKey)}`);
  else if (role !== '' && !KAFKA_ROLES.has(role.toLowerCase())) c.report(join(path, 'role'), `invalid Kafka Role ${JSON.stringify(role)}`);
  else if (apiVersion !== '' && !isKafkaApiVersion(apiVersion)) c.report(join(path, 'apiVersion'), `invalid Kafka APIVersion ${JSON.stringify(apiVersion)}`);
  else if (topic.length > KAFKA_MAX_TOPIC_LEN) c.report(join(path, 'topic'), `kafka topic exceeds maximum len of ${KAFKA_MAX_TOPIC_LEN}`);
  else if (topic !== '' && !KAFKA_TOPIC.test(topic)) c.report(join(path, 'topic'), `invalid Kafka Topic name ${JSON.stringify(topic)}`);
}

/** Go's `strconv.ParseInt(s, 10, 16)` with a result of at least 0. */
function isKafkaApiVersion(s: string): boolean {
  if (!/^[+-]?[0-9]+$/.test(s)) return false;
  const n = Number(s);
  return n >= 0 && n <= 32767 && !(s.startsWith('-') && n !== 0);
}

function checkRegex(c: Checker, v: Json | undefined, path: string): string | undefined {
  const s = c.string(v, path);
  if (s === undefined) return undefined;
  // Envoy compiles path, method and host with RE2 and refuses programs above its limit (Cilium
  // would then drop the endpoint's whole L7 policy, cilium/cilium#41314): refuse them here.
  const r = compileFullMatch(s, { maxProgramSize: MAX_PROGRAM_SIZE });
  if (!r.ok) {
    c.report(path, `invalid regex ${JSON.stringify(s)}: ${r.error}`);
    return undefined;
  }
  return s;
}

function parseHttpRule(c: Checker, v: Json, path: string): HttpRuleSpec | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, HTTP_FIELDS);
  const out: { -readonly [K in keyof HttpRuleSpec]: HttpRuleSpec[K] } = {};
  if (has(o, 'method')) {
    const m = checkRegex(c, o.method, join(path, 'method'));
    if (m !== undefined) out.method = m;
  }
  if (has(o, 'path')) {
    const m = checkRegex(c, o.path, join(path, 'path'));
    if (m !== undefined) out.path = m;
  }
  if (has(o, 'host')) {
    const m = checkRegex(c, o.host, join(path, 'host'));
    if (m !== undefined) out.host = m;
  }
  if (has(o, 'headers')) {
    const arr = c.array(o.headers, join(path, 'headers'));
    const headers: { name: string; value?: string }[] = [];
    arr?.forEach((h, i) => {
      const s = c.string(h, join(join(path, 'headers'), i));
      if (s === undefined) return;
      // Cilium does not validate headers; an empty name simply never matches.
      headers.push(parseHeaderString(s));
    });
    out.headers = headers;
  }
  if (has(o, 'headerMatches')) {
    const arr = c.array(o.headerMatches, join(path, 'headerMatches'));
    const hms: HttpHeaderMatch[] = [];
    arr?.forEach((h, i) => {
      const p = join(join(path, 'headerMatches'), i);
      const ho = c.object(h, p);
      if (!ho) return;
      c.fields(ho, p, HEADER_MATCH_FIELDS);
      const name = has(ho, 'name') ? c.string(ho.name, join(p, 'name')) : undefined;
      if (name === undefined || name === '') {
        c.report(join(p, 'name'), 'required field is missing');
        return;
      }
      const hm: { -readonly [K in keyof HttpHeaderMatch]: HttpHeaderMatch[K] } = { name };
      if (has(ho, 'value')) {
        const val = c.string(ho.value, join(p, 'value'));
        if (val !== undefined) hm.value = val;
      }
      if (has(ho, 'mismatch')) {
        const mm = c.string(ho.mismatch, join(p, 'mismatch'));
        if (mm !== undefined && !MISMATCH_ACTIONS.includes(mm)) {
          c.report(join(p, 'mismatch'), `unsupported value ${JSON.stringify(mm)}: must be one of LOG, ADD, DELETE, REPLACE`);
        } else if (mm !== undefined) hm.mismatch = mm;
      }
      if (has(ho, 'secret')) {
        const sp = join(p, 'secret');
        const so = c.object(ho.secret, sp);
        if (so) {
          c.fields(so, sp, ['namespace', 'name']);
          const sn = has(so, 'name') ? c.string(so.name, join(sp, 'name')) : (c.report(join(sp, 'name'), 'required field is missing'), undefined);
          const sns = has(so, 'namespace') ? c.string(so.namespace, join(sp, 'namespace')) : '';
          if (sn !== undefined && sns !== undefined) hm.secret = { namespace: sns, name: sn };
        }
      }
      hms.push(hm);
    });
    out.headerMatches = hms;
  }
  return out;
}

/** `"Name: value"` → exact match (split at the first space, trailing `:` dropped); `"Name"` → presence. */
export function parseHeaderString(s: string): { name: string; value?: string } {
  const t = s.trim();
  const sp = t.indexOf(' ');
  if (sp < 0) return { name: t.endsWith(':') ? t.slice(0, -1) : t };
  let name = t.slice(0, sp);
  if (name.endsWith(':')) name = name.slice(0, -1);
  return { name, value: t.slice(sp + 1).trim() };
}

function parseIcmpRule(c: Checker, v: Json, path: string): PortSpec[] | undefined {
  const o = c.object(v, path);
  if (!o) return undefined;
  c.fields(o, path, ICMP_FIELDS);
  const out: PortSpec[] = [];
  if (!has(o, 'fields')) return out;
  const arr = c.array(o.fields, join(path, 'fields'));
  if (!arr) return undefined;
  if (arr.length > MAX_ICMP_FIELDS) c.report(join(path, 'fields'), `too many types, the max is ${MAX_ICMP_FIELDS}`);
  arr.forEach((f, i) => {
    const p = join(join(path, 'fields'), i);
    const fo = c.object(f, p);
    if (!fo) return;
    c.fields(fo, p, ICMP_FIELD_FIELDS);
    let family = 'IPv4';
    if (has(fo, 'family')) {
      const fam = c.string(fo.family, join(p, 'family'));
      if (fam !== undefined && fam !== 'IPv4' && fam !== 'IPv6' && fam !== '') {
        c.report(join(p, 'family'), `wrong family: ${fam}`);
        return;
      }
      if (fam) family = fam;
    }
    if (!has(fo, 'type')) {
      c.report(join(p, 'type'), 'required field is missing');
      return;
    }
    const names = family === 'IPv4' ? ICMP4_TYPES : ICMP6_TYPES;
    let type: number | undefined;
    if (typeof fo.type === 'number') {
      if (!Number.isInteger(fo.type) || fo.type < 0 || fo.type > 255) c.report(join(p, 'type'), `must be an integer between 0 and 255, got ${fo.type}`);
      else type = fo.type;
    } else if (typeof fo.type === 'string') {
      if (/^[0-9]+$/.test(fo.type) && Number(fo.type) <= 255) type = Number(fo.type);
      else if (Object.hasOwn(names, fo.type)) type = names[fo.type];
      else c.report(join(p, 'type'), `unknown ${family} ICMP type ${JSON.stringify(fo.type)}`);
    } else c.report(join(p, 'type'), 'must be an integer or a string');
    // endPort = type marks an exact ICMP type (type 0 is EchoReply, not "every type").
    if (type !== undefined) out.push({ protocol: family === 'IPv4' ? 'ICMP' : 'ICMPv6', port: type, endPort: type, l7: null });
  });
  return out;
}

/** Checks apiVersion/kind/metadata/spec(s) of a Cilium policy object and returns its rules. */
export function parseCiliumPolicyObject(c: Checker, doc: JsonObject, namespace: string | undefined): Rule[] {
  c.fields(doc, '', ['apiVersion', 'kind', 'metadata', 'spec', 'specs', 'status']);
  const rules: Rule[] = [];
  const hasSpec = has(doc, 'spec');
  const hasSpecs = has(doc, 'specs');
  if (!hasSpec && !hasSpecs) c.report('spec', 'Invalid CiliumNetworkPolicy spec(s): empty policy (spec or specs is required)');
  if (hasSpec) {
    const r = parseCiliumRule(c, doc.spec, 'spec', namespace, 0);
    if (r) rules.push(r);
  }
  if (hasSpecs) {
    const arr = c.array(doc.specs, 'specs');
    arr?.forEach((s, i) => {
      const r = parseCiliumRule(c, s, join('specs', i), namespace, hasSpec ? i + 1 : i);
      if (r) rules.push(r);
    });
  }
  return rules;
}
