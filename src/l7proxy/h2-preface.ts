/**
 * Which protocol an accepted transparent connection speaks: HTTP/2 with prior knowledge starts with
 * the client connection preface (RFC 9113 §3.4), anything else is served as HTTP/1.1. At most the
 * 24 bytes of the preface are read; they are put back on the socket for the server that takes it.
 */

import type { Socket } from 'node:net';

/** RFC 9113 §3.4: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export type Sniffed = 'h2' | 'http1' | 'closed';

/**
 * Reads until the bytes either are the preface or cannot be; calls `done` once, with the socket
 * paused and the bytes read unshifted. A client that sends nothing for `timeoutMs` is closed
 * (`'closed'`), as the HTTP/1.1 server's headers timeout would have.
 */
export function sniffPreface(socket: Socket, timeoutMs: number, done: (kind: Sniffed) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  let settled = false;
  const settle = (kind: Sniffed): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.off('error', onEnd);
    if (kind !== 'closed') {
      socket.pause();
      if (buf.length > 0) socket.unshift(buf);
    }
    done(kind);
  };
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const n = Math.min(buf.length, H2_PREFACE.length);
    if (buf.compare(H2_PREFACE, 0, n, 0, n) !== 0) settle('http1');
    else if (buf.length >= H2_PREFACE.length) settle('h2');
  };
  // Only a prefix of the preface can still be undecided here: nothing to answer.
  const onEnd = (): void => {
    settle('closed');
    socket.destroy();
  };
  const timer = setTimeout(() => {
    settle('closed');
    socket.destroy();
  }, timeoutMs);
  timer.unref();
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
  socket.once('error', onEnd);
}
