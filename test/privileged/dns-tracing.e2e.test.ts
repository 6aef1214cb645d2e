/**
 * issue-11 DNS spans and the access log on stdout through the real agent: the mediabot lab (real
 * dnsmasq in kube-dns) under a DNS rule, the agent (its proxies in worker threads, the default)
 * with --otlp-endpoint and --access-log stdout, the real `dig` in the pod. An OTLP/HTTP receiver in
 * the node namespace decodes the exports with the OTLP protobuf definitions. Asserted: the query's
 * span with its attributes and the datapath wait as its child, the denied query's span, the trace id
 * on the access-log line the agent wrote to its standard output, and `membrane observe --trace-id`
 * finding the DNS flows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse, stringify } from 'yaml';
import { TestNode, eventually, privilegedSkipReason, ROOT } from './harness.js';

const skip = privilegedSkipReason();
const ID = 'dnstrace';
const SUBNET = '10.233';
const LAB = 'dtr-mediabot';
const BOT = 'dtr-bot';
const DNS = 'dtr-dns';
const WORLD = 'dtr-world';
const OTLP_PORT = 4318;

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  attributes: Record<string, unknown>;
}

/** deploy/lab/mediabot.yaml with this file's names and subnet. */
function labSpec(): string {
  const doc = parse(readFileSync(join(ROOT, 'deploy/lab/mediabot.yaml'), 'utf8').replaceAll('10.78', SUBNET)) as {
    metadata: { name: string };
    spec: { pods: { name: string }[]; world: { name: string } };
  };
  doc.metadata.name = LAB;
  const rename: Record<string, string> = { mediabot: BOT, 'kube-dns': DNS };
  for (const pod of doc.spec.pods) pod.name = rename[pod.name] ?? pod.name;
  doc.spec.world.name = WORLD;
  return stringify(doc);
}

/** Lookups of *.github.com only (and the connections to what they learn). */
const POLICY = `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "fqdn"
spec:
  endpointSelector:
    matchLabels:
      org: empire
      class: mediabot
  egress:
    - toFQDNs:
        - matchPattern: "*.github.com"
    - toEndpoints:
        - matchLabels:
            "k8s:io.kubernetes.pod.namespace": kube-system
            "k8s:k8s-app": kube-dns
      toPorts:
        - ports:
            - port: "53"
              protocol: ANY
          rules:
            dns:
              - matchPattern: "*.github.com"
`;

