/**
 * Flows through Hubble's wire format and back: `membrane observe` reads flows over gRPC, and must
 * print each exactly as the agent built it (all three output modes), with every Hubble field on
 * the wire under Hubble's number.
 */
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import {
  dnsRequestFlow,
  dnsResponseFlow,
  dropFlow,
  dropReasons,
  filtersFromFlags,
  FlowPrinter,
  httpRequestFlow,
  httpResponseFlow,
  output,
  policyVerdictFlow,
  traceFlow,
  withWriter,
  type Flow,
} from '../../../src/observe/index.js';
import { filterFromProto, filterToProto, flowFromProto, flowToProto, observerPackage, protoRoot, PROTO_LOADER_OPTIONS } from '../../../src/hubble/index.js';
import { deathstarW, IPS, starWarsFlows, tiefighter, xwing } from '../observe/fixtures.js';
import { traceReasons } from '../../../src/codes/index.js';

const getFlows = observerPackage().service.GetFlows!;

/** What the CLI decodes from what the agent encodes, through real protobuf bytes. */
function overTheWire(flow: Flow): Flow {
  const pb = flowToProto(flow);
  const bytes = getFlows.responseSerialize({ flow: pb, node_name: flow.node_name, time: pb.time });
  const msg = getFlows.responseDeserialize(bytes) as { flow: Record<string, unknown> };
  return flowFromProto(msg.flow);
}

function printed(flows: Flow[], mode: 'compact' | 'json' | 'dict'): string {
  let out = '';
  const p = new FlowPrinter(output(mode), withWriter({ write: (s: string) => (out += s) } as unknown as NodeJS.WritableStream));
  for (const f of flows) p.write(f);
  return out;
}

