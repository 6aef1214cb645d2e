/**
 * CiliumNetworkPolicy fixtures shared by the decision's unit tests and the proxies' integration
 * tests, for the Star Wars pods of ./policy-state.ts (tiefighter → deathstar:80).
 */
import { loadPolicyText, type PolicyObject } from '../../src/policy/index.js';

/** tiefighter may send deathstar:80 the HTTP rules given (YAML flow sequence items). */
export function tiefighterEgressHttp(name: string, rules: string): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [${rules}]
`;
}

/** deathstar takes every HTTP request on 80 from anyone (an empty HTTP rule matches any request). */
function deathstarAllowAllHttp(name: string): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{}]
`;
}

/** As ALLOW_ALL_HTTP, but pods of class `cls` are denied outright. */
export function denyIngressFrom(name: string, cls: string): string {
  return `${deathstarAllowAllHttp(name)}  ingressDeny:
  - fromEndpoints: [{matchLabels: {class: ${cls}}}]
`;
}

/** DNS rules on the port an HTTP client uses: Cilium hands that port to its DNS proxy. */
export function dnsRulesOn80(pattern: string): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: dns-on-80}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress:
  - toEndpoints: [{matchLabels: {class: deathstar}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        dns: [{matchPattern: "${pattern}"}]
`;
}

/** An L4-only allow (tiefighter) on the same port as an L7 rule (empire): Cilium folds it in. */
export const L4_FOLDED_INTO_L7 = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l4-and-l7}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{method: POST, path: "/v1/request-landing"}]
  - fromEndpoints: [{matchLabels: {class: tiefighter}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
`;

/** Every HTTP request from any endpoint to deathstar:80. */
export const ALLOW_ALL_HTTP = deathstarAllowAllHttp('allow-all-http');

/** `app: client` may look up and reach names matching `pattern` (toFQDNs), as parsed policy objects. */
export function clientToFqdns(pattern: string): PolicyObject[] {
  const r = loadPolicyText(
    `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: egress, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toFQDNs: [{matchPattern: "${pattern}"}]
`,
    'fqdn.yaml',
  );
  if (r.problems.length) throw new Error(`fixture policy: ${JSON.stringify(r.problems)}`);
  return r.policies;
}
