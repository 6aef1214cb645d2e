/**
 * Map state: what `resolve` produces for one endpoint and direction, in host byte order.
 */
import { DROP_REASON as CODES } from '../../codes/index.js';
import type { PolicyKind } from '../api/types.js';

/**
 * What one policy map entry does with a matching packet (Cilium's policy entry: allow, `deny`,
 * or a `proxy_port` redirect). Not a flow verdict: that is Hubble's `Verdict` in src/codes.
 */
export type MapVerdict = 'allow' | 'deny' | 'redirect';

export interface RuleRef {
  readonly policy: string;
  readonly namespace: string | undefined;
  readonly kind: PolicyKind;
  readonly direction: 'ingress' | 'egress';
  /** Position of the rule in its section (`ingress[i]`, or `ingressDeny[i]` when `deny`). */
  readonly index: number;
  /** The rule came from ingressDeny/egressDeny. */
  readonly deny?: boolean;
  /** Which rule of the policy (`spec` = 0, then `specs[i]`). */
  readonly specIndex?: number;
  /** ClusterNetworkPolicy rules: the rule's action (`index` is its position in `spec.ingress`/`spec.egress`). */
  readonly action?: 'Accept' | 'Deny' | 'Pass';
  /** ClusterNetworkPolicy rules: the rule's `name`, when it has one. */
  readonly ruleName?: string;
}

export interface HttpHeaderRule {
  readonly name: string;
  /** undefined = the header must be present. */
  readonly value?: string;
}

export interface HttpHeaderMatchRule {
  readonly name: string;
  readonly value?: string;
  /** '' or undefined: must match; LOG/ADD/DELETE/REPLACE: side effect only, never denies. */
  readonly mismatch?: string;
  /** A secret reference: the value is not available here, so the match never succeeds. */
  readonly secret?: { readonly namespace: string; readonly name: string };
}

export interface HttpRule {
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  readonly headers?: readonly { name: string; value?: string }[];
  readonly headerMatches?: readonly HttpHeaderMatchRule[];
}

export type L7Rules =
  | { readonly kind: 'http'; readonly rules: readonly HttpRule[]; readonly allowAll: boolean }
  | { readonly kind: 'dns'; readonly patterns: readonly string[]; readonly allowAll: boolean }
  /**
   * `serverNames` without TLS termination: the connection is handed to the TLS passthrough proxy,
   * which reads the ClientHello and allows it only if its SNI matches one of `serverNames`
   * (toFQDNs wildcards, src/policy/api/server-name.ts); `allowAll` when a rule without
   * serverNames also allows this peer and port (cilium/proxy ORs the port's rules).
   */
  | { readonly kind: 'tls'; readonly serverNames: readonly string[]; readonly allowAll: boolean };

/**
 * The drop reasons a policy decision carries, from the one table (src/codes): default deny
 * (POLICY_DENIED, 133), a deny rule (POLICY_DENY, 181), a rule that needs mutual authentication
 * (AUTH_REQUIRED, 189).
 */
export const DROP_REASON = {
  POLICY_DENIED: CODES.POLICY_DENIED,
  POLICY_DENY: CODES.POLICY_DENY,
  AUTH_REQUIRED: CODES.AUTH_REQUIRED,
} as const;
export type DropReason = (typeof DROP_REASON)[keyof typeof DROP_REASON];

export interface MapEntry {
  /** 0 = any identity (L4-only entry). */
  readonly identity: number;
  /** IANA protocol; 0 = any protocol (then port 0 / prefix 0). */
  readonly protocol: number;
  /** Host byte order; the ICMP type for ICMP. */
  readonly port: number;
  /** 0..16; 16 = exact port. */
  readonly portPrefixLen: number;
  readonly verdict: MapVerdict;
  /** Present iff verdict === 'redirect'. */
  readonly l7?: L7Rules;
  /** For deny entries: 181 (POLICY_DENY). */
  readonly dropReason?: DropReason;
  readonly derivedFrom: readonly RuleRef[];
}

export interface DirectionPolicy {
  readonly enforced: boolean;
  readonly entries: readonly MapEntry[];
}

export interface EndpointPolicy {
  readonly ingress: DirectionPolicy;
  readonly egress: DirectionPolicy;
}

export interface LookupResult {
  readonly verdict: MapVerdict | 'default-deny' | 'default-allow';
  readonly entry: MapEntry | null;
  readonly dropReason: DropReason | null;
}
