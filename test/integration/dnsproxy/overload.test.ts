/**
 * The DNS proxy under a bad server and under load (issue 8, new-user trial): a server datagram
 * with the pending query's ID that cannot be read, or does not answer the question, is SERVFAIL
 * at once (Cilium answers SERVFAIL when it cannot parse the reply) instead of after the upstream
 * timeout; one pod's burst cannot hold more than its share of the queries in flight; the proxy's
 * UDP sockets get a forced receive buffer, and what the kernel still drops on them is counted.
 * The upstream timeout is set far beyond dig's 3 s: a SERVFAIL seen by dig came from the bad
 * answer, not the timeout. The last block uses the addon's marked sockets (SO_MARK,
 * SO_RCVBUFFORCE, IP_TRANSPARENT): root only.
 */

import { createSocket, type RemoteInfo } from 'node:dgram';
import type { ChildProcess } from 'node:child_process';
import * as dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { udpConnectMarked, udpListenTransparent, udpReplySocket } from '../../../src/datapath/index.js';
import { exchangeUdp, markedUpstream, plainUpstream, type DnsUpstream } from '../../../src/dnsproxy/index.js';
import { Cleanups, dig, startProxy } from './harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const isRoot = process.getuid?.() === 0;
const LONG_TIMEOUT = { upstreamTimeoutMs: 60_000 };

/** A UDP "server" on loopback that answers each query with what `reply` makes of it (nothing for null). */
async function fakeServer(reply: (query: Buffer, id: number) => Buffer | Buffer[] | null): Promise<{ ip: string; port: number }> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  cleanups.add(() => s.close());
  s.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const out = reply(msg, msg.readUInt16BE(0));
    for (const b of out === null ? [] : Array.isArray(out) ? out : [out]) s.send(b, rinfo.port, rinfo.address);
  });
  return { ip: '127.0.0.1', port: s.address().port };
}

/** The query's header and question with QR set, followed by `tail` (answer records, raw) and `ancount`. */
function rawAnswer(query: Buffer, ancount: number, tail: number[]): Buffer {
  const out = Buffer.concat([query, Buffer.from(tail)]);
  out.writeUInt16BE(0x8180, 2); // QR, RD, RA, NOERROR
  out.writeUInt16BE(ancount, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10); // dig's EDNS0 OPT record is not echoed: the tail follows the question
  return out.subarray(0, out.length);
}

/** The question as dig sent it (its OPT record cut off), so raw answers can follow it. */
function questionOnly(query: Buffer): Buffer {
  const d = dnsPacket.decode(query);
  return Buffer.from(dnsPacket.encode({ id: d.id, type: 'query', flags: d.flags, questions: d.questions }));
}

const BAD_ANSWERS: Array<[string, (q: Buffer) => Buffer]> = [
  // An answer whose owner name is a pointer to itself: a compression loop.
  ['a compression loop in the answer', (q) => {
    const base = questionOnly(q);
    const at = base.length;
    return rawAnswer(base, 1, [0xc0 | (at >> 8), at & 0xff, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 0, 1]);
  }],
  // An A record with RDLENGTH 5.
  ['an A record with RDLENGTH 5', (q) => rawAnswer(questionOnly(q), 1, [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 10, 9, 0, 1, 7])],
  // The query echoed back: QR unset.
  ['the QR bit unset', (q) => questionOnly(q)],
  // A well-formed answer to another question.
  ['an answer to another question', (q) => {
    const d = dnsPacket.decode(q);
    return Buffer.from(dnsPacket.encode({ id: d.id, type: 'response', flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'evil.example' }], answers: [{ type: 'A', name: 'evil.example', ttl: 60, data: '6.6.6.6' }] }));
  }],
];

