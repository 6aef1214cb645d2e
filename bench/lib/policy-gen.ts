/**
 * A deterministic generator of policy-engine workloads: N CiliumNetworkPolicy files (YAML, as a
 * user writes them) over M identities in K namespaces, with E of them local endpoints. Used by
 * bench/policy-engine.ts (resolution time, RSS, incremental costs) and by the regeneration
 * measurements (scripts in bench/regen-*.ts).
 *
 * The mix, per policy i (by i mod 20, so every size has the same proportions):
 *   0–9   L3/L4: endpointSelector app=X, ingress fromEndpoints (matchLabels + a matchExpressions
 *         `tier In [...]`) to TCP 80/443/8080, one in three also a port range 9000–9100
 *   10–12 L7 HTTP: the same, with 2–4 method/path rules on port 80
 *   13–14 toFQDNs egress: DNS to kube-dns with matchPattern rules, toFQDNs matchName/matchPattern
 *   15–17 toCIDR / toCIDRSet with except, TCP 443/5432
 *   18    ingressDeny from a second app + fromEntities cluster
 *   19    a namespace-wide egress allow (empty endpointSelector) to toEndpoints in another
 *         namespace (matchExpressions on the namespace label) and kube-dns on UDP 53
 * Apps are drawn from `apps` names per namespace, so selectors select tens of identities each.
 */
import { endpointLabels, loadPolicyText, type Identity, type Label, type PolicyObject, type ServiceInput } from '../../src/policy/index.js';

export interface PolicyGenOptions {
  /** Number of CiliumNetworkPolicy objects (one per file). */
  readonly policies: number;
  /** Number of cluster identities (distinct label sets), local endpoints included. */
  readonly identities: number;
  /** How many of the identities are endpoints of this node (default 100, at most `identities`). */
  readonly endpoints?: number;
  /** Namespaces (default max(4, identities / 250)). */
  readonly namespaces?: number;
  /** App names per namespace (default 20). */
  readonly appsPerNamespace?: number;
  /** PRNG seed (default 1). */
  readonly seed?: number;
}

export interface GeneratedEndpoint {
  readonly name: string;
  readonly namespace: string;
  readonly podLabels: Readonly<Record<string, string>>;
  readonly labels: readonly Label[];
  /** The identity it has in `identities`. */
  readonly identity: number;
  readonly namedPorts: Readonly<Record<string, { port: number; protocol: number }>>;
}

export interface PolicyWorkload {
  readonly options: Required<PolicyGenOptions>;
  /** One YAML document per policy, as files in a policy directory would hold them. */
  readonly files: readonly { readonly name: string; readonly text: string }[];
  /** The same policies, parsed (loadPolicyText), in file order. */
  readonly policies: readonly PolicyObject[];
  /** Cluster identities, ids from 256 up (reserved identities are not included). */
  readonly identities: readonly Identity[];
  /** The first `endpoints` identities' pods: the node's endpoints. */
  readonly endpoints: readonly GeneratedEndpoint[];
  /** One service per app of the first namespace (for toServices). */
  readonly services: readonly ServiceInput[];
}

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TIERS = ['frontend', 'backend', 'cache', 'db', 'batch'] as const;
const FIRST_ID = 256;

export function withDefaults(o: PolicyGenOptions): Required<PolicyGenOptions> {
  return {
    policies: o.policies,
    identities: o.identities,
    endpoints: Math.min(o.endpoints ?? 100, o.identities),
    namespaces: o.namespaces ?? Math.max(4, Math.floor(o.identities / 250)),
    appsPerNamespace: o.appsPerNamespace ?? 20,
    seed: o.seed ?? 1,
  };
}

/** The pod labels of identity number `n` (0-based): its namespace, app, tier, version and a unique pod-template hash. */
export function identityPod(n: number, o: Required<PolicyGenOptions>): { namespace: string; podLabels: Record<string, string> } {
  const namespace = `ns-${n % o.namespaces}`;
  const app = `app-${Math.floor(n / o.namespaces) % o.appsPerNamespace}`;
  return {
    namespace,
    podLabels: {
      app,
      tier: TIERS[n % TIERS.length]!,
      version: `v${n % 3}`,
      'pod-template-hash': `h${n.toString(36)}`,
    },
  };
}

/** Identity number `n` (id 256 + n) with the labels an agent derives for its pods. */
export function generatedIdentity(n: number, options: PolicyGenOptions): Identity {
  const o = withDefaults(options);
  const { namespace, podLabels } = identityPod(n, o);
  return {
    id: FIRST_ID + n,
    labels: endpointLabels({ namespace, podLabels, namespaceLabels: { team: `team-${n % o.namespaces % 3}` } }),
    namedPorts: { http: { port: 8080, protocol: 6 } },
  };
}

/**
 * Policy file number `i`. `variant` changes its content (another app pair and ports) while keeping
 * its name, for churn: writing variant v+1 over variant v is "one policy changed".
 */
