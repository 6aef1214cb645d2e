/**
 * Hostile input against the DNS proxy: malformed datagrams, compression-pointer loops, a label
 * that holds a dot, TCP frames split across segments. Each is counted and dropped (or answered
 * as a valid message would be), and the proxy goes on answering the next real `dig` query.
 */

import { connect } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import * as dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanups, dig, rawUdp, startDnsmasq, startProxy } from './harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const ZONE = { a: { 'api.github.com': ['10.9.0.1'], 'github.com': ['10.9.0.5'] }, ttl: 300 };

function header(id: number, qdcount: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(qdcount, 4);
  return h;
}

/** A query for `name` whose question bytes are given raw. */
function rawQuery(id: number, nameBytes: number[]): Buffer {
  return Buffer.concat([header(id, 1), Buffer.from(nameBytes), Buffer.from([0, 1, 0, 1])]);
}

const label = (s: string): number[] => [s.length, ...Buffer.from(s)];

describe('malformed queries are counted and dropped; the proxy keeps serving', () => {
  const cases: Array<[string, Buffer]> = [
    ['shorter than a header', Buffer.from([0x12, 0x34, 0x01])],
    ['a compression pointer to itself (loop)', rawQuery(1, [0xc0, 12])],
    ['two pointers pointing at each other (loop)', Buffer.concat([header(2, 1), Buffer.from([0xc0, 14, 0xc0, 12, 0, 1, 0, 1])])],
    ['a forward pointer', rawQuery(3, [0xc0, 40, ...Array(30).fill(0)])],
    ['a pointer into the header', Buffer.concat([header(4, 1), Buffer.from([0xc0, 2, 0, 1, 0, 1])])],
    ['a label running past the end', rawQuery(5, [40, 97, 98, 99])],
    ['a name longer than 255 bytes', rawQuery(6, [...Array.from({ length: 5 }, () => label('a'.repeat(63))).flat(), 0])],
    ['an extended label type (0x40)', rawQuery(7, [0x41, 0])],
    ['a question count larger than the message', Buffer.concat([header(8, 3), Buffer.from([...label('api'), 0, 0, 1, 0, 1])])],
    ['trailing bytes after the question', Buffer.concat([rawQuery(9, [...label('api'), ...label('github'), ...label('com'), 0]), Buffer.from([1, 2, 3])])],
    ['a response sent as a query', (() => {
      const b = rawQuery(10, [...label('api'), ...label('github'), ...label('com'), 0]);
      b.writeUInt16BE(0x8100, 2);
      return b;
    })()],
  ];

  it.each(cases)('%s', async (_what, bytes) => {
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*' }] });
    expect(await rawUdp(p.address, bytes, 300)).toBeNull();
    expect(p.proxy.stats()).toMatchObject({ malformed: 1, queries: 0, forwarded: 0 });
    expect(p.logLines.some((l) => l.verdict === 'Dropped' && String(l.reason).startsWith('malformed'))).toBe(true);
    const next = await dig(p.address, ['api.github.com', 'A']);
    expect(next.answers).toEqual(['api.github.com. 300 IN A 10.9.0.1']);
  });

  it('a datagram flood of malformed bytes is logged at most 10 lines a second, every one counted', async () => {
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s);
    for (let i = 0; i < 50; i++) await rawUdp(p.address, rawQuery(i, [0xc0, 12]), 1);
    await sleep(100);
    expect(p.proxy.stats().malformed).toBe(50);
    expect(p.logLines.filter((l) => l.verdict === 'Dropped').length).toBeLessThanOrEqual(20);
    expect((await dig(p.address, ['api.github.com', 'A'])).status).toBe('NOERROR');
  });
});

