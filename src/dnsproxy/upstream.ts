/**
 * Stage 3, forward: one query's exchange with the original server over the client's own transport
 * (Cilium keeps the L4 protocol, so a client's TCP retry after a truncated UDP answer goes out
 * over TCP). The query's bytes go out unchanged (its ID included: each exchange has its own
 * socket and source port, so IDs of different clients never collide). An answer is accepted only
 * if it is a well-formed response with the query's ID and question. On UDP a datagram from the
 * server that carries the query's ID but fails the strict parse or is no answer to the question
 * (QR unset, another question) ends the exchange at once (`bad-answer`: SERVFAIL now, as Cilium
 * answers SERVFAIL when it cannot read the server's reply, instead of the client waiting out the
 * timeout); one with another ID is ignored and the wait goes on (an off-path forger must guess
 * the ID and port either way). On TCP any bad answer fails the exchange.
 */

import { createConnection, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { connectMarked, udpConnectMarked } from '../datapath/index.js';
import { FrameReader, frame } from './tcp-frames.js';
import { DnsWireError, OPCODE_QUERY, parseMessage, peekHeader, type Message, type Question } from './wire.js';
import type { DnsUpstream, HostPort } from './types.js';

export interface ExpectedAnswer {
  id: number;
  question: Question;
}

export type ExchangeResult =
  | { ok: true; response: Buffer; message: Message }
  | { ok: false; kind: 'timeout' | 'error' | 'bad-answer'; error: Error };

/** Why `response` is not the answer to `expect`, or null when it is. */
export function answerMismatch(message: Message, expect: ExpectedAnswer): string | null {
  const h = message.header;
  if (!h.qr) return 'not a response';
  if (h.opcode !== OPCODE_QUERY) return `opcode ${h.opcode}`;
  if (h.id !== expect.id) return `ID ${h.id} instead of ${expect.id}`;
  if (message.questions.length !== 1) return `${message.questions.length} questions`;
  const q = message.questions[0]!;
  // Servers echo the name as asked, but may change its case (0x20 randomisation): compared without case.
  if (q.name.toLowerCase() !== expect.question.name.toLowerCase() || q.type !== expect.question.type || q.class !== expect.question.class) {
    return `question ${q.name} ${q.type}/${q.class} instead of ${expect.question.name} ${expect.question.type}/${expect.question.class}`;
  }
  return null;
}

/**
 * What a server datagram is to the query `expect`: its answer, a bad answer to it (its ID, but
 * unparseable or not answering its question), or none of its business (another ID, or too short
 * for a header).
 */
export function classifyAnswer(data: Buffer, expect: ExpectedAnswer): { message: Message } | { bad: string } | { stray: string } {
  const r = check(data, expect);
  if ('message' in r) return r;
  const id = peekHeader(data)?.id;
  return id === expect.id ? { bad: r.error } : { stray: r.error };
}

function check(data: Buffer, expect: ExpectedAnswer): { message: Message } | { error: string } {
  let message: Message;
  try {
    message = parseMessage(data);
  } catch (err) {
    return { error: `malformed answer: ${err instanceof DnsWireError ? err.message : String(err)}` };
  }
  const why = answerMismatch(message, expect);
  return why === null ? { message } : { error: `answer does not match the query: ${why}` };
}

class UpstreamTimeout extends Error {
  override readonly name = 'UpstreamTimeout';
}

/** One exchange over UDP. `onMismatch` hears of every ignored datagram; `onDrops` of datagrams the kernel dropped on the socket. */
export function exchangeUdp(
  upstream: DnsUpstream,
  server: HostPort,
  identity: number,
  query: Uint8Array,
  expect: ExpectedAnswer,
  timeoutMs: number,
  onMismatch: (reason: string) => void,
  onDrops?: (count: number) => void,
): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    let done = false;
    let socket: { close(): void } | null = null;
    const finish = (r: ExchangeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket?.close();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, kind: 'timeout', error: new UpstreamTimeout(`no answer from ${server.ip}:${server.port} within ${timeoutMs} ms`) }), timeoutMs);
    try {
      const s = upstream.udp(
        server,
        identity,
        (data) => {
          if (done) return;
          const r = classifyAnswer(data, expect);
          if ('message' in r) finish({ ok: true, response: data, message: r.message });
          else if ('bad' in r) finish({ ok: false, kind: 'bad-answer', error: new Error(`bad answer from ${server.ip}:${server.port}: ${r.bad}`) });
          else onMismatch(r.stray);
        },
        (error) => finish({ ok: false, kind: 'error', error }),
        onDrops,
      );
      socket = s;
      if (done) s.close();
      else s.send(query, (error) => finish({ ok: false, kind: 'error', error }));
    } catch (err) {
      finish({ ok: false, kind: 'error', error: err instanceof Error ? err : new Error(String(err)) });
    }
  });
}

