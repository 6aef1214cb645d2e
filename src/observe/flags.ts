/**
 * `hubble observe` filter flags → a `FilterSet`, with Hubble's semantics (`hubble/cmd/observe`):
 *
 * - flags given together are AND-ed; a repeated flag ORs its values;
 * - a two-sided flag (`--pod`, `--ip`, `--fqdn`, `--label`, `--identity`, `--port`) matches either side: it
 *   splits the allow list into a "source" group and a "destination" group;
 * - `--namespace` / `--from-namespace` / `--to-namespace` qualify the pod filters;
 * - `--not` sends the next flag to the deny list.
 *
 * `FILTER_FLAGS` is the declarative table the CLI turns into options (name, value name, help).
 */

import { dropReasonCode, EVENT_TYPE, EVENT_TYPE_NAMES, VERDICTS, type Verdict } from '../codes/index.js';
import { TRACE_OBSERVATION_POINTS } from './flow.js';
import { filterError } from './filters/errors.js';
import { membraneError, type MembraneError } from '../errors/index.js';
import type { TCPFlags } from './flow.js';
import { compileFilters, compileFilterSpec } from './filters/index.js';
import type { EventTypeFilter, FilterSet, FilterSpec, IPVersionName } from './filters/types.js';
import { parseIdentity, RESERVED_IDENTITIES } from './identities.js';

export const FILTER_FLAGS = {
  not: { value: null, help: 'Reverse the next filter (send it to the deny list)' },
  uuid: { value: 'id', help: 'Show only the flow with this UUID' },
  pod: { value: '[namespace/]pod', help: 'Show flows from or to pods whose name starts with this prefix' },
  'from-pod': { value: '[namespace/]pod', help: 'Show flows from pods whose name starts with this prefix' },
  'to-pod': { value: '[namespace/]pod', help: 'Show flows to pods whose name starts with this prefix' },
  namespace: { value: 'namespace', help: 'Show flows from or to this namespace' },
  'from-namespace': { value: 'namespace', help: 'Show flows from this namespace' },
  'to-namespace': { value: 'namespace', help: 'Show flows to this namespace' },
  ip: { value: 'ip|cidr', help: 'Show flows from or to this IP address or CIDR' },
  'from-ip': { value: 'ip|cidr', help: 'Show flows from this IP address or CIDR' },
  'to-ip': { value: 'ip|cidr', help: 'Show flows to this IP address or CIDR' },
  fqdn: { value: 'pattern', help: 'Show flows from or to addresses learned through DNS names matching this pattern (* matches any name characters)' },
  'from-fqdn': { value: 'pattern', help: 'Show flows from addresses learned through DNS names matching this pattern' },
  'to-fqdn': { value: 'pattern', help: 'Show flows to addresses learned through DNS names matching this pattern' },
  label: { value: 'selector', help: 'Show flows from or to endpoints selected by this label selector' },
  'from-label': { value: 'selector', help: 'Show flows from endpoints selected by this label selector' },
  'to-label': { value: 'selector', help: 'Show flows to endpoints selected by this label selector' },
  identity: { value: 'identity', help: 'Show flows from or to this security identity (number or reserved name)' },
  'from-identity': { value: 'identity', help: 'Show flows from this security identity' },
  'to-identity': { value: 'identity', help: 'Show flows to this security identity' },
  port: { value: 'port', help: 'Show flows with this source or destination port' },
  'from-port': { value: 'port', help: 'Show flows with this source port' },
  'to-port': { value: 'port', help: 'Show flows with this destination port' },
  verdict: { value: 'verdict', help: `Show flows with this verdict (${VERDICTS.join(', ')})` },
  'drop-reason-desc': { value: 'reason', help: 'Show drops with this reason, e.g. POLICY_DENIED, POLICY_DENY' },
  type: { value: 'type[:subtype]', help: `Show events of this type (${Object.keys(EVENT_TYPE_NAMES).join(', ')})` },
  protocol: { value: 'protocol', help: 'Show flows of this protocol (tcp, udp, icmp, http, dns, …)' },
  'http-status': { value: 'code', help: 'Show HTTP responses with this status code, or a prefix like 4+' },
  'http-method': { value: 'method', help: 'Show HTTP flows with this method' },
  'http-path': { value: 'regex', help: 'Show HTTP flows whose path matches this regular expression' },
  'http-url': { value: 'regex', help: 'Show HTTP flows whose URL matches this regular expression' },
  'traffic-direction': { value: 'ingress|egress', help: 'Show flows in this direction' },
  'node-name': { value: 'name', help: 'Show flows observed on this node (* matches any characters)' },
  'trace-id': { value: 'id', help: 'Show flows carrying this W3C trace id' },
  'tcp-flags': { value: 'flags', help: 'Show TCP flows carrying these flags, comma-separated (syn, ack, fin, rst, psh, urg, ece, cwr, ns)' },
  ipv4: { value: null, help: 'Show only IPv4 flows' },
  ipv6: { value: null, help: 'Show only IPv6 flows' },
  'ip-version': { value: 'none|v4|v6', help: 'Show only IPv4, IPv6 or non-IP flows' },
} as const;
export type FilterFlagName = keyof typeof FILTER_FLAGS;

