/**
 * DNS wire format: the strict reading the proxy's decisions rest on, and the local replies it
 * sends (REFUSED / NXDOMAIN / SERVFAIL / NOTIMP).
 *
 * Two readers check every message, and it is used only if both accept it:
 * - `scanMessage` walks the raw bytes itself: header, every question and record (all four
 *   sections) by its RDLENGTH, names label by label. Compression pointers may only point backward
 *   (RFC 1035 §4.1.4: "a prior occurrence"), so a pointer loop is impossible, and never into the
 *   header; a name is at most
 *   255 bytes on the wire; A is 4 bytes and AAAA 16; a CNAME's target fills its RDATA exactly; the
 *   message ends where its last record ends. Names come out in presentation form with every byte
 *   that is not a plain printable character escaped as `\.` or `\DDD` (as miekg/dns, Cilium's
 *   library, prints them), so a label holding a dot can never pass for two labels, and such a name
 *   matches no DNS or toFQDNs pattern (only the allow-all `*`).
 * - `dns-packet` decodes, where the walk found them, the parts the decisions rest on: each question
 *   and each A/AAAA record of the answer section (it also refuses forward pointers and names over
 *   254 characters); each must end where the walk ended it, with the same type, and it gives the
 *   A/AAAA addresses. (Decoding the rest again — authority, additional, other record types — was
 *   half of the parsing cost of every query and answer, and told the proxy nothing it uses.)
 * Anything either reader rejects is malformed: counted and dropped, never guessed at.
 */

import * as dnsPacket from 'dns-packet';

/** RFC 1035 §2.3.4: 255 octets of a name on the wire. */
export const MAX_NAME_WIRE_LENGTH = 255;
/** The DNS header. */
export const HEADER_LENGTH = 12;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const OPCODE_QUERY = 0;
export const TYPE = { A: 1, CNAME: 5, AAAA: 28, OPT: 41 } as const;
const FLAG_QR = 0x8000;
const FLAG_TC = 0x0200;

export class DnsWireError extends Error {
  override readonly name = 'DnsWireError';
}

export interface Header {
  id: number;
  flags: number;
  qr: boolean;
  opcode: number;
  tc: boolean;
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export interface Question {
  /** Presentation form with a trailing dot, case as sent, unusual bytes escaped (`\.`, `\DDD`). */
  name: string;
  type: number;
  class: number;
}

export interface AnswerRecord {
  /** Owner name, presentation form as `Question.name`. */
  name: string;
  type: number;
  class: number;
  /** Seconds. */
  ttl: number;
  /** CNAME records: the target, presentation form. */
  target?: string;
  /** A and AAAA records: the address. */
  ip?: string;
}

export interface Message {
  header: Header;
  questions: Question[];
  /** The answer section only: the proxy learns nothing from authority or additional records. */
  answers: AnswerRecord[];
}

function readHeader(buf: Uint8Array): Header {
  if (buf.length < HEADER_LENGTH) throw new DnsWireError(`message shorter than the ${HEADER_LENGTH}-byte header (${buf.length} bytes)`);
  const u16 = (o: number): number => (buf[o]! << 8) | buf[o + 1]!;
  const flags = u16(2);
  return {
    id: u16(0),
    flags,
    qr: (flags & FLAG_QR) !== 0,
    opcode: (flags >> 11) & 0xf,
    tc: (flags & FLAG_TC) !== 0,
    rcode: flags & 0xf,
    qdcount: u16(4),
    ancount: u16(6),
    nscount: u16(8),
    arcount: u16(10),
  };
}

/** The DNS header alone, or null when the datagram is shorter than a header. */
export function peekHeader(buf: Uint8Array): Header | null {
  return buf.length < HEADER_LENGTH ? null : readHeader(buf);
}

const PLAIN = new Uint8Array(256);
for (let b = 0x21; b <= 0x7e; b++) PLAIN[b] = 1;
// Characters with a meaning in presentation form or in a pattern: escaped (miekg/dns escapes these too).
for (const c of '.\\"()@;$') PLAIN[c.charCodeAt(0)] = 0;

/** One label in presentation form. */
function labelText(buf: Uint8Array, start: number, len: number): string {
  let out = '';
  for (let i = start; i < start + len; i++) {
    const b = buf[i]!;
    if (PLAIN[b] === 1) out += String.fromCharCode(b);
    else if (b > 0x20 && b < 0x7f) out += `\\${String.fromCharCode(b)}`;
    else out += `\\${String(b).padStart(3, '0')}`;
  }
  return out;
}

/**
 * Reads the name at `offset`; `end` is the bound of the name's own bytes (the message, or a
 * record's RDATA); pointers may reach back anywhere before the label that holds them.
 * Returns the presentation form (`.` for the root) and the offset after the name's own bytes.
 */
export function readName(buf: Uint8Array, offset: number, end = buf.length): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  let wire = 1; // the root label
  // Each pointer must go strictly before the bytes it was read from: names cannot loop.
  let floor = offset;
  let limit = end;
  for (;;) {
    if (pos >= limit) throw new DnsWireError(`name at ${offset} runs past its bounds`);
    const len = buf[pos]!;
    if (len === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= limit) throw new DnsWireError(`compression pointer at ${pos} runs past its bounds`);
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= floor) throw new DnsWireError(`compression pointer at ${pos} to ${target} does not point backward`);
      // Names live after the header; a pointer into it would read flags and counts as labels.
      if (target < HEADER_LENGTH) throw new DnsWireError(`compression pointer at ${pos} points into the header`);
      if (next < 0) next = pos + 2;
      floor = target;
      pos = target;
      limit = buf.length;
      continue;
    }
    if (kind !== 0) throw new DnsWireError(`label type 0x${kind.toString(16)} at ${pos} is not supported`);
    if (pos + 1 + len > limit) throw new DnsWireError(`label at ${pos} runs past its bounds`);
    wire += len + 1;
    if (wire > MAX_NAME_WIRE_LENGTH) throw new DnsWireError(`name at ${offset} is longer than ${MAX_NAME_WIRE_LENGTH} bytes`);
    labels.push(labelText(buf, pos + 1, len));
    pos += len + 1;
  }
  return { name: labels.length === 0 ? '.' : `${labels.join('.')}.`, next };
}

