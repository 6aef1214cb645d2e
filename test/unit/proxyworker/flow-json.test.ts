/**
 * issue-9: a proxy worker serialises HTTP and DNS flows with `httpFlowJson` / `dnsFlowJson`
 * (`flowJson` for either), which must give exactly the text JSON.stringify gives for every flow
 * the observe builders make, and decline anything else.
 */
import { describe, expect, it } from 'vitest';
import { Outbox, type OutboxBatch } from '../../../src/proxyworker/index.js';
import { dnsFlowJson, flowJson, httpFlowJson } from '../../../src/proxyworker/flow-json.js';
import { refusedRequestFlow, requestFlow, responseFlow, type DnsExchange } from '../../../src/dnsproxy/index.js';
import { dnsRequestFlow, dnsResponseFlow, dropFlow, httpRequestFlow, httpResponseFlow, type Flow, type FlowEndpoint, type HttpExchangeInput } from '../../../src/observe/index.js';

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

/** An exchange as dnsproxy/proxy.ts fills it in, before its flows are made. */
function exchange(over: Partial<DnsExchange> = {}): DnsExchange {
  return {
    protocol: 17,
    client: { ip: '10.0.1.2', port: 40123 },
    server: { ip: '10.0.0.10', port: 53 },
    source: { endpointId: 12, identity: 25698, flowEndpoint: TIE },
    destination: DS,
    id: 4242,
    qname: 'api.github.com.',
    qtype: 1,
    decision: { allowed: true, reason: 'allowed', policies: ['default/fqdn'], dstIdentity: 6822 },
    startedAt: new Date('2026-12-01T03:00:00.123Z'),
    startNs: process.hrtime.bigint(),
    ...over,
  };
}

