/**
 * An OTLP/HTTP traces receiver on loopback for the in-process tracing tests: decodes each
 * ExportTraceServiceRequest POSTed to /v1/traces as application/x-protobuf (otlp-spans.mjs) and
 * answers 200; anything else gets a 400 and no spans. `stall`: a collector that takes requests
 * and never answers (the exporter's timeout and queue bounds).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Cleanups } from './cleanups.js';
import { decodeSpans, exportRequestType, type DecodedSpan } from './otlp-spans.mjs';

export type { DecodedSpan } from './otlp-spans.mjs';

export interface OtlpReceiver {
  /** `http://127.0.0.1:PORT`, the exporter's endpoint (the SDK adds /v1/traces). */
  readonly url: string;
  /** Spans received so far, in arrival order. */
  readonly spans: DecodedSpan[];
  /** Export requests received (stalled ones included). */
  readonly requests: number;
  /** Requests refused: not a protobuf POST to /v1/traces. */
  readonly refused: number;
  readonly server: Server;
}

export async function startOtlpReceiver(cleanups: Cleanups, opts: { stall?: boolean } = {}): Promise<OtlpReceiver> {
  const type = await exportRequestType();
  const state = { spans: [] as DecodedSpan[], requests: 0, refused: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.requests++;
      if (opts.stall) return;
      if (req.method !== 'POST' || req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/x-protobuf') {
        state.refused++;
        res.writeHead(400).end();
        return;
      }
      state.spans.push(...decodeSpans(type, Buffer.concat(chunks)));
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.add(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans: state.spans,
    get requests() {
      return state.requests;
    },
    get refused() {
      return state.refused;
    },
    server,
  };
}