describe('a bad answer from the server', () => {
  it.each(BAD_ANSWERS)('%s with the query ID: SERVFAIL at once, counted and logged, nothing learned', async (_name, bad) => {
    const s = await fakeServer((q) => bad(q));
    const p = await startProxy(cleanups, s, { options: LONG_TIMEOUT });
    const r = await dig(p.address, ['api.github.com', 'A']);
    expect(r.status).toBe('SERVFAIL');
    expect(p.answers).toEqual([]);
    expect(p.proxy.stats()).toMatchObject({ badAnswers: 1, upstreamErrors: 1, timeouts: 0, forwarded: 0, inflight: 0 });
    const line = p.logLines.find((l) => l.type === 'dns' && l.verdict === 'Error');
    expect(line).toMatchObject({ rcode: 'SERVFAIL', query: 'api.github.com.' });
    expect(String(line?.reason)).toMatch(/^bad answer from 127\.0\.0\.1:\d+: /);
  });

  it('a malformed datagram with another ID is ignored (counted) and the real answer still comes through', async () => {
    const s = await fakeServer((q, id) => {
      const other = rawAnswer(questionOnly(q), 1, [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 1, 2, 3, 4, 5]);
      other.writeUInt16BE((id + 1) & 0xffff, 0);
      const d = dnsPacket.decode(q);
      const good = Buffer.from(dnsPacket.encode({ id, type: 'response', flags: dnsPacket.RECURSION_DESIRED, questions: d.questions, answers: [{ type: 'A', name: 'api.github.com', ttl: 60, data: '10.9.0.1' }] }));
      return [other, good];
    });
    const p = await startProxy(cleanups, s, { options: LONG_TIMEOUT });
    const r = await dig(p.address, ['api.github.com', 'A']);
    expect(r.answers).toEqual(['api.github.com. 60 IN A 10.9.0.1']);
    expect(p.proxy.stats()).toMatchObject({ badAnswers: 0, mismatchedAnswers: 1, forwarded: 1 });
  });

  it('exchangeUdp (a socket of its own) ends at once on a bad answer with the ID, as the shared sockets do', async () => {
    const s = await fakeServer((q) => questionOnly(q));
    const query = Buffer.from(dnsPacket.encode({ id: 4242, type: 'query', questions: [{ type: 'A', name: 'api.github.com' }] }));
    const ignored: string[] = [];
    const r = await exchangeUdp(plainUpstream(), s, 41000, query, { id: 4242, question: { name: 'api.github.com.', type: 1, class: 1 } }, 60_000, (why) => ignored.push(why));
    expect(r).toMatchObject({ ok: false, kind: 'bad-answer' });
    expect(ignored).toEqual([]);
  });
});

describe('one source cannot take every query in flight', () => {
  it('beyond maxInflightPerSource its next query is REFUSED at once (overloaded); another pod is still served', async () => {
    const s = await fakeServer((q) => {
      const d = dnsPacket.decode(q);
      if (d.questions?.[0]?.name === 'slow.github.com') return null; // never answered
      return Buffer.from(dnsPacket.encode({ id: d.id, type: 'response', flags: dnsPacket.RECURSION_DESIRED, questions: d.questions, answers: [{ type: 'A', name: d.questions![0]!.name, ttl: 60, data: '10.9.0.1' }] }));
    });
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*' }], sources: ['127.0.0.1', '127.0.0.2'], options: { ...LONG_TIMEOUT, maxInflightPerSource: 1 } });
    let slow: ChildProcess | undefined;
    const pending = dig(p.address, ['slow.github.com', 'A', '+time=30'], { child: (c) => (slow = c) });
    cleanups.add(() => slow?.kill());
    await vi.waitFor(() => expect(p.proxy.stats().inflight).toBe(1), { timeout: 10_000, interval: 20 });
    expect((await dig(p.address, ['api.github.com', 'A'])).status).toBe('REFUSED');
    const other = await dig(p.address, ['api.github.com', 'A'], { source: '127.0.0.2' });
    expect(other.answers).toEqual(['api.github.com. 60 IN A 10.9.0.1']);
    expect(p.proxy.stats()).toMatchObject({ overloaded: 1, forwarded: 1, inflight: 1 });
    const refused = p.logLines.find((l) => l.type === 'dns' && l.rcode === 'REFUSED');
    expect(String(refused?.reason)).toContain('queries in flight from 127.0.0.1 (limit 1)');
    // On the flow stream too: the refused query is an ERROR dns-request of 127.0.0.1, with no response flow.
    const errors = p.flows.filter((f) => f.verdict === 'ERROR');
    expect(errors.map((f) => [f.l7?.type, f.IP?.source, f.Summary])).toEqual([['REQUEST', '127.0.0.1', 'DNS Query api.github.com. A']]);
    expect(p.flows.filter((f) => f.l7?.type === 'RESPONSE' && f.IP?.destination === '127.0.0.1')).toEqual([]);
    slow?.kill();
    void pending;
  });
});

