// An OTLP/HTTP traces receiver for the privileged tests: listens on 127.0.0.1:PORT of the network
// namespace it is started in, decodes each ExportTraceServiceRequest with the OTLP protobuf
// definitions (test/fixtures/otlp/trace.proto) and prints one JSON line per span on stdout:
// {traceId, spanId, parentSpanId, name, kind, attributes}. Plain JavaScript: it runs under node
// directly (nsenter), not through the test runner.
import { createServer } from 'node:http';
import protobuf from 'protobufjs';

const port = Number(process.argv[2] ?? 4318);
const root = await protobuf.load(new URL('../fixtures/otlp/trace.proto', import.meta.url).pathname);
const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const hex = (b) => Buffer.from(b ?? []).toString('hex');
const value = (v) => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue ?? (v.arrayValue?.values ?? []).map((x) => x.stringValue);

createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const msg = Request.toObject(Request.decode(Buffer.concat(chunks)), { enums: String, longs: String, bytes: Array });
    for (const rs of msg.resourceSpans ?? []) {
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          const attributes = Object.fromEntries((s.attributes ?? []).map((kv) => [kv.key, value(kv.value)]));
          process.stdout.write(JSON.stringify({ traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId), name: s.name, kind: s.kind, attributes }) + '\n');
        }
      }
    }
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
}).listen(port, '127.0.0.1', () => process.stdout.write(JSON.stringify({ listening: port }) + '\n'));
