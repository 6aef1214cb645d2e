/**
 * In-process fixtures for the proxy tests: a real upstream HTTP server on 127.0.0.1:0 that records
 * what reaches it, and an HttpProxy on port 0 whose `originalDestination` points at that server (the
 * test stands in for the datapath's redirect). Requests are judged by the proxy's real decision
 * (`decideL7` of the policy module) against real CiliumNetworkPolicy YAML resolved by the policy
 * module (../../support/policy-state.ts): the upstream's ephemeral port stands for the pod's
 * port 80. Everything registers its own cleanup.
 */

import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { pino } from 'pino';
import { HttpProxy, l7proxyChannels, type ConnectionInfo, type Exchange, type FlowContext, type HttpProxyOptions, type L7ProxyDeps, type PolicyDecision } from '../../../src/l7proxy/index.js';
import { PolicyState, starwarsPolicyYaml } from '../../support/policy-state.js';
import type { Flow, FlowEndpoint } from '../../../src/observe/index.js';

import { Cleanups } from '../../support/cleanups.js';

export { Cleanups, type Cleanup } from '../../support/cleanups.js';

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

/** The Star Wars demo's L7 rule1 (deploy/lab/starwars/): empire ships may only POST /v1/request-landing. */
export const STARWARS_L7 = starwarsPolicyYaml('sw_l3_l4_l7_policy.yaml');

/** Every HTTP request from any endpoint to deathstar:80 (an empty HTTP rule matches any request). */
export { ALLOW_ALL_HTTP } from '../../support/policies.js';

/** A request as the policy stage judged it. */
export interface Judged {
  method: string;
  path: string;
  host: string;
  headers: Record<string, unknown>;
  decision: PolicyDecision;
}

export interface ProxyHarness {
  proxy: HttpProxy;
  port: number;
  flows: Flow[];
  logs: Array<Record<string, unknown>>;
  connectCalls: Array<{ ctx: FlowContext; conn: ConnectionInfo }>;
  resolveCalls: ConnectionInfo[];
  /** Every request the policy stage judged, in order. */
  judged: Judged[];
}

export interface ProxyHarnessOptions {
  /** Where the "redirected" connections were originally going. */
  upstreamPort: number;
  upstreamHost?: string;
  resolveConnection?: L7ProxyDeps['resolveConnection'];
  /** Policy YAML the requests are judged by (default: the Star Wars L7 rule1). */
  policy?: string | readonly string[];
  /** Which sides of tiefighter → deathstar are endpoints of this node (default both). */
  local?: 'both' | 'src' | 'dst' | 'none';
  /** Replaces the policy state lookup (e.g. one that throws). */
  l7Flow?: L7ProxyDeps['l7Flow'];
  /** The revision the proxy keeps a connection's policy state under (default: none, read per request). */
  policyRevision?: NonNullable<L7ProxyDeps['policyRevision']>;
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
  const judged: Judged[] = [];
  const state = new PolicyState(o.policy ?? STARWARS_L7);
  const accessLog = pino({ level: 'info', base: null }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const upstreamHost = o.upstreamHost ?? '127.0.0.1';
  const deps: L7ProxyDeps = {
    resolveConnection: (conn) => {
      resolveCalls.push(conn);
      return o.resolveConnection
        ? o.resolveConnection(conn)
        : { srcIdentity: TIEFIGHTER.identity, dstIdentity: DEATHSTAR.identity, source: TIEFIGHTER, destination: DEATHSTAR, direction: 'INGRESS' };
    },
    l7Flow: (ctx, conn) => (o.l7Flow ? o.l7Flow(ctx, conn) : state.flow('tiefighter', 'deathstar', 80, o.local ?? 'both')),
    connectUpstream: (ctx, conn) => {
      connectCalls.push({ ctx, conn });
      return o.connectUpstream ? o.connectUpstream(ctx, conn) : connect({ host: conn.dstIp, port: conn.dstPort });
    },
    onFlow: (flow) => flows.push(flow),
    accessLog,
    nodeName: 'test-node',
  };
  if (o.policyRevision) deps.policyRevision = o.policyRevision;
  if (o.originalDestination) deps.originalDestination = o.originalDestination;
  else if (o.injectOriginalDestination !== false) deps.originalDestination = () => ({ ip: upstreamHost, port: o.upstreamPort });
  const proxy = new HttpProxy(deps, o.options);
  await proxy.listen({ port: 0, host: '127.0.0.1' });
  const port = (proxy.address() as AddressInfo).port;
  const onRequest = (msg: unknown): void => {
    const x = (msg as { exchange: Exchange }).exchange;
    if (x.conn.dstPort !== o.upstreamPort && !o.originalDestination) return; // another proxy's
    judged.push({ method: x.request.method, path: x.request.path, host: x.request.host, headers: x.request.headers, decision: x.decision });
  };
  l7proxyChannels.request.subscribe(onRequest);
  cleanups.add(() => l7proxyChannels.request.unsubscribe(onRequest));
  cleanups.add(() => proxy.close());
  return { proxy, port, flows, logs, connectCalls, resolveCalls, judged };
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
