/**
 * issue-9: a proxy worker serialises HTTP flows with `httpFlowJson`, which must give exactly the
 * text JSON.stringify gives for every flow the observe builders make, and decline anything else.
 */
import { describe, expect, it } from 'vitest';
import { Outbox, type OutboxBatch } from '../../../src/proxyworker/index.js';
import { httpFlowJson } from '../../../src/proxyworker/flow-json.js';
import { dropFlow, httpRequestFlow, httpResponseFlow, type Flow, type FlowEndpoint, type HttpExchangeInput } from '../../../src/observe/index.js';

function ep(name: string, id: number, identity: number, extra: string[] = []): FlowEndpoint {
  return { ID: id, identity, namespace: 'default', labels: [`k8s:class=${name}`, 'k8s:io.kubernetes.pod.namespace=default', 'k8s:org=empire', ...extra], pod_name: name };
}

const TIE = ep('tiefighter', 12, 25698);
const DS = ep('deathstar', 34, 6822, ['k8s:note=dé"jà\\vu']);

function input(over: Partial<HttpExchangeInput> = {}): HttpExchangeInput {
  return { source: TIE, destination: DS, ip: { source: '10.0.1.2', destination: '10.0.2.2' }, sourcePort: 40000, destinationPort: 80, direction: 'INGRESS', nodeName: 'node-1', ...over };
}

const REQ_HTTP = { method: 'POST', url: 'http://deathstar/v1/request-landing', protocol: 'HTTP/1.1', headers: [{ key: 'host', value: 'deathstar' }, { key: 'x-q', value: 'a "quoted"\\ value\twith tab' }] };

