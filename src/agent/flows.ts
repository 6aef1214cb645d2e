/**
 * Datapath events → flows: the identities and endpoints behind each address are resolved
 * here, so a flow names pods and labels as `hubble observe` does.
 */
import { dropFlow, policyVerdictFlow, traceFlow, type Flow, type FlowEndpoint, type Layer4 } from '../observe/index.js';
import { EVENT_TYPE, TRACE_REASON, traceReasonOfCode, VERDICT } from '../codes/index.js';
import { EVENT_DIRECTION, numberToIpv4, type FlowEvent } from '../datapath/index.js';
import { formatLabel, type Identity, type Label } from '../policy/index.js';
import type { Endpoint } from './endpoints.js';

export interface FlowContextLookup {
  endpointByIp(ip: string): Endpoint | undefined;
  identity(id: number): Identity | undefined;
  /** DNS names endpoint `endpointId` learned `ip` through (its FQDN cache), for a flow's names. */
  namesOf?(endpointId: number, ip: string): readonly string[];
  nodeName: string;
}

/** A measured wall − monotonic offset is replaced when it moves more than this: a clock step, not Date.now()'s 1 ms grain. */
const CLOCK_STEP_NS = 5_000_000n;
let wallOffsetNs: bigint | undefined;

/**
 * CLOCK_MONOTONIC (bpf_ktime_get_ns, process.hrtime) → wall-clock nanoseconds. The offset is kept
 * while it holds to within CLOCK_STEP_NS, so events of one instant (a denial's policy verdict and
 * its drop share one kernel timestamp) print the same time, as Hubble's pair does; a step of the
 * wall clock (NTP) is followed.
 */
export function monotonicToWallNs(tsNs: bigint): bigint {
  const measured = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  const delta = wallOffsetNs === undefined ? CLOCK_STEP_NS : measured - wallOffsetNs;
  if (delta >= CLOCK_STEP_NS || delta <= -CLOCK_STEP_NS) wallOffsetNs = measured;
  return wallOffsetNs! + tsNs;
}

/**
 * `source:key=value` labels, sorted, per labels array: an endpoint's or identity's labels are
 * replaced, never changed in place, when they change (the proxy-worker sync relies on the same),
 * so a datapath event does not format and sort them again for every flow (issue 9). The array is
 * shared by the flows that name the same labels; nothing changes a flow once built.
 */
const sortedLabelText = new WeakMap<readonly Label[], string[]>();

function labelText(labels: readonly Label[]): string[] {
  let text = sortedLabelText.get(labels);
  if (text === undefined) {
    text = labels.map(formatLabel).sort();
    sortedLabelText.set(labels, text);
  }
  return text;
}

export function flowEndpoint(ip: string, identityId: number, ctx: FlowContextLookup): FlowEndpoint {
  const ep = ctx.endpointByIp(ip);
  if (ep) {
    return {
      ID: ep.id,
      identity: ep.identity,
      namespace: ep.namespace,
      labels: labelText(ep.labels),
      pod_name: ep.name,
    };
  }
  const identity = ctx.identity(identityId);
  return {
    ID: 0,
    identity: identityId,
    namespace: '',
    labels: identity ? labelText(identity.labels) : [],
    pod_name: '',
  };
}

function layer4(ev: FlowEvent): Layer4 | undefined {
  const ports = { source_port: ev.sport, destination_port: ev.dport };
  switch (ev.protocol) {
    case 6: {
      const f = ev.tcp_flags;
      const flags = {
        ...(f & 0x01 ? { FIN: true } : {}),
        ...(f & 0x02 ? { SYN: true } : {}),
        ...(f & 0x04 ? { RST: true } : {}),
        ...(f & 0x08 ? { PSH: true } : {}),
        ...(f & 0x10 ? { ACK: true } : {}),
        ...(f & 0x20 ? { URG: true } : {}),
        ...(f & 0x40 ? { ECE: true } : {}),
        ...(f & 0x80 ? { CWR: true } : {}),
      };
      return { TCP: { ...ports, flags } };
    }
    case 17:
      return { UDP: ports };
    case 132:
      return { SCTP: ports };
    case 1:
      return { ICMPv4: { type: ev.icmp_type, code: 0 } };
    default:
      return undefined;
  }
}

export function eventToFlow(ev: FlowEvent, ctx: FlowContextLookup): Flow {
  const saddr = numberToIpv4(ev.saddr);
  const daddr = numberToIpv4(ev.daddr);
  const l4 = layer4(ev);
  const source = flowEndpoint(saddr, ev.src_identity, ctx);
  const destination = flowEndpoint(daddr, ev.dst_identity, ctx);
  // As Hubble's threefour parser (resolveNames): a side's names come from the DNS cache of the
  // endpoint on the other side, whatever this side is (a pod reached by a DNS name has them too).
  const destinationNames = source.ID !== 0 ? ctx.namesOf?.(source.ID, daddr) : undefined;
  const sourceNames = destination.ID !== 0 ? ctx.namesOf?.(destination.ID, saddr) : undefined;
  const input = {
    time: monotonicToWallNs(ev.ts_ns),
    source,
    destination,
    ...(sourceNames?.length ? { sourceNames } : {}),
    ...(destinationNames?.length ? { destinationNames } : {}),
    ip: { source: saddr, destination: daddr },
    ...(l4 ? { l4 } : {}),
    direction: ev.direction === EVENT_DIRECTION.ingress ? ('INGRESS' as const) : ('EGRESS' as const),
    nodeName: ctx.nodeName,
  };
  if (ev.type === EVENT_TYPE.DROP) return dropFlow({ ...input, reason: ev.reason });
  // A packet at an observation point: Cilium's TraceNotify, whose trace reason (the packet's
  // conntrack state) gives is_reply and the flow's trace_reason as Hubble's threefour parser
  // decodes them (decodeIsReply, decodeTraceReason): both unknown for a reason it does not know.
  if (ev.type === EVENT_TYPE.TRACE) {
    const reason = traceReasonOfCode(ev.trace_reason);
    const known = reason !== undefined && reason.code !== TRACE_REASON.UNKNOWN;
    return traceFlow({
      ...input,
      observationPoint: ev.reason,
      ...(known ? { isReply: reason.code === TRACE_REASON.CT_REPLY, traceReason: reason.protoName } : {}),
      ...(ev.proxy_port ? { proxyPort: ev.proxy_port } : {}),
    });
  }
  // A policy verdict: Cilium's PolicyVerdictNotify, decoded as Hubble's threefour parser does
  // (a negative verdict is DROPPED with that drop reason, a proxy port REDIRECTED).
  if (ev.verdict === VERDICT.DROPPED) {
    return policyVerdictFlow({ ...input, verdict: 'DROPPED', matchType: ev.match_type, dropReason: ev.reason });
  }
  const verdict = ev.verdict === VERDICT.REDIRECTED ? 'REDIRECTED' : 'FORWARDED';
  return policyVerdictFlow({
    ...input,
    verdict,
    matchType: ev.match_type,
    ...(ev.proxy_port ? { proxyPort: ev.proxy_port } : {}),
  });
}
