/**
 * The DNS proxy between the real `dig` and a real dnsmasq, judged by real CiliumNetworkPolicy DNS
 * rules through `decideL7`: what the client is told, what the FQDN subsystem learns, the flows and
 * the access log.
 */

import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import * as dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { compactFlow } from './print.js';
import { Cleanups, dig, rawUdp, startDnsmasq, startProxy, type DnsServer, type ProxyFixture } from './harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const ZONE = {
  a: { 'api.github.com': ['10.9.0.1'], 'github.com': ['10.9.0.5'], 'edge.cdn.test': ['10.9.0.2', '10.9.0.3'] },
  aaaa: { 'api.github.com': ['fd00::9:1'] },
  cname: { 'support.github.com': 'edge.cdn.test' },
  ttl: 300,
};

/** onAnswer does not settle until `release()`: the proxy holds the answer meanwhile. */
function holdAnswers(p: ProxyFixture): { onAnswerCalled: Promise<void>; release: () => void } {
  let release!: () => void;
  const learned = new Promise<void>((resolve) => (release = resolve));
  let called!: () => void;
  const onAnswerCalled = new Promise<void>((resolve) => (called = resolve));
  p.setOnAnswer(() => {
    called();
    return learned;
  });
  return { onAnswerCalled, release };
}

async function server(): Promise<DnsServer> {
  return startDnsmasq(cleanups, ZONE);
}

describe('allowed and denied names', () => {
  it('answers an allowed name with the server\'s answer and hands the IPs to onAnswer; a denied name gets REFUSED and reaches no server', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s, { rules: [{ matchName: 'api.github.com' }] });

    const ok = await dig(p.address, ['api.github.com', 'A']);
    expect(ok.status).toBe('NOERROR');
    expect(ok.answers).toEqual(['api.github.com. 300 IN A 10.9.0.1']);
    expect(p.answers).toEqual([{ endpointId: 7, qname: 'api.github.com.', ips: ['10.9.0.1'], ttl: 300 }]);

    const denied = await dig(p.address, ['support.github.com', 'A']);
    expect(denied.status).toBe('REFUSED');
    expect(denied.answers).toEqual([]);
    // The denied query is echoed with the client's question.
    expect(denied.stdout).toMatch(/;support\.github\.com\.\s+IN\s+A/);
    expect(p.answers).toHaveLength(1);
    expect(p.proxy.stats()).toMatchObject({ queries: 2, forwarded: 1, denied: 1, malformed: 0 });
  });

  it('answers NXDOMAIN instead with rejectResponseCode nameError (--tofqdns-dns-reject-response-code)', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s, { rules: [{ matchName: 'api.github.com' }], options: { rejectResponseCode: 'nameError' } });
    expect((await dig(p.address, ['support.github.com', 'A'])).status).toBe('NXDOMAIN');
    expect((await dig(p.address, ['api.github.com', 'A'])).status).toBe('NOERROR');
  });

  it('matches names without regard to case or the trailing dot, as Cilium (lower-cased FQDN)', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s, { rules: [{ matchName: 'api.github.com' }, { matchPattern: '*.cdn.test' }] });
    for (const name of ['API.GitHub.COM', 'api.github.com.', 'Api.Github.Com.']) {
      const r = await dig(p.address, [name, 'A']);
      expect(r.status, name).toBe('NOERROR');
      expect(r.answers.map((a) => a.split(' ').at(-1))).toEqual(['10.9.0.1']);
    }
    expect((await dig(p.address, ['EDGE.cdn.TEST', 'A'])).status).toBe('NOERROR');
    // `*` stays within one label.
    expect((await dig(p.address, ['a.edge.cdn.test', 'A'])).status).toBe('REFUSED');
    expect(new Set(p.answers.map((a) => a.qname))).toEqual(new Set(['api.github.com.', 'edge.cdn.test.']));
  });

  it('forwards AAAA queries and learns the IPv6 addresses', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s);
    const r = await dig(p.address, ['api.github.com', 'AAAA']);
    expect(r.answers).toEqual(['api.github.com. 300 IN AAAA fd00::9:1']);
    expect(p.answers.at(-1)).toMatchObject({ qname: 'api.github.com.', ips: ['fd00::9:1'] });
  });

  it('drops a query from an address that is not a local endpoint (fail closed): no answer at all', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s, { sources: ['127.0.0.9'] });
    const r = await dig(p.address, ['api.github.com', 'A', '+time=1']);
    expect(r.status).toBeNull();
    expect(p.proxy.stats()).toMatchObject({ unknownSource: 1, forwarded: 0 });
  });
});

