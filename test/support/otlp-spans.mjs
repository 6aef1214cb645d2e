// Decoding of OTLP/HTTP protobuf trace exports (ExportTraceServiceRequest) with the OTLP protobuf
// definitions (test/fixtures/otlp/trace.proto), for every OTLP receiver of the tests: the
// in-process one (test/support/otlp-receiver.ts) and the one the privileged tests run in a
// namespace (test/privileged/otlp-receiver.mjs). Plain JavaScript so that one runs under node
// directly; types in otlp-spans.d.mts.
import protobuf from 'protobufjs';

const PROTO = new URL('../fixtures/otlp/trace.proto', import.meta.url).pathname;

/** The ExportTraceServiceRequest message type (loaded once per process). */
let requestType = null;
export async function exportRequestType() {
  requestType ??= (await protobuf.load(PROTO)).lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  return requestType;
}

const hex = (b) => Buffer.from(b ?? []).toString('hex');
const value = (v) =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue ?? (v.arrayValue?.values ?? []).map((x) => x.stringValue);

/** Every span of one request body, flattened: ids in hex, enums as names, times in ns (bigint). */
export function decodeSpans(type, body) {
  const msg = type.toObject(type.decode(body), { enums: String, longs: String, bytes: Array });
  const out = [];
  for (const rs of msg.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name,
          kind: s.kind,
          start: BigInt(s.startTimeUnixNano ?? 0),
          end: BigInt(s.endTimeUnixNano ?? 0),
          attributes: Object.fromEntries((s.attributes ?? []).map((kv) => [kv.key, value(kv.value)])),
          status: s.status ?? {},
        });
      }
    }
  }
  return out;
}
