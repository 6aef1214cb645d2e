/**
 * issue-9 proxy workers: what a worker judges requests against is exactly what the agent sent
 * (snapshot, then deltas), and nothing before the first snapshot (fail closed); its outgoing
 * queue is bounded and counts what it drops.
 */
import { describe, expect, it } from 'vitest';
import { Outbox, WorkerState, FLUSH_CHARS, FLUSH_ITEMS, type Delta, type EndpointState, type OutboxBatch } from '../../../src/proxyworker/index.js';
import { decideL7, type EndpointPolicy } from '../../../src/policy/index.js';
import type { Flow } from '../../../src/observe/index.js';

const ALLOW_GET_PUBLIC: EndpointPolicy = {
  ingress: {
    enforced: true,
    entries: [
      {
        identity: 0,
        protocol: 6,
        port: 80,
        portPrefixLen: 16,
        verdict: 'redirect',
        l7: { kind: 'http', rules: [{ method: 'GET', path: '/public' }], allowAll: false },
        derivedFrom: [{ policy: 'p', namespace: 'default', kind: 'CiliumNetworkPolicy', direction: 'ingress', index: 0 }],
      },
    ],
  },
  egress: { enforced: false, entries: [] },
};

const OPEN: EndpointPolicy = { ingress: { enforced: false, entries: [] }, egress: { enforced: false, entries: [] } };

function endpoint(ip: string, id: number, identity: number, policy: EndpointPolicy | null): EndpointState {
  return { ip, id, identity, policy, flowEndpoint: { ID: id, identity, namespace: 'default', labels: [`k8s:app=${id}`], pod_name: `pod-${id}` } };
}

const delta = (d: Partial<Delta>): Delta => ({ endpoints: [], removedEndpoints: [], identities: [], removedIdentities: [], ...d });

describe('issue-9 WorkerState', () => {
  it('knows nothing before the first snapshot: no source, so the proxies refuse the connection', () => {
    const s = new WorkerState(() => 2);
    expect(s.ready).toBe(false);
    expect(s.endpoint('10.0.0.1')).toBeUndefined();
    s.apply(delta({ endpoints: [endpoint('10.0.0.1', 1, 100, null)] }), true);
    expect(s.ready).toBe(true);
    expect(s.endpoint('10.0.0.1')?.identity).toBe(100);
  });

  it('a delta changes only what it names; a snapshot replaces everything', () => {
    const s = new WorkerState(() => 2);
    s.apply(delta({ endpoints: [endpoint('10.0.0.1', 1, 100, null), endpoint('10.0.0.2', 2, 200, null)] }), true);
    s.apply(delta({ endpoints: [endpoint('10.0.0.2', 2, 201, ALLOW_GET_PUBLIC)], removedEndpoints: ['10.0.0.1'] }), false);
    expect(s.endpoint('10.0.0.1')).toBeUndefined();
    expect(s.endpoint('10.0.0.2')?.identity).toBe(201);
    s.apply(delta({ endpoints: [endpoint('10.0.0.3', 3, 300, null)] }), true);
    expect([s.endpoint('10.0.0.2'), s.endpoint('10.0.0.3')?.id]).toEqual([undefined, 3]);
  });

  it('judges with the policy of the latest delta: a path newly allowed is allowed, a null policy denies', () => {
    const s = new WorkerState(() => 2);
    s.apply(delta({ endpoints: [endpoint('10.0.0.1', 1, 100, OPEN), endpoint('10.0.0.2', 2, 200, null)] }), true);
    const req = { kind: 'http' as const, method: 'GET', path: '/public', host: 'x', headers: {} };
    const before = decideL7(s.l7Flow('10.0.0.1', 100, '10.0.0.2', 80, 6, 200), req);
    expect(before.allowed).toBe(false);
    s.apply(delta({ endpoints: [endpoint('10.0.0.2', 2, 200, ALLOW_GET_PUBLIC)] }), false);
    expect(decideL7(s.l7Flow('10.0.0.1', 100, '10.0.0.2', 80, 6, 200), req).allowed).toBe(true);
    expect(decideL7(s.l7Flow('10.0.0.1', 100, '10.0.0.2', 80, 6, 200), { ...req, path: '/private' }).allowed).toBe(false);
  });

  it('a non-local address takes its identity from the ipcache and its labels from the identity deltas', () => {
    const ipcache = new Map([['192.0.2.7', 16777217]]);
    const s = new WorkerState((ip) => ipcache.get(ip) ?? 2);
    s.apply(delta({}), true);
    expect(s.identityOf('192.0.2.7')).toBe(16777217);
    expect(s.flowEndpoint('192.0.2.7', 16777217).labels).toEqual([]);
    s.apply(delta({ identities: [{ id: 16777217, labels: ['cidr:192.0.2.7/32', 'reserved:world'] }] }), false);
    expect(s.flowEndpoint('192.0.2.7', 16777217)).toEqual({ ID: 0, identity: 16777217, namespace: '', labels: ['cidr:192.0.2.7/32', 'reserved:world'], pod_name: '' });
    expect(s.l7Flow('10.0.0.9', 5, '192.0.2.7', 443, 6).dstIdentity).toBe(16777217);
  });
});