describe('the answer chain', () => {
  it('learns the IPs at the end of a CNAME chain with the minimum TTL, and reports the CNAMEs', async () => {
    const s = await startDnsmasq(cleanups, { ...ZONE, ttl: 120 });
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*.github.com' }] });
    const r = await dig(p.address, ['support.github.com', 'A']);
    expect(r.answers).toEqual(['support.github.com. 120 IN CNAME edge.cdn.test.', 'edge.cdn.test. 120 IN A 10.9.0.2', 'edge.cdn.test. 120 IN A 10.9.0.3']);
    expect(p.answers).toEqual([{ endpointId: 7, qname: 'support.github.com.', ips: ['10.9.0.2', '10.9.0.3'], ttl: 120 }]);
    const response = p.flows.find((f) => f.l7?.type === 'RESPONSE');
    expect(response?.l7?.dns).toMatchObject({ query: 'support.github.com.', ips: ['10.9.0.2', '10.9.0.3'], cnames: ['edge.cdn.test.'], ttl: 120, rcode: 0, rrtypes: ['CNAME', 'A', 'A'] });
  });

  it('issue-8 poisoned answer: an unrelated A record beside the chain is relayed but teaches nothing', async () => {
    // A hostile server (no Debian server forges answers on request): the answer to
    // support.github.com carries its CNAME chain and a record for another name.
    const hostile = createSocket('udp4');
    await new Promise<void>((resolve) => hostile.bind(0, '127.0.0.1', () => resolve()));
    cleanups.add(() => hostile.close());
    hostile.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const answer = dnsPacket.encode({
        type: 'response',
        id: q.id ?? 0,
        flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHORITATIVE_ANSWER,
        questions: q.questions ?? [],
        answers: [
          { type: 'CNAME', name: 'support.github.com', ttl: 60, data: 'edge.cdn.test' },
          { type: 'A', name: 'edge.cdn.test', ttl: 30, data: '10.9.0.2' },
          { type: 'A', name: 'api.github.com', ttl: 3600, data: '6.6.6.6' },
          { type: 'A', name: 'evil.test', ttl: 3600, data: '6.6.6.7' },
        ],
      });
      hostile.send(answer, rinfo.port, rinfo.address);
    });
    const s = { ip: '127.0.0.1', port: hostile.address().port };
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*' }] });
    const r = await dig(p.address, ['support.github.com', 'A']);
    expect(r.status).toBe('NOERROR');
    // The client gets the server's bytes unchanged, poison included…
    expect(r.answers).toContain('api.github.com. 3600 IN A 6.6.6.6');
    // …but only the question's own chain reaches the FQDN subsystem.
    expect(p.answers).toEqual([{ endpointId: 7, qname: 'support.github.com.', ips: ['10.9.0.2'], ttl: 30 }]);
  });
});