function u16(buf: Uint8Array, o: number): number {
  return (buf[o]! << 8) | buf[o + 1]!;
}

export interface ScannedMessage extends Message {
  /** Where each question starts and ends (the offset after its class). */
  questionSpans: Array<[number, number]>;
  /** Where each answer-section record starts and ends (the offset after its RDATA). */
  answerSpans: Array<[number, number]>;
}

/** The strict walk of the whole message (see the module comment); answers carry no `ip` yet. Throws DnsWireError. */
export function scanMessage(buf: Uint8Array): ScannedMessage {
  const header = readHeader(buf);
  let pos = HEADER_LENGTH;
  const questions: Question[] = [];
  const questionSpans: Array<[number, number]> = [];
  for (let i = 0; i < header.qdcount; i++) {
    const { name, next } = readName(buf, pos);
    if (next + 4 > buf.length) throw new DnsWireError(`question ${i} runs past the message`);
    questions.push({ name, type: u16(buf, next), class: u16(buf, next + 2) });
    questionSpans.push([pos, next + 4]);
    pos = next + 4;
  }
  const answers: AnswerRecord[] = [];
  const answerSpans: Array<[number, number]> = [];
  const records = header.ancount + header.nscount + header.arcount;
  for (let i = 0; i < records; i++) {
    const { name, next } = readName(buf, pos);
    if (next + 10 > buf.length) throw new DnsWireError(`record ${i} runs past the message`);
    const type = u16(buf, next);
    const klass = u16(buf, next + 2);
    const ttl = ((buf[next + 4]! << 24) >>> 0) + (buf[next + 5]! << 16) + (buf[next + 6]! << 8) + buf[next + 7]!;
    const rdlength = u16(buf, next + 8);
    const rdata = next + 10;
    const end = rdata + rdlength;
    if (end > buf.length) throw new DnsWireError(`record ${i} RDATA runs past the message`);
    const rec: AnswerRecord = { name, type, class: klass, ttl };
    if (type === TYPE.A && rdlength !== 4) throw new DnsWireError(`A record ${i} has ${rdlength} bytes of RDATA, not 4`);
    if (type === TYPE.AAAA && rdlength !== 16) throw new DnsWireError(`AAAA record ${i} has ${rdlength} bytes of RDATA, not 16`);
    if (type === TYPE.CNAME) {
      const t = readName(buf, rdata, end);
      if (t.next !== end) throw new DnsWireError(`CNAME record ${i} target does not fill its RDATA`);
      rec.target = t.name;
    }
    if (i < header.ancount) {
      answers.push(rec);
      answerSpans.push([pos, end]);
    }
    pos = end;
  }
  if (pos !== buf.length) throw new DnsWireError(`${buf.length - pos} bytes after the last record`);
  return { header, questions, answers, questionSpans, answerSpans };
}