/** Hubble's one-letter filter flags (`hubble observe -t drop -n default -l app=x -4`). */
export const SHORT_FILTER_FLAGS: Readonly<Record<string, FilterFlagName>> = { t: 'type', n: 'namespace', l: 'label', '4': 'ipv4', '6': 'ipv6' };

/**
 * Hubble filter flags Membrane refuses, with why: each names a FlowFilter field the agent cannot
 * evaluate (no services, workloads, clusters, node labels, interfaces, SNAT or IP-option tracing
 * in Membrane's flows), so accepting the flag would answer with flows it did not ask for.
 */
export const UNSUPPORTED_FILTER_FLAGS: Readonly<Record<string, string>> = {
  service: 'flows carry no Kubernetes service (Membrane has no service load-balancing)',
  'from-service': 'flows carry no Kubernetes service (Membrane has no service load-balancing)',
  'to-service': 'flows carry no Kubernetes service (Membrane has no service load-balancing)',
  workload: 'endpoints carry no workload (owner) references',
  'from-workload': 'endpoints carry no workload (owner) references',
  'to-workload': 'endpoints carry no workload (owner) references',
  cluster: 'Membrane runs a single cluster; flows carry no cluster name',
  'from-cluster': 'Membrane runs a single cluster; flows carry no cluster name',
  'to-cluster': 'Membrane runs a single cluster; flows carry no cluster name',
  'node-label': 'the agent has no node labels',
  'http-header': 'flows do not keep HTTP headers to match',
  'cel-expression': 'Membrane has no CEL evaluator',
  interface: 'flows carry no network interface',
  'snat-ip': 'Membrane does no SNAT',
  'ip-trace-id': 'Membrane does not read IP trace options',
  'ip-trace-option': 'Membrane does not read IP trace options',
  encrypted: 'Membrane does not encrypt node-to-node traffic',
  unencrypted: 'Membrane does not encrypt node-to-node traffic',
  'all-namespaces': 'not implemented in Membrane\'s namespace filter; leave out --namespace instead',
  'from-all-namespaces': 'not implemented in Membrane\'s namespace filter; leave out --from-namespace instead',
  'to-all-namespaces': 'not implemented in Membrane\'s namespace filter; leave out --to-namespace instead',
};

/** Flags that cannot be combined in one list (Hubble's conflict table, restricted to our flags). */
const CONFLICTS: readonly (readonly FilterFlagName[])[] = [
  ['from-fqdn', 'from-ip', 'ip', 'fqdn', 'from-namespace', 'namespace'],
  ['from-fqdn', 'from-ip', 'ip', 'fqdn', 'from-pod', 'pod'],
  ['to-fqdn', 'to-ip', 'ip', 'fqdn', 'to-namespace', 'namespace'],
  ['to-fqdn', 'to-ip', 'ip', 'fqdn', 'to-pod', 'pod'],
  ['to-pod', 'namespace'],
  ['from-pod', 'namespace'],
  ['label', 'from-label'],
  ['label', 'to-label'],
  ['port', 'to-port'],
  ['port', 'from-port'],
  ['identity', 'to-identity'],
  ['identity', 'from-identity'],
];