function dig(name: string): { status: string; ips: string[] } {
  const r = spawnSync('ip', ['netns', 'exec', BOT, 'dig', '+tries=1', '+time=3', '+noall', '+comments', '+answer', name, 'A'], { encoding: 'utf8', timeout: 30_000 });
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? `no answer (dig exit ${r.status})`;
  const ips = [...r.stdout.matchAll(/\sIN\s+A\s+(\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]!).sort();
  return { status, ips };
}

describe.skipIf(skip !== null)('issue-11 the agent traces its DNS proxy; the access log on stdout' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;
  let receiver: ChildProcess | null = null;
  const spans: ReceivedSpan[] = [];

  /** The DNS access-log lines among the agent's standard output (its own log lines beside them). */
  function dnsLines(): Record<string, unknown>[] {
    return node
      .agentLog()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.type === 'dns' && typeof l.query === 'string');
  }

  beforeAll(async () => {
    TestNode.sweep(ID, [BOT, DNS, WORLD]);
    node = new TestNode(ID);
    spawnSync('ip', ['netns', 'add', node.netns]);
    spawnSync('ip', ['netns', 'exec', node.netns, 'ip', 'link', 'set', 'lo', 'up']);
    receiver = spawn('nsenter', [`--net=/run/netns/${node.netns}`, process.execPath, join(ROOT, 'test/privileged/otlp-receiver.mjs'), String(OTLP_PORT)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let listening = false;
    createInterface({ input: receiver.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as ReceivedSpan | { listening: number };
      if ('listening' in m) listening = true;
      else spans.push(m);
    });
    expect(await eventually(() => listening, 10_000)).toBe(true);

    process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
    try {
      // The last --access-log wins over the harness's file: the lines go to the agent's stdout.
      await node.startAgent(['--otlp-endpoint', `http://127.0.0.1:${OTLP_PORT}`, '--access-log', 'stdout']);
    } finally {
      delete process.env.OTEL_BSP_SCHEDULE_DELAY;
    }
    await node.labUp(labSpec());
    const file = join(node.dir, 'fqdn.yaml');
    writeFileSync(file, POLICY);
    expect(node.cli(['policy', 'import', file]).stdout).toMatch(/^Imported fqdn /);
  }, 120_000);

  afterAll(async () => {
    await node?.cleanup();
    if (receiver?.pid !== undefined && receiver.exitCode === null) process.kill(receiver.pid, 'SIGTERM');
  });

  it('dig api.github.com: a span with name, qtype, rcode, verdict and learned IPs, the datapath wait as its child; the stdout log line and observe --trace-id carry its trace', async () => {
    expect(dig('api.github.com')).toEqual({ status: 'NOERROR', ips: [`${SUBNET}.200.20`, `${SUBNET}.200.21`] });

    const isQuery = (s: ReceivedSpan): boolean => s.name === 'DNS A' && s.attributes['dns.question.name'] === 'api.github.com.';
    expect(await eventually(() => spans.some(isQuery), 15_000, 100)).toBe(true);
    const span = spans.find(isQuery)!;
    expect(span).toMatchObject({ kind: 'SPAN_KIND_CLIENT', parentSpanId: '' });
    expect(span.attributes).toMatchObject({
      'membrane.dns.qtype': 'A',
      'membrane.dns.rcode': 'NOERROR',
      'membrane.policy.verdict': 'Forwarded',
      'membrane.source.pod': `default/${BOT}`,
      'membrane.destination.pod': `kube-system/${DNS}`,
      'network.transport': 'udp',
    });
    expect((span.attributes['dns.answers'] as string[]).sort()).toEqual([`${SUBNET}.200.20`, `${SUBNET}.200.21`]);
    expect(await eventually(() => spans.some((s) => s.parentSpanId === span.spanId), 10_000, 100)).toBe(true);
    expect(spans.filter((s) => s.parentSpanId === span.spanId).map((s) => [s.name, s.kind, s.traceId])).toEqual([
      ['DNS datapath wait', 'SPAN_KIND_INTERNAL', span.traceId],
    ]);

    expect(await eventually(() => dnsLines().some((l) => l.query === 'api.github.com.'), 10_000, 100)).toBe(true);
    expect(dnsLines().find((l) => l.query === 'api.github.com.')).toMatchObject({ verdict: 'Forwarded', rcode: 'NOERROR', trace_id: span.traceId });

    const observed = node.cli(['observe', '--trace-id', span.traceId, '-o', 'json']);
    expect(observed.status).toBe(0);
    const flows = observed.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { flow?: { l7?: { type: string; dns?: { query: string } } } });
    expect(flows.map((f) => [f.flow?.l7?.type, f.flow?.l7?.dns?.query]).sort()).toEqual([
      ['REQUEST', 'api.github.com.'],
      ['RESPONSE', 'api.github.com.'],
    ]);
  });

  it('a denied lookup has a span with REFUSED, Denied and the reason; its stdout log line carries the trace id', async () => {
    expect(dig('example.net').status).toBe('REFUSED');
    const isDenied = (s: ReceivedSpan): boolean => s.attributes['dns.question.name'] === 'example.net.';
    expect(await eventually(() => spans.some(isDenied), 15_000, 100)).toBe(true);
    const span = spans.find(isDenied)!;
    expect(span.attributes).toMatchObject({ 'membrane.dns.rcode': 'REFUSED', 'membrane.policy.verdict': 'Denied', 'error.type': 'denied' });
    expect(span.attributes['membrane.policy.reason']).toEqual(expect.stringContaining('example.net'));
    expect(await eventually(() => dnsLines().some((l) => l.query === 'example.net.'), 10_000, 100)).toBe(true);
    expect(dnsLines().find((l) => l.query === 'example.net.')).toMatchObject({ verdict: 'Denied', trace_id: span.traceId });
  });
});
