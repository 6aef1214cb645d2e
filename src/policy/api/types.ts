/**
 * The normalised internal form of a policy. Every accepted CiliumNetworkPolicy,
 * CiliumClusterwideNetworkPolicy and Kubernetes NetworkPolicy is turned into `Rule`s of this shape,
 * so `resolve/` knows one form only. Namespace scoping has already been applied to selectors.
 */

export type PolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy' | 'CiliumCIDRGroup' | 'ClusterNetworkPolicy';

/**
 * The tier of a rule (Cilium's `types.Tier`, pkg/policy/types/policyentry.go): `admin` and
 * `baseline` come from a ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2); every
 * CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and NetworkPolicy rule is in the `normal`
 * (developer) tier, evaluated between them.
 */
export type PolicyTier = 'admin' | 'normal' | 'baseline';

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

/** One requirement on a label. `source` 'any' matches a label of any source. */
export interface Requirement {
  readonly source: string;
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: readonly string[];
  /** Written as a `matchLabels` entry (namespace scoping may replace only those). */
  readonly fromMatchLabels?: true;
}

/** A label selector: all requirements must hold. No requirements = selects everything. */
export interface Selector {
  readonly requirements: readonly Requirement[];
}

/**
 * A peer of a rule. It selects an identity if any of `anyOf` does. An element with no
 * requirements makes the peer a wildcard (every identity, written as identity 0 in the map).
 */
export type Peer =
  | {
      readonly kind: 'selector';
      readonly what: string;
      readonly anyOf: readonly Selector[];
      /** For CIDR peers: the prefixes named (parent and excepts), canonical text. */
      readonly cidrs?: readonly string[];
    }
  | {
      readonly kind: 'service';
      readonly what: string;
      /** By name (k8sService) or by labels (k8sServiceSelector); namespace undefined = any. */
      readonly serviceName: string | undefined;
      readonly serviceSelector: Selector | undefined;
      readonly namespace: string | undefined;
    }
  | {
      readonly kind: 'fqdn';
      readonly what: string;
      readonly matchName: string | undefined;
      readonly matchPattern: string | undefined;
      /** The key of the `fqdn:` label the FQDN subsystem gives the IPs this selector admits. */
      readonly labelKey: string;
    }
  /**
   * A `fromCIDRSet`/`toCIDRSet` entry naming CiliumCIDRGroups, by name (`cidrGroupRef`) or by
   * their labels (`cidrGroupSelector`). Resolved against the CiliumCIDRGroup objects loaded with
   * the policies; a group that does not exist selects nothing (as in Cilium).
   */
  | {
      readonly kind: 'cidrGroup';
      readonly what: string;
      readonly ref: string | undefined;
      readonly selector: Selector | undefined;
      /** `except` prefixes, canonical text. */
      readonly except: readonly string[];
    }
  /** Selects nothing (entity `none`, unsupported peers such as cloud groups: fail closed). */
  | { readonly kind: 'none'; readonly what: string };

/** Port protocols; ICMP/ICMPv6 come from `icmps`, VRRP/IGMP have no ports. */
export type L4Protocol = 'TCP' | 'UDP' | 'SCTP' | 'ICMP' | 'ICMPv6' | 'VRRP' | 'IGMP' | 'ANY';

/** IANA protocol numbers. */
export const PROTO = { ANY: 0, ICMP: 1, IGMP: 2, TCP: 6, UDP: 17, ICMPv6: 58, VRRP: 112, SCTP: 132 } as const;

export interface HttpHeaderMatch {
  readonly name: string;
  /** undefined = presence match. */
  readonly value?: string;
  /** '' (FAIL), LOG, ADD, DELETE, REPLACE. Only '' takes part in the allow decision. */
  readonly mismatch?: string;
  /** Secret reference: cannot be fetched offline, so the header never matches. */
  readonly secret?: { readonly namespace: string; readonly name: string };
}

export interface HttpRuleSpec {
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  readonly headers?: readonly { readonly name: string; readonly value?: string }[];
  readonly headerMatches?: readonly HttpHeaderMatch[];
}

export interface DnsRuleSpec {
  readonly matchName?: string;
  readonly matchPattern?: string;
}