describe('ordering', () => {
  it('does not release the answer before onAnswer resolves (the learned IPs are in the datapath first)', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s);
    const { onAnswerCalled, release } = holdAnswers(p);
    let exited = false;
    const answer = dig(p.address, ['api.github.com', 'A', '+time=5'], { child: (c) => c.once('exit', () => (exited = true)) });
    await onAnswerCalled;
    // Held: the server has answered, the client has not been.
    await sleep(300);
    expect(exited).toBe(false);
    expect(p.proxy.stats().forwarded).toBe(0);
    release();
    const r = await answer;
    expect(r.answers).toEqual(['api.github.com. 300 IN A 10.9.0.1']);
    expect(p.proxy.stats().forwarded).toBe(1);
  });

  it('issue-8 restart: close() answers the queries already in flight, and takes no new one', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s);
    const { onAnswerCalled, release } = holdAnswers(p);
    const answer = dig(p.address, ['api.github.com', 'A', '+time=5', '+tries=1']);
    await onAnswerCalled;
    const closing = p.proxy.close();
    // A query sent after close() began is not taken.
    const late = await dig(p.address, ['api.github.com', 'A', '+time=1', '+tries=1']);
    expect(late.status).not.toBe('NOERROR');
    release();
    const r = await answer;
    await closing;
    expect(r.answers).toEqual(['api.github.com. 300 IN A 10.9.0.1']);
    expect(p.proxy.stats()).toMatchObject({ forwarded: 1, inflight: 0 });
  });

  it('still releases the answer when onAnswer rejects, and counts it', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s);
    p.setOnAnswer(() => Promise.reject(new Error('datapath write failed')));
    const r = await dig(p.address, ['api.github.com', 'A']);
    expect(r.status).toBe('NOERROR');
    expect(p.proxy.stats()).toMatchObject({ answerErrors: 1, forwarded: 1 });
  });
});

