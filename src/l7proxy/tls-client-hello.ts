/**
 * A strict, incremental reader of the TLS ClientHello, for the SNI check of `serverNames` rules:
 * what Envoy's tls_inspector does for cilium/proxy, without terminating anything.
 *
 *   bytes ──► TLSPlaintext records (RFC 8446 §5.1: type 22, version 0x03xx, length 1..2^14)
 *         ──► handshake fragments, reassembled ──► Handshake (msg_type 1 = client_hello, uint24)
 *         ──► ClientHello (RFC 8446 §4.1.2 / RFC 5246 §7.4.1.2) ──► extensions ──► server_name
 *             (RFC 6066 §3: list of {name_type, opaque HostName<1..2^16-1>}, one host_name)
 *
 * Every length is checked against what encloses it, the ClientHello must end exactly where its
 * handshake length says, extension types must be unique (RFC 8446 §4.2). Each byte is examined a
 * bounded number of times whatever the chunking, so reading is linear in the input; input is
 * bounded by `maxBytes` (the caller's buffer bound: fail closed past it).
 */

/** The result of feeding bytes. `consumed` is how many bytes the ClientHello's records took. */
export type ClientHelloState =
  | { readonly status: 'incomplete' }
  | { readonly status: 'done'; readonly sni: string | null; readonly consumed: number }
  | { readonly status: 'error'; readonly error: string };

/** Default bound on the bytes read before a ClientHello must be complete (64 KiB). */
export const DEFAULT_MAX_CLIENT_HELLO_BYTES = 64 * 1024;

const RECORD_HEADER = 5;
const MAX_RECORD = 1 << 14;
const CT_HANDSHAKE = 22;
const HS_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const NAME_TYPE_HOST = 0;
/** Longest DNS name in text form (RFC 1035: 255 octets on the wire). */
const MAX_HOST_NAME = 253;
const HOST_NAME_CHARS = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Reads a ClientHello from the start of a connection, chunk by chunk. */
export class ClientHelloReader {
  readonly #max: number;
  /** Every byte received, in order, in a buffer that doubles (amortised linear copying). */
  #buf: Buffer = Buffer.alloc(0);
  #received = 0;
  /** Offset of the next record header in the stream. */
  #recordAt = 0;
  /** Handshake fragments as [offset, length] in the stream, reassembled once the message is complete. */
  readonly #fragments: Array<[number, number]> = [];
  #handshakeLength = 0;
  /** The ClientHello body length, once the 4-byte handshake header has arrived. */
  #bodyLength: number | null = null;
  #state: ClientHelloState = { status: 'incomplete' };

  constructor(maxBytes: number = DEFAULT_MAX_CLIENT_HELLO_BYTES) {
    this.#max = maxBytes;
  }

  /** Bytes received so far (all of them are forwarded upstream if the connection is allowed). */
  get buffered(): Buffer {
    return this.#buf.subarray(0, this.#received);
  }

  get state(): ClientHelloState {
    return this.#state;
  }