/** One flow from every producer, with times as the producers pass them (datapath ns, proxy Date). */
function everyKindOfFlow(): Flow[] {
  const ns = 1_733_011_200_123_456_789n;
  const l3 = { time: ns, source: xwing, destination: deathstarW, ip: { source: IPS.xwing, destination: IPS.deathstarW }, direction: 'INGRESS' as const, nodeName: 'node-1' };
  const syn = { TCP: { source_port: 40000, destination_port: 80, flags: { SYN: true } } };
  const l7 = {
    time: new Date('2024-12-01T00:00:01.250Z'),
    source: tiefighter,
    destination: deathstarW,
    ip: { source: IPS.tiefighter, destination: IPS.deathstarW },
    sourcePort: 42746,
    destinationPort: 80,
    direction: 'INGRESS' as const,
    nodeName: 'node-1',
    proxyPort: 15001,
  };
  const url = 'http://deathstar.default.svc.cluster.local/v1/exhaust-port';
  const dns = { ...l7, destinationPort: 53, transport: 'UDP' as const, direction: 'EGRESS' as const };
  return [
    dropFlow({ ...l3, l4: syn, reason: 133 }),
    dropFlow({ ...l3, l4: { TCP: { source_port: 1, destination_port: 2, flags: {} } }, reason: 181 }),
    dropFlow({ ...l3, l4: { ICMPv4: { type: 8, code: 0 } }, reason: 133 }),
    policyVerdictFlow({ ...l3, l4: syn, verdict: 'FORWARDED', matchType: 2 }),
    policyVerdictFlow({ ...l3, l4: { UDP: { source_port: 5353, destination_port: 53 } }, verdict: 'REDIRECTED', matchType: 0, proxyPort: 15053 }),
    policyVerdictFlow({ ...l3, verdict: 'DROPPED', matchType: 2, dropReason: 181 }),
    traceFlow({ ...l3, l4: syn, observationPoint: 0, isReply: true, traceReason: 'REPLY' }),
    traceFlow({ ...l3, l4: syn, observationPoint: 3, isReply: false, traceReason: 'NEW' }),
    httpRequestFlow({ ...l7, verdict: 'DROPPED', http: { method: 'PUT', url, protocol: 'HTTP/1.1', headers: [] }, policies: [{ name: 'rule1', namespace: 'default' }] }),
    httpRequestFlow({ ...l7, verdict: 'FORWARDED', http: { method: 'GET', url, protocol: 'HTTP/1.1', headers: [{ key: 'x-a', value: 'b' }] }, traceContext: { parent: { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' } } }),
    httpResponseFlow({ ...l7, verdict: 'FORWARDED', latencyNs: 0, http: { code: 403, method: 'PUT', url, protocol: 'HTTP/1.1' } }),
    httpResponseFlow({ ...l7, verdict: 'ERROR', latencyNs: 2_500_000, http: { code: 503, method: 'GET', url, protocol: 'HTTP/1.1', headers: [{ key: 'a', value: '1' }] } }),
    dnsRequestFlow({ ...dns, verdict: 'DROPPED', dns: { query: 'api.github.com.', qtypes: ['A'] } }),
    dnsResponseFlow({ ...dns, verdict: 'FORWARDED', latencyNs: 1_000_000, dns: { query: 'api.github.com.', ips: ['140.82.112.6'], ttl: 60, qtypes: ['A'], rrtypes: ['A'] } }),
    dnsResponseFlow({ ...dns, verdict: 'FORWARDED', latencyNs: 0, dns: { query: 'x.example.', rcode: 5, qtypes: ['AAAA'] } }),
  ];
}

describe('flows over the Hubble wire format', () => {
  it('come back byte for byte as the agent built them, in every output mode', () => {
    const flows = everyKindOfFlow();
    const back = flows.map(overTheWire);
    for (let i = 0; i < flows.length; i++) expect(JSON.stringify(back[i]), `flow ${i}`).toBe(JSON.stringify(flows[i]));
    for (const mode of ['compact', 'json', 'dict'] as const) expect(printed(back, mode)).toBe(printed(flows, mode));
  });

  it('print the Star Wars reference lines unchanged after the trip', () => {
    const flows = starWarsFlows();
    expect(printed(flows.map(overTheWire), 'compact')).toBe(printed(flows, 'compact'));
  });

  it('carry verdict, drop reason, and HTTP fields under Hubble enum names and numbers', () => {
    const drop = everyKindOfFlow()[0] as Flow;
    const pb = getFlows.responseDeserialize(getFlows.responseSerialize({ flow: flowToProto(drop) })) as { flow: Record<string, unknown> };
    expect(pb.flow).toMatchObject({ verdict: 'DROPPED', drop_reason: 133, drop_reason_desc: 'POLICY_DENIED', Type: 'L3_L4', time: { seconds: 1_733_011_200, nanos: 123_456_789 } });
    expect(pb.flow.is_reply).toBeUndefined();
  });
});

describe('the proto enums match the shared code tables', () => {
  const def = protoLoader.loadSync(join(protoRoot(), 'flow', 'flow.proto'), { ...PROTO_LOADER_OPTIONS, includeDirs: [protoRoot()] });
  const values = (name: string): Map<string, number> =>
    new Map(((def[name] as { type: { value: { name: string; number: number }[] } }).type.value).map((v) => [v.name, v.number]));

  it('every drop reason Hubble names has the same number in flow.DropReason', () => {
    const enumValues = values('flow.DropReason');
    const named = dropReasons().filter((r) => r.name !== null);
    expect(named.length).toBeGreaterThan(60);
    for (const r of named) expect(enumValues.get(r.name as string), r.name as string).toBe(r.code);
  });

  it('every trace reason has flow.TraceReason\'s number (Hubble\'s decodeTraceReason: the datapath number + 1, unknown 0)', () => {
    const enumValues = values('flow.TraceReason');
    for (const r of traceReasons()) expect(enumValues.get(r.protoName), r.cName).toBe(r.protoCode);
    expect(traceReasons().filter((r) => r.key !== 'UNKNOWN').every((r) => r.protoCode === r.code + 1)).toBe(true);
  });

  it('verdicts are Hubble numbers', () => {
    expect(Object.fromEntries(values('flow.Verdict'))).toMatchObject({ FORWARDED: 1, DROPPED: 2, ERROR: 3, AUDIT: 4, REDIRECTED: 5 });
  });
});

describe('FlowFilter ⇄ filters', () => {
  it('the filters `membrane observe` builds survive the trip unchanged', () => {
    const set = filtersFromFlags([['pod', 'default/deathstar'], ['protocol', 'http'], ['verdict', 'DROPPED'], ['type', 'trace:to-endpoint'], ['not'], ['http-method', 'GET']]);
    const req = getFlows.requestDeserialize(
      getFlows.requestSerialize({ number: 20, whitelist: set.allow.map(filterToProto), blacklist: set.deny.map(filterToProto) }),
    ) as { whitelist: Record<string, unknown>[]; blacklist: Record<string, unknown>[] };
    expect(req.whitelist.map(filterFromProto)).toEqual(set.allow);
    expect(req.blacklist.map(filterFromProto)).toEqual(set.deny);
    expect(set.allow.length).toBe(2);
  });

  it('a filter field Membrane cannot evaluate is refused, not ignored', () => {
    expect(() => filterFromProto({ source_service: ['kube-system/kube-dns'] })).toThrow(/FlowFilter\.source_service is not supported/);
    expect(filterFromProto({ dns_query: ['kube.*local'] })).toEqual({ dns_query: ['kube.*local'] });
    expect(() => filterFromProto({ source_fqdn: [] })).not.toThrow();
  });
});
