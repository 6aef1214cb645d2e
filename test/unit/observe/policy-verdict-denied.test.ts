/**
 * issue-11 denied policy verdicts: a packet the kernel's policy denies gives two events, its
 * policy verdict (DENIED, with the match type and the drop reason) and then its drop, as Cilium's
 * bpf_lxc.c sends them. From those two ring-buffer records, as the programs write them, the agent's
 * flows must print the Star Wars reference lines exactly (cilium-overview-and-starwars-demo.txt,
 * `hubble observe --pod deathstar --verdict DROPPED`), select by `--type policy-verdict`, cross the
 * Hubble wire as a POLICY_VERDICT event, and count as `hubble_policy_verdicts_total{action="dropped"}`.
 */
import { describe, expect, it } from 'vitest';
import { eventToFlow, type FlowContextLookup } from '../../../src/agent/flows.js';
import type { Endpoint } from '../../../src/agent/endpoints.js';
import { flowEvent, type FlowEvent } from '../../../src/datapath/maps/events.js';
import { compileFilters, filtersFromFlags, formatCompact, type Flow } from '../../../src/observe/index.js';
import { flowFromProto, flowToProto, observerPackage } from '../../../src/hubble/index.js';
import { MembraneMetrics, type MetricsSources } from '../../../src/metrics/index.js';
import { parseLabel } from '../../../src/policy/index.js';
import { IPS, REFERENCE_LINES } from './fixtures.js';

const ipNum = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);

function pod(name: string, ip: string, id: number, identity: number, labels: string[]): Endpoint {
  return { name, namespace: 'default', ip, id, identity, labels: labels.map(parseLabel) } as unknown as Endpoint;
}
const pods = [
  pod('xwing', IPS.xwing, 1202, 63406, ['k8s:class=xwing', 'k8s:org=alliance']),
  pod('deathstar-b4b8ccfb5-f75xw', IPS.deathstarF, 1204, 6822, ['k8s:class=deathstar', 'k8s:org=empire']),
];
const ctx: FlowContextLookup = {
  endpointByIp: (ip) => pods.find((p) => p.ip === ip),
  identity: () => undefined,
  nodeName: 'node-1',
};

/** One record as bpf/membrane.bpf.c writes it for xwing's SYN to deathstar:80, read back as the agent reads it. */
function kernelEvent(fields: Partial<FlowEvent>): FlowEvent {
  return flowEvent.decode(
    flowEvent.encode({
      ts_ns: 1n,
      saddr: ipNum(IPS.xwing),
      daddr: ipNum(IPS.deathstarF),
      sport: 45706,
      dport: 80,
      src_identity: 63406,
      dst_identity: 6822,
      ifindex: 7,
      endpoint_id: 1204,
      proxy_port: 0,
      type: 0,
      verdict: 0,
      reason: 0,
      direction: 1,
      protocol: 6,
      tcp_flags: 0x02,
      icmp_type: 0,
      match_type: 0,
      trace_reason: 5,
      reserved_1: 0,
      reserved_2: 0,
      ...fields,
    }),
  );
}

/** The pair of a default-deny drop: POLICY_VERDICT (5) DROPPED (2) match none, then DROP (1) reason 133. */
function deniedSyn(): Flow[] {
  const at = '2024-04-05T21:03:18.803512345Z';
  return [
    kernelEvent({ type: 5, verdict: 2, reason: 133, match_type: 0 }),
    kernelEvent({ type: 1, verdict: 2, reason: 133 }),
  ].map((ev) => ({ ...eventToFlow(ev, ctx), time: at }));
}

