/**
 * Fluent builders for policy tests: rules are built with withX() calls, not large literals.
 *
 *   cnp('rule1').withEndpointSelector({ class: 'deathstar' })
 *     .withIngress(rule().withFromEndpoints({ org: 'empire' }).withPorts(port('80', 'TCP')).withHttp({ method: 'POST' }))
 */
import { stringify } from 'yaml';
import { endpointLabels, loadPolicyText } from '../../../src/policy/index.js';
import type { Identity, Label, LoadResult, PolicyObject } from '../../../src/policy/index.js';

type Obj = Record<string, unknown>;

export class PortRuleBuilder {
  readonly #ports: Obj[] = [];
  #rules: Obj | undefined;
  #extra: Obj = {};

  withPort(p: string, protocol?: string, endPort?: number): this {
    this.#ports.push({ port: p, ...(protocol !== undefined ? { protocol } : {}), ...(endPort !== undefined ? { endPort } : {}) });
    return this;
  }

  withHttp(...rules: Obj[]): this {
    this.#rules = { ...(this.#rules ?? {}), http: rules };
    return this;
  }

  withDns(...rules: Obj[]): this {
    this.#rules = { ...(this.#rules ?? {}), dns: rules };
    return this;
  }

  withRules(rules: Obj): this {
    this.#rules = rules;
    return this;
  }

  withField(k: string, v: unknown): this {
    this.#extra[k] = v;
    return this;
  }