describe('names that could pass for others', () => {
  it('a label holding a dot ("api.github" + "com") is not api.github.com: it matches no name rule', async () => {
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s, { rules: [{ matchName: 'api.github.com' }] });
    const answer = await rawUdp(p.address, rawQuery(77, [...label('api.github'), ...label('com'), 0]));
    expect(answer).not.toBeNull();
    expect(answer!.readUInt16BE(0)).toBe(77);
    expect(answer!.readUInt16BE(2) & 0xf).toBe(5); // REFUSED
    expect(p.answers).toEqual([]);
    expect(p.logLines.find((l) => l.type === 'dns' && l.verdict === 'Denied')?.query).toBe('api\\.github.com.');
  });

  it('a label with a NUL byte is escaped and denied by a name rule', async () => {
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*.github.com' }] });
    const answer = await rawUdp(p.address, rawQuery(78, [4, 0x61, 0x70, 0x69, 0x00, ...label('github'), ...label('com'), 0]));
    expect(answer!.readUInt16BE(2) & 0xf).toBe(5);
    expect(p.logLines.find((l) => l.verdict === 'Denied')?.query).toBe('api\\000.github.com.');
  });
});

describe('TCP', () => {
  async function tcpExchange(port: number, chunks: Buffer[], pauseMs: number): Promise<Buffer[]> {
    const sock = connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    cleanups.add(() => sock.destroy());
    await once(sock, 'connect');
    const received: Buffer[] = [];
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        received.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
    });
    for (const c of chunks) {
      sock.write(c);
      await sleep(pauseMs);
    }
    return received;
  }

  function framed(id: number, name: string): Buffer {
    const q = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
    const f = Buffer.alloc(2 + q.length);
    f.writeUInt16BE(q.length, 0);
    q.copy(f, 2);
    return f;
  }

  it('answers a query whose frame arrives one byte per segment', async () => {
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s);
    const f = framed(501, 'api.github.com');
    const bytes = [...f].map((b) => Buffer.from([b]));
    const received = await tcpExchange(p.address.port, bytes, 5);
    for (let i = 0; i < 50 && received.length < 1; i++) await sleep(20);
    expect(received).toHaveLength(1);
    const m = dnsPacket.decode(received[0]!);
    expect(m.id).toBe(501);
    expect(m.answers?.map((a) => (a.type === 'A' ? a.data : a.type))).toEqual(['10.9.0.1']);
  });

  it('answers two queries pipelined in one segment, the second split from a third across segments', async () => {
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s, { rules: [{ matchPattern: '*' }] });
    const a = framed(601, 'api.github.com');
    const b = framed(602, 'github.com');
    const c = framed(603, 'api.github.com');
    const all = Buffer.concat([a, b, c]);
    const cut = a.length + b.length + 3;
    const received = await tcpExchange(p.address.port, [all.subarray(0, cut), all.subarray(cut)], 10);
    for (let i = 0; i < 50 && received.length < 3; i++) await sleep(20);
    expect(new Map(received.map((r) => {
      const m = dnsPacket.decode(r);
      const a = m.answers?.[0];
      return [m.id, a?.type === 'A' ? a.data : undefined];
    }))).toEqual(new Map([[601, '10.9.0.1'], [602, '10.9.0.5'], [603, '10.9.0.1']]));
  });

  it('closes a connection whose framing is broken (zero-length frame), and keeps serving others', async () => {
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s);
    const sock = connect(p.address.port, '127.0.0.1');
    cleanups.add(() => sock.destroy());
    await once(sock, 'connect');
    sock.write(Buffer.from([0, 0, 1, 2, 3]));
    await once(sock, 'close');
    expect(p.proxy.stats().malformed).toBe(1);
    expect((await dig(p.address, ['api.github.com', 'A', '+tcp'])).answers).toEqual(['api.github.com. 300 IN A 10.9.0.1']);
  });

  it('refuses a denied name over TCP as over UDP', async () => {
    const s = await startDnsmasq(cleanups, ZONE);
    const p = await startProxy(cleanups, s);
    expect((await dig(p.address, ['github.com', 'A', '+tcp'])).status).toBe('REFUSED');
    expect((await dig(p.address, ['api.github.com', 'A', '+tcp'])).status).toBe('NOERROR');
  });
});