export function policyYaml(i: number, options: PolicyGenOptions, variant = 0): string {
  const o = withDefaults(options);
  const rnd = prng(o.seed * 1000003 + i * 7919 + variant * 104729);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const ns = `ns-${i % o.namespaces}`;
  const app = (): string => `app-${Math.floor(rnd() * o.appsPerNamespace)}`;
  const subject = app();
  const peer = app();
  const name = `gen-${i}`;
  const head = `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: ${name}\n  namespace: ${ns}\nspec:\n`;
  const kind = i % 20;
  const tiers = [pick(TIERS), pick(TIERS)];
  const fromPeer = `      - matchLabels:\n          app: ${peer}\n        matchExpressions:\n          - key: tier\n            operator: In\n            values: [${tiers.join(', ')}]\n`;
  if (kind <= 9) {
    const range = i % 3 === 0 ? `          - port: "9000"\n            endPort: 9100\n            protocol: TCP\n` : '';
    return (
      head +
      `  endpointSelector:\n    matchLabels:\n      app: ${subject}\n  ingress:\n  - fromEndpoints:\n${fromPeer}` +
      `    toPorts:\n      - ports:\n          - port: "80"\n            protocol: TCP\n          - port: "443"\n            protocol: TCP\n          - port: "${8080 + (variant % 5)}"\n            protocol: TCP\n${range}`
    );
  }
  if (kind <= 12) {
    const methods = ['GET', 'POST', 'PUT', 'DELETE'];
    const n = 2 + Math.floor(rnd() * 3);
    const rules = Array.from({ length: n }, (_, k) => `            - method: "${methods[k % 4]}"\n              path: "/api/v${variant + 1}/${pick(['users', 'orders', 'items', 'health'])}(/.*)?"\n`).join('');
    return (
      head +
      `  endpointSelector:\n    matchLabels:\n      app: ${subject}\n  ingress:\n  - fromEndpoints:\n${fromPeer}` +
      `    toPorts:\n      - ports:\n          - port: "80"\n            protocol: TCP\n        rules:\n          http:\n${rules}`
    );
  }
  if (kind <= 14) {
    const domain = `svc${i % 50}.example.com`;
    return (
      head +
      `  endpointSelector:\n    matchLabels:\n      app: ${subject}\n  egress:\n` +
      `  - toEndpoints:\n      - matchLabels:\n          "k8s:io.kubernetes.pod.namespace": kube-system\n          "k8s:k8s-app": kube-dns\n` +
      `    toPorts:\n      - ports:\n          - port: "53"\n            protocol: ANY\n        rules:\n          dns:\n            - matchPattern: "*.${domain}"\n            - matchName: "api${variant}.${domain}"\n` +
      `  - toFQDNs:\n      - matchName: "api${variant}.${domain}"\n      - matchPattern: "*.${domain}"\n    toPorts:\n      - ports:\n          - port: "443"\n            protocol: TCP\n`
    );
  }
  if (kind <= 17) {
    const a = 10 + (i % 200);
    const b = (i * 7 + variant) % 250;
    return (
      head +
      `  endpointSelector:\n    matchLabels:\n      app: ${subject}\n  egress:\n` +
      `  - toCIDR:\n      - 172.${16 + (i % 16)}.${b}.0/24\n    toPorts:\n      - ports:\n          - port: "5432"\n            protocol: TCP\n` +
      `  - toCIDRSet:\n      - cidr: 10.${a}.0.0/16\n        except:\n          - 10.${a}.${b}.0/24\n    toPorts:\n      - ports:\n          - port: "443"\n            protocol: TCP\n`
    );
  }
  if (kind === 18) {
    return (
      head +
      `  endpointSelector:\n    matchLabels:\n      app: ${subject}\n  ingress:\n  - fromEntities:\n      - cluster\n    toPorts:\n      - ports:\n          - port: "8443"\n            protocol: TCP\n` +
      `  ingressDeny:\n  - fromEndpoints:\n      - matchLabels:\n          app: ${peer}\n    toPorts:\n      - ports:\n          - port: "22"\n            protocol: TCP\n`
    );
  }
  const other = `ns-${(i + 1 + variant) % o.namespaces}`;
  return (
    head +
    `  endpointSelector: {}\n  egress:\n  - toEndpoints:\n      - matchExpressions:\n          - key: "k8s:io.kubernetes.pod.namespace"\n            operator: In\n            values: [${ns}, ${other}]\n` +
    `  - toEndpoints:\n      - matchLabels:\n          "k8s:io.kubernetes.pod.namespace": kube-system\n          "k8s:k8s-app": kube-dns\n    toPorts:\n      - ports:\n          - port: "53"\n            protocol: UDP\n`
  );
}

/** Parses one generated file; throws if the generator wrote something the loader rejects. */
export function parsePolicyFile(text: string, name = 'gen.yaml'): PolicyObject[] {
  const r = loadPolicyText(text, name);
  if (r.problems.length > 0) throw new Error(`generated policy rejected: ${r.problems[0]!.path}: ${r.problems[0]!.message}`);
  return r.policies;
}

/** The whole workload. Deterministic for equal options. */
export function generatePolicyWorkload(options: PolicyGenOptions): PolicyWorkload {
  const o = withDefaults(options);
  const files = Array.from({ length: o.policies }, (_, i) => ({ name: `gen-${i}.yaml`, text: policyYaml(i, o) }));
  const policies = files.flatMap((f) => parsePolicyFile(f.text, f.name));
  const identities: Identity[] = [];
  for (let n = 0; n < o.identities; n++) identities.push(generatedIdentity(n, o));
  // kube-dns, so DNS rules have a peer.
  identities.push({
    id: FIRST_ID + o.identities,
    labels: endpointLabels({ namespace: 'kube-system', podLabels: { 'k8s-app': 'kube-dns' } }),
  });
  const endpoints: GeneratedEndpoint[] = [];
  for (let n = 0; n < o.endpoints; n++) {
    const { namespace, podLabels } = identityPod(n, o);
    const id = identities[n]!;
    endpoints.push({ name: `pod-${n}`, namespace, podLabels, labels: id.labels, identity: id.id, namedPorts: id.namedPorts ?? {} });
  }
  const services: ServiceInput[] = Array.from({ length: o.appsPerNamespace }, (_, a) => ({
    name: `app-${a}`,
    namespace: 'ns-0',
    labels: {},
    selector: { app: `app-${a}` },
  }));
  return { options: o, files, policies, identities, endpoints, services };
}