describe('protocol', () => {
  it('refuses a query with more than one question, echoing the first (as Cilium)', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*' }] });
    const query = dnsPacket.encode({
      type: 'query',
      id: 4242,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [
        { type: 'A', name: 'api.github.com' },
        { type: 'A', name: 'github.com' },
      ],
    });
    const answer = await rawUdp(p.address, query);
    expect(answer).not.toBeNull();
    const m = dnsPacket.decode(answer!);
    expect(m.id).toBe(4242);
    expect(m.flags! & 0xf).toBe(5); // REFUSED
    expect(m.questions).toEqual([{ name: 'api.github.com', type: 'A', class: 'IN' }]);
    expect(p.answers).toEqual([]);
    // On the flow stream too (refused before policy: ERROR, every question's type, no response flow).
    expect(p.flows.map((f) => compactFlow(f))).toEqual([
      `default/mediabot:* (ID:41000) -> kube-system/kube-dns:${s.port} (ID:41001) dns-request proxy ERROR (DNS Query api.github.com. A,A)`,
    ]);
    expect(p.logLines.find((l) => l.type === 'dns')).toMatchObject({ verdict: 'Error', rcode: 'REFUSED', reason: '2 questions: exactly one is supported' });
  });

  it('refuses a query with no question (REFUSED) and one that is not a QUERY (NOTIMP), each with an ERROR dns-request flow', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*' }] });
    const none = Buffer.alloc(12);
    none.writeUInt16BE(4343, 0);
    none.writeUInt16BE(0x0100, 2);
    expect((dnsPacket.decode((await rawUdp(p.address, none))!).flags ?? 0) & 0xf).toBe(5); // REFUSED
    const status = Buffer.from(dnsPacket.encode({ type: 'query', id: 4444, questions: [{ type: 'A', name: 'api.github.com' }] }));
    status.writeUInt16BE(2 << 11, 2); // opcode STATUS
    expect((dnsPacket.decode((await rawUdp(p.address, status))!).flags ?? 0) & 0xf).toBe(4); // NOTIMP
    expect(p.flows.map((f) => [f.verdict, f.l7?.type, f.Summary, f.is_reply])).toEqual([
      ['ERROR', 'REQUEST', 'DNS Query . ', false],
      ['ERROR', 'REQUEST', 'DNS Query api.github.com. A', false],
    ]);
    expect(p.logLines.filter((l) => l.type === 'dns').map((l) => [l.rcode, l.reason])).toEqual([
      ['REFUSED', '0 questions: exactly one is supported'],
      ['NOTIMP', 'opcode 2 is not a query'],
    ]);
    expect(p.answers).toEqual([]);
  });

  it('preserves the client\'s ID and EDNS0 (the server\'s bytes are relayed unchanged)', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s);
    const query = dnsPacket.encode({
      type: 'query',
      id: 0xbeef,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: 'A', name: 'api.github.com' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1400, options: [] } as unknown as dnsPacket.Answer],
    });
    const viaProxy = await rawUdp(p.address, query);
    const direct = await rawUdp(s, query);
    expect(viaProxy).not.toBeNull();
    expect(viaProxy!.equals(direct!)).toBe(true);
    const m = dnsPacket.decode(viaProxy!);
    expect(m.id).toBe(0xbeef);
    expect(m.additionals?.find((a) => a.type === 'OPT')).toBeDefined();
  });

  it('a truncated UDP answer (TC) reaches dig, which retries over TCP through the proxy and gets the whole answer', async () => {
    const many = Array.from({ length: 120 }, (_, i) => `10.9.${1 + (i >> 8)}.${i & 0xff}`);
    const s = await startDnsmasq(cleanups, { a: { 'big.cdn.test': many } });
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*.cdn.test' }] });
    const r = await dig(p.address, ['big.cdn.test', 'A', '+noedns']);
    expect(r.retriedOverTcp).toBe(true);
    expect(r.status).toBe('NOERROR');
    expect(r.answers).toHaveLength(120);
    expect(r.stdout).toMatch(/\(TCP\)/);
    // Learned from the complete TCP answer.
    expect(p.answers.at(-1)?.ips).toHaveLength(120);
    expect(p.flows.filter((f) => f.l7?.type === 'REQUEST').map((f) => Object.keys(f.l4 ?? {})[0])).toEqual(['UDP', 'TCP']);
  });

  it('answers SERVFAIL when the server does not answer in time', async () => {
    const silent = createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', () => resolve()));
    cleanups.add(() => silent.close());
    const s = { ip: '127.0.0.1', port: silent.address().port };
    const p = await startProxy(cleanups, s, { options: { upstreamTimeoutMs: 300 } });
    const r = await dig(p.address, ['api.github.com', 'A']);
    expect(r.status).toBe('SERVFAIL');
    expect(p.proxy.stats()).toMatchObject({ timeouts: 1, forwarded: 0 });
    const response = p.flows.find((f) => f.l7?.type === 'RESPONSE');
    expect(response?.verdict).toBe('ERROR');
    expect(response?.Summary).toBe('DNS Answer RCode: Server Failure TTL: 4294967295 (Proxy api.github.com. A)');
  });

  it('answers SERVFAIL when the server port is closed (ICMP port unreachable)', async () => {
    const closed = createSocket('udp4');
    await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', () => resolve()));
    const port = closed.address().port;
    closed.close();
    const p = await startProxy(cleanups, { ip: '127.0.0.1', port });
    expect((await dig(p.address, ['api.github.com', 'A'])).status).toBe('SERVFAIL');
    expect(p.proxy.stats()).toMatchObject({ upstreamErrors: 1 });
  });

  it('ignores a spoofed answer with the wrong ID and keeps waiting for the real one', async () => {
    const tricky = createSocket('udp4');
    await new Promise<void>((resolve) => tricky.bind(0, '127.0.0.1', () => resolve()));
    cleanups.add(() => tricky.close());
    tricky.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const base = { type: 'response' as const, flags: dnsPacket.RECURSION_DESIRED, questions: q.questions ?? [] };
      tricky.send(dnsPacket.encode({ ...base, id: ((q.id ?? 0) + 1) & 0xffff, answers: [{ type: 'A', name: 'api.github.com', ttl: 60, data: '6.6.6.6' }] }), rinfo.port, rinfo.address);
      tricky.send(dnsPacket.encode({ ...base, id: q.id ?? 0, answers: [{ type: 'A', name: 'api.github.com', ttl: 60, data: '10.9.0.1' }] }), rinfo.port, rinfo.address);
    });
    const p = await startProxy(cleanups, { ip: '127.0.0.1', port: tricky.address().port });
    const r = await dig(p.address, ['api.github.com', 'A']);
    expect(r.answers).toEqual(['api.github.com. 60 IN A 10.9.0.1']);
    expect(p.answers.map((a) => a.ips)).toEqual([['10.9.0.1']]);
    expect(p.proxy.stats().mismatchedAnswers).toBe(1);
  });
});