type ListKey = { [K in keyof FilterSpec]-?: NonNullable<FilterSpec[K]> extends ReadonlyArray<unknown> ? K : never }[keyof FilterSpec];
type Item<K extends ListKey> = NonNullable<FilterSpec[K]>[number];

class Tracker {
  left: FilterSpec | null = null;
  right: FilterSpec | null = null;
  ns: string[] = [];
  srcNs: string[] = [];
  dstNs: string[] = [];
  changed: FilterFlagName[] = [];

  touch(name: FilterFlagName): void {
    if (!this.changed.includes(name)) this.changed.push(name);
    for (const group of CONFLICTS) {
      if (!group.includes(name)) continue;
      const other = group.find((g) => g !== name && this.changed.includes(g));
      if (other) throw filterError(name, `filters --${name} and --${other} cannot be combined`);
    }
  }

  push<K extends ListKey>(side: 'both' | 'left' | 'right', key: K, value: Item<K>): void {
    const add = (spec: FilterSpec): void => {
      const list = (spec[key] ?? []) as Array<Item<K>>;
      list.push(value);
      (spec as Record<string, unknown>)[key] = list;
    };
    if (side !== 'right') add((this.left ??= {}));
    if (side !== 'left') add((this.right ??= {}));
  }

  specs(): FilterSpec[] {
    if (!this.left && !this.right && this.ns.length === 0 && this.srcNs.length === 0 && this.dstNs.length === 0) return [];
    const left = (this.left ??= {});
    const right = (this.right ??= {});
    if (this.dstNs.length > 0) {
      qualify(left, 'destination_pod', this.dstNs);
      qualify(right, 'destination_pod', this.dstNs);
    }
    if (this.srcNs.length > 0) {
      qualify(left, 'source_pod', this.srcNs);
      qualify(right, 'source_pod', this.srcNs);
    }
    if (this.ns.length > 0) {
      qualify(left, 'source_pod', this.ns);
      qualify(right, 'destination_pod', this.ns);
    }
    return JSON.stringify(left) === JSON.stringify(right) ? [left] : [left, right];
  }
}

/** Puts unqualified pod filters into each namespace; no pod filter means every pod of the namespace. */
function qualify(spec: FilterSpec, key: 'source_pod' | 'destination_pod', namespaces: readonly string[]): void {
  const pods = spec[key] && spec[key].length > 0 ? spec[key] : [''];
  const out: string[] = [];
  for (const pod of pods) {
    if (pod.includes('/')) out.push(pod);
    else for (const ns of namespaces) out.push(`${ns}/${pod}`);
  }
  spec[key] = out;
}

function parseType(value: string): EventTypeFilter {
  const colon = value.indexOf(':');
  const typeName = colon < 0 ? value : value.slice(0, colon);
  const sub = colon < 0 ? undefined : value.slice(colon + 1);
  const named = (EVENT_TYPE_NAMES as Record<string, number>)[typeName];
  const type = named ?? (/^[0-9]+$/.test(typeName) ? Number(typeName) : NaN);
  if (!Number.isInteger(type)) {
    throw filterError('type', `unknown type ${JSON.stringify(typeName)}; use one of ${Object.keys(EVENT_TYPE_NAMES).join(', ')}`);
  }
  if (sub === undefined) return { type };
  let subType: number | undefined;
  if (type === EVENT_TYPE.TRACE) {
    const hit = Object.entries(TRACE_OBSERVATION_POINTS).find(([, name]) => name === sub);
    if (hit) subType = Number(hit[0]);
  }
  if (subType === undefined && /^[0-9]+$/.test(sub)) subType = Number(sub);
  if (subType === undefined) throw filterError('type', `unknown sub-type ${JSON.stringify(sub)}`);
  return { type, sub_type: subType, match_sub_type: true };
}

function parseIdentityFlag(name: FilterFlagName, value: string): number {
  const id = parseIdentity(value);
  if (id === undefined) {
    throw filterError(name, `invalid security identity ${JSON.stringify(value)}, expected one of ${Object.keys(RESERVED_IDENTITIES).join(', ')} or a number`);
  }
  return id;
}