  /** Feeds the next bytes of the connection; returns the state after them. */
  push(chunk: Buffer): ClientHelloState {
    if (this.#state.status !== 'incomplete') return this.#state;
    if (this.#received + chunk.length > this.#max) {
      this.#state = { status: 'error', error: `no complete ClientHello within ${this.#max} bytes` };
      return this.#state;
    }
    if (this.#received + chunk.length > this.#buf.length) {
      const grown = Buffer.alloc(Math.min(this.#max, Math.max(1024, 2 * this.#buf.length, this.#received + chunk.length)));
      this.#buf.copy(grown, 0, 0, this.#received);
      this.#buf = grown;
    }
    chunk.copy(this.#buf, this.#received);
    this.#received += chunk.length;
    this.#state = this.#advance();
    return this.#state;
  }

  /** The first `n` bytes of the handshake message, across fragments (all present). */
  #handshakeBytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    let w = 0;
    for (const [at, len] of this.#fragments) {
      if (w === n) break;
      const k = Math.min(len, n - w);
      this.#buf.copy(out, w, at, at + k);
      w += k;
    }
    return out;
  }

  #advance(): ClientHelloState {
    // Each loop takes one whole record; a record's bytes are looked at once here, once in parsing.
    while (this.#received - this.#recordAt >= RECORD_HEADER) {
      const h = this.#buf.subarray(this.#recordAt, this.#recordAt + RECORD_HEADER);
      if (h[0] !== CT_HANDSHAKE) return error(this.#recordAt === 0 ? `not a TLS handshake record (first byte 0x${hex(h[0]!)})` : `record of content type ${h[0]} before the ClientHello ended`);
      if (h[1] !== 3) return error(`unknown record version 0x${hex(h[1]!)}${hex(h[2]!)}`);
      const len = h.readUInt16BE(3);
      // RFC 8446 §5.1: handshake records are never empty, and never longer than 2^14.
      if (len === 0) return error('empty handshake record');
      if (len > MAX_RECORD) return error(`record length ${len} exceeds ${MAX_RECORD}`);
      if (this.#received - this.#recordAt < RECORD_HEADER + len) return { status: 'incomplete' };
      const start = this.#recordAt + RECORD_HEADER;
      this.#fragments.push([start, len]);
      this.#handshakeLength += len;
      this.#recordAt += RECORD_HEADER + len;
      if (this.#bodyLength === null) {
        if (this.#handshakeLength < 4) continue;
        const hs = this.#handshakeBytes(4);
        if (hs[0] !== HS_CLIENT_HELLO) return error(`first handshake message is type ${hs[0]}, not ClientHello`);
        this.#bodyLength = hs.readUIntBE(1, 3);
        if (4 + this.#bodyLength > this.#max) return error(`ClientHello of ${this.#bodyLength} bytes exceeds the ${this.#max}-byte bound`);
      }
      if (this.#handshakeLength < 4 + this.#bodyLength) continue;
      // The ClientHello must end with its record: a client sends nothing more before the server's reply.
      if (this.#handshakeLength > 4 + this.#bodyLength) return error('bytes after the ClientHello in its record');
      const message = this.#handshakeBytes(this.#handshakeLength);
      const r = parseClientHelloBody(message.subarray(4));
      return r.ok ? { status: 'done', sni: r.sni, consumed: this.#recordAt } : error(r.error);
    }
    return { status: 'incomplete' };
  }
}

function error(e: string): ClientHelloState {
  return { status: 'error', error: e };
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}

/** A bounds-checked cursor: every read says whether it fit. */
class Cursor {
  readonly buf: Buffer;
  at: number;
  readonly end: number;
  constructor(buf: Buffer, at = 0, end = buf.length) {
    this.buf = buf;
    this.at = at;
    this.end = end;
  }
  left(): number {
    return this.end - this.at;
  }
  u8(): number | null {
    if (this.left() < 1) return null;
    return this.buf[this.at++]!;
  }
  u16(): number | null {
    if (this.left() < 2) return null;
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  /** A sub-cursor over the next `n` bytes (and skips them here), or null if they are not there. */
  take(n: number): Cursor | null {
    if (this.left() < n) return null;
    const c = new Cursor(this.buf, this.at, this.at + n);
    this.at += n;
    return c;
  }
}

type BodyResult = { ok: true; sni: string | null } | { ok: false; error: string };

/** The ClientHello body (after the 4-byte handshake header), which must be consumed exactly. */
export function parseClientHelloBody(body: Buffer): BodyResult {
  const c = new Cursor(body);
  const version = c.u16();
  if (version === null) return { ok: false, error: 'truncated ClientHello (version)' };
  if (version >> 8 !== 3) return { ok: false, error: `unknown ClientHello version 0x${version.toString(16)}` };
  if (!c.take(32)) return { ok: false, error: 'truncated ClientHello (random)' };
  const sidLen = c.u8();
  if (sidLen === null || sidLen > 32 || !c.take(sidLen)) return { ok: false, error: 'bad legacy_session_id' };
  const csLen = c.u16();
  if (csLen === null || csLen < 2 || csLen % 2 !== 0 || !c.take(csLen)) return { ok: false, error: 'bad cipher_suites' };
  const cmLen = c.u8();
  if (cmLen === null || cmLen < 1 || !c.take(cmLen)) return { ok: false, error: 'bad legacy_compression_methods' };
  if (c.left() === 0) return { ok: true, sni: null }; // no extensions (TLS 1.0-1.2 only)
  const extLen = c.u16();
  if (extLen === null) return { ok: false, error: 'truncated extensions length' };
  const exts = c.take(extLen);
  if (!exts) return { ok: false, error: `extensions length ${extLen} exceeds the ClientHello` };
  if (c.left() !== 0) return { ok: false, error: 'bytes after the extensions' };
  const seen = new Set<number>();
  let sni: string | null = null;
  while (exts.left() > 0) {
    const type = exts.u16();
    const len = exts.u16();
    if (type === null || len === null) return { ok: false, error: 'truncated extension header' };
    const data = exts.take(len);
    if (!data) return { ok: false, error: `extension ${type} length ${len} exceeds the extensions` };
    if (seen.has(type)) return { ok: false, error: `extension ${type} appears twice` };
    seen.add(type);
    if (type !== EXT_SERVER_NAME) continue;
    const r = parseServerName(data);
    if (!r.ok) return r;
    sni = r.sni;
  }
  return { ok: true, sni };
}

/** RFC 6066 §3 ServerNameList: exactly consumed, at most one host_name, a DNS name as ASCII. */
function parseServerName(data: Cursor): BodyResult {
  const listLen = data.u16();
  if (listLen === null || listLen === 0) return { ok: false, error: 'empty server_name list' };
  const list = data.take(listLen);
  if (!list || data.left() !== 0) return { ok: false, error: 'server_name list length does not match its extension' };
  let host: string | null = null;
  while (list.left() > 0) {
    const type = list.u8();
    const len = list.u16();
    if (type === null || len === null) return { ok: false, error: 'truncated server_name entry' };
    const name = list.take(len);
    if (!name) return { ok: false, error: `server_name entry length ${len} exceeds the list` };
    if (type !== NAME_TYPE_HOST) continue; // unknown name types are skipped (RFC 6066)
    if (host !== null) return { ok: false, error: 'more than one host_name' };
    if (len === 0) return { ok: false, error: 'empty host_name' };
    if (len > MAX_HOST_NAME) return { ok: false, error: `host_name of ${len} bytes is longer than a DNS name` };
    const text = name.buf.toString('latin1', name.at, name.end);
    // RFC 6066: ASCII, no trailing dot. Anything else is no name a serverNames entry could list.
    if (!HOST_NAME_CHARS.test(text)) return { ok: false, error: 'host_name is not a DNS name' };
    host = text;
  }
  return { ok: true, sni: host };
}
