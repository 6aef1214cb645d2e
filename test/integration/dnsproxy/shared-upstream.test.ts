/**
 * issue-9 the DNS proxy shares one upstream UDP socket among the queries of one client socket to
 * one server (as Cilium's SharedClient), instead of a socket per query: the server sees one
 * source port per client socket; answers still go to the query with their ID and question; a
 * second query in flight with the same ID from the same client still gets its own answer.
 */
import { createSocket, type Socket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanups, startProxy } from './harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** A scripted server: answers every A query for api.github.com with 10.9.0.<id % 250>, after `delayMs`; records source ports. */
async function scriptedServer(delayMs = 0): Promise<{ port: number; ports: number[] }> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  cleanups.add(() => s.close());
  const ports: number[] = [];
  s.on('message', (msg, rinfo) => {
    ports.push(rinfo.port);
    const q = dnsPacket.decode(msg);
    const id = q.id ?? 0;
    const reply = dnsPacket.encode({
      type: 'response',
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: q.questions ?? [],
      answers: [{ type: 'A', name: 'api.github.com', ttl: 60, data: `10.9.0.${(id % 250) + 1}` }],
    });
    setTimeout(() => s.send(reply, rinfo.port, rinfo.address), delayMs);
  });
  return { port: s.address().port, ports };
}

async function clientSocket(): Promise<Socket> {
  const c = createSocket('udp4');
  await new Promise<void>((resolve) => c.bind(0, '127.0.0.1', () => resolve()));
  cleanups.add(() => c.close());
  return c;
}

/** Sends queries with these IDs at once from `c` and collects the answers' A records by ID. */
function ask(c: Socket, to: { ip: string; port: number }, ids: number[]): Promise<string[]> {
  return new Promise((resolve) => {
    const got: string[] = [];
    const on = (m: Buffer): void => {
      const d = dnsPacket.decode(m);
      const a = d.answers?.[0];
      got.push(`${d.id} ${a && a.type === 'A' ? (a.data as string) : `rcode ${(d.flags ?? 0) & 0xf}`}`);
      if (got.length === ids.length) {
        c.off('message', on);
        resolve(got.sort());
      }
    };
    c.on('message', on);
    for (const id of ids) c.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'api.github.com' }] }), to.port, to.ip);
  });
}

describe('shared upstream sockets', () => {
  it('queries of one client socket reach the server from one source port; another client socket gets its own', async () => {
    const s = await scriptedServer();
    const p = await startProxy(cleanups, { ip: '127.0.0.1', port: s.port });
    const a = await clientSocket();
    const b = await clientSocket();
    expect(await ask(a, p.address, [1])).toEqual(['1 10.9.0.2']);
    expect(await ask(a, p.address, [2])).toEqual(['2 10.9.0.3']);
    expect(await ask(a, p.address, [3, 4, 5])).toEqual(['3 10.9.0.4', '4 10.9.0.5', '5 10.9.0.6']);
    expect(await ask(b, p.address, [6])).toEqual(['6 10.9.0.7']);
    expect(new Set(s.ports.slice(0, 5)).size).toBe(1);
    expect(s.ports[5]).not.toBe(s.ports[0]);
    expect(p.proxy.stats()).toMatchObject({ forwarded: 6, mismatchedAnswers: 0, upstreamErrors: 0 });
  });

  it('two queries in flight with the same ID from one client socket each get an answer (the second on a socket of its own)', async () => {
    const s = await scriptedServer(100);
    const p = await startProxy(cleanups, { ip: '127.0.0.1', port: s.port });
    const a = await clientSocket();
    expect(await ask(a, p.address, [7, 7])).toEqual(['7 10.9.0.8', '7 10.9.0.8']);
    expect(new Set(s.ports).size).toBe(2);
    expect(p.proxy.stats()).toMatchObject({ forwarded: 2, mismatchedAnswers: 0 });
  });
});

describe('shared upstream sockets: timeouts under one timer', () => {
  it('on one shared socket, the queries the server ignores each get SERVFAIL once at their timeout while the answered ones in between are forwarded', async () => {
    // Answers only even IDs.
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
    cleanups.add(() => s.close());
    const ports: number[] = [];
    s.on('message', (msg, rinfo) => {
      ports.push(rinfo.port);
      const q = dnsPacket.decode(msg);
      if ((q.id ?? 1) % 2 === 1) return;
      const reply = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED, questions: q.questions ?? [], answers: [{ type: 'A', name: 'api.github.com', ttl: 60, data: `10.9.0.${q.id}` }] });
      s.send(reply, rinfo.port, rinfo.address);
    });
    const p = await startProxy(cleanups, { ip: '127.0.0.1', port: s.address().port }, { options: { upstreamTimeoutMs: 300 } });
    const a = await clientSocket();
    // One collector for the socket: answers in arrival order.
    const got: string[] = [];
    a.on('message', (m: Buffer) => {
      const d = dnsPacket.decode(m);
      const ans = d.answers?.[0];
      got.push(`${d.id} ${ans && ans.type === 'A' ? (ans.data as string) : `rcode ${(d.flags ?? 0) & 0xf}`}`);
    });
    const send = (id: number): void => a.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'api.github.com' }] }), p.address.port, p.address.ip);
    for (const id of [1, 2, 3]) send(id);
    await new Promise((r) => setTimeout(r, 100));
    // Begun later: their timeout ends after the first three's.
    for (const id of [4, 5, 6]) send(id);
    const deadline = Date.now() + 5000;
    while (got.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect([...got].sort()).toEqual(['1 rcode 2', '2 10.9.0.2', '3 rcode 2', '4 10.9.0.4', '5 rcode 2', '6 10.9.0.6']);
    expect(got.filter((g) => g.endsWith('rcode 2')).map((g) => g.split(' ')[0]).slice(-1)).toEqual(['5']);
    a.removeAllListeners('message');
    expect(new Set(ports).size).toBe(1);
    await new Promise((r) => setTimeout(r, 400));
    expect(p.proxy.stats()).toMatchObject({ forwarded: 3, timeouts: 3, inflight: 0 });
    // The socket keeps serving after the timeouts.
    expect(await ask(a, p.address, [8])).toEqual(['8 10.9.0.8']);
  });
});
