/**
 * DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766): each message is preceded by its length as a
 * two-byte big-endian integer. A frame may arrive split over any number of segments, and several
 * frames in one segment. The reader keeps at most one unfinished frame (≤ 2 + 65535 bytes).
 */

import { DnsWireError } from './wire.js';

/** The largest message a two-byte length can announce. */
export const MAX_TCP_MESSAGE = 0xffff;

export function frame(message: Uint8Array): Buffer {
  if (message.length > MAX_TCP_MESSAGE) throw new RangeError(`DNS message of ${message.length} bytes does not fit a TCP frame`);
  const out = Buffer.allocUnsafe(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  out.set(message, 2);
  return out;
}

export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;

  /** Bytes held for an unfinished frame. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * The complete messages `chunk` finishes, in order. Bytes are copied only once a frame is
   * complete, so a frame sent a byte at a time costs linear time. Throws DnsWireError on a
   * zero-length frame.
   */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: Buffer[] = [];
    while (this.#buffered >= 2) {
      const first = this.#chunks[0]!;
      const len = first.length >= 2 ? first.readUInt16BE(0) : (first[0]! << 8) | this.#chunks[1]![0]!;
      if (len === 0) throw new DnsWireError('zero-length DNS message on TCP');
      if (this.#buffered < 2 + len) break;
      const all = this.#chunks.length === 1 ? first : Buffer.concat(this.#chunks, this.#buffered);
      out.push(all.subarray(2, 2 + len));
      const rest = all.subarray(2 + len);
      this.#chunks = rest.length > 0 ? [rest] : [];
      this.#buffered = rest.length;
    }
    return out;
  }
}