/** Hubble's `parseTCPFlags`: comma-separated names, any case. */
function parseTcpFlags(value: string): TCPFlags {
  const flags: TCPFlags = {};
  for (const part of value.split(',')) {
    const name = part.toUpperCase();
    if (!(TCP_FLAG_NAMES as readonly string[]).includes(name)) throw filterError('tcp-flags', `unknown tcp flag: ${part}`);
    flags[name as keyof TCPFlags] = true;
  }
  return flags;
}
const TCP_FLAG_NAMES = ['SYN', 'FIN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'] as const;

/** Hubble's `ipVersion`: `4`, `v4`, `ipv4`, `ip4` (and 6); anything else is "not IP" (`none`). */
function ipVersion(value: string): IPVersionName {
  const v = value.toLowerCase();
  if (['4', 'v4', 'ipv4', 'ip4'].includes(v)) return 'IPv4';
  if (['6', 'v6', 'ipv6', 'ip6'].includes(v)) return 'IPv6';
  return 'IP_NOT_USED';
}

/** Which FilterSpec field each value-checked flag fills (the side does not matter for the check). */
const CHECKED_FIELD: Partial<Record<FilterFlagName, keyof FilterSpec>> = {
  pod: 'source_pod', 'from-pod': 'source_pod', 'to-pod': 'source_pod',
  namespace: 'source_pod', 'from-namespace': 'source_pod', 'to-namespace': 'source_pod',
  ip: 'source_ip', 'from-ip': 'source_ip', 'to-ip': 'source_ip',
  fqdn: 'source_fqdn', 'from-fqdn': 'source_fqdn', 'to-fqdn': 'source_fqdn',
  label: 'source_label', 'from-label': 'source_label', 'to-label': 'source_label',
  port: 'source_port', 'from-port': 'source_port', 'to-port': 'source_port',
  protocol: 'protocol', 'http-status': 'http_status_code', 'http-method': 'http_method',
  'http-path': 'http_path', 'http-url': 'http_url', 'node-name': 'node_name', 'trace-id': 'trace_id',
};

/**
 * Compiles one flag's value on its own, so a value that cannot be matched fails naming the flag
 * the user typed (`--port abc`), not the FlowFilter field it fills.
 */
function checkValue(flag: FilterFlagName, value: string): void {
  const field = CHECKED_FIELD[flag];
  if (field === undefined) return;
  const probe = flag.endsWith('namespace') ? `${value}/` : value;
  try {
    compileFilterSpec({ [field]: [probe] } as FilterSpec);
  } catch (err) {
    const e = err as MembraneError;
    const criterion = (e.details as { criterion?: string } | undefined)?.criterion;
    if (e.code !== 'MEMBRANE_ERR_OBSERVE_FILTER' || criterion === undefined) throw err;
    const at = e.message.indexOf(`${criterion}: `);
    throw filterError(flag, at < 0 ? e.message : e.message.slice(at + criterion.length + 2));
  }
}

/** Accumulates flags in command-line order. */
export class FlowFilterBuilder {
  #allow = new Tracker();
  #deny: Tracker | null = null;
  #negateNext = false;

