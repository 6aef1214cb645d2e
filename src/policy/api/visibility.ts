/**
 * The proxy visibility annotation: L7 visibility without L7 enforcement.
 *
 *   policy.cilium.io/proxy-visibility: "<Ingress/80/TCP/HTTP>,<Egress/53/UDP/DNS>"
 *
 * A comma-separated list of `<{Traffic Direction}/{L4 Port}/{L4 Protocol}/{L7 Protocol}>`
 * tuples. Grammar and errors follow Cilium's `pkg/policy/visibility.go` (v1.10–v1.14, removed in
 * v1.15 by cilium/cilium#28449): direction `Ingress|Egress`; port `[1-9][0-9]{1,5}` that fits in
 * 16 bits (so 10..65535: Cilium's pattern has no one-digit ports and no leading zeros); protocol
 * `TCP|UDP|SCTP|ANY` (ANY = TCP and UDP); L7 protocol `[A-Za-z]{3,32}`, case-insensitive, `http`
 * (either direction) or `dns` (egress only); the same port, protocol and direction named twice
 * with different L7 protocols is an error, the same tuple twice is one entry.
 *
 * Where Membrane is stricter than Cilium (fail safe: a redirect the proxy cannot serve would
 * change verdicts): Kafka (and every other parser) has no proxy here and is refused, HTTP over UDP
 * or SCTP is refused (`ANY/HTTP` means TCP only: UDP cannot carry HTTP/1 or HTTP/2), DNS over SCTP
 * is refused.
 *
 * Pure, linear in the length of the value; the value is bounded (MAX_VISIBILITY_LENGTH).
 */
import { PROTO } from './types.js';

/** The annotation (Cilium ≥ 1.13); the older name `io.cilium.proxy-visibility` is read too. */
export const PROXY_VISIBILITY_ANNOTATION = 'policy.cilium.io/proxy-visibility';
/** Cilium ≤ 1.12's name for the same annotation (pkg/annotation ProxyVisibilityAlias). */
export const PROXY_VISIBILITY_ANNOTATION_ALIAS = 'io.cilium.proxy-visibility';
/** Longest value accepted, characters: 256 tuples of the longest form. */
export const MAX_VISIBILITY_LENGTH = 256 * 48;

export type VisibilityParser = 'http' | 'dns';

/** One redirect the annotation asks for, per concrete L4 protocol. */
export interface VisibilityPort {
  readonly direction: 'ingress' | 'egress';
  /** IANA protocol: 6 (TCP) or 17 (UDP). */
  readonly protocol: number;
  /** Host byte order. */
  readonly port: number;
  readonly parser: VisibilityParser;
}

export interface VisibilityPolicy {
  /** Sorted by direction, protocol and port; one entry per (direction, protocol, port). */
  readonly ports: readonly VisibilityPort[];
  /** Canonical text, equal for equal policies (memoization key). */
  readonly key: string;
}

export type VisibilityParse = { readonly ok: true; readonly policy: VisibilityPolicy } | { readonly ok: false; readonly error: string };

const TUPLE = /^<(Ingress|Egress)\/([1-9][0-9]{1,5})\/(TCP|UDP|SCTP|ANY)\/([A-Za-z]{3,32})>$/;
const PROTO_NAME: Readonly<Record<number, string>> = { [PROTO.TCP]: 'TCP', [PROTO.UDP]: 'UDP' };

/**
 * Parses the annotation value. Errors read like Cilium's, prefixed with the offending tuple
 * (e.g. `<Ingress/53/UDP/DNS>: dns not allowed with direction Ingress`).
 */
export function parseProxyVisibility(value: string): VisibilityParse {
  const fail = (error: string): VisibilityParse => ({ ok: false, error });
  if (value.length > MAX_VISIBILITY_LENGTH) return fail(`annotation value is ${value.length} characters, at most ${MAX_VISIBILITY_LENGTH}`);
  const format = 'must be a comma-separated list of <{Ingress|Egress}/{L4 port}/{TCP|UDP|SCTP|ANY}/{HTTP|DNS}>';
  if (value === '') return fail(`empty value: ${format}`);
  const byKey = new Map<string, VisibilityPort>();
  // Every tuple is anchored and bounded (at most 48 characters), so each test is linear.
  for (const tuple of value.split(',')) {
    const m = tuple.length <= 48 ? TUPLE.exec(tuple) : null;
    if (!m) return fail(`${JSON.stringify(tuple)} does not match the expected format: ${format}`);
    const [, dir, portText, proto, l7] = m as unknown as [string, 'Ingress' | 'Egress', string, string, string];
    const port = Number(portText);
    if (port > 65535) return fail(`${tuple}: unable to parse port: ${portText} is out of range (1-65535)`);
    const parser = l7.toLowerCase();
    if (parser === 'kafka') return fail(`${tuple}: kafka visibility is not supported (Membrane has no Kafka proxy; Cilium's proxylib parsers were not supported by the annotation either)`);
    if (parser !== 'http' && parser !== 'dns') return fail(`${tuple}: unsupported parser type ${parser} (http or dns)`);
    if (parser === 'dns' && dir !== 'Egress') return fail(`${tuple}: dns not allowed with direction ${dir}`);
    let protocols: number[];
    if (proto === 'SCTP') return fail(`${tuple}: ${parser} visibility over SCTP is not supported (the proxies take TCP${parser === 'dns' ? ' and UDP' : ''})`);
    if (proto === 'ANY') protocols = parser === 'http' ? [PROTO.TCP] : [PROTO.TCP, PROTO.UDP];
    else if (proto === 'UDP' && parser === 'http') return fail(`${tuple}: http runs over TCP, not UDP`);
    else protocols = [proto === 'TCP' ? PROTO.TCP : PROTO.UDP];
    const direction = dir === 'Ingress' ? 'ingress' : 'egress';
    for (const protocol of protocols) {
      const k = `${direction}/${port}/${PROTO_NAME[protocol]}`;
      const prev = byKey.get(k);
      if (prev && prev.parser !== parser) {
        return fail(`duplicate annotations with different L7 protocols ${prev.parser} and ${parser} for ${dir} ${port}/${PROTO_NAME[protocol]}`);
      }
      byKey.set(k, { direction, protocol, port, parser });
    }
  }
  const ports = [...byKey.values()].sort(
    (a, b) => (a.direction === b.direction ? 0 : a.direction === 'ingress' ? -1 : 1) || a.protocol - b.protocol || a.port - b.port,
  );
  const key = ports.map((p) => `<${p.direction}/${p.port}/${PROTO_NAME[p.protocol]}/${p.parser}>`).join(',');
  return { ok: true, policy: { ports, key } };
}

/**
 * The visibility annotation of a pod's annotations: the value of PROXY_VISIBILITY_ANNOTATION,
 * else of its older alias, else undefined (Cilium's `annotation.Get(pod, ProxyVisibility, ProxyVisibilityAlias)`).
 */
export function visibilityAnnotation(annotations: Readonly<Record<string, string>> | undefined): { name: string; value: string } | undefined {
  if (!annotations) return undefined;
  for (const name of [PROXY_VISIBILITY_ANNOTATION, PROXY_VISIBILITY_ANNOTATION_ALIAS]) {
    const value = annotations[name];
    if (typeof value === 'string') return { name, value };
  }
  return undefined;
}