/** One exchange over TCP: a connection of its own, one framed query, one framed answer. */
export function exchangeTcp(
  upstream: DnsUpstream,
  server: HostPort,
  identity: number,
  query: Uint8Array,
  expect: ExpectedAnswer,
  timeoutMs: number,
): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    let done = false;
    let socket: Socket | null = null;
    const finish = (r: ExchangeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, kind: 'timeout', error: new UpstreamTimeout(`no answer from ${server.ip}:${server.port} within ${timeoutMs} ms`) }), timeoutMs);
    try {
      const s = upstream.tcp(server, identity);
      socket = s;
      const reader = new FrameReader();
      s.on('error', (error) => finish({ ok: false, kind: 'error', error }));
      s.on('close', () => finish({ ok: false, kind: 'error', error: new Error(`${server.ip}:${server.port} closed the connection before answering`) }));
      s.on('data', (chunk: Buffer) => {
        let frames: Buffer[];
        try {
          frames = reader.push(chunk);
        } catch (err) {
          finish({ ok: false, kind: 'error', error: err as Error });
          return;
        }
        const first = frames[0];
        if (first === undefined) return;
        const r = check(first, expect);
        if ('error' in r) finish({ ok: false, kind: 'error', error: new Error(r.error) });
        else finish({ ok: true, response: first, message: r.message });
      });
      s.write(frame(query));
    } catch (err) {
      finish({ ok: false, kind: 'error', error: err instanceof Error ? err : new Error(String(err)) });
    }
  });
}

/**
 * Upstream sockets of the addon, marked with the source identity (production): UDP through
 * `udpConnectMarked`, TCP through `connectMarked`; SO_MARK is set before the first packet.
 */
export function markedUpstream(): DnsUpstream {
  return {
    udp(server, identity, onMessage, onError, onDrops) {
      const s = udpConnectMarked(
        server.ip,
        server.port,
        identity,
        (datagrams) => {
          for (const d of datagrams) {
            // Larger than the socket keeps: not an answer that can be relayed whole.
            if (d.truncated) onError(new Error(`answer from ${server.ip}:${server.port} larger than 65536 bytes`));
            else onMessage(d.data);
          }
        },
        onError,
        onDrops,
      );
      // Queued: the turn's queries to this server go out in one sendmmsg.
      return { send: (data, failed) => s.sendQueued(data, undefined, undefined, failed), close: () => s.close(), native: s };
    },
    tcp(server, identity) {
      return connectMarked(server.ip, server.port, identity);
    },
  };
}

/** Plain sockets without a mark (tests, and a proxy outside the datapath): node:dgram and node:net. */
export function plainUpstream(): DnsUpstream {
  return {
    udp(server, _identity, onMessage, onError) {
      const s = createSocket('udp4');
      let connected = false;
      let closed = false;
      const queue: Uint8Array[] = [];
      s.on('message', (msg, rinfo) => {
        if (rinfo.address === server.ip && rinfo.port === server.port) onMessage(msg);
      });
      s.on('error', onError);
      s.connect(server.port, server.ip, () => {
        connected = true;
        for (const q of queue.splice(0)) s.send(q);
      });
      return {
        send(data) {
          if (connected) s.send(data);
          else queue.push(data);
        },
        close() {
          if (closed) return;
          closed = true;
          s.close();
        },
      };
    },
    tcp(server) {
      return createConnection({ host: server.ip, port: server.port });
    },
  };
}