/** dns-packet's decoders of one question and one record (exported by the package, not in its types). */
interface PartDecoder<T> {
  (buf: Buffer, offset: number): T;
  /** Bytes the last call read. */
  bytes: number;
}
const packetParts = dnsPacket as unknown as {
  question: { decode: PartDecoder<dnsPacket.Question> };
  answer: { decode: PartDecoder<{ type: string; data?: unknown }> };
};

/** dns-packet's names of the record types the proxy reads addresses from. */
const PACKET_TYPE: Readonly<Record<number, string>> = { [TYPE.A]: 'A', [TYPE.AAAA]: 'AAAA' };

/**
 * A whole message, read strictly and cross-checked with dns-packet (see the module comment).
 * dns-packet decodes only what the decisions use, each where the walk found it: every question
 * (the policy's name) and every A/AAAA record of the answer section (the addresses the FQDN path
 * learns); each must end exactly where the walk ended it, with the same type. The walk has
 * already checked every byte of every section. Throws DnsWireError for anything malformed or
 * where the two readers disagree.
 */
export function parseMessage(buf: Uint8Array): Message {
  const scanned = scanMessage(buf);
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const { questions, answers, questionSpans, answerSpans } = scanned;
  try {
    for (let i = 0; i < questions.length; i++) {
      const [start, end] = questionSpans[i]!;
      packetParts.question.decode(b, start);
      if (start + packetParts.question.decode.bytes !== end) throw new DnsWireError(`dns-packet read question ${i} to another length`);
    }
    for (let i = 0; i < answers.length; i++) {
      const a = answers[i]!;
      const want = PACKET_TYPE[a.type];
      if (want === undefined) continue;
      const [start, end] = answerSpans[i]!;
      const d = packetParts.answer.decode(b, start);
      if (start + packetParts.answer.decode.bytes !== end) throw new DnsWireError(`dns-packet read answer ${i} to another length`);
      if (d.type !== want || typeof d.data !== 'string') throw new DnsWireError(`dns-packet read answer ${i} as ${d.type}, not ${want}`);
      a.ip = d.data;
    }
  } catch (err) {
    if (err instanceof DnsWireError) throw err;
    throw new DnsWireError(`dns-packet: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { header: scanned.header, questions, answers };
}

/**
 * A local reply to `query` (Cilium `sendRefused` → miekg `SetRcode`): the client's ID, opcode,
 * RD and CD bits, QR set, the first question (if any) echoed, no records. `query` must hold at
 * least a header.
 */
export function localReply(query: { header: Header; questions: readonly Question[] }, rcode: number, questionBytes?: Uint8Array): Buffer {
  const q = query.header;
  // RD (0x0100) and CD (0x0010) copied; AA, TC, RA, AD clear.
  const flags = FLAG_QR | (q.opcode << 11) | (q.flags & 0x0100) | (q.flags & 0x0010) | (rcode & 0xf);
  const question = questionBytes ?? new Uint8Array(0);
  const out = Buffer.alloc(HEADER_LENGTH + question.length);
  out.writeUInt16BE(q.id, 0);
  out.writeUInt16BE(flags, 2);
  out.writeUInt16BE(question.length > 0 ? 1 : 0, 4);
  out.set(question, HEADER_LENGTH);
  return out;
}

/**
 * The first question's bytes as the client sent them, to echo in a local reply; null without
 * questions, or when the name was compressed (nothing legitimate precedes it to point at).
 */
export function firstQuestionBytes(buf: Uint8Array, questions: readonly Question[]): Uint8Array | null {
  if (questions.length === 0) return null;
  try {
    const { next } = readName(buf, HEADER_LENGTH);
    const raw = buf.subarray(HEADER_LENGTH, next + 4);
    // Read back alone, the copy must name the same question (it would not if it was compressed).
    return readName(raw, 0).name === questions[0]!.name ? raw : null;
  } catch {
    return null;
  }
}

/** Hubble's names for record types (gopacket `layers.DNSType.String()`); others print `Unknown`. */
const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'A',
  2: 'NS',
  3: 'MD',
  4: 'MF',
  5: 'CNAME',
  6: 'SOA',
  7: 'MB',
  8: 'MG',
  9: 'MR',
  10: 'NULL',
  11: 'WKS',
  12: 'PTR',
  13: 'HINFO',
  14: 'MINFO',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  41: 'OPT',
  256: 'URI',
};

export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? 'Unknown';
}

/** The RCODE names of `dig` and the access log (`NOERROR`, `REFUSED`, …). */
export function rcodeMnemonic(rcode: number): string {
  return (['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'] as const)[rcode] ?? `RCODE${rcode}`;
}