describe('issue-9 Outbox', () => {
  const flow = { verdict: 'FORWARDED' } as unknown as Flow;

  it('sends a batch at FLUSH_ITEMS items at once, and what is left on flush', () => {
    const sent: [number, number][] = [];
    const o = new Outbox(10_000, (b) => sent.push([b.flowCount, b.lineCount]));
    for (let i = 0; i < FLUSH_ITEMS; i++) o.line(`line ${i}\n`);
    expect(sent).toEqual([[0, FLUSH_ITEMS]]);
    o.flow(flow);
    o.line('x\n');
    o.flush();
    expect(sent).toEqual([[0, FLUSH_ITEMS], [1, 1]]);
  });

  it('sends a batch once its text reaches FLUSH_CHARS, before FLUSH_ITEMS: no message grows past the size where each item costs more', () => {
    const batches: OutboxBatch[] = [];
    const o = new Outbox(10_000, (b) => batches.push(b));
    const line = `${'x'.repeat(1499)}\n`;
    const lines = Math.ceil(FLUSH_CHARS / line.length);
    expect(lines).toBeLessThan(FLUSH_ITEMS);
    for (let i = 0; i < lines - 1; i++) o.line(line);
    expect(batches).toEqual([]);
    o.line(line);
    expect(batches.map((b) => [b.lineCount, b.lines.length])).toEqual([[lines, lines * line.length]]);
    expect(batches[0]!.lines.length).toBeLessThan(FLUSH_CHARS + line.length);
  });

  it('issue-9 worker batch cost: a batch is two strings, flows as a JSON array and access-log lines as written', () => {
    const batches: OutboxBatch[] = [];
    const o = new Outbox(10_000, (b) => batches.push(b));
    const f1 = { verdict: 'FORWARDED', Summary: 'HTTP/1.1 GET http://a/\nb', time: '2026-01-01T00:00:00.000000001Z' } as unknown as Flow;
    const f2 = { verdict: 'DROPPED', l7: { type: 'RESPONSE', http: { code: 403 } } } as unknown as Flow;
    o.flow(f1);
    o.line('{"a":1}\n');
    o.flow(f2);
    o.line('{"b":"é"}\n');
    o.flush();
    expect(batches).toHaveLength(1);
    const b = batches[0]!;
    expect([typeof b.flows, typeof b.lines, b.flowCount, b.lineCount]).toEqual(['string', 'string', 2, 2]);
    expect(JSON.parse(b.flows)).toEqual([f1, f2]);
    expect(b.lines).toBe('{"a":1}\n{"b":"é"}\n');
  });

  it('issue-9 worker batch cost: a flow that is not JSON is dropped and counted, not thrown into the request', () => {
    const batches: OutboxBatch[] = [];
    const o = new Outbox(10, (b) => batches.push(b));
    o.flow({ verdict: 'FORWARDED', l7: { latency_ns: 1n } } as unknown as Flow);
    o.flow(flow);
    o.flush();
    expect([o.droppedFlows, batches[0]?.flowCount, batches[0]?.flows]).toEqual([1, 1, '[{"verdict":"FORWARDED"}]']);
  });

  it('is bounded by what is queued and unacknowledged: past it items are dropped and counted', () => {
    const sent: number[] = [];
    const o = new Outbox(3, (b) => sent.push(b.flowCount));
    for (let i = 0; i < 5; i++) o.flow(flow);
    o.flush();
    expect([sent, o.droppedFlows]).toEqual([[3], 2]);
    // The agent has not taken them yet: still full.
    o.flow(flow);
    expect(o.droppedFlows).toBe(3);
    o.ack(3, 0);
    o.flow(flow);
    o.flush();
    expect([sent, o.droppedFlows]).toEqual([[3, 1], 3]);
  });
});
