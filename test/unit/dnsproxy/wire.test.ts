/**
 * The proxy's strict reading (src/dnsproxy/wire.ts parseMessage): the walk checks every byte of
 * every section, dns-packet decodes the questions and A/AAAA answers where the walk found them.
 * Messages built with dns-packet and by hand.
 */
import * as dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { DnsWireError, parseMessage } from '../../../src/dnsproxy/wire.js';

const NAME = 'api.github.com';

function answer(extra: Partial<dnsPacket.Packet> = {}): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: 7,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type: 'A', name: NAME }],
    answers: [
      { type: 'CNAME', name: NAME, ttl: 30, data: 'gh.example' },
      { type: 'A', name: 'gh.example', ttl: 60, data: '10.9.0.1' },
      { type: 'AAAA', name: 'gh.example', ttl: 60, data: 'fd00::1' },
      { type: 'MX', name: NAME, ttl: 60, data: { preference: 10, exchange: 'mx.example' } },
    ],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] } as unknown as dnsPacket.Answer],
    ...extra,
  });
}

describe('parseMessage', () => {
  it('reads the question, every answer record and the addresses of the A and AAAA ones', () => {
    const m = parseMessage(answer());
    expect(m.header).toMatchObject({ id: 7, qr: true, qdcount: 1, ancount: 4, arcount: 1 });
    expect(m.questions).toEqual([{ name: 'api.github.com.', type: 1, class: 1 }]);
    expect(m.answers.map((a) => [a.name, a.type, a.ttl, a.ip ?? a.target ?? null])).toEqual([
      ['api.github.com.', 5, 30, 'gh.example.'],
      ['gh.example.', 1, 60, '10.9.0.1'],
      ['gh.example.', 28, 60, 'fd00::1'],
      ['api.github.com.', 15, 60, null],
    ]);
  });

  it('rejects an A record whose RDATA is not 4 bytes, bytes after the last record, a pointer loop and a forward pointer', () => {
    const good = answer({ answers: [{ type: 'A', name: NAME, ttl: 60, data: '10.9.0.1' }], additionals: [] });
    // The A record's RDLENGTH (the 2 bytes before its 4 bytes of RDATA) says 5, one more byte follows.
    const longA = Buffer.concat([good, Buffer.from([0])]);
    longA.writeUInt16BE(5, good.length - 6);
    expect(() => parseMessage(longA)).toThrow(DnsWireError);
    expect(() => parseMessage(Buffer.concat([good, Buffer.from([0])]))).toThrow(/bytes after the last record/);
    const header = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(() => parseMessage(Buffer.concat([header, Buffer.from([0xc0, 12, 0, 1, 0, 1])]))).toThrow(/does not point backward/);
    expect(() => parseMessage(Buffer.concat([header, Buffer.from([0xc0, 20, 0, 1, 0, 1]), Buffer.alloc(10)]))).toThrow(/does not point backward/);
  });
});
