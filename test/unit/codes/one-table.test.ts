/**
 * issue-7 one table of codes. Drop reasons, verdicts and event types are defined once (src/codes);
 * the C headers the programs are built from must agree with it by name and number, and every drop
 * the programs can emit must reach the user with Cilium's number and Hubble's name and text.
 *
 * The expectations below are Cilium's and Hubble's, not Membrane's table read back: C name and
 * number from Cilium's bpf/lib/drop_reasons.h, the enum name from api/v1/flow/flow.proto
 * (`DropReason`), the text from pkg/monitor/api/drop.go (what `hubble observe` prints as a drop's
 * type), message types from pkg/monitor/api/types.go.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DROP_REASON,
  dropReasonCode,
  dropReasonMessage,
  dropReasonName,
  dropReasons,
  EVENT_TYPE,
  eventTypes,
  POLICY_MATCH_TYPE_NAMES,
  policyMatchTypes,
  TRACE_REASON,
  traceReasons,
  VERDICT,
  VERDICTS,
  verdictOfCode,
} from '../../../src/codes/index.js';
import { flowEvent, type FlowEvent } from '../../../src/datapath/maps/events.js';
import { eventToFlow, type FlowContextLookup } from '../../../src/agent/flows.js';
import { compileFilters, filtersFromFlags, FlowPrinter, formatCompact, json, TRACE_OBSERVATION_POINTS, withWriter, type Flow } from '../../../src/observe/index.js';

const BPF = fileURLToPath(new URL('../../../bpf/', import.meta.url));
const read = (f: string): string => readFileSync(`${BPF}${f}`, 'utf8');

/** `#define NAME 123` lines of a header, in order. */
function defines(text: string, prefix: string): [string, number][] {
  return [...text.matchAll(new RegExp(`^#define\\s+(${prefix}\\w+)\\s+(\\d+)\\b`, 'gm'))].map((m) => [m[1]!, Number(m[2])]);
}

/** Every identifier with this prefix the programs use outside their definitions. */
function usedIdentifiers(prefix: string): Set<string> {
  const sources = ['membrane.bpf.c', ...readdirSync(`${BPF}lib`).filter((f) => f.endsWith('.h')).map((f) => `lib/${f}`)];
  const out = new Set<string>();
  for (const f of sources) {
    const code = read(f)
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '')
      .replace(/^#define\s+\w+.*$/gm, '');
    for (const m of code.matchAll(new RegExp(`\\b${prefix}[A-Z0-9_]+\\b`, 'g'))) out.add(m[0]);
  }
  return out;
}

const dropHeader = defines(read('lib/drop_reasons.h'), 'DROP_');
const eventsHeader = read('lib/events.h');
const notifyHeader = defines(eventsHeader, 'CILIUM_NOTIFY_');
const verdictHeader = defines(eventsHeader, 'VERDICT_');
const matchHeader = defines(read('lib/policy.h'), 'POLICY_MATCH_');
const traceHeader = defines(eventsHeader, 'TRACE_TO_');
const traceReasonHeader = defines(eventsHeader, 'TRACE_REASON_');
const cNumber = (pairs: [string, number][], name: string): number => {
  const hit = pairs.find(([n]) => n === name);
  if (!hit) throw new Error(`${name} is not defined`);
  return hit[1];
};