describe.skipIf(!isRoot)('receive buffers and kernel drops (the addon, root)', () => {
  it('the transparent listener and an upstream socket get their forced receive buffers, above net.core.rmem_max', () => {
    const listener = udpListenTransparent(0, '127.0.0.1', () => undefined, () => undefined);
    cleanups.add(() => listener.close());
    const up = udpConnectMarked('127.0.0.1', 9, 41000, () => undefined, () => undefined);
    cleanups.add(() => up.close());
    // The kernel reports twice what was asked (its bookkeeping); SO_RCVBUF alone would stop at rmem_max.
    expect(listener.receiveInfo().receiveBuffer).toBe(2 * (4 << 20));
    expect(up.receiveInfo().receiveBuffer).toBe(2 * (2 << 20));
  });

  it('datagrams dropped on a full upstream socket are counted: by the socket, to onDrops, and in the proxy stats', async () => {
    // The "server": a socket bound to an address of its own, sending synchronously (sendto), so
    // the whole burst is queued at the upstream socket before the loop can read any of it.
    const server = udpReplySocket('127.0.0.1', 0);
    cleanups.add(() => server.close());
    const at = server.address();
    let reported = 0;
    const got: Buffer[] = [];
    const up = udpConnectMarked(at.ip, at.port, 41000, (ds) => got.push(...ds.map((d) => d.data)), () => undefined, (n) => (reported += n));
    up.setReceiveBuffer(0); // the kernel's minimum: a couple of datagrams
    const to = up.address();
    for (let i = 0; i < 64; i++) server.send(Buffer.alloc(512, i), to.ip, to.port);
    const drops = up.receiveInfo().drops;
    expect(drops).toBeGreaterThan(0);
    expect(drops).toBeLessThan(64);
    await vi.waitFor(() => expect(got.length).toBe(64 - drops), { timeout: 5000, interval: 10 });
    up.close();
    // The drops after the last datagram read are reported on close.
    expect(reported).toBe(drops);
  });

  it('a proxy whose upstream socket overflows counts upstreamDrops and warns once, and still answers', async () => {
    const copies = 64;
    const s = await fakeServer((q) => {
      const d = dnsPacket.decode(q);
      const answer = Buffer.from(dnsPacket.encode({ id: d.id, type: 'response', flags: dnsPacket.RECURSION_DESIRED, questions: d.questions, answers: [{ type: 'A', name: 'api.github.com', ttl: 60, data: '10.9.0.1' }] }));
      return Array.from({ length: copies }, () => answer);
    });
    const marked = markedUpstream();
    const upstream: DnsUpstream = {
      udp: (server, identity, onMessage, onError, onDrops) => {
        const u = marked.udp(server, identity, onMessage, onError, onDrops);
        u.native?.setReceiveBuffer(0);
        return u;
      },
      tcp: (server, identity) => marked.tcp(server, identity),
    };
    const p = await startProxy(cleanups, s, { upstream, options: LONG_TIMEOUT });
    const r = await dig(p.address, ['api.github.com', 'A']);
    expect(r.answers).toEqual(['api.github.com. 60 IN A 10.9.0.1']);
    await p.proxy.close(0);
    const st = p.proxy.stats();
    expect(st.upstreamDrops).toBeGreaterThan(0);
    // Every copy is either dropped by the kernel or read (one answer, the rest strays).
    expect(st.upstreamDrops + st.mismatchedAnswers + 1).toBe(copies);
    const warnings = p.logLines.filter((l) => l.type === 'dns-proxy' && typeof l.droppedAnswers === 'number');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/overloaded: the kernel dropped datagrams/);
  });
});
