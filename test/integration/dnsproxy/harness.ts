/**
 * Fixtures for the DNS proxy tests: a real DNS server from Debian (dnsmasq, authoritative for the
 * records a test gives it, never recursing: `--no-resolv --no-hosts`) on its own 127.0.53.x
 * address, the real `dig` client, and a DnsProxy on a plain loopback port whose
 * `originalDestination` points at the server (the test stands in for the datapath's redirect).
 * Queries are judged by `decideL7` of the policy module against real CiliumNetworkPolicy YAML
 * resolved by the policy module (../../support/policy-state.ts). Everything registers its cleanup.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { DnsProxy, plainUpstream, type DnsAnswer, type DnsProxyDeps, type DnsProxyOptions, type DnsUpstream, type HostPort } from '../../../src/dnsproxy/index.js';
import { PROTO, type L7Flow } from '../../../src/policy/index.js';
import type { Flow } from '../../../src/observe/index.js';
import { PolicyState, type Pod } from '../../support/policy-state.js';

import { Cleanups } from '../../support/cleanups.js';

export { Cleanups, type Cleanup } from '../../support/cleanups.js';

export const MEDIABOT: Pod = { name: 'mediabot', labels: { org: 'empire', class: 'mediabot' }, identity: 41000 };
export const KUBE_DNS: Pod = { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' }, identity: 41001 };

/**
 * Egress of mediabot: DNS to kube-dns on `port` (any protocol) with these DNS rules. The port is
 * the test server's ephemeral port, standing for 53.
 */
export function dnsPolicyYaml(port: number, rules: ReadonlyArray<{ matchName: string } | { matchPattern: string }>): string {
  const dns = rules.map((r) => ('matchName' in r ? `                - matchName: "${r.matchName}"` : `                - matchPattern: "${r.matchPattern}"`)).join('\n');
  return `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "mediabot-dns"
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      org: empire
      class: mediabot
  egress:
    - toEndpoints:
        - matchLabels:
            "k8s:io.kubernetes.pod.namespace": kube-system
            "k8s:k8s-app": kube-dns
      toPorts:
        - ports:
            - port: "${port}"
              protocol: ANY
          rules:
            dns:
${dns}
`;
}

let nextAddress = 10 + (process.pid % 200);

/** A free UDP+TCP port on `ip`. */
async function freePort(ip: string): Promise<number> {
  for (;;) {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, ip, () => resolve()));
    const port = s.address().port;
    s.close();
    const { createServer } = await import('node:net');
    const t = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      t.once('error', () => resolve(false));
      t.listen(port, ip, () => resolve(true));
    });
    if (ok) {
      await new Promise<void>((resolve) => t.close(() => resolve()));
      return port;
    }
  }
}

export interface DnsServer extends HostPort {
  process: ChildProcess;
}

export interface Zone {
  /** `name → IPv4 addresses` (A records; several lines give several records). */
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
  /** `alias → target` */
  cname?: Record<string, string>;
  /** TTL of every record, seconds. */
  ttl?: number;
}

