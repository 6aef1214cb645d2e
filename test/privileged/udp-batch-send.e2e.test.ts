/**
 * The addon's batched UDP sends (native/src/udp.cc udpSendBatch, src/datapath/sockets.ts
 * `sendQueued`): the DNS proxy's answers to clients and queries to servers go out in one
 * sendmmsg per socket per turn. Real sockets on loopback: a reply socket bound to an address the
 * client did not send to (IP_TRANSPARENT, as for a redirected query's original destination) and
 * a marked upstream socket (SO_MARK), received by node:dgram. Root for IP_TRANSPARENT and SO_MARK.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { udpConnectMarked, udpReplySocket, type NativeUdpSocket, type UdpDatagram } from '../../src/datapath/index.js';
import { privilegedSkipReason } from './harness.js';

const skip = privilegedSkipReason();

interface Received {
  data: string;
  from: string;
}

async function receiver(): Promise<{ socket: Socket; port: number; got: Received[]; until(n: number): Promise<Received[]> }> {
  const socket = createSocket('udp4');
  const got: Received[] = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (m, r) => {
    got.push({ data: m.toString(), from: `${r.address}:${r.port}` });
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  const until = async (n: number): Promise<Received[]> => {
    const deadline = Date.now() + 5000;
    while (got.length < n && Date.now() < deadline) await new Promise<void>((resolve) => waiters.push(resolve) && setTimeout(resolve, 100));
    return got;
  };
  return { socket, port, got, until };
}

describe.skipIf(skip !== null)('batched UDP sends (sendmmsg)', () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  it('a reply socket sends a turn of 150 queued datagrams (three sendmmsg chunks) in order, from its own bound address; a bad address fails alone', async () => {
    const client = await receiver();
    cleanup.push(() => client.socket.close());
    // 127.0.0.53:5353 is no address of this socket's netns listener: IP_TRANSPARENT lets it bind.
    const reply: NativeUdpSocket = udpReplySocket('127.0.0.53', 5353);
    cleanup.push(() => reply.close());
    const errors: Array<{ i: number; code: string | undefined }> = [];
    for (let i = 0; i < 150; i++) {
      const ip = i === 70 ? 'not-an-ip' : '127.0.0.1';
      reply.sendQueued(Buffer.from(`answer ${i}`), ip, client.port, (err) => errors.push({ i, code: err.code }));
    }
    // Nothing went out synchronously: the queue waits for the end of the turn.
    expect(client.got).toEqual([]);
    const got = await client.until(149);
    const want = Array.from({ length: 150 }, (_, i) => i)
      .filter((i) => i !== 70)
      .map((i) => ({ data: `answer ${i}`, from: '127.0.0.53:5353' }));
    expect(got).toEqual(want);
    expect(errors).toEqual([{ i: 70, code: 'EINVAL' }]);
  });

  it('a marked upstream socket sends its queued queries to its server in order, answers come back to its callback; close sends what is still queued', async () => {
    const server = await receiver();
    cleanup.push(() => server.socket.close());
    server.socket.on('message', (m, r) => server.socket.send(Buffer.from(`re: ${m.toString()}`), r.port, r.address));
    const answers: string[] = [];
    const errors: Error[] = [];
    const up = udpConnectMarked('127.0.0.1', server.port, 4242, (ds: UdpDatagram[]) => answers.push(...ds.map((d) => d.data.toString())), (e) => errors.push(e));
    cleanup.push(() => up.close());
    for (let i = 0; i < 5; i++) up.sendQueued(Buffer.from(`query ${i}`), undefined, undefined, (e) => errors.push(e));
    const got = await server.until(5);
    expect(got.map((g) => g.data)).toEqual([0, 1, 2, 3, 4].map((i) => `query ${i}`));
    const deadline = Date.now() + 5000;
    while (answers.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(answers).toEqual([0, 1, 2, 3, 4].map((i) => `re: query ${i}`));

    up.sendQueued(Buffer.from('last'), undefined, undefined, (e) => errors.push(e));
    up.close();
    await server.until(6);
    expect(server.got.map((g) => g.data).slice(5)).toEqual(['last']);
    expect(errors).toEqual([]);
  });

  it('a datagram queued on a socket closed before the turn ends is reported (EBADF), not sent', async () => {
    const client = await receiver();
    cleanup.push(() => client.socket.close());
    const reply = udpReplySocket('127.0.0.54', 5353);
    const errors: Array<string | undefined> = [];
    reply.close();
    reply.sendQueued(Buffer.from('late'), '127.0.0.1', client.port, (err) => errors.push(err.code));
    await new Promise((r) => setTimeout(r, 100));
    expect(errors).toEqual(['EBADF']);
    expect(client.got).toEqual([]);
  });
});