  build(): Obj {
    return { ...(this.#ports.length ? { ports: this.#ports } : {}), ...(this.#rules ? { rules: this.#rules } : {}), ...this.#extra };
  }
}

export function ports(): PortRuleBuilder {
  return new PortRuleBuilder();
}

export class PeerRuleBuilder {
  readonly #o: Obj = {};
  readonly #dir: 'ingress' | 'egress';

  constructor(dir: 'ingress' | 'egress') {
    this.#dir = dir;
  }

  #push(k: string, v: unknown): this {
    const cur = (this.#o[k] as unknown[] | undefined) ?? [];
    cur.push(v);
    this.#o[k] = cur;
    return this;
  }

  withEndpoints(...selectors: Obj[]): this {
    for (const s of selectors) this.#push(this.#dir === 'ingress' ? 'fromEndpoints' : 'toEndpoints', { matchLabels: s });
    return this;
  }

  withSelector(sel: Obj): this {
    return this.#push(this.#dir === 'ingress' ? 'fromEndpoints' : 'toEndpoints', sel);
  }

  withEntities(...names: string[]): this {
    for (const n of names) this.#push(this.#dir === 'ingress' ? 'fromEntities' : 'toEntities', n);
    return this;
  }

  withCIDR(...cidrs: string[]): this {
    for (const c of cidrs) this.#push(this.#dir === 'ingress' ? 'fromCIDR' : 'toCIDR', c);
    return this;
  }

  withCIDRSet(cidr: string, except?: string[]): this {
    return this.#push(this.#dir === 'ingress' ? 'fromCIDRSet' : 'toCIDRSet', { cidr, ...(except ? { except } : {}) });
  }

  withService(serviceName: string, namespace?: string): this {
    return this.#push('toServices', { k8sService: { serviceName, ...(namespace ? { namespace } : {}) } });
  }

  withServiceSelector(selector: Obj, namespace?: string): this {
    return this.#push('toServices', { k8sServiceSelector: { selector: { matchLabels: selector }, ...(namespace ? { namespace } : {}) } });
  }

  withFQDN(sel: { matchName?: string; matchPattern?: string }): this {
    return this.#push('toFQDNs', sel);
  }

  withPorts(...rules: PortRuleBuilder[]): this {
    for (const r of rules) this.#push('toPorts', r.build());
    return this;
  }

  withIcmp(...fields: Obj[]): this {
    return this.#push('icmps', { fields });
  }

  withField(k: string, v: unknown): this {
    this.#o[k] = v;
    return this;
  }

  build(): Obj {
    return { ...this.#o };
  }
}

export function from(): PeerRuleBuilder {
  return new PeerRuleBuilder('ingress');
}

export function to(): PeerRuleBuilder {
  return new PeerRuleBuilder('egress');
}

export class RuleBuilder {
  readonly #o: Obj = {};

  withEndpointSelector(matchLabels: Obj, matchExpressions?: Obj[]): this {
    this.#o.endpointSelector = { ...(Object.keys(matchLabels).length ? { matchLabels } : {}), ...(matchExpressions ? { matchExpressions } : {}) };
    return this;
  }

  #push(k: string, v: unknown): this {
    const cur = (this.#o[k] as unknown[] | undefined) ?? [];
    cur.push(v);
    this.#o[k] = cur;
    return this;
  }

  withIngress(...r: PeerRuleBuilder[]): this {
    for (const x of r) this.#push('ingress', x.build());
    return this;
  }

  withIngressDeny(...r: PeerRuleBuilder[]): this {
    for (const x of r) this.#push('ingressDeny', x.build());
    return this;
  }

  withEgress(...r: PeerRuleBuilder[]): this {
    for (const x of r) this.#push('egress', x.build());
    return this;
  }

  withEgressDeny(...r: PeerRuleBuilder[]): this {
    for (const x of r) this.#push('egressDeny', x.build());
    return this;
  }

  withDefaultDeny(d: { ingress?: boolean; egress?: boolean }): this {
    this.#o.enableDefaultDeny = d;
    return this;
  }

  withField(k: string, v: unknown): this {
    this.#o[k] = v;
    return this;
  }

  build(): Obj {
    return { ...this.#o };
  }
}

export class PolicyBuilder {
  readonly #kind: string;
  readonly #name: string | undefined;
  #namespace: string | undefined;
  #spec: RuleBuilder | undefined;
  readonly #specs: RuleBuilder[] = [];
  #extra: Obj = {};

  constructor(kind: string, name: string | undefined) {
    this.#kind = kind;
    this.#name = name;
  }

  withNamespace(ns: string): this {
    this.#namespace = ns;
    return this;
  }

  withSpec(r: RuleBuilder): this {
    this.#spec = r;
    return this;
  }

  withSpecs(...r: RuleBuilder[]): this {
    this.#specs.push(...r);
    return this;
  }

  withTop(k: string, v: unknown): this {
    this.#extra[k] = v;
    return this;
  }

  build(): Obj {
    return {
      apiVersion: 'cilium.io/v2',
      kind: this.#kind,
      metadata: { ...(this.#name !== undefined ? { name: this.#name } : {}), ...(this.#namespace ? { namespace: this.#namespace } : {}) },
      ...(this.#spec ? { spec: this.#spec.build() } : {}),
      ...(this.#specs.length ? { specs: this.#specs.map((s) => s.build()) } : {}),
      ...this.#extra,
    };
  }

  yaml(): string {
    return stringify(this.build());
  }

  load(file = 'test.yaml'): LoadResult {
    return loadPolicyText(this.yaml(), file);
  }

  /** Loads and fails the test if there are problems. */
  policy(file = 'test.yaml'): PolicyObject {
    const r = this.load(file);
    if (r.problems.length) throw new Error(`unexpected problems: ${JSON.stringify(r.problems)}`);
    return r.policies[0]!;
  }
}

export function cnp(name?: string): PolicyBuilder {
  return new PolicyBuilder('CiliumNetworkPolicy', name);
}

export function ccnp(name?: string): PolicyBuilder {
  return new PolicyBuilder('CiliumClusterwideNetworkPolicy', name);
}

export function spec(): RuleBuilder {
  return new RuleBuilder();
}

/** A pod identity (labels as Cilium derives them). */
export function pod(id: number, namespace: string, podLabels: Record<string, string>, namespaceLabels?: Record<string, string>): Identity & { labels: Label[] } {
  return { id, labels: endpointLabels({ namespace, podLabels, ...(namespaceLabels ? { namespaceLabels } : {}) }) };
}

export function yamlOf(...objs: Obj[]): string {
  return objs.map((o) => stringify(o)).join('---\n');
}