/** dnsmasq serving exactly `zone` on a fresh 127.0.53.x address; anything else is REFUSED, nothing recursed. */
export async function startDnsmasq(cleanups: Cleanups, zone: Zone): Promise<DnsServer> {
  const ip = `127.0.53.${nextAddress++ % 250}`;
  const port = await freePort(ip);
  const dir = mkdtempSync(join(tmpdir(), 'membrane-dnsmasq-'));
  cleanups.add(() => rmSync(dir, { recursive: true, force: true }));
  const hosts: string[] = [];
  for (const [name, ips] of Object.entries(zone.a ?? {})) for (const a of ips) hosts.push(`${a} ${name}`);
  for (const [name, ips] of Object.entries(zone.aaaa ?? {})) for (const a of ips) hosts.push(`${a} ${name}`);
  writeFileSync(join(dir, 'hosts'), `${hosts.join('\n')}\n`);
  const conf = [
    `port=${port}`,
    `listen-address=${ip}`,
    'bind-interfaces',
    'no-resolv',
    'no-hosts',
    'no-poll',
    'no-negcache',
    'cache-size=0',
    `addn-hosts=${join(dir, 'hosts')}`,
    `local-ttl=${zone.ttl ?? 300}`,
    // Authoritative for the test zones: names it does not know are NXDOMAIN, never forwarded.
    'local=/test/',
    'local=/com/',
    ...Object.entries(zone.cname ?? {}).map(([alias, target]) => `cname=${alias},${target},${zone.ttl ?? 300}`),
  ];
  writeFileSync(join(dir, 'dnsmasq.conf'), `${conf.join('\n')}\n`);
  const proc = spawn('dnsmasq', ['--keep-in-foreground', `--conf-file=${join(dir, 'dnsmasq.conf')}`, '--user=root', `--pid-file=${join(dir, 'pid')}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  cleanups.add(async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    }
  });
  // Ready when it answers.
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
    const r = await dig({ ip, port }, ['ready.invalid', '+time=1', '+tries=1']);
    if (r.status !== null) return { ip, port, process: proc };
    await sleep(50);
  }
  throw new Error(`dnsmasq did not answer: ${stderr}`);
}

export interface DigResult {
  /** `NOERROR`, `REFUSED`, … or null when no answer came. */
  status: string | null;
  /** Answer section lines `name ttl class type data`. */
  answers: string[];
  stdout: string;
  /** Answers came over TCP after a truncated UDP answer. */
  retriedOverTcp: boolean;
}

/** The real `dig` against `server`, with `args` (name, type, options). */
export async function dig(server: HostPort, args: readonly string[], opts: { source?: string; child?: (c: ChildProcess) => void } = {}): Promise<DigResult> {
  const argv = [`@${server.ip}`, '-p', String(server.port), ...(opts.source ? ['-b', opts.source] : []), '+time=3', '+tries=1', ...args];
  const child = spawn('dig', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  opts.child?.(child);
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  await once(child, 'close');
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? null;
  const answers: string[] = [];
  const section = /;; ANSWER SECTION:\n([\s\S]*?)\n\n/.exec(stdout);
  if (section) for (const line of section[1]!.split('\n')) if (line.trim()) answers.push(line.trim().split(/\s+/).join(' '));
  return { status, answers, stdout, retriedOverTcp: /Truncated, retrying in TCP mode/.test(stdout) };
}

export interface ProxyFixture {
  proxy: DnsProxy;
  address: HostPort;
  flows: Flow[];
  answers: DnsAnswer[];
  logLines: Array<Record<string, unknown>>;
  state: PolicyState;
  /** Replaces how `onAnswer` settles (default: at once). */
  setOnAnswer(fn: (a: DnsAnswer) => Promise<unknown>): void;
}

export interface ProxyFixtureOptions {
  /** Where every query is said to have been addressed (default: the server). */
  originalDestination?: HostPort;
  /** Port the policy allows DNS on (default: the server's). */
  policyPort?: number;
  rules?: ReadonlyArray<{ matchName: string } | { matchPattern: string }>;
  options?: DnsProxyOptions;
  /** Client addresses that are local endpoints (default 127.0.0.1 → mediabot). */
  sources?: readonly string[];
  /** Upstream sockets (default `plainUpstream()`). */
  upstream?: DnsUpstream;
}

export async function startProxy(cleanups: Cleanups, server: HostPort, o: ProxyFixtureOptions = {}): Promise<ProxyFixture> {
  const state = new PolicyState(dnsPolicyYaml(o.policyPort ?? server.port, o.rules ?? [{ matchName: 'api.github.com' }]), [MEDIABOT, KUBE_DNS]);
  const flows: Flow[] = [];
  const answers: DnsAnswer[] = [];
  const logLines: Array<Record<string, unknown>> = [];
  let onAnswer: (a: DnsAnswer) => Promise<unknown> = async () => undefined;
  const sources = new Set(o.sources ?? ['127.0.0.1']);
  const logStream = { write: (line: string) => logLines.push(JSON.parse(line) as Record<string, unknown>) };
  const deps: DnsProxyDeps = {
    resolveSource: (ip) =>
      sources.has(ip)
        ? { endpointId: 7, identity: MEDIABOT.identity, flowEndpoint: { ID: 7, identity: MEDIABOT.identity, namespace: 'default', labels: ['k8s:class=mediabot', 'k8s:org=empire'], pod_name: 'mediabot' } }
        : null,
    l7Flow: (src, dst, protocol): L7Flow => ({
      srcIdentity: src.identity,
      dstIdentity: KUBE_DNS.identity,
      protocol: protocol === 17 ? PROTO.UDP : PROTO.TCP,
      dport: dst.port,
      srcPolicy: state.policyOf('mediabot'),
    }),
    onAnswer: (a) => {
      answers.push(a);
      return onAnswer(a);
    },
    upstream: o.upstream ?? plainUpstream(),
    resolveDestination: () => ({ ID: 0, identity: KUBE_DNS.identity, namespace: 'kube-system', labels: ['k8s:k8s-app=kube-dns'], pod_name: 'kube-dns' }),
    onFlow: (f) => flows.push(f),
    accessLog: pino({ level: 'info' }, logStream),
    nodeName: 'test-node',
  };
  const proxy = new DnsProxy(deps, o.options ?? {});
  const dst = o.originalDestination ?? { ip: server.ip, port: server.port };
  await proxy.listen({ port: 0, host: '127.0.0.1', originalDestination: () => dst });
  cleanups.add(() => proxy.close());
  return {
    proxy,
    address: { ip: '127.0.0.1', port: proxy.port },
    flows,
    answers,
    logLines,
    state,
    setOnAnswer: (fn) => {
      onAnswer = fn;
    },
  };
}

/** Sends raw bytes over UDP and waits up to `waitMs` for one answer (null if none). */
export async function rawUdp(server: HostPort, bytes: Uint8Array, waitMs = 1000): Promise<Buffer | null> {
  const s = createSocket('udp4');
  try {
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
    const answer = new Promise<Buffer | null>((resolve) => {
      const t = setTimeout(() => resolve(null), waitMs);
      s.once('message', (m) => {
        clearTimeout(t);
        resolve(m);
      });
    });
    s.send(bytes, server.port, server.ip);
    return await answer;
  } finally {
    s.close();
  }
}
