// An OTLP/HTTP traces receiver for the privileged tests: listens on 127.0.0.1:PORT of the network
// namespace it is started in, decodes each ExportTraceServiceRequest (test/support/otlp-spans.mjs,
// shared with the in-process receiver) and prints one JSON line per span on stdout:
// {traceId, spanId, parentSpanId, name, kind, attributes}. Plain JavaScript: it runs under node
// directly (nsenter), not through the test runner.
import { createServer } from 'node:http';
import { decodeSpans, exportRequestType } from '../support/otlp-spans.mjs';

const port = Number(process.argv[2] ?? 4318);
const type = await exportRequestType();

createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    for (const { traceId, spanId, parentSpanId, name, kind, attributes } of decodeSpans(type, Buffer.concat(chunks))) {
      process.stdout.write(JSON.stringify({ traceId, spanId, parentSpanId, name, kind, attributes }) + '\n');
    }
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
}).listen(port, '127.0.0.1', () => process.stdout.write(JSON.stringify({ listening: port }) + '\n'));
