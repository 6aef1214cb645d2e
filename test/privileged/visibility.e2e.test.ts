/**
 * issue-11 L7 visibility without enforcement, through the real agent and kernel: deathstar
 * annotated `policy.cilium.io/proxy-visibility: "<Ingress/80/TCP/HTTP>"`, tiefighter
 * `"<Egress/53/UDP/DNS>"`. Asserted: with no policy every request still passes and becomes an L7
 * flow and an access-log line; under rule1 (L3/L4: org=empire may reach deathstar:80) tiefighter
 * lands (now with an L7 flow) and xwing is still dropped in the kernel, the same outcomes as with
 * the annotation removed; dig answers are the same with the DNS redirect and appear as DNS flows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { TestNode, eventually, privilegedSkipReason, RULE1_L3L4 } from './harness.js';
import type { Flow } from '../../src/observe/index.js';

const skip = privilegedSkipReason();
const ID = 'visibility';
const P = 'vz';
const SUBNET = '10.247';
const URL_LAND = 'http://deathstar.default.svc.cluster.local/v1/request-landing';
const HTTP_VIS = '<Ingress/80/TCP/HTTP>';
const DNS_VIS = '<Egress/53/UDP/DNS>';

const LAB = `
apiVersion: membrane.dev/v1alpha1
kind: Lab
metadata:
  name: ${P}-sw
spec:
  subnet: "${SUBNET}"
  pods:
    - name: ${P}-ds
      labels: {org: empire, class: deathstar}
      annotations: {policy.cilium.io/proxy-visibility: "${HTTP_VIS}"}
      serve: {app: starwars, port: 80}
    - name: ${P}-tie
      labels: {org: empire, class: tiefighter}
      annotations: {policy.cilium.io/proxy-visibility: "${DNS_VIS}"}
    - name: ${P}-xw
      labels: {org: alliance, class: xwing}
    - name: ${P}-dns
      namespace: kube-system
      labels: {k8s-app: kube-dns}
      serve:
        app: dns
        port: 53
        dns:
          ttl: 60
          zones: [empire.test]
          records:
            - {name: deathstar.empire.test, a: ["${SUBNET}.1.2"]}
  hosts:
    deathstar.default.svc.cluster.local: ${P}-ds
`;

interface FlowJson {
  verdict?: string;
  source?: { pod_name?: string };
  destination?: { pod_name?: string };
  l7?: { type?: string; http?: { method?: string; url?: string; code?: number }; dns?: { query?: string; ips?: string[]; rcode?: number } };
}

describe.skipIf(skip !== null)('issue-11 proxy-visibility annotation: L7 flows without changing a verdict' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;

  /** Registers a lab pod again with these annotations (what a changed pod annotation does). */
  async function annotate(pod: string, annotations: Record<string, string> | undefined, labels: Record<string, string>): Promise<void> {
    const entry = node.lab!.pods.find((p) => p.name === pod)!;
    await node.client.request('PUT', '/v1/endpoints', {
      name: pod,
      namespace: entry.namespace,
      podLabels: labels,
      namespaceLabels: {},
      namedPorts: {},
      ip: entry.ip,
      ifname: entry.ifname,
      netns: pod,
      ...(annotations ? { annotations } : {}),
    });
  }

  function flows(protocol: string): FlowJson[] {
    const r = node.cli(['observe', '--protocol', protocol, '-o', 'json', '--last', '1000']);
    expect(r.status, r.stderr).toBe(0);
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const o = JSON.parse(l) as { flow?: FlowJson } & FlowJson;
        return o.flow ?? o;
      });
  }

  const httpRequests = (from: string): FlowJson[] => flows('http').filter((f) => f.l7?.type === 'REQUEST' && f.source?.pod_name === from);
  const landings = (): number => node.accessLog().filter((l) => JSON.stringify(l).includes('/v1/request-landing')).length;

  function dig(pod: string, name: string): string {
    const r = spawnSync('ip', ['netns', 'exec', pod, 'dig', '+short', '+time=2', '+tries=1', name], { encoding: 'utf8' });
    return r.stdout.trim();
  }

  beforeAll(async () => {
    TestNode.sweep(ID, [`${P}-ds`, `${P}-tie`, `${P}-xw`, `${P}-dns`]);
    node = new TestNode(ID);
    await node.startAgent();
    await node.labUp(LAB);
  }, 90_000);

  afterAll(async () => {
    await node?.cleanup();
  });

  it('the endpoints report the annotation as Cilium\'s VISIBILITY POLICY column does (OK)', async () => {
    const eps = await node.client.request<{ name: string; visibilityPolicy?: string }[]>('GET', '/v1/endpoints');
    const byName = new Map(eps.map((e) => [e.name, e.visibilityPolicy]));
    expect(byName.get(`${P}-ds`)).toBe('OK');
    expect(byName.get(`${P}-tie`)).toBe('OK');
    expect(byName.get(`${P}-xw`)).toBeUndefined();
  });

  it('no policy: every ship still lands, and each landing is an L7 HTTP flow and an access-log line', async () => {
    const before = landings();
    for (const ship of [`${P}-tie`, `${P}-xw`]) {
      const r = node.curl(ship, 'POST', URL_LAND);
      expect(r.status, ship).toBe(200);
      expect(r.body.trim()).toBe('Ship landed');
    }
    expect(await eventually(() => httpRequests(`${P}-xw`).length > 0 && httpRequests(`${P}-tie`).length > 0, 5000)).toBe(true);
    const f = httpRequests(`${P}-xw`)[0]!;
    expect(f).toMatchObject({ verdict: 'FORWARDED', destination: { pod_name: `${P}-ds` }, l7: { type: 'REQUEST', http: { method: 'POST' } } });
    expect(f.l7?.http?.url).toContain('/v1/request-landing');
    expect(await eventually(() => landings() >= before + 2, 5000)).toBe(true);
    // No policy is enforced: the redirected connection is a to-proxy trace, never a policy
    // verdict (Cilium logs verdicts only where it enforces).
    const l34 = node.cli(['observe', '--from-pod', `${P}-xw`, '--to-pod', `${P}-ds`, '--last', '1000']).stdout.split('\n');
    expect(l34.some((l) => new RegExp(` -> \\S+/${P}-ds:80 \\(ID:\\d+\\) to-proxy FORWARDED \\(TCP Flags: SYN\\)$`).test(l)), l34.join('\n')).toBe(true);
    expect(l34.filter((l) => l.includes('policy-verdict')), l34.join('\n')).toEqual([]);
    // Later packets are traced as under Cilium's monitor aggregation: the close into the proxy, and
    // the proxy's answers as replies delivered to the client (`<-`, is_reply), never every packet.
    expect(l34.some((l) => new RegExp(` -> \\S+/${P}-ds:80 \\(ID:\\d+\\) to-proxy FORWARDED \\(TCP Flags: [^)]*(FIN|RST)[^)]*\\)$`).test(l)), l34.join('\n')).toBe(true);
    const replies = node.cli(['observe', '--from-pod', `${P}-ds`, '--to-pod', `${P}-xw`, '--last', '1000', '-o', 'json']).stdout.trim().split('\n').filter(Boolean)
      .map((l) => (JSON.parse(l) as { flow: Flow }).flow).filter((f) => f.event_type.type === 4);
    const synAck = replies.find((f) => f.l4 && 'TCP' in f.l4 && f.l4.TCP.flags?.SYN && f.l4.TCP.flags.ACK);
    expect(synAck, JSON.stringify(replies)).toMatchObject({ is_reply: true, trace_reason: 'REPLY', event_type: { sub_type: 0 }, source: { pod_name: `${P}-ds` } });
    const replyLines = node.cli(['observe', '--from-pod', `${P}-ds`, '--to-pod', `${P}-xw`, '--last', '1000']).stdout.split('\n');
    expect(replyLines.some((l) => new RegExp(`${P}-xw:\\d+ \\(ID:\\d+\\) <- \\S+/${P}-ds:80 \\(ID:\\d+\\) to-endpoint FORWARDED \\(TCP Flags: SYN, ACK\\)$`).test(l)), replyLines.join('\n')).toBe(true);
  });

  it('L3/L4 rule1: tiefighter lands (now seen at L7), xwing is dropped, exactly as without the annotation', async () => {
    node.writePolicy('rule1.yaml', RULE1_L3L4);
    const outcomes = async (): Promise<{ tie: number; xwTimedOut: boolean }> => {
      // Policy and endpoint changes are applied before the API call returns; the file watch is not.
      expect(await eventually(() => node.curl(`${P}-xw`, 'POST', URL_LAND, 1).timedOut, 10_000, 200)).toBe(true);
      const tie = node.curl(`${P}-tie`, 'POST', URL_LAND);
      const xw = node.curl(`${P}-xw`, 'POST', URL_LAND);
      return { tie: tie.status, xwTimedOut: xw.timedOut };
    };

    const tieBefore = httpRequests(`${P}-tie`).length;
    const withAnnotation = await outcomes();
    expect(withAnnotation).toEqual({ tie: 200, xwTimedOut: true });
    expect(await eventually(() => httpRequests(`${P}-tie`).length > tieBefore, 5000)).toBe(true);
    // xwing's SYNs are kernel drops (default deny), never proxied.
    const dropped = node.cli(['observe', '--verdict', 'DROPPED', '--from-pod', `${P}-xw`, '-o', 'json', '--last', '100']);
    expect(dropped.stdout).toContain('POLICY_DENIED');

    await annotate(`${P}-ds`, undefined, { org: 'empire', class: 'deathstar' });
    const linesWithout = landings();
    const withoutAnnotation = await outcomes();
    expect(withoutAnnotation).toEqual(withAnnotation);
    // Without the annotation the allowed landing is not proxied: no access-log line for it.
    expect(landings()).toBe(linesWithout);

    await annotate(`${P}-ds`, { 'policy.cilium.io/proxy-visibility': HTTP_VIS }, { org: 'empire', class: 'deathstar' });
    expect(await outcomes()).toEqual(withAnnotation);
    expect(await eventually(() => landings() > linesWithout, 5000)).toBe(true);
    node.removePolicy('rule1.yaml');
  });

  it('<Egress/53/UDP/DNS>: dig answers are unchanged and every query is a DNS flow', async () => {
    const name = 'deathstar.empire.test';
    const ofTie = (f: FlowJson): boolean => f.source?.pod_name === `${P}-tie` || f.destination?.pod_name === `${P}-tie`;
    await annotate(`${P}-tie`, undefined, { org: 'empire', class: 'tiefighter' });
    const before = flows('dns').filter(ofTie).length;
    const plain = dig(`${P}-tie`, name);
    expect(plain).toBe(`${SUBNET}.1.2`);
    // Not redirected without the annotation: the query is no DNS flow.
    expect(flows('dns').filter(ofTie)).toHaveLength(before);

    await annotate(`${P}-tie`, { 'policy.cilium.io/proxy-visibility': DNS_VIS }, { org: 'empire', class: 'tiefighter' });
    expect(dig(`${P}-tie`, name)).toBe(plain);
    expect(dig(`${P}-tie`, 'nonexistent.empire.test')).toBe('');
    expect(await eventually(() => flows('dns').filter(ofTie).some((f) => f.l7?.type === 'RESPONSE'), 5000)).toBe(true);
    const q = flows('dns').filter(ofTie).slice(before);
    expect(q.map((f) => f.l7?.type)).toContain('REQUEST');
    expect(q.every((f) => f.verdict === 'FORWARDED')).toBe(true);
    expect(JSON.stringify(q)).toContain(name);
  });

  it('an annotation that does not parse is ignored with a warning and reported, the endpoint still works', async () => {
    await annotate(`${P}-xw`, { 'policy.cilium.io/proxy-visibility': '<Ingress/53/UDP/DNS>' }, { org: 'alliance', class: 'xwing' });
    const eps = await node.client.request<{ name: string; visibilityPolicy?: string; status: string }[]>('GET', '/v1/endpoints');
    const xw = eps.find((e) => e.name === `${P}-xw`)!;
    expect(xw).toMatchObject({ status: 'ready', visibilityPolicy: 'policy.cilium.io/proxy-visibility: <Ingress/53/UDP/DNS>: dns not allowed with direction Ingress' });
    expect(node.agentLog()).toContain('proxy visibility annotation ignored');
    expect(node.curl(`${P}-xw`, 'POST', URL_LAND).status).toBe(200);
  });
});