describe('flows and access log', () => {
  it('emits Hubble DNS flows (FORWARDED request and response, DROPPED for a denied query) and one JSON line per query', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*.github.com' }] });
    await dig(p.address, ['api.github.com', 'A']);
    await dig(p.address, ['github.com', 'A']);
    const lines = p.flows.map((f) => compactFlow(f));
    expect(lines).toEqual([
      `default/mediabot:* (ID:41000) -> kube-system/kube-dns:${s.port} (ID:41001) dns-request proxy FORWARDED (DNS Query api.github.com. A)`,
      `default/mediabot:* (ID:41000) <- kube-system/kube-dns:${s.port} (ID:41001) dns-response proxy FORWARDED (DNS Answer "10.9.0.1" TTL: 300 (Proxy api.github.com. A))`,
      `default/mediabot:* (ID:41000) -> kube-system/kube-dns:${s.port} (ID:41001) dns-request proxy DROPPED (DNS Query github.com. A)`,
    ]);
    expect(p.flows[0]!.egress_allowed_by).toEqual([{ name: 'mediabot-dns', namespace: 'default' }]);
    expect(p.flows[2]!.egress_denied_by).toEqual([{ name: 'mediabot-dns', namespace: 'default' }]);
    const dnsLines = p.logLines.filter((l) => l.type === 'dns');
    expect(dnsLines.map((l) => [l.verdict, l.rcode, l.query, l.qtype])).toEqual([
      ['Forwarded', 'NOERROR', 'api.github.com.', 'A'],
      ['Denied', 'REFUSED', 'github.com.', 'A'],
    ]);
    expect(dnsLines[0]).toMatchObject({ ips: ['10.9.0.1'], ttl: 300, protocol: 'udp', source: { pod: 'mediabot', identity: 41000 }, destination: { identity: 41001 } });
  });
});

describe('burst', () => {
  it('answers 3 bursts of 100 concurrent queries, each with its own ID and answer', async () => {
    const s = await server();
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*' }] });
    const client = createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', () => resolve()));
    cleanups.add(() => client.close());
    const seen = new Map<number, string>();
    let waiting: { count: number; resolve: () => void } | null = null;
    client.on('message', (m) => {
      const d = dnsPacket.decode(m);
      const a = d.answers?.[0];
      seen.set(d.id ?? -1, a && a.type === 'A' ? (a.data as string) : `rcode ${(d.flags ?? 0) & 0xf}`);
      if (waiting && seen.size >= waiting.count) waiting.resolve();
    });
    const want = new Map<number, string>();
    // One burst at a time: the kernel's default socket buffers (~256 datagrams) bound a single burst.
    for (let burst = 0; burst < 3; burst++) {
      const done = new Promise<void>((resolve) => (waiting = { count: (burst + 1) * 100, resolve }));
      for (let id = burst * 100 + 1; id <= (burst + 1) * 100; id++) {
        const name = id % 2 === 0 ? 'api.github.com' : 'github.com';
        want.set(id, name === 'api.github.com' ? '10.9.0.1' : '10.9.0.5');
        client.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), p.address.port, p.address.ip);
      }
      await done;
    }
    expect(seen).toEqual(want);
    expect(p.proxy.stats()).toMatchObject({ queries: 300, forwarded: 300, inflight: 0 });
  });
});