describe('issue-11 a denied SYN is a policy-verdict DENIED then a drop, as in the Star Wars reference', () => {
  it('`membrane observe --pod deathstar --verdict DROPPED` prints the reference pair exactly', () => {
    const keep = compileFilters(filtersFromFlags([['pod', 'deathstar'], ['verdict', 'DROPPED']]));
    const lines = deniedSyn().filter(keep).map((f) => formatCompact(f));
    expect(lines).toEqual([REFERENCE_LINES[4], REFERENCE_LINES[5]]);
  });

  it('`--type policy-verdict --verdict DROPPED` selects the verdict alone; `--type drop` the drop alone', () => {
    const flows = deniedSyn();
    const pv = compileFilters(filtersFromFlags([['type', 'policy-verdict'], ['verdict', 'DROPPED']]));
    expect(flows.filter(pv).map((f) => formatCompact(f))).toEqual([REFERENCE_LINES[4]]);
    const drop = compileFilters(filtersFromFlags([['type', 'drop']]));
    expect(flows.filter(drop).map((f) => formatCompact(f))).toEqual([REFERENCE_LINES[5]]);
  });

  it('the verdict carries Hubble\'s fields: event type 5, verdict DROPPED, drop reason, match type, no is_reply', () => {
    const [verdict] = deniedSyn();
    expect(verdict).toMatchObject({
      verdict: 'DROPPED',
      event_type: { type: 5, sub_type: 0 },
      drop_reason: 133,
      drop_reason_desc: 'POLICY_DENIED',
      policy_match_type: 0,
      traffic_direction: 'INGRESS',
    });
    expect(verdict!.is_reply).toBeUndefined();
  });

  it('over Hubble gRPC it stays a POLICY_VERDICT event with verdict DROPPED and its drop reason, and prints the same', () => {
    const getFlows = observerPackage().service.GetFlows!;
    for (const [i, flow] of deniedSyn().entries()) {
      const pb = flowToProto(flow);
      const bytes = getFlows.responseSerialize({ flow: pb, node_name: flow.node_name, time: pb.time });
      const wire = (getFlows.responseDeserialize(bytes) as { flow: Record<string, unknown> }).flow;
      expect(wire).toMatchObject({ verdict: 'DROPPED', drop_reason: 133, drop_reason_desc: 'POLICY_DENIED', event_type: { type: i === 0 ? 5 : 1 } });
      expect(formatCompact(flowFromProto(wire))).toBe(REFERENCE_LINES[4 + i]);
    }
  });

  it('an egressDeny rule on a peer at any port prints as Hubble does: policy-verdict:L3-Only EGRESS DENIED, then Policy denied by denylist', () => {
    const ev = { saddr: ipNum(IPS.deathstarF), daddr: ipNum(IPS.xwing), sport: 41000, dport: 443, src_identity: 6822, dst_identity: 63406, direction: 2 };
    const [verdict, drop] = [
      kernelEvent({ ...ev, type: 5, verdict: 2, reason: 181, match_type: 1 }),
      kernelEvent({ ...ev, type: 1, verdict: 2, reason: 181 }),
    ].map((e) => formatCompact({ ...eventToFlow(e, ctx), time: '2024-04-05T21:03:18.803Z' }));
    expect(verdict).toBe('Apr  5 21:03:18.803: default/deathstar-b4b8ccfb5-f75xw:41000 (ID:6822) <> default/xwing:443 (ID:63406) policy-verdict:L3-Only EGRESS DENIED (TCP Flags: SYN)');
    expect(drop).toBe('Apr  5 21:03:18.803: default/deathstar-b4b8ccfb5-f75xw:41000 (ID:6822) <> default/xwing:443 (ID:63406) Policy denied by denylist DROPPED (TCP Flags: SYN)');
  });

  it('hubble_policy_verdicts_total counts it as action="dropped" with match="none"', async () => {
    const sources = {
      readCounters: () => [],
      mapPressure: () => [],
      endpoints: () => 2,
      identities: () => [],
      policy: () => ({ policies: 1, revision: 1 }),
      fqdn: () => ({ names: 0, ips: 0, zombies: 0 }),
      proxies: () => ({ http: null, dns: null, tls: null }),
      tracing: () => ({ exported: 0, droppedQueueFull: 0, droppedExportFailed: 0 }),
    } as unknown as MetricsSources;
    const m = new MembraneMetrics(sources, { processMetrics: false });
    for (const f of deniedSyn()) m.countFlow(f);
    const text = await m.scrape();
    expect(text).toMatch(/^hubble_policy_verdicts_total\{direction="ingress",match="none",action="dropped"\} 1$/m);
    // Hubble's drop handler (pkg/hubble/metrics/drop/handler.go) counts every DROPPED flow, the
    // verdict as well as the drop: a denied SYN is 2 there, and so here.
    expect(text).toMatch(/^hubble_drop_total\{reason="POLICY_DENIED",protocol="TCP"\} 2$/m);
    expect(text).toMatch(/^hubble_flows_processed_total\{type="PolicyVerdict",subtype="",verdict="DROPPED"\} 1$/m);
  });
});
