/**
 * Kubernetes NetworkPolicy truth tables against the real datapath (TCX programs on the pods'
 * veths), in the topology of the upstream e2e suite (test/e2e/network/netpol) and cyclonus:
 * namespaces x, y, z; pods a, b, c in each; every pod serves TCP and UDP on ports 80 and 81.
 *
 * Each case writes networking.k8s.io/v1 NetworkPolicy YAML into the agent's watched directory,
 * waits until the agent has loaded it and regenerated, probes the whole matrix with real clients
 * inside the pods (curl for TCP 80, connect/datagram for TCP 81 and UDP), and compares it with a
 * truth table written here from Kubernetes semantics. A mismatch prints the tables.
 *
 * The lab spec gives every pod upstream's named container ports (serve-80-tcp, serve-81-udp,
 * ...) and the namespaces their labels (y: team=blue, z: team=red; x has none). Besides the lab,
 * two hosts outside the cluster serve the ipBlock cases: network namespaces wired to the node
 * like pods but never registered as endpoints, so they have no label identity.
 *
 * Every matrix probe is a new flow (UDP probes never repeat a source port, see nextUdpSport).
 * The last case is not a matrix: it repeats one UDP 5-tuple across a policy change on purpose.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ROOT, TestNode, eventually, privilegedSkipReason } from './harness.js';
import { Truth, diffTruth, inNs, nextUdpSport, podId, podNamed, probeMatrix, probeUdp, PORT_PROTOS, type Host } from './netpol-matrix.js';

const skip = privilegedSkipReason();
const ID = 'netpol';
const SUBNET = '10.214';
const NAMESPACES = ['x', 'y', 'z'] as const;
const PODS = ['a', 'b', 'c'] as const;
const podNetns = (ns: string, pod: string): string => `np-${ns}-${pod}`;
const POD_NETNS = NAMESPACES.flatMap((ns) => PODS.map((p) => podNetns(ns, p)));
/** Namespace labels besides kubernetes.io/metadata.name (which the agent always adds). */
const NAMESPACE_LABELS: Record<string, Record<string, string>> = { x: {}, y: { team: 'blue' }, z: { team: 'red' } };
/** Hosts outside the cluster: ext/in is inside the ipBlock, ext/ex inside its `except`. */
const EXTERNALS = [
  { id: 'ext/in', netns: 'np-ext-in', ifname: 'mbx-np-ext-in', net: 40 },
  { id: 'ext/ex', netns: 'np-ext-ex', ifname: 'mbx-np-ext-ex', net: 41 },
] as const;

const LAB = `
apiVersion: membrane.dev/v1alpha1
kind: Lab
metadata:
  name: np-kube
spec:
  subnet: "${SUBNET}"
  pods:
${NAMESPACES.flatMap((ns) =>
  PODS.map(
    (p) => `    - name: ${podNetns(ns, p)}
      namespace: ${ns}
      labels: {pod: ${p}}
      ports: [${PORT_PROTOS.map((pp) => `{name: serve-${pp.port}-${pp.proto}, containerPort: ${pp.port}, protocol: ${pp.proto.toUpperCase()}}`).join(', ')}]
      serve: {app: echo, ports: [80, 81]}`,
  ),
).join('\n')}
  namespaces:
${Object.entries(NAMESPACE_LABELS)
  .map(([ns, labels]) => `    ${ns}: {labels: ${JSON.stringify(labels)}}`)
  .join('\n')}
`;

/** Strips the common indentation of a template literal, so YAML can be written indented in code. */
function dedent(text: string): string {
  const lines = text.replace(/^\n/, '').replace(/\n\s*$/, '').split('\n');
  const pad = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(pad)).join('\n');
}

/** A networking.k8s.io/v1 NetworkPolicy; `spec` is the YAML body of `spec:`. */
function knp(namespace: string, name: string, spec: string): string {
  const body = dedent(spec)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
  return `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n${body}\n`;
}