/** Cilium's and Hubble's facts for every reason Membrane's header defines. */
const CILIUM: Record<string, { code: number; name: string; text: string }> = {
  DROP_INVALID_SIP: { code: 132, name: 'INVALID_SOURCE_IP', text: 'Invalid source ip' },
  DROP_POLICY: { code: 133, name: 'POLICY_DENIED', text: 'Policy denied' },
  DROP_INVALID: { code: 134, name: 'INVALID_PACKET_DROPPED', text: 'Invalid packet' },
  DROP_CT_INVALID_HDR: { code: 135, name: 'CT_TRUNCATED_OR_INVALID_HEADER', text: 'CT: Truncated or invalid header' },
  DROP_UNKNOWN_L3: { code: 139, name: 'UNSUPPORTED_L3_PROTOCOL', text: 'Unsupported L3 protocol' },
  DROP_UNKNOWN_L4: { code: 142, name: 'UNKNOWN_L4_PROTOCOL', text: 'Unknown L4 protocol' },
  DROP_UNKNOWN_TARGET: { code: 150, name: 'UNKNOWN_L3_TARGET_ADDRESS', text: 'Unknown L3 target address' },
  DROP_FRAG_NOSUPPORT: { code: 157, name: 'IP_FRAGMENTATION_NOT_SUPPORTED', text: 'IP fragmentation not supported' },
  DROP_FRAG_NOT_FOUND: { code: 175, name: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND', text: 'First logical datagram fragment not found' },
  DROP_PROXY_LOOKUP_FAILED: { code: 178, name: 'SOCKET_LOOKUP_FAILED', text: 'Socket lookup failed' },
  DROP_PROXY_SET_FAILED: { code: 179, name: 'SOCKET_ASSIGN_FAILED', text: 'Socket assign failed' },
  DROP_PROXY_UNKNOWN_PROTO: { code: 180, name: 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL', text: 'Proxy redirection not supported for protocol' },
  DROP_POLICY_DENY: { code: 181, name: 'POLICY_DENY', text: 'Policy denied by denylist' },
  DROP_POLICY_AUTH_REQUIRED: { code: 189, name: 'AUTH_REQUIRED', text: 'Authentication required' },
};

const ctx: FlowContextLookup = {
  endpointByIp: () => undefined,
  identity: () => undefined,
  nodeName: 'node-1',
};

/** A ring-buffer record as the programs write it, decoded the way the agent reads it. */
function kernelEvent(fields: Partial<FlowEvent>): FlowEvent {
  const bytes = flowEvent.encode({
    ts_ns: 1_000_000n,
    saddr: 0x0a4d0103,
    daddr: 0x0a4d0102,
    sport: 37830,
    dport: 80,
    src_identity: 258,
    dst_identity: 256,
    ifindex: 5,
    endpoint_id: 1,
    proxy_port: 0,
    type: 0,
    verdict: 0,
    reason: 0,
    direction: 1,
    protocol: 6,
    tcp_flags: 0x02,
    icmp_type: 0,
    match_type: 0,
    trace_reason: 0,
    reserved_1: 0,
    reserved_2: 0,
    ...fields,
  });
  return flowEvent.decode(bytes);
}

/** What `membrane observe -o json` writes for one flow. */
function printJson(flow: Flow): string {
  let out = '';
  const printer = new FlowPrinter(json(), withWriter({ write: (t: string) => ((out += t), true) }));
  expect(printer.write(flow)).toBe(true);
  return out;
}

describe('issue-7 one table of codes: the C headers agree with src/codes by name and number', () => {
  it('every drop reason bpf/lib/drop_reasons.h defines is the table row of that C name, with that number', () => {
    expect(dropHeader.length).toBeGreaterThan(0);
    const table = new Map(dropReasons().map((r) => [r.cName, r.code]));
    expect(dropHeader.map(([name, code]) => [name, table.get(name as never)])).toEqual(dropHeader.map(([name, code]) => [name, code]));
  });

  it('every DROP_* the programs use is defined in drop_reasons.h (so the table names it)', () => {
    const defined = new Set(dropHeader.map(([n]) => n));
    const used = [...usedIdentifiers('DROP_')];
    expect(used.length).toBeGreaterThan(5);
    expect(used.filter((n) => !defined.has(n))).toEqual([]);
  });

  it('event types and verdicts in bpf/lib/events.h are Cilium\'s message types and Hubble\'s verdicts', () => {
    const byC = new Map<string, number>(eventTypes().flatMap((r) => (r.cName ? [[r.cName, r.code] as const] : [])));
    expect(notifyHeader.map(([n]) => [n, byC.get(n)])).toEqual(notifyHeader);
    expect(verdictHeader.map(([n]) => [n, (VERDICT as Record<string, number>)[n.slice('VERDICT_'.length)]])).toEqual(verdictHeader);
    const definedNotify = new Set(notifyHeader.map(([n]) => n));
    const definedVerdict = new Set(verdictHeader.map(([n]) => n));
    expect([...usedIdentifiers('CILIUM_NOTIFY_')].filter((n) => !definedNotify.has(n))).toEqual([]);
    expect([...usedIdentifiers('VERDICT_')].filter((n) => !definedVerdict.has(n))).toEqual([]);
  });

  it('issue-11 policy match types in bpf/lib/policy.h are Cilium\'s POLICY_MATCH_* with the names Hubble prints', () => {
    // Cilium bpf/lib/policy.h enum and pkg/monitor/api/types.go PolicyMatchType.String().
    const cilium = { POLICY_MATCH_NONE: [0, 'none'], POLICY_MATCH_L3_ONLY: [1, 'L3-Only'], POLICY_MATCH_L3_L4: [2, 'L3-L4'], POLICY_MATCH_L4_ONLY: [3, 'L4-Only'], POLICY_MATCH_ALL: [4, 'all'] };
    expect(matchHeader.map(([n, code]) => [n, code])).toEqual(Object.entries(cilium).map(([n, [code]]) => [n, code]));
    expect(policyMatchTypes().map((r) => [r.cName, [r.code, r.name]])).toEqual(Object.entries(cilium));
    for (const [, code] of matchHeader) expect(POLICY_MATCH_TYPE_NAMES[code]).toBe(cilium[policyMatchTypes()[code]!.cName as keyof typeof cilium][1]);
    const used = [...usedIdentifiers('POLICY_MATCH_')];
    expect(used.filter((n) => !matchHeader.some(([d]) => d === n))).toEqual([]);
  });

  it('the header defines exactly the reasons whose Cilium facts this test knows', () => {
    expect(dropHeader.map(([n]) => n).sort()).toEqual(Object.keys(CILIUM).sort());
    for (const [name, code] of dropHeader) expect([name, code]).toEqual([name, CILIUM[name]!.code]);
  });
});

describe('issue-7 one table of codes: every drop the programs can emit reaches `membrane observe` with Hubble\'s name', () => {
  for (const [cName, code] of dropHeader) {
    it(`${cName} (${code})`, () => {
      const want = CILIUM[cName]!;
      // The type byte is the header's, not the table's: this is what the kernel writes.
      const flow = eventToFlow(kernelEvent({ type: cNumber(notifyHeader, 'CILIUM_NOTIFY_DROP'), verdict: cNumber(verdictHeader, 'VERDICT_DROPPED'), reason: code }), ctx);
      expect(flow).toMatchObject({
        verdict: 'DROPPED',
        drop_reason: want.code,
        drop_reason_desc: want.name,
        event_type: { type: 1, sub_type: want.code },
      });
      const line = formatCompact(flow);
      expect(line).toContain(` ${want.text} DROPPED (TCP Flags: SYN)`);
      const printed = JSON.parse(printJson(flow)) as { flow: Flow };
      expect(printed.flow).toMatchObject({ drop_reason_desc: want.name, drop_reason: want.code, verdict: 'DROPPED' });
      // Hubble's --drop-reason-desc selects it by that name.
      const keep = compileFilters(filtersFromFlags([['drop-reason-desc', want.name]]));
      expect(keep(flow)).toBe(true);
    });
  }

  it('a redirected and a forwarded connection are Cilium policy-verdict events (type 5), not drops', () => {
    const pv = cNumber(notifyHeader, 'CILIUM_NOTIFY_POLICY_VERDICT');
    const redirected = eventToFlow(kernelEvent({ type: pv, verdict: cNumber(verdictHeader, 'VERDICT_REDIRECTED'), proxy_port: 15001, match_type: cNumber(matchHeader, 'POLICY_MATCH_L3_L4') }), ctx);
    expect(redirected).toMatchObject({ verdict: 'REDIRECTED', event_type: { type: 5 }, proxy_port: 15001 });
    expect(formatCompact(redirected)).toContain(' policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN)');
    const forwarded = eventToFlow(kernelEvent({ type: pv, verdict: cNumber(verdictHeader, 'VERDICT_FORWARDED') }), ctx);
    expect(forwarded).toMatchObject({ verdict: 'FORWARDED', event_type: { type: 5 } });
    expect(forwarded.drop_reason_desc).toBeUndefined();
  });

  it('a new connection where no policy is enforced is a Cilium trace event (type 4) at its observation point, by the header\'s numbers and Hubble\'s names', () => {
    // Cilium's bpf/lib/trace.h TRACE_TO_* numbers and Hubble's names for them.
    const cilium = { TRACE_TO_LXC: [0, 'to-endpoint'], TRACE_TO_PROXY: [1, 'to-proxy'], TRACE_TO_STACK: [3, 'to-stack'] } as const;
    expect(traceHeader).toEqual(Object.entries(cilium).map(([n, [code]]) => [n, code]));
    expect(usedIdentifiers('TRACE_TO_')).toEqual(new Set(Object.keys(cilium)));
    const trace = cNumber(notifyHeader, 'CILIUM_NOTIFY_TRACE');
    expect(trace).toBe(EVENT_TYPE.TRACE);
    for (const [cName, [code, name]] of Object.entries(cilium)) {
      expect((TRACE_OBSERVATION_POINTS as Record<number, string>)[code], cName).toBe(name);
      const flow = eventToFlow(kernelEvent({ type: trace, verdict: cNumber(verdictHeader, 'VERDICT_FORWARDED'), reason: code }), ctx);
      expect(flow).toMatchObject({ verdict: 'FORWARDED', event_type: { type: 4, sub_type: code }, is_reply: false, trace_reason: 'NEW' });
      expect(flow.drop_reason_desc).toBeUndefined();
      expect(formatCompact(flow)).toContain(` -> 10.77.1.2:80 (ID:256) ${name} FORWARDED (TCP Flags: SYN)`);
    }
  });

  it('trace reasons in bpf/lib/events.h are Cilium\'s (bpf/lib/trace.h); a trace\'s is_reply and trace_reason are what Hubble decodes from them', () => {
    // Cilium's enum trace_reason numbers, flow.proto TraceReason names, and Hubble's decodeIsReply:
    // known reasons give is_reply (true only for CT_REPLY), the unknown one leaves both unset.
    const cilium = {
      TRACE_REASON_POLICY: [0, 'NEW', false],
      TRACE_REASON_CT_ESTABLISHED: [1, 'ESTABLISHED', false],
      TRACE_REASON_CT_REPLY: [2, 'REPLY', true],
      TRACE_REASON_CT_RELATED: [3, 'RELATED', false],
      TRACE_REASON_UNKNOWN: [5, undefined, undefined],
    } as const;
    expect(traceReasonHeader).toEqual(Object.entries(cilium).map(([n, [code]]) => [n, code]));
    expect(traceReasons().map((r) => [r.cName, r.code])).toEqual(traceReasonHeader);
    expect(usedIdentifiers('TRACE_REASON_')).toEqual(new Set(Object.keys(cilium)));
    expect(TRACE_REASON).toMatchObject({ POLICY: 0, CT_ESTABLISHED: 1, CT_REPLY: 2, CT_RELATED: 3, UNKNOWN: 5 });
    const trace = cNumber(notifyHeader, 'CILIUM_NOTIFY_TRACE');
    for (const [cName, [code, name, isReply]] of Object.entries(cilium)) {
      // A SYN-ACK delivered to the endpoint that opened the connection.
      const synAck = { saddr: 0x0a4d0102, daddr: 0x0a4d0103, sport: 80, dport: 37830, src_identity: 256, dst_identity: 258, tcp_flags: 0x12 };
      const flow = eventToFlow(kernelEvent({ ...synAck, type: trace, verdict: 1, reason: 0, trace_reason: code, direction: 2 }), ctx);
      expect([flow.trace_reason, flow.is_reply], cName).toEqual([name, isReply]);
      const line = formatCompact(flow);
      if (isReply) expect(line).toContain('10.77.1.3:37830 (ID:258) <- 10.77.1.2:80 (ID:256) to-endpoint FORWARDED (TCP Flags: SYN, ACK)');
      if (isReply === undefined) expect(line).toContain(' <> ');
      expect(JSON.parse(printJson(flow)).flow.trace_reason).toBe(name);
    }
  });

  it('issue-11 a denied packet\'s policy verdict (type 5, DROPPED) prints DENIED with its match type and keeps its drop reason', () => {
    const pv = cNumber(notifyHeader, 'CILIUM_NOTIFY_POLICY_VERDICT');
    const dropped = cNumber(verdictHeader, 'VERDICT_DROPPED');
    const byDefault = eventToFlow(kernelEvent({ type: pv, verdict: dropped, reason: cNumber(dropHeader, 'DROP_POLICY'), match_type: cNumber(matchHeader, 'POLICY_MATCH_NONE') }), ctx);
    expect(byDefault).toMatchObject({ verdict: 'DROPPED', event_type: { type: 5 }, drop_reason: 133, drop_reason_desc: 'POLICY_DENIED', policy_match_type: 0 });
    expect(formatCompact(byDefault)).toContain(' <> 10.77.1.2:80 (ID:256) policy-verdict:none INGRESS DENIED (TCP Flags: SYN)');
    const byRule = eventToFlow(kernelEvent({ type: pv, verdict: dropped, direction: 2, reason: cNumber(dropHeader, 'DROP_POLICY_DENY'), match_type: cNumber(matchHeader, 'POLICY_MATCH_L3_ONLY') }), ctx);
    expect(byRule).toMatchObject({ drop_reason: 181, drop_reason_desc: 'POLICY_DENY', policy_match_type: 1 });
    expect(formatCompact(byRule)).toContain(' policy-verdict:L3-Only EGRESS DENIED (TCP Flags: SYN)');
  });
});

describe('issue-7 one table of codes: the table itself', () => {
  it('176 is the forbidden-ICMPv6 drop and a failed proxy-socket lookup is 178, as in Cilium', () => {
    expect([dropReasonName(176), dropReasonMessage(176)]).toEqual(['FORBIDDEN_ICMPV6_MESSAGE', 'Forbidden ICMPv6 message']);
    expect([DROP_REASON.SOCKET_LOOKUP_FAILED, dropReasonMessage(178)]).toEqual([178, 'Socket lookup failed']);
    expect([dropReasonName(139), dropReasonName(150), dropReasonName(157)]).toEqual([
      'UNSUPPORTED_L3_PROTOCOL',
      'UNKNOWN_L3_TARGET_ADDRESS',
      'IP_FRAGMENTATION_NOT_SUPPORTED',
    ]);
  });

  it('codes, C names and Hubble names are each unique, codes ascending, and lookups agree both ways', () => {
    const rows = dropReasons();
    const codes = rows.map((r) => r.code);
    expect(codes).toEqual([...new Set(codes)].sort((a, b) => a - b));
    expect(new Set(rows.map((r) => r.cName)).size).toBe(rows.length);
    const named = rows.filter((r) => r.name !== null);
    expect(new Set(named.map((r) => r.name)).size).toBe(named.length);
    for (const r of named) expect([r.name, dropReasonCode(r.name!)]).toEqual([r.name, r.code]);
    expect(Object.keys(DROP_REASON).length).toBe(named.length);
  });

  it('a code Hubble has no text for prints as its number; 0 is Success; names are case-sensitive', () => {
    expect(dropReasonMessage(0)).toBe('Success');
    expect(dropReasonMessage(202)).toBe('202');
    expect(dropReasonMessage(250)).toBe('250');
    expect(dropReasonName(250)).toBeUndefined();
    expect(dropReasonCode('policy_denied')).toBeUndefined();
  });

  it('verdicts are Hubble\'s enum and message types Cilium\'s', () => {
    expect(VERDICTS.map((v) => [v, VERDICT[v]])).toEqual([
      ['FORWARDED', 1],
      ['DROPPED', 2],
      ['ERROR', 3],
      ['AUDIT', 4],
      ['REDIRECTED', 5],
      ['TRACED', 6],
      ['TRANSLATED', 7],
    ]);
    expect([verdictOfCode(0), verdictOfCode(5), verdictOfCode(8)]).toEqual([undefined, 'REDIRECTED', undefined]);
    expect(EVENT_TYPE).toMatchObject({ DROP: 1, DEBUG: 2, CAPTURE: 3, TRACE: 4, POLICY_VERDICT: 5, ACCESS_LOG: 129, AGENT: 130 });
  });
});
