/**
 * In-process fixtures for the proxy tests: a real upstream HTTP server on 127.0.0.1:0 that records
 * what reaches it, and an HttpProxy on port 0 whose `originalDestination` points at that server (the
 * test stands in for the datapath's redirect). Everything registers its own cleanup.
 */

import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { pino } from 'pino';
import { HttpProxy, type ConnectionInfo, type FlowContext, type HttpProxyOptions, type L7ProxyDeps, type PolicyDecision } from '../../../src/l7proxy/index.js';
import type { Flow, FlowEndpoint } from '../../../src/observe/index.js';

export type Cleanup = () => unknown;

export class Cleanups {
  #fns: Cleanup[] = [];
  add(fn: Cleanup): void {
    this.#fns.push(fn);
  }
  async run(): Promise<void> {
    const fns = this.#fns.reverse();
    this.#fns = [];
    for (const fn of fns) {
      try {
        await fn();
      } catch {
        // cleanup keeps going
      }
    }
  }
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
  remotePort: number;
}

export interface Upstream {
  server: Server;
  port: number;
  requests: SeenRequest[];
  /** Remote ports of the connections the upstream accepted (one per upstream connection). */
  connections: number[];
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

const defaultHandler: UpstreamHandler = (req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(req.url === '/v1/request-landing' ? 'Ship landed\n' : `ok ${req.method} ${req.url}\n`);
};

/** An upstream that buffers request bodies (use `streaming` handlers for large bodies). */
export async function startUpstream(cleanups: Cleanups, handler: UpstreamHandler = defaultHandler, opts: { buffer?: boolean } = {}): Promise<Upstream> {
  const requests: SeenRequest[] = [];
  const connections: number[] = [];
  const server = createServer((req, res) => {
    if (opts.buffer === false) {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0), remotePort: req.socket.remotePort ?? 0 });
      handler(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body, remotePort: req.socket.remotePort ?? 0 });
      handler(req, res, body);
    });
  });
  server.on('connection', (s: Socket) => connections.push(s.remotePort ?? 0));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.add(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { server, port: (server.address() as AddressInfo).port, requests, connections };
}

export function endpoint(name: string, identity: number, labels: string[] = []): FlowEndpoint {
  return { ID: identity % 1000, identity, namespace: 'default', labels, pod_name: name };
}

export const TIEFIGHTER = endpoint('tiefighter', 25698, ['k8s:class=tiefighter', 'k8s:org=empire']);
export const DEATHSTAR = endpoint('deathstar', 6822, ['k8s:class=deathstar', 'k8s:org=empire']);

/** The L7 rule of the Star Wars demo: POST /v1/request-landing only. */
export function starWarsPolicy(_ctx: FlowContext, _conn: ConnectionInfo, req: { method: string; path: string }): PolicyDecision {
  return req.method === 'POST' && /^\/v1\/request-landing$/.test(req.path)
    ? { allowed: true, policies: ['rule1'] }
    : { allowed: false, reason: 'no HTTP rule matched', policies: ['rule1'] };
}

export interface ProxyHarness {
  proxy: HttpProxy;
  port: number;
  flows: Flow[];
  logs: Array<Record<string, unknown>>;
  connectCalls: Array<{ ctx: FlowContext; conn: ConnectionInfo }>;
  resolveCalls: ConnectionInfo[];
  authorizeCalls: Array<{ method: string; path: string; host: string; headers: Record<string, unknown> }>;
}

export interface ProxyHarnessOptions {
  /** Where the "redirected" connections were originally going. */
  upstreamPort: number;
  upstreamHost?: string;
  resolveConnection?: L7ProxyDeps['resolveConnection'];
  authorizeHttp?: L7ProxyDeps['authorizeHttp'];
  connectUpstream?: L7ProxyDeps['connectUpstream'];
  /** Overrides the fixed upstream as the original destination. */
  originalDestination?: NonNullable<L7ProxyDeps['originalDestination']>;
  /** false: leave `originalDestination` unset (the socket's own local address is used). */
  injectOriginalDestination?: boolean;
  options?: HttpProxyOptions;
}

export async function startProxy(cleanups: Cleanups, o: ProxyHarnessOptions): Promise<ProxyHarness> {
  const flows: Flow[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const connectCalls: ProxyHarness['connectCalls'] = [];
  const resolveCalls: ConnectionInfo[] = [];
  const authorizeCalls: ProxyHarness['authorizeCalls'] = [];
  const accessLog = pino({ level: 'info', base: null }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const upstreamHost = o.upstreamHost ?? '127.0.0.1';
  const deps: L7ProxyDeps = {
    resolveConnection: (conn) => {
      resolveCalls.push(conn);
      return o.resolveConnection
        ? o.resolveConnection(conn)
        : { srcIdentity: TIEFIGHTER.identity, dstIdentity: DEATHSTAR.identity, source: TIEFIGHTER, destination: DEATHSTAR, direction: 'INGRESS' };
    },
    authorizeHttp: (ctx, conn, req) => {
      authorizeCalls.push({ method: req.method, path: req.path, host: req.host, headers: req.headers });
      return (o.authorizeHttp ?? starWarsPolicy)(ctx, conn, req);
    },
    connectUpstream: (ctx, conn) => {
      connectCalls.push({ ctx, conn });
      return o.connectUpstream ? o.connectUpstream(ctx, conn) : connect({ host: conn.dstIp, port: conn.dstPort });
    },
    onFlow: (flow) => flows.push(flow),
    accessLog,
    nodeName: 'test-node',
  };
  if (o.originalDestination) deps.originalDestination = o.originalDestination;
  else if (o.injectOriginalDestination !== false) deps.originalDestination = () => ({ ip: upstreamHost, port: o.upstreamPort });
  const proxy = new HttpProxy(deps, o.options);
  await proxy.listen({ port: 0, host: '127.0.0.1' });
  cleanups.add(() => proxy.close());
  return { proxy, port: (proxy.address() as AddressInfo).port, flows, logs, connectCalls, resolveCalls, authorizeCalls };
}

/** Sends raw bytes on a fresh connection and collects everything until the peer closes (or timeout). */
export async function rawExchange(
  cleanups: Cleanups,
  port: number,
  data: string | Buffer,
  opts: { timeoutMs?: number; localAddress?: string; endAfterWrite?: boolean } = {},
): Promise<{ text: string; closed: boolean; error?: string }> {
  const socket = connect({ host: '127.0.0.1', port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
  cleanups.add(() => socket.destroy());
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  let error: string | undefined;
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? e.message;
  });
  socket.on('connect', () => {
    socket.write(data);
    if (opts.endAfterWrite) socket.end();
  });
  const closed = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), opts.timeoutMs ?? 2000);
    socket.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
  const out: { text: string; closed: boolean; error?: string } = { text: Buffer.concat(chunks).toString('latin1'), closed };
  if (error !== undefined) out.error = error;
  return out;
}

/** Resolves when `predicate` holds (polling), so tests can wait for async logging without sleeps. */
export async function until(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