const SITE = { nodeName: 'node-1', proxyPort: 40053 };
const TRACE = { parent: { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' } };
const CHAIN = { qname: 'www.example.com.', ips: ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'], cnames: ['www.example.com-v4.edgesuite.net.', 'a1422.dscr.akamai.net.'], ttl: 60, rrtypes: [5, 5, 1, 28] };

/** Both flows of each kind of exchange dnsproxy/log.ts reports, and the builders' own defaults. */
function dnsVariants(): Flow[] {
  const denied = exchange({ decision: { allowed: false, reason: 'no rule', policies: ['default/fqdn', 'cluster-wide'], dstIdentity: 6822 }, rcode: 5 });
  const escaped = exchange({ qname: 'we"ird\\032name\u0001.', source: { endpointId: 1, identity: 99, flowEndpoint: ep('x"wing', 1, 99, ['k8s:tab=a\tb']) } });
  return [
    requestFlow(exchange(), SITE),
    responseFlow(exchange({ rcode: 0, answer: { qname: 'api.github.com.', ips: ['140.82.121.6'], cnames: [], ttl: 30, rrtypes: [1] } }), SITE, 'FORWARDED'),
    requestFlow(exchange({ qtype: 28, traceContext: TRACE }), { nodeName: 'node-1' }),
    responseFlow(exchange({ qname: CHAIN.qname, qtype: 28, traceContext: TRACE, rcode: 0, answer: CHAIN }), { nodeName: 'node-1' }, 'FORWARDED'),
    responseFlow(exchange({ protocol: 6, qname: 'nope.example.', rcode: 3, answer: { qname: 'nope.example.', ips: [], cnames: [], ttl: 0, rrtypes: [] } }), SITE, 'FORWARDED'),
    responseFlow(exchange({ rcode: 5, answer: { qname: 'api.github.com.', ips: [], cnames: [], ttl: 0, rrtypes: [6] } }), SITE, 'FORWARDED'),
    responseFlow(exchange({ rcode: 2 }), SITE, 'ERROR'),
    requestFlow(denied, SITE),
    requestFlow(escaped, SITE),
    responseFlow({ ...escaped, rcode: 0, answer: { qname: escaped.qname, ips: ['10.0.0.1'], cnames: ['c"name\\.'], ttl: 5, rrtypes: [5, 1, 65535] } }, SITE, 'FORWARDED'),
    dnsRequestFlow({ ...input({ ip: { source: 'fd00::1', destination: 'fd00::53' } }), transport: 'TCP', verdict: 'ERROR', dns: { query: 'a.' } }),
    dnsResponseFlow({ ...input(), transport: 'UDP', latencyNs: 1.5, verdict: 'FORWARDED', dns: { query: 'a.' } }),
    // Refused before policy (src/dnsproxy/refusal.ts): no question, and two.
    refusedRequestFlow(exchange({ qname: '.', qtype: 0 }), SITE, []),
    refusedRequestFlow(exchange({ protocol: 6 }), SITE, [1, 28]),
  ];
}

describe('issue-9 dnsFlowJson', () => {
  it('gives exactly JSON.stringify of every DNS flow the builders make (answers, CNAME chains, rcodes, denied, TCP, escapes, trace context)', () => {
    const flows = dnsVariants();
    expect(flows.map((f) => `${f.verdict} ${f.l7?.type} ${f.Summary}`)).toContain('DROPPED REQUEST DNS Query api.github.com. A');
    expect(flows.map((f) => f.Summary)).toContain('DNS Answer RCode: Non-Existent Domain TTL: 4294967295 (Proxy nope.example. A)');
    for (const f of flows) {
      // Twice: the second time from the kept texts.
      expect(dnsFlowJson(f)).toBe(JSON.stringify(f));
      expect(flowJson(f)).toBe(JSON.stringify(f));
    }
  });

  it('follows a DNS record that differs from the last in one field only', () => {
    const dns = { query: 'a.', ips: ['10.0.0.1'], ttl: 30, cnames: ['b.'], rcode: 0, qtypes: ['A'], rrtypes: ['CNAME', 'A'] };
    const changes = [{ query: 'b.' }, { ips: ['10.0.0.2'] }, { ttl: 31 }, { cnames: ['c.'] }, { rcode: 3 }, { qtypes: ['AAAA'] }, { rrtypes: ['CNAME', 'AAAA'] }];
    const flow = (d: typeof dns, summary?: string): Flow => {
      const f = dnsResponseFlow({ ...input(), transport: 'UDP', latencyNs: 0, verdict: 'FORWARDED', dns: d });
      // The same Summary: only the record tells the flows apart.
      return summary === undefined ? f : { ...f, Summary: summary };
    };
    for (const change of changes) {
      const before = flow(dns, 'same');
      expect(dnsFlowJson(before)).toBe(JSON.stringify(before));
      const after = flow({ ...dns, ...change }, 'same');
      expect(dnsFlowJson(after)).toBe(JSON.stringify(after));
    }
    const req = (query: string): Flow => ({ ...dnsRequestFlow({ ...input(), transport: 'UDP', verdict: 'FORWARDED', dns: { query, qtypes: ['A'] } }), Summary: 'same' });
    for (const f of [req('a.'), req('b.')]) expect(dnsFlowJson(f)).toBe(JSON.stringify(f));
  });

  it('declines DNS flows of a shape the builders do not make', () => {
    const [req, resp] = dnsVariants() as [Flow, Flow];
    const withDns = (f: Flow, dns: object): Flow => ({ ...f, l7: { ...f.l7!, dns } }) as Flow;
    const declined: Flow[] = [
      withDns(req, { ...req.l7!.dns!, ips: ['1.2.3.4'] }),
      withDns(resp, { query: 'a.', observation_source: 'proxy', qtypes: ['A'] }),
      withDns(resp, { ...resp.l7!.dns!, ttl: '30' }),
      withDns(resp, { ...resp.l7!.dns!, ips: [1] }),
      withDns(req, { ...req.l7!.dns!, qtypes: 'A' }),
      { ...req, l7: { ...req.l7!, http: REQ_HTTP } } as Flow,
      { ...req, l4: { TCP: { source_port: 1, destination_port: 53, flags: { SYN: true } } } } as Flow,
      { ...req, l4: { ICMPv4: { type: 8, code: 0 } } } as Flow,
      { ...req, trace_reason: 'NEW' } as Flow,
      { ...resp, is_reply: undefined } as unknown as Flow,
    ];
    for (const f of declined) {
      expect(dnsFlowJson(f)).toBeNull();
      expect(flowJson(f)).toBeNull();
    }
    expect(httpFlowJson(req)).toBeNull();
  });

  it('the outbox sends DNS flows interleaved with HTTP ones as JSON.stringify of the list', () => {
    const batches: OutboxBatch[] = [];
    const o = new Outbox(100, (b) => batches.push(b));
    const flows: Flow[] = [];
    const dns = dnsVariants();
    const http = variants();
    for (let i = 0; i < 24; i++) flows.push((i % 3 === 0 ? http[i % http.length] : dns[i % dns.length])!);
    for (const f of flows) o.flow(f);
    o.flush();
    expect(batches[0]!.flows).toBe(JSON.stringify(flows));
  });
});

describe('issue-9 dnsFlowJson kept segments', () => {
  it('gives JSON.stringify for interleaved DNS and HTTP flows, whatever changed since the last one', () => {
    const eps = [TIE, DS, ep('xwing', 5, 77), ep('ywing', 6, 78, ['k8s:q="x"'])];
    let seed = 11;
    const pick = <T>(xs: readonly T[]): T => xs[(seed = (seed * 1103515245 + 12345) % 2147483648) % xs.length]!;
    const http = variants();
    for (let i = 0; i < 400; i++) {
      const answer = pick([undefined, { qname: 'a.', ips: [], cnames: [], ttl: 0, rrtypes: [] }, CHAIN, { ...CHAIN, ips: ['10.0.0.1'], ttl: 5 }, { ...CHAIN, cnames: ['b"."'] }]);
      const x = exchange({
        protocol: pick([6, 17] as const),
        client: { ip: pick(['10.0.1.2', '10.0.1.3']), port: pick([40000, 40001]) },
        server: { ip: pick(['10.0.0.10', '10.0.0.11']), port: 53 },
        source: { endpointId: 1, identity: 77, flowEndpoint: pick(eps) },
        destination: pick(eps),
        qname: pick(['a.', 'b.example.', 'c\\"d.']),
        qtype: pick([1, 28, 33]),
        decision: pick([
          { allowed: true, reason: '', policies: [], dstIdentity: 1 },
          { allowed: false, reason: '', policies: ['default/fqdn'], dstIdentity: 1 },
        ]),
        ...pick([{}, { traceContext: TRACE }]),
        ...(answer ? { answer } : {}),
        rcode: pick([0, 0, 3, 5]),
      });
      const site = pick([SITE, { nodeName: 'node-2' }]);
      const f = pick([
        () => requestFlow(x, site),
        () => responseFlow(x, site, pick(['FORWARDED', 'ERROR'] as const)),
        () => pick(http),
      ])();
      expect(flowJson(f)).toBe(JSON.stringify(f));
    }
  });
});
