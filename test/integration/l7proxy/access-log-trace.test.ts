/**
 * issue-11 "every access-log line carries the trace id when there is one", for the HTTP proxy:
 * HTTP/1.1 and HTTP/2 (curl, prior knowledge), forwarded and denied, with tracing on (the proxy's
 * span's trace, continued from the client's traceparent or started by the proxy) and off (the
 * client's own traceparent, when it sends one). The line's `trace_id` is the flows' trace id.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createServer as createH2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { traceHttpProxy } from '../../../src/l7proxy/index.js';
import { startTracing, tracingConfig } from '../../../src/tracing/index.js';
import { Cleanups, startProxy, startUpstream, type ProxyHarness } from './harness.js';

const run = promisify(execFile);
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${CLIENT_TRACE}-00f067aa0ba902b7-01`;

const H2_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: public-only}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {class: tiefighter}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: "GET", path: "/public/.*"}
`;

/** Tracing on, exporting to a local sink that accepts everything (the spans are not the subject here). */
async function tracingOn(): Promise<void> {
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end());
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  cleanups.add(() => new Promise<void>((r) => sink.close(() => r())));
  const config = tracingConfig(`http://127.0.0.1:${(sink.address() as AddressInfo).port}`, 'test-node', { OTEL_BSP_SCHEDULE_DELAY: '20' });
  if (!config) throw new Error('tracing should be on');
  const tracing = await startTracing(config);
  cleanups.add(() => tracing.shutdown());
  cleanups.add(traceHttpProxy(tracing.proxyTracer));
}

async function h2Upstream(): Promise<number> {
  const server = createH2Server();
  server.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end(`ok ${String(headers[':path'])}\n`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.add(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

async function curl(args: string[], traceparent?: string): Promise<string> {
  const argv = ['-s', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', ...args];
  if (traceparent) argv.push('-H', `traceparent: ${traceparent}`);
  return (await run('curl', argv)).stdout;
}

/** Each access-log line's [status, trace_id], and each request flow's trace id. */
function traceIds(h: ProxyHarness): { lines: Array<[unknown, unknown]>; flows: unknown[] } {
  return {
    lines: h.logs.filter((l) => l.type === 'http').map((l) => [l.status, l.trace_id]),
    flows: h.flows.filter((f) => f.l7?.type === 'REQUEST').map((f) => f.trace_context?.parent.trace_id),
  };
}

const TRACE_ID = /^(?!0{32})[0-9a-f]{32}$/;

describe('issue-11 the HTTP access log carries the trace id', () => {
  it('HTTP/1.1 with tracing on: forwarded and denied lines carry the span\'s trace id, the client\'s when it sent a traceparent', async () => {
    await tracingOn();
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, local: 'dst' });
    const url = `http://127.0.0.1:${h.port}`;
    expect(await curl(['-X', 'POST', '-H', 'Host: deathstar', `${url}/v1/request-landing`], TRACEPARENT)).toBe('200 1.1');
    expect(await curl(['-X', 'POST', '-H', 'Host: deathstar', `${url}/v1/request-landing`])).toBe('200 1.1');
    expect(await curl(['-X', 'PUT', '-H', 'Host: deathstar', `${url}/v1/exhaust-port`])).toBe('403 1.1');

    const { lines, flows } = traceIds(h);
    expect(lines.map(([status]) => status)).toEqual([200, 200, 403]);
    expect(lines[0]?.[1]).toBe(CLIENT_TRACE);
    for (const [, id] of lines) expect(id).toMatch(TRACE_ID);
    expect(new Set(lines.map(([, id]) => id)).size).toBe(3); // the proxy started a trace of its own for each of the others
    expect(flows).toEqual(lines.map(([, id]) => id));
  });

  it('HTTP/2 with tracing on: every stream\'s line (forwarded, denied, continued, started) carries its trace id', async () => {
    await tracingOn();
    const h = await startProxy(cleanups, { upstreamPort: await h2Upstream(), policy: H2_POLICY });
    const url = `http://127.0.0.1:${h.port}`;
    expect(await curl(['--http2-prior-knowledge', `${url}/public/a`], TRACEPARENT)).toBe('200 2');
    expect(await curl(['--http2-prior-knowledge', `${url}/public/b`])).toBe('200 2');
    expect(await curl(['--http2-prior-knowledge', `${url}/private`])).toBe('403 2');

    const { lines, flows } = traceIds(h);
    expect(lines.map(([status]) => status)).toEqual([200, 200, 403]);
    expect(lines[0]?.[1]).toBe(CLIENT_TRACE);
    for (const [, id] of lines) expect(id).toMatch(TRACE_ID);
    expect(new Set(lines.map(([, id]) => id)).size).toBe(3);
    expect(flows).toEqual(lines.map(([, id]) => id));
  });

  it('with tracing off, a line carries the client\'s trace id when it sent a traceparent, and none otherwise (HTTP/1.1 and HTTP/2)', async () => {
    const up = await startUpstream(cleanups);
    const h1 = await startProxy(cleanups, { upstreamPort: up.port, local: 'dst' });
    expect(await curl(['-X', 'POST', '-H', 'Host: deathstar', `http://127.0.0.1:${h1.port}/v1/request-landing`], TRACEPARENT)).toBe('200 1.1');
    expect(await curl(['-X', 'POST', '-H', 'Host: deathstar', `http://127.0.0.1:${h1.port}/v1/request-landing`])).toBe('200 1.1');
    const h2 = await startProxy(cleanups, { upstreamPort: await h2Upstream(), policy: H2_POLICY });
    expect(await curl(['--http2-prior-knowledge', `http://127.0.0.1:${h2.port}/public/a`], TRACEPARENT)).toBe('200 2');
    expect(await curl(['--http2-prior-knowledge', `http://127.0.0.1:${h2.port}/public/b`])).toBe('200 2');

    expect(traceIds(h1).lines).toEqual([[200, CLIENT_TRACE], [200, undefined]]);
    expect(traceIds(h2).lines).toEqual([[200, CLIENT_TRACE], [200, undefined]]);
  });
});