  /** `--not`: the next flag goes to the deny list. */
  not(): this {
    if (this.#negateNext) throw filterError('not', 'consecutive --not statements');
    this.#negateNext = true;
    return this;
  }

  add(name: FilterFlagName | string, value = ''): this {
    const unsupported = UNSUPPORTED_FILTER_FLAGS[name];
    if (unsupported !== undefined) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `--${name} is not supported by Membrane: ${unsupported}`);
    if (!(name in FILTER_FLAGS)) throw filterError(name, 'unknown filter flag');
    const flag = name as FilterFlagName;
    if (flag === 'not') return this.not();
    let t = this.#allow;
    if (this.#negateNext) {
      this.#negateNext = false;
      t = this.#deny ??= new Tracker();
    }
    t.touch(flag);
    switch (flag) {
      case 'uuid':
        t.push('both', 'uuid', value);
        break;
      case 'pod':
        t.push('left', 'source_pod', value);
        t.push('right', 'destination_pod', value);
        break;
      case 'from-pod':
        t.push('both', 'source_pod', value);
        break;
      case 'to-pod':
        t.push('both', 'destination_pod', value);
        break;
      case 'namespace':
        t.ns.push(value);
        break;
      case 'from-namespace':
        t.srcNs.push(value);
        break;
      case 'to-namespace':
        t.dstNs.push(value);
        break;
      case 'ip':
        t.push('left', 'source_ip', value);
        t.push('right', 'destination_ip', value);
        break;
      case 'from-ip':
        t.push('both', 'source_ip', value);
        break;
      case 'to-ip':
        t.push('both', 'destination_ip', value);
        break;
      case 'fqdn':
        t.push('left', 'source_fqdn', value);
        t.push('right', 'destination_fqdn', value);
        break;
      case 'from-fqdn':
        t.push('both', 'source_fqdn', value);
        break;
      case 'to-fqdn':
        t.push('both', 'destination_fqdn', value);
        break;
      case 'label':
        t.push('left', 'source_label', value);
        t.push('right', 'destination_label', value);
        break;
      case 'from-label':
        t.push('both', 'source_label', value);
        break;
      case 'to-label':
        t.push('both', 'destination_label', value);
        break;
      case 'identity': {
        const id = parseIdentityFlag(flag, value);
        t.push('left', 'source_identity', id);
        t.push('right', 'destination_identity', id);
        break;
      }
      case 'from-identity':
        t.push('both', 'source_identity', parseIdentityFlag(flag, value));
        break;
      case 'to-identity':
        t.push('both', 'destination_identity', parseIdentityFlag(flag, value));
        break;
      case 'port':
        t.push('left', 'source_port', value);
        t.push('right', 'destination_port', value);
        break;
      case 'from-port':
        t.push('both', 'source_port', value);
        break;
      case 'to-port':
        t.push('both', 'destination_port', value);
        break;
      case 'verdict':
        if (!(VERDICTS as readonly string[]).includes(value)) throw filterError('verdict', `invalid --verdict value: ${value}`);
        t.push('both', 'verdict', value as Verdict);
        break;
      case 'drop-reason-desc':
        if (value === '') throw filterError('drop-reason-desc', 'empty --drop-reason-desc value');
        if (dropReasonCode(value) === undefined) throw filterError('drop-reason-desc', `invalid --drop-reason-desc value: ${value}`);
        t.push('both', 'drop_reason_desc', value);
        break;
      case 'type':
        t.push('both', 'event_type', parseType(value));
        break;
      case 'protocol':
        t.push('both', 'protocol', value);
        break;
      case 'http-status':
        t.push('both', 'http_status_code', value);
        break;
      case 'http-method':
        t.push('both', 'http_method', value);
        break;
      case 'http-path':
        t.push('both', 'http_path', value);
        break;
      case 'http-url':
        t.push('both', 'http_url', value);
        break;
      case 'traffic-direction': {
        const d = value.toLowerCase();
        if (d !== 'ingress' && d !== 'egress') throw filterError('traffic-direction', `${value}: invalid traffic direction, expected ingress or egress`);
        t.push('both', 'traffic_direction', d === 'ingress' ? 'INGRESS' : 'EGRESS');
        break;
      }
      case 'node-name':
        t.push('both', 'node_name', value);
        break;
      case 'trace-id':
        t.push('both', 'trace_id', value);
        break;
      case 'tcp-flags':
        t.push('both', 'tcp_flags', parseTcpFlags(value));
        break;
      case 'ipv4':
        t.push('both', 'ip_version', 'IPv4');
        break;
      case 'ipv6':
        t.push('both', 'ip_version', 'IPv6');
        break;
      case 'ip-version':
        t.push('both', 'ip_version', ipVersion(value));
        break;
    }
    checkValue(flag, value);
    return this;
  }

  build(): FilterSet {
    if (this.#negateNext) throw filterError('not', '--not must be followed by a filter');
    return { allow: this.#allow.specs(), deny: this.#deny?.specs() ?? [] };
  }
}

/**
 * `[['pod','deathstar'], ['protocol','http']]` → FilterSet. `['not']` negates the next entry.
 * Validates by compiling once, so a bad regex or CIDR fails here with the flag named.
 */
export function filtersFromFlags(flags: ReadonlyArray<readonly [string, string?]>): FilterSet {
  const b = new FlowFilterBuilder();
  for (const [name, value] of flags) b.add(name, value ?? '');
  const set = b.build();
  compileFilters(set);
  return set;
}