export type L7Spec =
  | { readonly kind: 'http'; readonly rules: readonly HttpRuleSpec[] }
  | { readonly kind: 'dns'; readonly rules: readonly DnsRuleSpec[] }
  /** Kafka / generic l7proto: accepted by validation but not parsed here, so they deny at L7. */
  | { readonly kind: 'unsupported'; readonly what: string }
  /** `serverNames` without TLS termination: the ClientHello's SNI must be one of them (./server-name.ts). */
  | { readonly kind: 'tls'; readonly serverNames: readonly string[] };

/** One port (or port range, or named port, or ICMP type) with the L7 rules that apply to it. */
export interface PortSpec {
  readonly protocol: L4Protocol;
  /** 0 = every port; a string = a named port, resolved against the endpoint's/peer's named ports. */
  readonly port: number | string;
  /** Inclusive end of a range; undefined = single port. */
  readonly endPort?: number;
  /** For ICMP/ICMPv6: `port` is the ICMP type. */
  readonly l7: L7Spec | null;
}

export interface PeerRule {
  /** Position in the section it came from (for RuleRef and trace). */
  readonly index: number;
  /** null = no L3 restriction (every peer). An empty array selects no peer. */
  readonly peers: readonly Peer[] | null;
  /** null = every protocol and port (L3-only rule). */
  readonly ports: readonly PortSpec[] | null;
  /**
   * `authentication.mode` of an allow rule when it asks for mutual authentication (`required`,
   * `test-always-fail`). Membrane has none, so what the rule allows is dropped with AUTH_REQUIRED.
   */
  readonly authMode?: 'required' | 'test-always-fail';
  /** ClusterNetworkPolicy rules only (absent = `normal` tier, priority 0). */
  readonly tier?: PolicyTier;
  /**
   * Within the tier, lower wins: `spec.priority + i/100` for `spec.ingress[i]`/`spec.egress[i]`
   * (Cilium pkg/k8s/cluster_network_policy.go `ParseClusterNetworkPolicy`).
   */
  readonly priority?: number;
  /**
   * `Pass` (in the allow section): the rest of the rule's tier is skipped for what it matches, and
   * the next tier decides. `Accept` rules are plain allows, `Deny` rules sit in the deny section.
   */
  readonly pass?: true;
  /** A ClusterNetworkPolicy rule's `name` ("to help improve observability", the API says): traces show it. */
  readonly ruleName?: string;
}

export type Direction = 'ingress' | 'egress';

export interface Rule {
  /** Selects the endpoints the rule applies to; namespace-scoped for namespaced kinds. */
  readonly endpointSelector: Selector | null;
  /** The rule has a `nodeSelector` (host policy): it selects no pod endpoint here. */
  readonly hostPolicy: boolean;
  readonly ingress: readonly PeerRule[];
  readonly ingressDeny: readonly PeerRule[];
  readonly egress: readonly PeerRule[];
  readonly egressDeny: readonly PeerRule[];
  /** The rule has an ingress/ingressDeny (egress/egressDeny) section, even an empty one. */
  readonly hasIngress: boolean;
  readonly hasEgress: boolean;
  /** enableDefaultDeny after defaulting: true unless the policy opted out. */
  readonly defaultDenyIngress: boolean;
  readonly defaultDenyEgress: boolean;
  /** Index of the rule in `specs` (0 for `spec`), for messages. */
  readonly specIndex: number;
  readonly description?: string;
}

export interface PolicyProblem {
  readonly file: string;
  readonly name: string;
  readonly path: string;
  readonly message: string;
  /** 1-based position in the file, for problems found before the document has a structure (YAML syntax). */
  readonly line?: number;
  readonly column?: number;
}

/** A CiliumCIDRGroup (cluster-scoped): named set of external CIDRs with labels. */
export interface CidrGroup {
  /** `metadata.labels`. */
  readonly labels: Readonly<Record<string, string>>;
  /** `spec.externalCIDRs`, canonical prefix text (a bare address becomes a /32 or /128). */
  readonly externalCIDRs: readonly string[];
}

export interface PolicyObject {
  readonly kind: PolicyKind;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly file: string;
  /** Empty for a CiliumCIDRGroup. */
  readonly rules: readonly Rule[];
  /** Present iff kind === 'CiliumCIDRGroup'. */
  readonly cidrGroup?: CidrGroup;
}

export interface LoadResult {
  readonly policies: PolicyObject[];
  readonly problems: PolicyProblem[];
  /**
   * Accepted but enforced differently from Cilium (always fail-closed): L7 protocols Membrane
   * does not parse, mutual authentication. Same shape as problems; they do not reject the file.
   */
  readonly warnings: PolicyProblem[];
}