interface Step {
  /** The complete content of the watched directory for this step: file name → YAML. */
  readonly files: Readonly<Record<string, string>>;
  /** Probe the pods only (9×9) or the pods and the two external hosts (11×11). */
  readonly hosts?: 'pods' | 'all';
  /** The truth table, from Kubernetes semantics; `t` starts all-allowed. */
  readonly expect: (t: Truth) => Truth;
}

interface Case {
  readonly name: string;
  readonly steps: readonly Step[];
}

const xa = podId('x/a');

const CASES: Case[] = [
  {
    name: 'no policy: everything is allowed, pods and external hosts alike',
    steps: [{ files: {}, hosts: 'all', expect: (t) => t }],
  },
  {
    name: 'default deny ingress in x (podSelector {}, policyTypes [Ingress])',
    steps: [
      {
        files: {
          'deny-ingress.yaml': knp('x', 'deny-ingress', `
            podSelector: {}
            policyTypes: [Ingress]
          `),
        },
        expect: (t) => t.deny({ to: inNs('x') }),
      },
    ],
  },
  {
    name: 'default deny all in x (ingress and egress)',
    steps: [
      {
        files: {
          'deny-all.yaml': knp('x', 'deny-all', `
            podSelector: {}
            policyTypes: [Ingress, Egress]
          `),
        },
        expect: (t) => t.deny({ to: inNs('x') }).deny({ from: inNs('x') }),
      },
    ],
  },
  {
    name: 'allow x/a from a podSelector (same namespace only)',
    steps: [
      {
        files: {
          'allow-from-b.yaml': knp('x', 'allow-x-a-from-b', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - podSelector:
                      matchLabels: {pod: b}
          `),
        },
        // A bare podSelector peer selects pods of the policy's own namespace: y/b and z/b stay out.
        expect: (t) => t.deny({ to: xa }).allow({ from: podId('x/b'), to: xa }),
      },
    ],
  },
  {
    name: 'allow x/a from a namespaceSelector (matchLabels kubernetes.io/metadata.name: y)',
    steps: [
      {
        files: {
          'allow-from-y.yaml': knp('x', 'allow-x-a-from-y', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - namespaceSelector:
                      matchLabels:
                        kubernetes.io/metadata.name: y
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ from: inNs('y'), to: xa }),
      },
    ],
  },
  {
    name: 'namespaceSelector matchExpressions NotIn: x/a from every namespace but y',
    steps: [
      {
        files: {
          'notin.yaml': knp('x', 'allow-x-a-not-from-y', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - namespaceSelector:
                      matchExpressions:
                        - {key: kubernetes.io/metadata.name, operator: NotIn, values: [y]}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ from: inNs('x', 'z'), to: xa }),
      },
    ],
  },
  {
    name: 'podSelector matchExpressions In with namespaceSelector {}: x/a from pods b and c of every namespace',
    steps: [
      {
        files: {
          'in.yaml': knp('x', 'allow-x-a-from-b-c', `
            podSelector:
              matchExpressions:
                - {key: pod, operator: In, values: [a]}
            ingress:
              - from:
                  - namespaceSelector: {}
                    podSelector:
                      matchExpressions:
                        - {key: pod, operator: In, values: [b, c]}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ from: podNamed('b', 'c'), to: xa }),
      },
    ],
  },
  {
    name: 'namespaceSelector matchExpressions Exists (team label on y and z only)',
    steps: [
      {
        files: {
          'exists.yaml': knp('x', 'allow-x-a-from-teams', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - namespaceSelector:
                      matchExpressions:
                        - {key: team, operator: Exists}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ from: inNs('y', 'z'), to: xa }),
      },
    ],
  },
  {
    name: 'namespaceSelector matchExpressions DoesNotExist (team label): x/a only from x',
    steps: [
      {
        files: {
          'does-not-exist.yaml': knp('x', 'allow-x-a-from-teamless', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - namespaceSelector:
                      matchExpressions:
                        - {key: team, operator: DoesNotExist}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ from: inNs('x'), to: xa }),
      },
    ],
  },
  {
    name: 'namespaceSelector AND podSelector in one peer: x/a only from y/b',
    steps: [
      {
        files: {
          'and.yaml': knp('x', 'allow-x-a-from-y-b', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - namespaceSelector:
                      matchLabels: {kubernetes.io/metadata.name: y}
                    podSelector:
                      matchLabels: {pod: b}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ from: podId('y/b'), to: xa }),
      },
    ],
  },
  {
    name: 'namespaceSelector OR podSelector as two peers: x/a from all of y and from x/b',
    steps: [
      {
        files: {
          'or.yaml': knp('x', 'allow-x-a-from-y-or-b', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - namespaceSelector:
                      matchLabels: {kubernetes.io/metadata.name: y}
                  - podSelector:
                      matchLabels: {pod: b}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ from: inNs('y'), to: xa }).allow({ from: podId('x/b'), to: xa }),
      },
    ],
  },
  {
    name: 'egress deny: x/a with policyTypes [Egress] and no egress rules sends nothing',
    steps: [
      {
        files: {
          'egress-deny.yaml': knp('x', 'deny-egress-x-a', `
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Egress]
          `),
        },
        expect: (t) => t.deny({ from: xa }),
      },
    ],
  },
  {
    name: 'egress allow to a namespace: x/a may only reach y',
    steps: [
      {
        files: {
          'egress-to-y.yaml': knp('x', 'egress-x-a-to-y', `
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Egress]
            egress:
              - to:
                  - namespaceSelector:
                      matchLabels: {kubernetes.io/metadata.name: y}
          `),
        },
        expect: (t) => t.deny({ from: xa }).allow({ from: xa, to: inNs('y') }),
      },
    ],
  },
  {
    name: 'port and protocol: x/a only on UDP 81, from anyone',
    steps: [
      {
        files: {
          'udp-81.yaml': knp('x', 'allow-x-a-udp-81', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - ports:
                  - {protocol: UDP, port: 81}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ to: xa, on: ['udp/81'] }),
      },
    ],
  },
  {
    name: 'protocol-only rule: x/a on every UDP port, no TCP',
    steps: [
      {
        files: {
          'udp-only.yaml': knp('x', 'allow-x-a-udp', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - ports:
                  - protocol: UDP
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ to: xa, on: ['udp/80', 'udp/81'] }),
      },
    ],
  },
  {
    name: 'named ports on ingress: x/a on serve-81-tcp and serve-80-udp',
    steps: [
      {
        files: {
          'named-ingress.yaml': knp('x', 'allow-x-a-named', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - namespaceSelector: {}
                ports:
                  - port: serve-81-tcp
                  - {protocol: UDP, port: serve-80-udp}
          `),
        },
        // The names resolve against x/a's own container ports: TCP 81 and UDP 80.
        expect: (t) => t.deny({ to: xa }).allow({ to: xa, on: ['tcp/81', 'udp/80'] }),
      },
    ],
  },
  {
    name: 'named port on egress: x/a may only send to serve-80-tcp',
    steps: [
      {
        files: {
          'named-egress.yaml': knp('x', 'egress-x-a-named', `
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Egress]
            egress:
              - ports:
                  - {protocol: TCP, port: serve-80-tcp}
          `),
        },
        // On egress the name resolves against the destination pods' ports (every pod: TCP 80).
        expect: (t) => t.deny({ from: xa }).allow({ from: xa, on: ['tcp/80'] }),
      },
    ],
  },
  {
    name: 'endPort ranges: x/a on TCP 80-81 and UDP 81-82',
    steps: [
      {
        files: {
          'endport.yaml': knp('x', 'allow-x-a-ranges', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - ports:
                  - {protocol: TCP, port: 80, endPort: 81}
                  - {protocol: UDP, port: 81, endPort: 82}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ to: xa, on: ['tcp/80', 'tcp/81', 'udp/81'] }),
      },
    ],
  },
  {
    // Cilium semantics, not upstream Kubernetes: a CIDR peer (an ipBlock becomes a fromCIDRSet)
    // selects only peers that have no label identity. A pod's address resolves to the pod's own
    // identity (its /32 in the ipcache), so 10.214.0.0/16 does NOT admit the pods even though
    // their addresses 10.214.N.2 lie inside it (docs: "CIDR rules do not apply to traffic where
    // both sides of the connection are either managed by Cilium or use an IP belonging to a node
    // in the cluster"). Upstream's truth table would admit pods in the block; this one does not.
    // The external hosts are not endpoints: ext/in (10.214.40.2) falls in the block, ext/ex
    // (10.214.41.2) in its `except`.
    name: 'ipBlock with except on ingress (Cilium: CIDR peers never select cluster pods)',
    steps: [
      {
        files: {
          'ipblock-ingress.yaml': knp('x', 'allow-x-a-cidr', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - ipBlock:
                      cidr: ${SUBNET}.0.0/16
                      except: [${SUBNET}.41.0/24]
          `),
        },
        hosts: 'all',
        expect: (t) => t.deny({ to: xa }).allow({ from: podId('ext/in'), to: xa }),
      },
    ],
  },
  {
    // Same semantics on egress: x/a reaches ext/in only, neither the excepted host nor any pod.
    name: 'ipBlock with except on egress (Cilium: CIDR peers never select cluster pods)',
    steps: [
      {
        files: {
          'ipblock-egress.yaml': knp('x', 'egress-x-a-cidr', `
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Egress]
            egress:
              - to:
                  - ipBlock:
                      cidr: ${SUBNET}.0.0/16
                      except: [${SUBNET}.41.0/24]
          `),
        },
        hosts: 'all',
        expect: (t) => t.deny({ from: xa }).allow({ from: xa, to: podId('ext/in') }),
      },
    ],
  },
  {
    name: 'client egress deny overrides a server ingress allow',
    steps: [
      {
        files: {
          'y-b-from-x.yaml': knp('y', 'allow-y-b-from-x', `
            podSelector:
              matchLabels: {pod: b}
            ingress:
              - from:
                  - namespaceSelector:
                      matchLabels: {kubernetes.io/metadata.name: x}
          `),
          'x-a-no-egress.yaml': knp('x', 'deny-egress-x-a', `
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Egress]
          `),
        },
        expect: (t) =>
          t
            .deny({ to: podId('y/b') })
            .allow({ from: inNs('x'), to: podId('y/b') })
            .deny({ from: xa }),
      },
    ],
  },
  {
    name: 'policies add up: two files selecting x/a allow the union of their peers',
    steps: [
      {
        files: {
          'union-1.yaml': knp('x', 'allow-x-a-from-b', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - podSelector:
                      matchLabels: {pod: b}
          `),
          'union-2.yaml': knp('x', 'allow-x-a-from-z-c', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - namespaceSelector:
                      matchLabels: {kubernetes.io/metadata.name: z}
                    podSelector:
                      matchLabels: {pod: c}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ from: podId('x/b', 'z/c'), to: xa }),
      },
    ],
  },
  {
    name: 'ingress and egress together, each with its own ports',
    steps: [
      {
        files: {
          'both.yaml': knp('x', 'x-a-both', `
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Ingress, Egress]
            ingress:
              - from:
                  - namespaceSelector:
                      matchLabels: {kubernetes.io/metadata.name: y}
                ports:
                  - {protocol: TCP, port: 80}
            egress:
              - to:
                  - namespaceSelector:
                      matchLabels: {kubernetes.io/metadata.name: z}
                ports:
                  - {protocol: UDP, port: 81}
          `),
        },
        expect: (t) =>
          t
            .deny({ to: xa })
            .allow({ from: inNs('y'), to: xa, on: ['tcp/80'] })
            .deny({ from: xa })
            .allow({ from: xa, to: inNs('z'), on: ['udp/81'] }),
      },
    ],
  },
  {
    name: 'policy update: replacing the file changes the verdicts',
    steps: [
      {
        files: {
          'update.yaml': knp('x', 'x-a-update', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - podSelector:
                      matchLabels: {pod: b}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ from: podId('x/b'), to: xa }),
      },
      {
        // Same file, same policy name, new peers and ports; x/b loses access, z gains it on TCP 81.
        files: {
          'update.yaml': knp('x', 'x-a-update', `
            podSelector:
              matchLabels: {pod: a}
            ingress:
              - from:
                  - namespaceSelector:
                      matchLabels: {kubernetes.io/metadata.name: z}
                ports:
                  - {protocol: TCP, port: 81}
          `),
        },
        expect: (t) => t.deny({ to: xa }).allow({ from: inNs('z'), to: xa, on: ['tcp/81'] }),
      },
    ],
  },
  {
    name: 'policy deletion: removing the files goes back to allow-all',
    steps: [
      {
        files: {
          'deny-all.yaml': knp('x', 'deny-all', `
            podSelector: {}
            policyTypes: [Ingress, Egress]
          `),
          'deny-y.yaml': knp('y', 'deny-ingress', `
            podSelector: {}
            policyTypes: [Ingress]
          `),
        },
        expect: (t) => t.deny({ to: inNs('x', 'y') }).deny({ from: inNs('x') }),
      },
      { files: {}, hosts: 'all', expect: (t) => t },
    ],
  },
];

describe.skipIf(skip !== null)('Kubernetes NetworkPolicy truth tables (x/y/z × a/b/c)' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;
  const servers: ChildProcess[] = [];
  let pods: Host[] = [];
  let all: Host[] = [];

  beforeAll(async () => {
    sweepExternals();
    TestNode.sweep(ID, [...POD_NETNS, ...EXTERNALS.map((e) => e.netns)]);
    node = new TestNode(ID);
    await node.startAgent();
    const lab = await node.labUp(LAB);

    pods = lab.pods.map((p) => ({
      id: `${p.namespace}/${p.labels.pod}`,
      netns: p.name,
      ip: p.ip,
      namespace: p.namespace,
      pod: p.labels.pod ?? null,
      external: false,
    }));

    const externals: Host[] = [];
    for (const e of EXTERNALS) {
      const host = `${SUBNET}.${e.net}.1`;
      const ip = `${SUBNET}.${e.net}.2`;
      sh('ip', ['netns', 'add', e.netns]);
      sh('ip', ['-n', node.netns, 'link', 'add', e.ifname, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', e.netns]);
      sh('ip', ['netns', 'exec', node.netns, 'sysctl', '-qw', `net.ipv6.conf.${e.ifname}.disable_ipv6=1`]);
      sh('ip', ['-n', node.netns, 'addr', 'add', `${host}/24`, 'dev', e.ifname]);
      sh('ip', ['-n', node.netns, 'link', 'set', e.ifname, 'up']);
      sh('ip', ['netns', 'exec', e.netns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      sh('ip', ['-n', e.netns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', e.netns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', e.netns, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', e.netns, 'route', 'add', 'default', 'via', host]);
      servers.push(
        spawn('ip', ['netns', 'exec', e.netns, process.execPath, join(ROOT, 'dist/lab/apps/main.js'), 'echo', '--port', '80', '--port', '81', '--name', e.netns], {
          stdio: 'ignore',
          detached: true,
        }),
      );
      externals.push({ id: e.id, netns: e.netns, ip, namespace: null, pod: null, external: true });
    }
    for (const e of EXTERNALS) {
      const listening = await eventually(
        () => ['80', '81'].every((port) => spawnSync('ip', ['netns', 'exec', e.netns, 'ss', '-Hltn', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim() !== ''),
        10_000,
      );
      if (!listening) throw new Error(`echo server in ${e.netns} did not start`);
    }
    all = [...pods, ...externals];

    const eps = await node.client.request<{ name: string; status: string; error?: string }[]>('GET', '/v1/endpoints');
    const notReady = eps.filter((e) => e.status !== 'ready');
    if (eps.length !== 9 || notReady.length) throw new Error(`endpoints not ready: ${JSON.stringify(eps)}`);
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) {
      // Only the servers we started: each is its own process group.
      try {
        if (s.pid) process.kill(-s.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    for (const e of EXTERNALS) sh('ip', ['netns', 'del', e.netns]);
    await node?.cleanup();
  });

  /** Makes the watched directory hold exactly `files`, and waits until the agent enforces them. */
  async function applyPolicies(files: Readonly<Record<string, string>>): Promise<void> {
    type PolicyView = { revision: number; files: { file: string; policies: unknown[]; problems: unknown[] }[] };
    const before = await node.client.request<{ regeneration: { revision: number } | null }>('GET', '/v1/status');
    const policyBefore = await node.client.request<PolicyView>('GET', '/v1/policy');
    // Every file removed or (re)written is one load or removal, each of which bumps the policy revision.
    let changes = 0;
    for (const f of node.policyFiles()) {
      if (f in files) continue;
      node.removePolicy(f);
      changes++;
    }
    for (const [f, text] of Object.entries(files)) {
      const path = join(node.policyDir, f);
      if (existsSync(path) && readFileSync(path, 'utf8') === text) continue;
      node.writePolicy(f, text);
      changes++;
    }
    const want = Object.entries(files)
      .map(([f, text]) => `${f}:${text.split(/^---\s*$/m).filter((d) => d.trim()).length}`)
      .sort()
      .join(',');
    let last = '';
    const loaded = await eventually(async () => {
      const view = await node.client.request<PolicyView>('GET', '/v1/policy');
      const problems = view.files.filter((f) => f.problems.length);
      if (problems.length) throw new Error(`the agent rejected a policy file: ${JSON.stringify(problems, null, 2)}`);
      last = view.files
        .map((f) => `${f.file.split('/').pop()}:${f.policies.length}`)
        .sort()
        .join(',');
      return last === want && view.revision >= policyBefore.revision + changes;
    }, 5000);
    if (!loaded) throw new Error(`the agent did not load the policy files in 5s: want [${want}], has [${last}]`);
    if (!changes) return;
    // The last load scheduled one coalesced regeneration (25 ms later). Give it time to start; the
    // API answers on the same event loop, so the status below comes after that regeneration.
    await new Promise((r) => setTimeout(r, 100));
    const regenerated = await eventually(async () => {
      const now = await node.client.request<{ regeneration: { revision: number } | null }>('GET', '/v1/status');
      return (now.regeneration?.revision ?? 0) > (before.regeneration?.revision ?? 0);
    }, 3000);
    if (!regenerated) throw new Error('no regeneration after the policy change');
  }

  /** Endpoint state and `policy trace` for a few wrong cells, to say where a mismatch comes from. */
  async function diagnose(diff: string): Promise<string> {
    const eps = await node.client.request<{ name: string; identity: number; ingressEnforcement: boolean; egressEnforcement: boolean; status: string; error?: string }[]>(
      'GET',
      '/v1/endpoints',
    );
    const lines = eps.map(
      (e) => `  ${e.name} identity=${e.identity} ingress=${e.ingressEnforcement ? 'enforced' : 'open'} egress=${e.egressEnforcement ? 'enforced' : 'open'} ${e.status}${e.error ? ` (${e.error})` : ''}`,
    );
    const traces: string[] = [];
    const wrong = [...diff.matchAll(/^ {2}(\w)\/(\w) \([\d.]+\) -> (\w)\/(\w) \([\d.]+\) (tcp|udp)\/(\d+):/gm)].slice(0, 3);
    for (const [, sns, spod, dns, dpod, proto, port] of wrong) {
      const r = node.cli([
        'policy', 'trace', '--src', `pod=${spod}`, '--src-namespace', sns!, '--dst', `pod=${dpod}`, '--dst-namespace', dns!,
        '--dport', port!, '--proto', proto!.toUpperCase(),
      ]);
      traces.push(`$ membrane policy trace ${sns}/${spod} -> ${dns}/${dpod} ${proto}/${port}\n${r.stdout}${r.stderr}`);
    }
    return `endpoints:\n${lines.join('\n')}\n\n${traces.join('\n')}`;
  }

  for (const c of CASES) {
    it(c.name, async () => {
      for (const [i, step] of c.steps.entries()) {
        await applyPolicies(step.files);
        const hosts = step.hosts === 'all' ? all : pods;
        const expected = step.expect(new Truth(hosts, true));
        const observed = await probeMatrix(expected);
        const diff = diffTruth(expected, observed);
        const where = c.steps.length > 1 ? ` (step ${i + 1} of ${c.steps.length})` : '';
        console.log(`[netpol] ${c.name}${where}: ${observed.verdicts.size} probes in ${observed.ms} ms${diff ? ' — MISMATCH' : ''}`);
        if (diff) {
          const policy = Object.entries(step.files).map(([f, t]) => `--- ${f}\n${t}`).join('\n') || '(no policy files)';
          throw new Error(`${c.name}${where}\n\n${policy}\n${diff}\n\n${await diagnose(diff)}`);
        }
      }
    }, 60_000);
  }

  // Kubernetes leaves open connections to the implementation; Cilium judges every packet that is
  // not a reply (bpf_lxc.c: only CT_REPLY/CT_RELATED skip policy_can_ingress/egress; an
  // established flow whose policy now denies it is dropped). So a UDP flow allowed a moment ago
  // is cut as soon as a policy denies it, and a later datagram on the same 5-tuple is judged by
  // the policy in force, not by the conntrack entry the earlier policy let in.
  it('a policy change applies to a UDP flow already open (same 5-tuple judged again, as Cilium does)', async () => {
    await applyPolicies({});
    const from = pods.find((h) => h.id === 'y/b')!;
    const to = pods.find((h) => h.id === 'x/a')!;
    const sport = nextUdpSport();
    const before = await probeUdp(from, to, 81, sport);
    if (!before.ok) throw new Error(`precondition: y/b -> x/a udp/81 without policy: ${before.detail}`);

    await applyPolicies({
      'deny-ingress.yaml': knp('x', 'deny-ingress', `
        podSelector: {}
        policyTypes: [Ingress]
      `),
    });
    const fresh = await probeUdp(from, to, 81, nextUdpSport());
    const reused = await probeUdp(from, to, 81, sport);
    const problems = [
      fresh.ok ? 'a new UDP flow y/b -> x/a udp/81 was allowed under default deny ingress in x' : '',
      reused.ok
        ? `y/b:${sport} -> x/a:81 (the tuple of a flow allowed before the policy) was allowed under default deny ingress in x: ` +
          'the conntrack entry made under the old policy let it in; Cilium would drop it (expected blocked, got allowed)'
        : '',
    ].filter(Boolean);
    if (problems.length) {
      const dp = await node.client.request<{ conntrack: { sport?: number; dport?: number }[] }>('GET', '/v1/datapath');
      const ct = dp.conntrack.filter((e) => e.sport === sport || e.dport === sport);
      throw new Error(`${problems.join('\n')}\nconntrack entries with port ${sport}:\n${JSON.stringify(ct, null, 2)}`);
    }
  }, 30_000);
});

function sh(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

/** Servers a crashed earlier run of this file left in its external namespaces (found by namespace, killed by PID). */
function sweepExternals(): void {
  for (const e of EXTERNALS) {
    if (!existsSync(`/run/netns/${e.netns}`)) continue;
    const pids = spawnSync('ip', ['netns', 'pids', e.netns], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}
