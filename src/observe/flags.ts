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
import { compileFilters } from './filters/index.js';
import type { EventTypeFilter, FilterSet, FilterSpec } from './filters/types.js';
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
} as const;
export type FilterFlagName = keyof typeof FILTER_FLAGS;

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
    }
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