function variants(): Flow[] {
  const policies = [{ name: 'rule1', namespace: 'default' }, { name: 'cluster-wide' }];
  return [
    httpRequestFlow({ ...input(), time: '2026-12-01T03:00:00.123Z', verdict: 'FORWARDED', http: REQ_HTTP }),
    httpRequestFlow({ ...input({ proxyPort: 15001, policies }), time: '2026-12-01T03:00:00.123Z', verdict: 'FORWARDED', http: REQ_HTTP }),
    httpRequestFlow({ ...input({ proxyPort: 15001, policies, direction: 'EGRESS' }), verdict: 'DROPPED', http: { method: 'GET', url: 'http://x/é\u2028\ud800', protocol: 'HTTP/1.0' } }),
    httpRequestFlow({ ...input({ traceContext: { parent: { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' } } }), verdict: 'FORWARDED', http: { ...REQ_HTTP, headers: [] } }),
    httpResponseFlow({ ...input({ proxyPort: 15001 }), latencyNs: 1_234_567, verdict: 'FORWARDED', http: { code: 200, method: 'POST', url: REQ_HTTP.url, protocol: 'HTTP/1.1', headers: [{ key: 'content-type', value: 'text/plain' }] } }),
    httpResponseFlow({ ...input({ ip: { source: 'fd00::1', destination: 'fd00::2' } }), latencyNs: 0, verdict: 'ERROR', http: { code: 503, method: 'GET', url: 'http://[fd00::2]:8080/', protocol: 'HTTP/2' } }),
  ];
}

describe('issue-9 httpFlowJson', () => {
  it('gives exactly JSON.stringify of every HTTP flow the builders make (policies, trace context, escapes, IPv6)', () => {
    for (const f of variants()) {
      // Twice: the second time from the kept endpoint and policy texts.
      expect(httpFlowJson(f)).toBe(JSON.stringify(f));
      expect(httpFlowJson(f)).toBe(JSON.stringify(f));
    }
  });

  it('follows an endpoint changed after its text was kept', () => {
    const me = ep('xwing', 1, 99);
    const f = () => httpRequestFlow({ ...input({ source: me }), verdict: 'FORWARDED', http: REQ_HTTP });
    const first = f();
    expect(httpFlowJson(first)).toBe(JSON.stringify(first));
    me.pod_name = 'xwing-2';
    me.labels = [...me.labels, 'k8s:new=1'];
    const g = f();
    expect(httpFlowJson(g)).toContain('"pod_name":"xwing-2"');
    expect(httpFlowJson(g)).toBe(JSON.stringify(g));
  });

  it('declines flows that are not the builders’ HTTP flows', () => {
    const drop = dropFlow({ source: TIE, destination: DS, ip: { source: '10.0.1.2', destination: '10.0.2.2' }, direction: 'INGRESS', nodeName: 'n', reason: 133 });
    expect(httpFlowJson(drop)).toBeNull();
    const dns = { ...variants()[0]!, l7: { type: 'REQUEST', dns: { query: 'a.' } } } as Flow;
    expect(httpFlowJson(dns)).toBeNull();
    const extra = { ...variants()[0]!, source_names: ['a'] } as Flow;
    expect(httpFlowJson(extra)).toBeNull();
  });

  it('the outbox sends builder flows and partial ones alike as one JSON array', () => {
    const batches: OutboxBatch[] = [];
    const o = new Outbox(100, (b) => batches.push(b));
    const flows = [...variants(), { verdict: 'FORWARDED' } as unknown as Flow];
    for (const f of flows) o.flow(f);
    o.flush();
    expect(batches.map((b) => b.flowCount)).toEqual([flows.length]);
    expect(batches[0]!.flows).toBe(JSON.stringify(flows));
  });
});

describe('issue-9 httpFlowJson kept segments', () => {
  it('gives JSON.stringify for interleaved flows of many connections, whatever changed since the last one', () => {
    const eps = [TIE, DS, ep('xwing', 5, 77), ep('ywing', 6, 78, ['k8s:q="x"'])];
    const headerSets = [
      [{ key: 'host', value: 'deathstar' }],
      [{ key: 'host', value: 'deathstar' }, { key: 'date', value: 'Tue, 01 Dec 2026 06:00:00 GMT' }],
      [{ key: 'host', value: 'deathstar' }, { key: 'date', value: 'Tue, 01 Dec 2026 06:00:01 GMT' }],
      [{ key: 'host', value: 'death"star' }],
      [],
    ];
    // A fixed pseudo-random sequence: every field that a kept segment stands for changes at some point.
    let seed = 7;
    const pick = <T>(xs: readonly T[]): T => xs[(seed = (seed * 1103515245 + 12345) % 2147483648) % xs.length]!;
    for (let i = 0; i < 400; i++) {
      const over: Partial<HttpExchangeInput> = {
        source: pick(eps),
        destination: pick(eps),
        ip: pick([{ source: '10.0.1.2', destination: '10.0.2.2' }, { source: 'fd00::1', destination: 'fd00::2' }]),
        sourcePort: pick([40000, 40001]),
        destinationPort: pick([80, 8080]),
        direction: pick(['INGRESS', 'EGRESS'] as const),
        nodeName: pick(['node-1', 'node-2']),
        ...pick([{}, { proxyPort: 15001 }, { proxyPort: 15002 }]),
        ...pick([{}, { policies: [{ name: 'rule1', namespace: 'default' }] }]),
      };
      const http = { method: pick(['GET', 'POST']), url: pick(['http://deathstar/a', 'http://deathstar/b']), protocol: pick(['HTTP/1.1', 'HTTP/2']), headers: pick(headerSets) };
      const f = pick([0, 1, 2]) === 0
        ? httpRequestFlow({ ...input(over), verdict: pick(['FORWARDED', 'DROPPED'] as const), http })
        : httpResponseFlow({ ...input(over), latencyNs: pick([0, 1_500_000]), verdict: pick(['FORWARDED', 'ERROR'] as const), http: { code: pick([200, 403, 503]), ...http } });
      expect(httpFlowJson(f)).toBe(JSON.stringify(f));
    }
  });
});
